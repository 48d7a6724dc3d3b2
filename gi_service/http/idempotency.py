"""Idempotency-Key for POSTs: a retried request gets the first answer, and two concurrent
identical requests do the work once.

The key's record is inserted in the same transaction as the work, so its unique index
makes a concurrent twin wait (PostgreSQL) or queue behind the write lock (SQLite), then
find the finished record and replay it.
"""
from __future__ import annotations

import hashlib
from typing import Callable

from flask import Response, jsonify, request
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from ..db import get_session
from ..errors import Conflict, MalformedRequest, ValidationFailed
from ..models import IdempotencyRecord
from ..services.accounts import Principal


def _request_hash() -> str:
    digest = hashlib.sha256()
    digest.update(request.method.encode() + b" " + request.path.encode() + b"\n")
    digest.update(request.get_data(cache=True))
    return digest.hexdigest()


def _replay(record: IdempotencyRecord, request_hash: str) -> Response:
    if record.request_hash != request_hash:
        raise ValidationFailed("this Idempotency-Key was already used for a different request; use a new key",
                               code="idempotency_key_reused")
    if record.status_code is None:
        raise Conflict("a request with this Idempotency-Key is still being processed; retry shortly",
                       code="idempotency_in_progress")
    resp = jsonify(record.response)
    resp.status_code = record.status_code
    resp.headers["Idempotent-Replayed"] = "true"
    return resp


def run(principal: Principal, call: Callable[[], Response]) -> Response:
    key = request.headers.get("Idempotency-Key", "").strip()
    if not 1 <= len(key) <= 200 or not key.isascii() or not key.isprintable():
        raise MalformedRequest("Idempotency-Key must be 1-200 printable ASCII characters", code="bad_idempotency_key")
    request_hash = _request_hash()
    session = get_session()
    lookup = select(IdempotencyRecord).where(IdempotencyRecord.user_id == principal.user_id,
                                             IdempotencyRecord.key == key)
    existing = session.scalar(lookup)
    if existing is not None:
        return _replay(existing, request_hash)
    record = IdempotencyRecord(user_id=principal.user_id, key=key, method=request.method, path=request.path[:300],
                               request_hash=request_hash)
    session.add(record)
    try:
        session.flush()
    except IntegrityError:
        # A twin request committed the same key first: answer as it did.
        session.rollback()
        return _replay(session.scalar(lookup), request_hash)
    resp = call()
    record.status_code = resp.status_code
    record.response = resp.get_json()
    session.commit()
    return resp
