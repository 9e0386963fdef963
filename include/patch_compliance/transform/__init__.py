"""pandas transform: raw collection documents -> report tables (schema.py is the single source of truth)."""

from include.patch_compliance.transform.build import build_tables
from include.patch_compliance.transform.raw import RawDataError
from include.patch_compliance.transform.snapshot import PreviousSnapshot
from include.patch_compliance.transform.summary import summarize
from include.patch_compliance.transform.trends import fleet_daily

__all__ = ["PreviousSnapshot", "RawDataError", "build_tables", "fleet_daily", "summarize"]
