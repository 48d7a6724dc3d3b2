"""The audit trail page for authorities: search by user, organisation, action, target, outcome and days, a page of
records newest first, and the download of every match (as GET /api/v1/audit)."""
from __future__ import annotations

from flask import request

from ..db import get_session
from ..errors import ValidationFailed
from ..http.answers import audit as answers
from ..http.files import FORMAT_TYPES
from ..http.parsing import parse_model
from ..services import audit
from .framework import AUTHORITY, NAV, page, problem, render, rollback

NAV[AUTHORITY].append(("web.audit", "nav_audit"))

PAGE_SIZE = 100
FIELDS = ("username", "organisation_id", "action", "target", "outcome", "channel", "date_from", "date_to")
_SCHEMA = answers.AuditQuery.model_json_schema()["properties"]
# The query parameters the page reads, with the API's schemas (the same model validates both).
_QUERY = {name: (_SCHEMA[name].get("description", name), {k: v for k, v in _SCHEMA[name].items() if k != "title"})
          for name in (*FIELDS, "before_id", "format")}


@page("/app/audit", "audit", kinds=(AUTHORITY,), alt_content_types=tuple(FORMAT_TYPES.get(f, m) for f, (m, _e, _w)
                                                                        in answers.EXPORTS.items()),
      query=_QUERY, responses={422: "a search field is malformed (the page again, saying which)"},
      summary="The audit trail: who did what, when and from where, for the organisations in the authority's "
              "jurisdiction; search, page back, download every match (format=csv or xlsx)",
      note="records of the organisations in its jurisdiction; the national authority reads all")
def audit_trail(principal):
    args = {name: request.args[name].strip() for name in (*FIELDS, "before_id", "format")
            if request.args.get(name, "").strip()}
    rows, more, error, status = [], False, None, 200
    try:
        query = parse_model(answers.AuditQuery, {**args, "limit": str(PAGE_SIZE)}, "query")
        if query.format != "json":
            return answers.search(principal, query)
        stmt = audit.search(principal, answers.filters(query), before_id=query.before_id)
        rows = list(get_session().scalars(stmt.limit(PAGE_SIZE + 1)))
        more, rows = len(rows) > PAGE_SIZE, rows[:PAGE_SIZE]
    except ValidationFailed as exc:
        rollback()
        error, status = problem(exc), int(exc.status)
    search_args = {k: v for k, v in args.items() if k in FIELDS}
    return render("app/audit.html", status=status, rows=rows, more=more, error=error, args=search_args,
                  formats=list(answers.EXPORTS), older={**search_args, "before_id": rows[-1].id} if more else None)
