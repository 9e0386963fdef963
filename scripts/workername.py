"""`[core] hostname_callable` for several Celery workers on one machine.

Airflow records ``TaskInstance.hostname`` from this callable in the task process, not from the Celery worker
name, so two workers on one host would both report the machine's name. scripts/cluster.py sets
``PC_WORKER_NAME`` per worker; without it this is Airflow's default (the FQDN).
"""

from __future__ import annotations

import os

WORKER_NAME_ENV = "PC_WORKER_NAME"


def get_name() -> str:
    name = os.environ.get(WORKER_NAME_ENV, "").strip()
    if name:
        return name
    from airflow.utils.net import getfqdn

    return getfqdn()
