"""EPCIS 2.0 export of the ledger, consumer checks and findings (JSON-LD; see services/epcis.py)."""
from __future__ import annotations

import datetime as dt
import json
import re
from typing import Optional
from urllib.parse import urlencode

from flask import Response, current_app, request
from pydantic import Field, create_model, field_validator

from ..db import get_session
from ..http.access import signed_in
from ..http.contract import endpoint
from ..http.schemas import Id, Query
from ..services import epcis
from . import bp

TAG = ["interoperability"]
CST = dt.timezone(dt.timedelta(hours=8))
# "+08:00" typed into a URL arrives as " 08:00" (a "+" in a query string is a space).
_SPACE_FOR_PLUS = re.compile(r"^(\d{4}-\d\d-\d\d[T ]\d\d:\d\d(?::\d\d(?:\.\d+)?)?) (\d\d:?\d\d)$")


def _time_param(value):
    if isinstance(value, str):
        value = _SPACE_FOR_PLUS.sub(r"\1+\2", value.strip())
    return value


class _EPCISQueryBase(Query):
    @field_validator("from", "to", mode="before", check_fields=False)
    @classmethod
    def _plus_sign(cls, value):
        return _time_param(value)


TIME_HELP = ("ISO 8601 date or date-time of the event; without an offset it is China Standard Time (+08:00); "
             "URL-encode a '+' as %2B")
# `from` is a Python keyword: the model is built with the names the query string uses.
EPCISQuery = create_model(
    "EPCISQuery", __base__=_EPCISQueryBase,
    **{
        "from": (Optional[dt.datetime], Field(default=None, description="events at or after; " + TIME_HELP)),
        "to": (Optional[dt.datetime], Field(default=None, description="events before; " + TIME_HELP)),
        "gi_id": (Optional[Id], None),
        "producer_id": (Optional[Id], None),
        # The pattern is documented, not enforced by the model: the service refuses a bad kind itself, with
        # its stable code invalid_kind and the kinds it knows.
        "kinds": (Optional[str], Field(default=None, max_length=100,
                                       json_schema_extra={"pattern": r"^(ledger|checks|findings)(,(ledger|checks|findings))*$"},
                                       description="comma-separated: ledger, checks, findings (default: all the "
                                                   "caller may export)")),
        "limit": (int, Field(default=100, ge=1, le=epcis.MAX_LIMIT, description="events per page")),
        "nextPageToken": (Optional[str], Field(default=None, min_length=1, max_length=400,
                                               description="from the previous page (Link rel=next)")),
    })


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    if value is None:
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=CST)


@endpoint(bp, "/epcis/events", access=signed_in(
              note="authorities: their GIs and jurisdiction; inspection units: checks and findings in their "
                   "jurisdiction; producers: their own marks; printers: their print orders"),
          query=EPCISQuery, tags=TAG, content_type="application/ld+json",
          responses={400: "malformed or mismatched nextPageToken, unknown parameter",
                     403: "a kind of event the caller may not export, or another producer's marks",
                     422: "invalid time, kinds or limit"},
          summary="EPCIS 2.0 EPCISDocument (JSON-LD) of the ledger (commissioning, shipping, decommissioning), "
                  "consumer checks and findings (inspecting), paged with a Link rel=next")
def export_events(principal, query):
    session = get_session()
    settings = current_app.config["GI_SETTINGS"]
    page = epcis.export(session, principal, kinds=query.kinds, start=_aware(getattr(query, "from")),
                        end=_aware(query.to), gi_id=query.gi_id, producer_id=query.producer_id, limit=query.limit,
                        page_token=query.nextPageToken, base_url=settings.public_base_url)
    body = json.dumps(page.document, ensure_ascii=False, separators=(",", ":"))
    resp = Response(body, mimetype="application/ld+json")
    resp.headers["GS1-EPCIS-Version"] = "2.0.0"
    resp.headers["GS1-CBV-Version"] = "2.0.0"
    resp.headers["Cache-Control"] = "private, no-store"
    if page.next_token:
        params = [(k, v) for k, v in request.args.items(multi=True) if k != "nextPageToken"]
        params.append(("nextPageToken", page.next_token))
        resp.headers["Link"] = f'<{request.base_url}?{urlencode(params)}>; rel="next"'
    return resp
