"""Server-rendered pages for people (templates/ and static/).

The consumer page (/v/…) lives in ``public/verify.py``; the signed-in pages for authorities, producers,
printers and inspectors live here, under /app, with /login and /logout. ``init_app`` lets
``current_principal()`` see the web session (web pages only; the API keeps bearer tokens).
"""
from flask import Blueprint, Flask

bp = Blueprint("web", __name__, template_folder="templates", static_folder="static", static_url_path="/app/static")


def init_app(app: Flask) -> None:
    """Make the signed-in web user visible to `current_principal()` on the web pages."""
    from .auth import session_principal

    app.extensions["gi_session_principal"] = session_principal


# The page modules register their views on `bp` when imported.
from . import framework, auth, home, registry_pages, producer_pages, ledger_pages  # noqa: E402,F401
from . import inspect_pages, case_pages, report_pages, statistics_pages, account_pages  # noqa: E402,F401
from . import audit_pages  # noqa: E402,F401
from . import import_pages  # noqa: E402,F401
