"""Liveness: `GET /api/v1/health` answers while the process serves requests, without the database.

Load balancers, container probes and `bench.load` (as the trivial endpoint of the same app that
the verification page is measured against) call it. It reads no row and opens no connection, so
it says "this worker answers HTTP", not "the database is up".
"""
from __future__ import annotations

from .. import __version__
from ..http.access import public
from ..http.contract import endpoint
from . import bp

HEALTH_SCHEMA = {
    "type": "object",
    "properties": {"status": {"type": "string", "enum": ["ok"]},
                   "version": {"type": "string", "description": "the gi-service version serving this request"}},
    "required": ["status", "version"],
}


@endpoint(bp, "/health", access=public("load balancers and probes; no sign-in"), tags=["meta"],
          summary="Liveness: the process answers (no database access)", response_schema=HEALTH_SCHEMA)
def health(principal):
    return {"status": "ok", "version": __version__}
