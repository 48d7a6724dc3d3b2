"""The audit trail as authorities read it: a search (JSON, a page of records) or a download of every match.

``GET /api/v1/audit`` and the page ``/app/audit`` answer it; services/audit.py says what is recorded and
who may read what (authorities, for the organisations in their jurisdiction).
"""
from __future__ import annotations

import datetime as dt
from typing import Any, Literal, Optional

from flask import Response, current_app, stream_with_context
from pydantic import Field, model_validator

from ... import clock
from ...db import get_session
from ...errors import ValidationFailed
from ...render import sheets
from ...render.csv import audit_csv
from ...render.xlsx import MEDIA_TYPE as XLSX, xlsx_chunks
from ...services import audit
from ..schemas import Id, Query

# The download formats of the trail: {format: (media type, file extension, writer of record dicts -> bytes
# chunks)}. Another format is one line here (the query's `format` and /openapi.json follow).
EXPORTS: dict[str, tuple[str, str, Any]] = {
    "csv": ("text/csv", "csv", audit_csv),
    "xlsx": (XLSX, "xlsx", lambda records: xlsx_chunks(sheets.audit_table(records))),
}
FORMATS = ("json", *EXPORTS)
MAX_PAGE = 500


class AuditQuery(Query):
    username: Optional[str] = Field(default=None, min_length=1, max_length=64,
                                    description="the account's username (for sign-ins: the name tried)")
    user_id: Optional[Id] = None
    organisation_id: Optional[Id] = None
    action: Optional[str] = Field(default=None, min_length=1, max_length=101, pattern=r"^[A-Za-z0-9_.\-]+\*?$",
                                  description="the action (api.approve_request, web.login, cli.tokens.create), or "
                                              "a prefix ending in * (api.*, web.*)")
    target: Optional[str] = Field(default=None, min_length=1, max_length=200,
                                  description="the resource acted on (request:5): that one and those below it "
                                              "(gi:3 also finds gi:3/plot:7)")
    outcome: Optional[Literal["success", "failure"]] = None
    channel: Optional[Literal["api", "web", "cli"]] = None
    date_from: Optional[dt.date] = Field(default=None, description="first day, China time (YYYY-MM-DD)")
    date_to: Optional[dt.date] = Field(default=None, description="last day, China time, included")
    since: Optional[dt.datetime] = Field(default=None, description="an instant (ISO 8601; without an offset, China "
                                                                   "time): records at or after it")
    until: Optional[dt.datetime] = Field(default=None, description="an instant: records before it")
    limit: int = Field(default=100, ge=1, le=MAX_PAGE, description="records per page (JSON)")
    before_id: Optional[int] = Field(default=None, ge=1, le=2**62,
                                     description="the next page: records older than this id (`next_before_id`)")
    format: Literal[FORMATS] = Field(  # type: ignore[valid-type]
        default="json", description="json: a page of records; " + ", ".join(EXPORTS) + ": every match, as a file")

    @model_validator(mode="after")
    def _ordered(self):
        if self.date_from and self.date_to and self.date_from > self.date_to:
            raise ValueError("date_from is after date_to")
        return self


def _instant(value: dt.datetime | None) -> dt.datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=clock.CHINA_TZ) if value.tzinfo is None else value


def filters(query: AuditQuery) -> audit.Filters:
    since = max(filter(None, [_instant(query.since), clock.start_of_day(query.date_from) if query.date_from
                              else None]), default=None)
    until = min(filter(None, [_instant(query.until), clock.start_of_day(query.date_to + dt.timedelta(days=1))
                              if query.date_to else None]), default=None)
    if since and until and since >= until:
        raise ValidationFailed("the time window is empty: its start is not before its end",
                               details=[{"field": "since", "problem": "not before until"}])
    return audit.Filters(username=query.username, user_id=query.user_id, organisation_id=query.organisation_id,
                         action=query.action, target=query.target, outcome=query.outcome, channel=query.channel,
                         since=since, until=until)


def search(principal, query: AuditQuery) -> dict[str, Any] | Response:
    """A page of matching records, newest first (JSON), or every match as a download."""
    session = get_session()
    stmt = audit.search(principal, filters(query), before_id=query.before_id)
    if query.format != "json":
        return download(principal, stmt, query.format)
    rows = list(session.scalars(stmt.limit(query.limit + 1)))
    more = len(rows) > query.limit
    rows = rows[: query.limit]
    return {"records": [audit.record_dict(r, chain=True) for r in rows],
            "next_before_id": rows[-1].id if more else None}


def download(principal, stmt, fmt: str) -> Response:
    """Every record `stmt` selects, streamed as a file of format `fmt` (see EXPORTS)."""
    mimetype, ext, writer = EXPORTS[fmt]
    sessions = current_app.extensions["gi_sessionmaker"]

    def records():
        # A session of the stream's own, ended with it: the request's session ends at the request's teardown,
        # which may come before a streamed answer is read, and a closed session used again begins a transaction
        # nobody ends (an idle connection in a transaction, holding locks, until the process exits).
        with sessions() as session:
            for record in session.scalars(stmt.execution_options(yield_per=1000)):
                yield audit.record_dict(record)

    stamp = clock.now().astimezone(clock.CHINA_TZ).strftime("%Y%m%d-%H%M")
    return Response(stream_with_context(writer(records())), mimetype=mimetype,
                    headers={"Content-Disposition": f'attachment; filename="audit-{stamp}.{ext}"',
                             "Cache-Control": "private, no-store"})
