"""The JSON API under /api/v1 (see http/contract.py for how endpoints are declared)."""
from flask import Blueprint

bp = Blueprint("api", __name__, url_prefix="/api/v1")

from . import accounts, geo, labels, ledger, marks, producers, registry  # noqa: E402,F401  (register the routes)
from . import clues, health  # noqa: E402,F401
from . import findings  # noqa: E402,F401
from . import cases, credit  # noqa: E402,F401
from . import epcis  # noqa: E402,F401
from . import annual_reports, opendata  # noqa: E402,F401
from . import statistics  # noqa: E402,F401
from . import audit  # noqa: E402,F401
from . import imports  # noqa: E402,F401
