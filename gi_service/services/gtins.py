"""What a GTIN names here: the product page behind the GS1 resolver's walk-up (`/01/{gtin}`, `/01/{gtin}/10/{lot}`).

A producer gives a batch of special marks the GTIN of its product (``MarkBatch.gtin``). A GTIN is a trade
item, a product class: no label to verify. Its link (``gs1:pip``, also its default link) is the product page
``/p/{gtin}``: the GI, its producer, its production area and standard, whether the producer's authorization is
in force and, for a lot the URI names, that lot's test and status (a recall above all). Nothing here is a
check: it is not logged nor counted, and the page says that only the special mark's own code verifies a label.

Normally one GTIN is one product of one producer; nothing in the ledger forbids two batches of different
producers from naming the same GTIN, so every (GI, producer, pack size) that used it is listed, the most
recent first: a GTIN claimed by two producers shows as such.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, desc, func, or_, select
from sqlalchemy.orm import Session

from .. import clock, i18n
from ..models import Authorization, AuthorizationStatus, GIProduct, GIStatus, Lot, LotStatus, MarkBatch
from .verification import LotFacts, gi_document, lot_document, producer_facts

MAX_PRODUCTS = 10

#: What the product page says, in Chinese and English (gi_service/i18n/texts.py).
TEXTS = i18n.pairs("gtin.")


@dataclass(frozen=True)
class ProductFacts:
    """One (GI, producer, pack size) whose batches carry the GTIN, with what says whether it may be sold now."""

    gi_id: int
    producer_id: int
    pack_size_g: int
    authorization: AuthorizationStatus | None
    valid_until: dt.date | None
    gi_status: GIStatus


def products(session: Session, gtin: str) -> list[ProductFacts]:
    """The products a GTIN names (one statement), the most recently approved batch first."""
    latest = func.max(MarkBatch.id).label("latest")
    rows = session.execute(
        select(MarkBatch.gi_id, MarkBatch.producer_id, MarkBatch.pack_size_g, Authorization.status,
               Authorization.valid_until, GIProduct.status, latest)
        .join(GIProduct, GIProduct.id == MarkBatch.gi_id)
        .outerjoin(Authorization, and_(Authorization.producer_id == MarkBatch.producer_id,
                                       Authorization.gi_id == MarkBatch.gi_id))
        .where(MarkBatch.gtin == gtin)
        .group_by(MarkBatch.gi_id, MarkBatch.producer_id, MarkBatch.pack_size_g, Authorization.status,
                  Authorization.valid_until, GIProduct.status)
        .order_by(desc(latest)).limit(MAX_PRODUCTS)).all()
    return [ProductFacts(*row[:6]) for row in rows]


def find_lot(session: Session, found: list[ProductFacts], lot_no: str) -> LotFacts | None:
    """The lot numbered `lot_no` of one of the products' producers for its GI (lot numbers are per producer)."""
    if not found:
        return None
    row = session.execute(
        select(Lot.lot_no, Lot.production_date, Lot.test_report_no, Lot.testing_body, Lot.status, Lot.recalled_at)
        .where(Lot.lot_no == lot_no, or_(*(and_(Lot.producer_id == p.producer_id, Lot.gi_id == p.gi_id)
                                           for p in found)))
        .order_by(Lot.id.desc()).limit(1)).first()
    return LotFacts(*row) if row is not None else None


def in_force(p: ProductFacts, today: dt.date) -> bool:
    return (p.gi_status != GIStatus.revoked and p.authorization == AuthorizationStatus.approved
            and (p.valid_until is None or p.valid_until >= today))


def describe(session: Session, gtin: str, found: list[ProductFacts], lot_no: str | None, *,
             base_url: str) -> dict[str, Any]:
    """The product page of the `found` products of a GTIN as plain data (its JSON; the HTML page renders the same)."""
    today = clock.today()
    doc: dict[str, Any] = {"gtin": gtin, "title": TEXTS["title"], "note": TEXTS["note"], "products": []}
    for p in found:
        ok = in_force(p, today)
        doc["products"].append({
            "gi": gi_document(session, p.gi_id, base_url=base_url),
            "producer": dict(producer_facts(session, p.producer_id)),
            "pack_size_g": p.pack_size_g,
            "authorization": {"status": p.authorization.value if p.authorization else None,
                              "valid_until": p.valid_until.isoformat() if p.valid_until else None,
                              "in_force": ok, "warning": None if ok else TEXTS["not_in_force"]},
        })
    if lot_no is not None:
        lot = find_lot(session, found, lot_no)
        doc["lot_no"] = lot_no
        doc["lot"] = None if lot is None else lot_document(lot)
        if lot is None:
            doc["lot_warning"] = {k: v.format(lot=lot_no) for k, v in TEXTS["lot_unknown"].items()}
        elif lot.status == LotStatus.recalled:
            doc["lot_warning"] = TEXTS["recalled"]
    return doc
