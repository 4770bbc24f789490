"""The host name a task instance records, telling several workers on one host apart."""

from __future__ import annotations

import os
import socket

#: Names the Celery worker whose task processes run with it (docker/airflow.env).
WORKER_HOSTNAME_VARIABLE = "VHUB_WORKER_HOSTNAME"


def worker_hostname() -> str:
    """The host name a task instance records (Airflow's ``[core] hostname_callable``):
    ``VHUB_WORKER_HOSTNAME`` when set, so that several workers on one host are told
    apart, else the host's fully qualified name, as Airflow's default."""
    return os.environ.get(WORKER_HOSTNAME_VARIABLE) or socket.getfqdn()
