"""Display names of the ids a page lists, fetched in one query per kind (never one per row)."""
from __future__ import annotations

from typing import Iterable

from sqlalchemy import select

from ..models import GIProduct, Organisation, User


def _lookup(db, column_id, column_name, ids: Iterable[int | None]) -> dict[int, str]:
    wanted = {i for i in ids if i}
    if not wanted:
        return {}
    return dict(db.execute(select(column_id, column_name).where(column_id.in_(wanted))).all())


def org_names(db, ids: Iterable[int | None]) -> dict[int, str]:
    return _lookup(db, Organisation.id, Organisation.name, ids)


def gi_names(db, ids: Iterable[int | None]) -> dict[int, str]:
    return _lookup(db, GIProduct.id, GIProduct.name_zh, ids)


def user_names(db, ids: Iterable[int | None]) -> dict[int, str]:
    return _lookup(db, User.id, User.username, ids)
