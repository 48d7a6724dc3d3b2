"""A season of special-mark use in 2025 on a movable clock, for the annual reports and open data.

The service's clock (`gi_service.clock.now`, which every service reads) is moved by `clock`, so
events happen in 2025 whatever today's date is, and the reports are read in January or February 2026.

The season (`season`), one producer 亳州市谯城区白芍种植专业合作社 of 亳白芍 (341602), 250 g packs:

* batch A, 1,000 marks issued on 1 April 2025; 1-400 activated on lot L-1 (400 packs) on 10 May;
  1-5 voided after activation, 401-420 voided, 421-430 lost, 431-435 stolen in June;
* batch B, 500 marks issued on 1 September; 1-250 activated on lot L-2 (300 packs) at 23:30 on
  31 December 2025 China time (15:30 UTC: still 2025); 251-300 activated on lot L-3 at 00:30 on
  1 January 2026 China time (16:30 UTC on 31 December: 2025 in UTC, 2026 in China).
"""
from __future__ import annotations

import datetime as dt

import pytest

from gi_service.codes import format_serial, parse_serial
from tests.factories import LedgerWorld, ServiceClock, cst

API = "/api/v1"
PRODUCER_NAME = "亳州市谯城区白芍种植专业合作社"


class Clock(ServiceClock):
    """The service's clock, frozen at a moment the test chooses."""


@pytest.fixture
def clock(monkeypatch) -> Clock:
    return Clock(monkeypatch, cst(2025, 3, 1, 9, 0))


def ok(r, status: int = 200):
    assert r.status_code == status, (r.status_code, r.get_json(silent=True))
    return r.get_json(silent=True)


def serial(batch: dict, n: int) -> str:
    first = parse_serial(batch["first_serial"])
    return format_serial(first.prefix, first.year, first.seq + n - 1)


def span(batch: dict, a: int, b: int | None = None) -> dict:
    return {"first": serial(batch, a), "last": serial(batch, a if b is None else b)}


class Season(LedgerWorld):
    """The world of tests/factories.LedgerWorld in 2025, and the season described above."""

    def __init__(self, factory, client, clock: Clock):
        self.clock = clock
        clock.set(cst(2025, 3, 1, 9, 0))
        super().__init__(factory, client, year=2025)
        self.producer.org.name = PRODUCER_NAME
        factory.session.commit()

    def lot(self, lot_no: str = "L-1", quantity: int = 1000, **overrides) -> dict:
        # Produced the day before (the activation service compares the production date with the UTC date).
        produced = (self.clock.moment - dt.timedelta(days=1)).date()
        return super().lot(lot_no, quantity, production_date=produced.isoformat(), **overrides)

    def issue_batch(self, quantity: int) -> dict:
        batch = self.approve(self.request(quantity)["id"])
        ok(self.client.post(f"{API}/batches/{batch['id']}/printed", headers=self.printer.headers, json={}))
        ok(self.client.post(f"{API}/batches/{batch['id']}/issue", headers=self.printer.headers, json={}))
        return batch

    def activate(self, batch: dict, a: int, b: int, lot_no: str, packs: int) -> None:
        ok(self.client.post(f"{API}/activations", headers=self.producer.headers,
                            json={"ranges": [span(batch, a, b)], "lot": self.lot(lot_no, packs)}), 201)

    def void(self, batch: dict, a: int, b: int, kind: str = "voided", actor=None) -> None:
        ok(self.client.post(f"{API}/voids", headers=(actor or self.producer).headers,
                            json={"ranges": [span(batch, a, b)], "kind": kind, "reason": "season"}))

    def play(self) -> "Season":
        c = self.clock
        c.set(cst(2025, 4, 1, 10, 0))
        self.a = self.issue_batch(1000)
        c.set(cst(2025, 5, 10, 10, 0))
        self.activate(self.a, 1, 400, "L-1", 400)
        c.set(cst(2025, 6, 2, 10, 0))
        self.void(self.a, 1, 5)
        self.void(self.a, 401, 420, actor=self.authority)
        self.void(self.a, 421, 430, "lost")
        self.void(self.a, 431, 435, "stolen")
        c.set(cst(2025, 9, 1, 10, 0))
        self.b = self.issue_batch(500)
        c.set(cst(2025, 12, 31, 23, 30))
        self.activate(self.b, 1, 250, "L-2", 300)
        return self

    def next_year_activation(self) -> None:
        self.clock.set(cst(2026, 1, 1, 0, 30))
        self.activate(self.b, 251, 300, "L-3", 50)


@pytest.fixture
def season(factory, client, clock, reused_world) -> Season:
    """The 2025 season, played once per test process and database; each test starts from its rows, at the
    moment the season ended."""
    def build() -> Season:
        played = Season(factory, client, clock).play()
        played.built_at = clock.moment
        return played

    def rebind(played: Season) -> None:
        played.rebind(factory, client, clock=clock)
        clock.set(played.built_at)

    return reused_world("annual", build, rebind)


def supply(season: Season, actor, quantity: int, activated: int, lot_no: str) -> dict:
    """Give another producer of the season's GI a 2025 quota, `quantity` issued marks and `activated` of them
    on a lot, at the clock's current moment."""
    c, auth = season.client, season.authority.headers
    season.factory.plot(actor, season.gi, side_m=100)
    ok(c.post(f"{API}/quota-accounts", headers=auth, json={"producer_id": actor.org.id, "gi_id": season.gi.id,
                                                           "year": 2025}), 201)
    request = ok(c.post(f"{API}/mark-requests", headers=actor.headers,
                        json={"gi_id": season.gi.id, "pack_size_g": 250, "quantity": quantity, "year": 2025}), 201)
    batch = ok(c.post(f"{API}/mark-requests/{request['id']}/approve", headers=auth,
                      json={"printer_id": season.printer.org.id}), 201)
    ok(c.post(f"{API}/batches/{batch['id']}/printed", headers=season.printer.headers, json={}))
    ok(c.post(f"{API}/batches/{batch['id']}/issue", headers=season.printer.headers, json={}))
    if activated:
        ok(c.post(f"{API}/activations", headers=actor.headers,
                  json={"ranges": [span(batch, 1, activated)], "lot": season.lot(lot_no, activated)}), 201)
    return batch
