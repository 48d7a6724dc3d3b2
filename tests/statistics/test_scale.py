"""Hundreds of checks and findings: counted by the database (the same statements whatever the rows), and the map
draws a county's points as one marker beyond its cap."""
from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import Counter

import pytest
from sqlalchemy import event

from gi_service.models import Finding, PremisesKind, Scan, UAClass, Verdict
from gi_service.services import statistics

from .conftest import API, GUOYANG, QIAOCHENG, cst

SVG = "{http://www.w3.org/2000/svg}"
VERDICTS = [Verdict.genuine, Verdict.genuine, Verdict.unknown, Verdict.voided, Verdict.genuine_not_activated]
KINDS = [PremisesKind.retail, PremisesKind.wholesale, PremisesKind.e_commerce]


class Seeder:
    """Writes checks and findings as rows (their filing paths are tested elsewhere) and keeps the expected counts."""

    def __init__(self, factory, session):
        self.session = session
        self.authority = factory.authority("341600")
        self.inspection = factory.inspection("341600")
        self.gi = factory.gi(self.authority)
        self.gi.mark_prefix = "BBSH"
        session.commit()
        self.n = 0
        self.verdicts: Counter = Counter()
        self.bots = 0
        self.per_county: Counter = Counter()
        self.violations: Counter = Counter()
        self.findings: Counter = Counter()

    def add(self, checks: int, findings: int) -> None:
        moment = cst(2026, 5, 1, 12, 0)
        for _ in range(checks):
            i, self.n = self.n, self.n + 1
            county, (lat, lon) = (("341602", QIAOCHENG), ("341621", GUOYANG))[i % 2]
            verdict, bot = VERDICTS[i % len(VERDICTS)], i % 7 == 0
            self.session.add(Scan(at=moment, series="BBSH26", seq=i + 1, mac_ok=verdict != Verdict.unknown,
                                  verdict=verdict, ua_class=UAClass.bot if bot else UAClass.mobile, lat=lat, lon=lon,
                                  adcode=county, located_at=moment))
            if bot:
                self.bots += 1
            else:
                self.verdicts[verdict.value] += 1
                self.per_county[county] += 1
        for _ in range(findings):
            i, self.n = self.n, self.n + 1
            county, (lat, lon) = (("341602", QIAOCHENG), ("341621", GUOYANG))[i % 2]
            violations = [["look_alike"], ["unauthorized_use", "look_alike"], []][i % 3]
            self.session.add(Finding(
                organisation_id=self.inspection.org.id, filed_by_id=self.inspection.principal.user_id,
                client_id=f"bulk:{i}", observed_at=moment, lat=lat + (i % 50) * 0.001, lon=lon, adcode=county,
                premises_name=f"shop {i}", premises_kind=KINDS[i % len(KINDS)], gi_id=self.gi.id,
                violations=violations))
            self.findings[(county, bool(violations))] += 1
            self.violations.update(violations)
        self.session.commit()


@pytest.fixture
def seeder(factory, session, clock):
    clock.set(cst(2026, 7, 1, 9, 0))
    return Seeder(factory, session)


def statements(app, client, actor, url: str, **params) -> tuple[int, dict]:
    """The data statements one request runs, and its answer."""
    seen: list[str] = []
    engine = app.extensions["gi_engine"]

    def record(conn, cursor, statement, parameters, context, executemany):
        if not statement.lstrip().upper().startswith(("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE",
                                                      "PRAGMA")):
            seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        r = client.get(url, headers=actor.headers, query_string=params)
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert r.status_code == 200, r.get_json(silent=True)
    return len(seen), (r.get_json(silent=True) or {})


def test_figures_are_aggregated_by_the_database(app, client, seeder):
    """With 30 and then 630 rows, does one statistics request run the same statements (the rows are grouped in SQL,
    not fetched), and count every verdict, bot, county and violation exactly?"""
    url = f"{API}/statistics"
    client.get(url, headers=seeder.authority.headers, query_string={"year": 2026})   # token first-use write
    seeder.add(checks=20, findings=10)
    few, _ = statements(app, client, seeder.authority, url, year=2026, group_by="region")
    seeder.add(checks=300, findings=300)
    many, data = statements(app, client, seeder.authority, url, year=2026, group_by="region")
    assert few == many
    total = data["total"]
    assert total["checks"]["total"] == sum(seeder.verdicts.values()) and total["checks"]["bots"] == seeder.bots
    assert {k: v for k, v in total["checks"]["by_verdict"].items() if v} == dict(seeder.verdicts)
    assert total["checks"]["located"] == sum(seeder.verdicts.values())
    assert total["findings"]["total"] == 310
    assert total["findings"]["with_violations"] == sum(n for (_c, v), n in seeder.findings.items() if v)
    assert {k: v for k, v in total["findings"]["by_violation"].items() if v} == dict(seeder.violations)
    counties = {g["key"]["region"]["adcode"]: g["figures"] for g in data["groups"]}
    assert counties["341602"]["checks"]["total"] == seeder.per_county["341602"]
    assert counties["341621"]["checks"]["total"] == seeder.per_county["341621"]
    assert counties["341621"]["findings"]["total"] == seeder.findings[("341621", True)] + \
        seeder.findings[("341621", False)]


def test_map_aggregates_a_layer_beyond_its_cap(client, seeder):
    """Beyond 300 findings, does the map draw one marker per county and kind with its count (and say so), keeping
    the file small, while alerts below the cap stay points?"""
    seeder.add(checks=0, findings=320)
    r = client.get(f"{API}/statistics/map.svg", headers=seeder.authority.headers, query_string={"year": 2026})
    assert r.status_code == 200 and len(r.data) < 60_000
    root = ET.fromstring(r.data)
    markers = {}
    for kind in ("findings_violation", "findings_clean"):
        for marker in root.find(f".//{SVG}g[@class='layer-{kind}']").findall(f"{SVG}circle"):
            markers[(kind, marker.find(f"{SVG}title").text.split(":")[0])] = marker
    assert set(markers) == {("findings_violation", "谯城区"), ("findings_violation", "涡阳县"),
                            ("findings_clean", "谯城区"), ("findings_clean", "涡阳县")}
    counts = [t.text for t in root.iter(f"{SVG}text") if t.text and t.text.isdigit()]
    assert sorted(int(c) for c in counts) == sorted(seeder.findings.values())
    words = ["".join(t.itertext()) for t in root.iter(f"{SVG}text")]
    assert f"执法检查发现超过 {statistics.MAX_MAP_POINTS} 个，按县汇总显示" in words
    assert f"执法检查发现（有违法） findings with violations: {sum(n for (_c, v), n in seeder.findings.items() if v)}" \
        in words
