"""WSGI entry point: the application built from the GI_* environment variables.

    gunicorn -c python:gi_service.gunicorn_conf gi_service.wsgi:app

Importing this module builds the app (that is its purpose); `create_app()` itself stays free of
import-time side effects. A setting that production refuses raises ConfigError here, so with
`preload_app` gunicorn stops at start-up with the message instead of respawning workers.

What every worker would otherwise do on its first requests is done here once, before the fork,
so workers share it copy-on-write and a recycled worker (max_requests) answers at full speed at
once: the ORM mappers are configured, the page templates compiled and the county boundaries of
the place lookups loaded (services/jurisdiction.py; without this each worker's first lookup took
0.7-7.7 s). No connection is opened.
"""
from __future__ import annotations

from sqlalchemy.orm import configure_mappers

from . import create_app
from .services import jurisdiction

app = create_app()


def _warm(application) -> None:
    configure_mappers()
    for name in application.jinja_env.list_templates(filter_func=lambda n: n.endswith(".html")):
        application.jinja_env.get_template(name)
    jurisdiction.preload()      # create_app configured where the converted boundaries are cached


_warm(app)
