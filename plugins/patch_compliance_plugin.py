"""Airflow 3 plugin: the "Patch compliance" page (FastAPI app + nav entry) and the operator extra links.

The page is a server-rendered FastAPI app (see ``include/patch_compliance/ui/app.py`` for why not a React app),
mounted by the api-server at ``/patch-compliance`` and shown in the Airflow nav in an iframe (``url_route``).
Every route requires an Airflow login (``requires_authenticated``): plugin apps are not protected by default.
Loading the plugin builds the app object only; the config and AWS are read per request.
"""

from __future__ import annotations

from airflow.api_fastapi.core_api.security import requires_authenticated
from airflow.plugins_manager import AirflowPlugin

from include.patch_compliance.orchestration.links import S3ReportLink, SecurityHubFindingsLink, SsmRunCommandLink
from include.patch_compliance.ui.app import create_app

URL_PREFIX = "/patch-compliance"


class PatchCompliancePlugin(AirflowPlugin):
    name = "patch_compliance"
    fastapi_apps = [
        {
            "app": create_app(dependencies=[requires_authenticated()]),
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
