"""Airflow 3 plugin: the "Patch compliance" page (FastAPI app + nav entry) and the operator extra links.

The page is a server-rendered FastAPI app (see ``include/patch_compliance/ui/app.py`` for why not a React app),
mounted by the api-server at ``/patch-compliance`` and shown in the Airflow nav in an iframe (``url_route``).
Plugin apps are not protected by default: every data route requires a login and read access to the runs of the
scan and collect DAGs (``ui/access.py``: 401 without a login, 403 without access). Loading the plugin builds the
app object only; the config and AWS are read per request.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from include.patch_compliance.orchestration.links import S3ReportLink, SecurityHubFindingsLink, SsmRunCommandLink
from include.patch_compliance.ui.access import fleet_access
from include.patch_compliance.ui.app import create_app

URL_PREFIX = "/patch-compliance"


class PatchCompliancePlugin(AirflowPlugin):
    name = "patch_compliance"
    fastapi_apps = [
        {
            "app": create_app(dependencies=fleet_access()),
            "url_prefix": URL_PREFIX,
            "name": "Patch compliance",
        }
    ]
    external_views = [
        {
            # Short: the nav rail truncates longer labels ("Patch co…"); the page itself is titled in full.
            "name": "Compliance",
            "href": f"{URL_PREFIX}/",
            "destination": "nav",
            "url_route": "patch-compliance",
            "icon": f"{URL_PREFIX}/static/icon.svg",
            "icon_dark_mode": f"{URL_PREFIX}/static/icon-dark.svg",
            "nav_top_level": True,
        }
    ]
    # Listed for Admin > Plugins; the links act through the operators' own operator_extra_links (see links.py).
    operator_extra_links = [SsmRunCommandLink(), S3ReportLink(), SecurityHubFindingsLink()]
