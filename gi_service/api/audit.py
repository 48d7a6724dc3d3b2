"""The audit trail, read by authorities for their jurisdiction (see services/audit.py)."""
from __future__ import annotations

from ..http.access import signed_in
from ..http.answers import audit as answers
from ..http.contract import endpoint
from ..models import OrgKind
from . import bp


@endpoint(bp, "/audit", access=signed_in(OrgKind.authority, note="records of the organisations in its jurisdiction; "
                                                                 "the national authority reads all"),
          query=answers.AuditQuery, tags=["audit"],
          content_type=("application/json", *(mimetype for mimetype, _ext, _w in answers.EXPORTS.values())),
          summary="Search the audit trail of staff actions and sign-in attempts (who, what, outcome, when, from "
                  "where), newest first; or download every match (format=csv or xlsx)")
def audit_search(principal, query: answers.AuditQuery):
    return answers.search(principal, query)
