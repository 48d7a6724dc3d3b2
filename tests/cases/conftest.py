"""A cross-region world for cases and credit, and helpers that file findings and clues directly.

Places: the producer (谯城区 341602) and the GI's authority (亳州市 341600, which issued the marks)
are in Anhui, as is a provincial authority (安徽省 340000); an inspection unit of 亳州 (341600)
works beside the authority; the inspection unit of 广州 (440100) inspects shops in 天河区 (440106);
the provincial authority of 广东 (440000) supervises it; 上海's inspection unit (310000) has
nothing to do with any of it.

Findings and clues are written as rows (the findings API is built separately): what a case needs
from them is what they point to (GI, producer, place, premises kind, violations).
"""
from __future__ import annotations

import datetime as dt
import itertools

import pytest
from sqlalchemy import func, select

from gi_service import create_app
from gi_service.models import (AlertKind, Clue, ClueKind, CluePlace, ClueStatus, Finding, FindingCode, PlaceRole,
                               PremisesKind)
from tests.verify.conftest import World

API = "/api/v1"
TIANHE = (23.1291, 113.3280, "440106")    # (lat, lon, county) a market in 广州 天河区
QIAOCHENG = (33.85, 115.7, "341602")      # 亳州 谯城区
_ids = itertools.count(1)


def fresh(session) -> None:
    """End the test session's transaction, so its next read sees what the requests committed (on SQLite a
    reading transaction keeps its snapshot)."""
    session.commit()
    session.expire_all()


def count(session, model, *where) -> int:
    fresh(session)
    stmt = select(func.count()).select_from(model)
    for cond in where:
        stmt = stmt.where(cond)
    found = session.scalar(stmt)
    # End the read: on SQLite a read transaction left open cannot become a write after another connection has
    # committed (the app's requests do, refusals included, since the audit trail records them).
    session.commit()
    return found


class Story(World):
    """World (authority 341600, GI 亳白芍, an authorized producer with quota, a printer) plus the other places."""

    def __init__(self, factory, client, app, session):
        super().__init__(factory, client, app)
        self.session = session
        self.anhui = factory.authority("340000", name="安徽省知识产权局")
        self.bozhou_inspection = factory.inspection("341600")
        self.gz = factory.inspection("440100")
        self.guangdong = factory.authority("440000", name="广东省知识产权局")
        self.shanghai = factory.inspection("310000")

    # --- evidence written as rows ----------------------------------------------------------------

    def finding(self, by=None, *, producer=None, gi=None, place=TIANHE, kind: str = "retail",
                violations=("forged_or_copied_label",), codes=(), name: str = "天河茶叶市场 A12 档") -> int:
        """A finding filed by `by` (default: Guangzhou's inspection unit) about the producer and GI."""
        by = by or self.gz
        producer_id = self.producer.org.id if producer is None else producer
        finding = Finding(organisation_id=by.org.id, filed_by_id=by.principal.user_id,
                          client_id=f"dev:{next(_ids)}", observed_at=dt.datetime.now(dt.timezone.utc),
                          lat=place[0], lon=place[1], adcode=place[2], premises_name=name,
                          premises_kind=PremisesKind(kind), gi_id=self.gi.id if gi is None else (gi or None),
                          producer_id=producer_id or None, violations=list(violations), notes="test finding")
        for i, code in enumerate(codes):
            finding.codes.append(FindingCode(position=i, code=code, verdict="genuine"))
        self.session.add(finding)
        self.session.commit()
        return finding.id

    def clue(self, *, producer=None, gi=None, adcode: str = "440106", status=ClueStatus.open) -> int:
        """A copied-label alert seen at `adcode`, routed there and to the producer's place."""
        producer_id = self.producer.org.id if producer is None else producer
        now = dt.datetime.now(dt.timezone.utc)
        clue = Clue(kind=ClueKind.alert, alert_kind=AlertKind.too_many_checks, status=status, created_at=now,
                    last_at=now, occurrences=1, gi_id=self.gi.id if gi is None else (gi or None),
                    producer_id=producer_id or None,
                    adcode=adcode, summary=f"too many checks at {adcode}", dedup_key=f"test:{next(_ids)}",
                    details={"serial": "BBSH-26-000000003"})
        clue.places.append(CluePlace(role=PlaceRole.scan_place, adcode=adcode))
        if producer_id:
            clue.places.append(CluePlace(role=PlaceRole.producer_place, adcode="341602"))
        self.session.add(clue)
        self.session.commit()
        return clue.id

    # --- the API ---------------------------------------------------------------------------------

    def open(self, by, *, clue_ids=(), finding_ids=(), status: int = 201, **extra) -> dict:
        r = self.client.post(f"{API}/cases", headers=by.headers,
                             json={"title": "假冒亳白芍标识", "reason": "检查发现 / found on inspection",
                                   "clue_ids": list(clue_ids), "finding_ids": list(finding_ids), **extra})
        assert r.status_code == status, r.json
        return r.json

    def step(self, by, case_id: int, action: str, status: int = 200, client=None, **body) -> dict:
        body.setdefault("reason", f"{action}: test")
        r = (client or self.client).post(f"{API}/cases/{case_id}/{action}", headers=by.headers, json=body)
        assert r.status_code == status, r.json
        return r.json

    def concluded_case(self, violations=("look_alike",), *, client=None, measure: str = "责令整改，罚款 1 万元",
                       producer=None, **conclude) -> dict:
        """A case the GI's authority opens at the producer's place, investigates and concludes confirmed."""
        fid = self.finding(self.authority, place=QIAOCHENG, kind="production", violations=violations,
                           producer=producer)
        case = self.open(self.authority, finding_ids=[fid])
        self.step(self.authority, case["id"], "investigate")
        return self.step(self.authority, case["id"], "conclude", client=client, outcome="violation_confirmed",
                         measure=measure, **conclude)


@pytest.fixture
def story(factory, client, app, session, reused_world) -> Story:
    """The cases story's people and marks (built once per test process and database, then restored)."""
    return reused_world("cases", lambda: Story(factory, client, app, session),
                        lambda world: world.rebind(factory, client, app=app, session=session))


@pytest.fixture
def rules_app(app, tmp_path):
    """Build an app on the same database with a credit rules file: call it with the file's JSON text."""
    made = []

    def build(text: str):
        path = tmp_path / f"credit-rules-{len(made)}.json"
        path.write_text(text, encoding="utf-8")
        settings = app.config["GI_SETTINGS"].with_overrides(credit_rules_path=path)
        other = create_app(settings)
        other.config["TESTING"] = True
        made.append(other)
        return other

    yield build
    for other in made:
        other.extensions["gi_engine"].dispose()

