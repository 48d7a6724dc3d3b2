"""Two years of special-mark use and supervision in 亳州, built through the API, for the statistics.

The service's clock is moved (``Clock``) so that everything happens in 2025 and 2026 whatever
today's date is. Places: 亳州市 (341600) with 谯城区 (341602) and 涡阳县 (341621); the GI's
authority is 亳州's; a county authority of 谯城区, the provincial authority of 安徽 and a national
authority read statistics; 亳州's inspection unit files findings; 广州's (440100) inspects a shop
in 天河区 and refers its case to 谯城区.

GIs: A 亳白芍 (marks used) and B 亳菊 (no marks). Producers:

* P1 谯城区, GI A — the ledger world's producer; P2 涡阳县, GI A; P3 涡阳县, GI B, never uses marks;
  P4 涡阳县, GI B, applied in 2025 (pending) and approved on 1 February 2026.

2025 (China time):

* 1 April: P1's batch A1 of 100 marks, 2 spoiled in printing (99, 100), 98 issued;
* 10 May: P1 activates A1 1-50 (lot L-1); 2 June: voids 51-53, reports 54 lost and 55 stolen;
* 1 July: P2's batch of 40, all issued; 20 activated (lot P2-L1);
* 1 August: one consumer check of A1 #4 (genuine);
* 1 September: a finding in 谯城区 at a web shop (mark without USCC);
* 31 December 23:30: P1 activates A1 61-62 (lot L-2): still 2025 in China.

2026:

* 1 January 00:30: P1 activates A1 56-60 (lot L-3): 2026 in China though 2025 in UTC;
* 15 January: P1 submits its 2025 annual report (1,234.5 kg, 98,765.43 yuan); 10 February: P2
  submits late (100 kg, 5,000 yuan); P3 never does;
* 1 February: P4 approved; P1's batch A2 of 60, all issued; 1 March: A2 1-30 activated (lot L-4);
* 1 June: consumer checks (see ``CHECKS_2026``): A1 #1 four times (GI A's threshold is 3: one
  too-many-checks alert, raised twice), #2 located in 谯城区 and once by a bot, #3 located in
  谯城区 then two minutes later in 涡阳县 (an impossible-travel alert placed in 涡阳县), P2's #1
  located in 涡阳县, voided #51 (then a consumer report from that check, shop in 谯城区), never
  activated #70, a forged code and a malformed one;
* 2 June: findings in 谯城区 (retail: forged label and look-alike), 涡阳县 (wholesale, GI B:
  unauthorized use; production, GI A: clean) and 广州 天河区 (retail: look-alike, naming P1);
* cases: 广州 opens one from its finding (3 June), refers it to 谯城区 (4 June), which concludes
  it confirmed (10 June); 亳州's authority opens one from the 涡阳 wholesale finding (5 June) and
  concludes no violation (12 June); 亳州's inspection unit opens one from the 谯城区 finding
  (6 June), still open.
"""
from __future__ import annotations

import datetime as dt
import io
import csv

import pytest

from tests.factories import LedgerWorld, ServiceClock, cst
from tests.verify.conftest import Batch, forged

API = "/api/v1"
JSON = {"Accept": "application/json"}
PHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Mobile/15E148"
BOT = "Mozilla/5.0 (compatible; Googlebot/2.1)"
QIAOCHENG = (33.85, 115.70)       # (lat, lon) in 谯城区 341602
QIAOCHENG_SHOP = (33.80, 115.80)  # another point in 谯城区
GUOYANG = (33.49, 116.21)         # 涡阳县 341621
TIANHE = (23.1291, 113.3280)      # 广州 天河区 440106


class Clock(ServiceClock):
    """The service's clock, frozen at a moment the test chooses (the test tokens live ten years)."""


@pytest.fixture
def clock(monkeypatch) -> Clock:
    return Clock(monkeypatch, cst(2025, 3, 1, 9, 0))


def ok(r, status: int = 200):
    assert r.status_code == status, (r.status_code, r.get_json(silent=True))
    return r.get_json(silent=True)


def parse_csv(body: bytes) -> list[dict[str, str]]:
    """A CSV answer as rows keyed by the English key in each header's parentheses."""
    assert body.startswith(b"\xef\xbb\xbf"), "the CSV starts with a UTF-8 byte-order mark"
    rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
    keys = [h[h.rindex("(") + 1:-1] for h in rows[0]]
    return [dict(zip(keys, row)) for row in rows[1:]]


class Stats(LedgerWorld):
    """The world described in the module docstring (call ``play()`` to run the two years)."""

    def __init__(self, factory, client, app, clock: Clock):
        self.clock, self.app = clock, app
        self.keyring = app.extensions["gi_keyring"]
        clock.set(cst(2025, 3, 1, 9, 0))
        super().__init__(factory, client, year=2025)         # authority 341600, GI A, P1 with quota, printer
        self.gi_a = self.gi
        self.p1 = self.producer
        self.gi_b = factory.gi(self.authority, name_zh="亳菊", area_adcodes=("341621",), name_pinyin="Bo Ju",
                               name_en="Bozhou chrysanthemum")
        self.p2 = factory.producer("341621", name="涡阳县白芍合作社")
        self.p3 = factory.producer("341621", name="涡阳县亳菊种植户")
        self.p4 = factory.producer("341621", name="涡阳县亳菊新户")
        factory.plot(self.p2, self.gi_a, side_m=100)
        factory.authorization(self.p2, self.gi_a, self.authority)
        factory.authorization(self.p3, self.gi_b, self.authority)
        self.p4_auth = factory.authorization(self.p4, self.gi_b, self.authority, approve=False)
        ok(client.post(f"{API}/quota-accounts", headers=self.authority.headers,
                       json={"producer_id": self.p2.org.id, "gi_id": self.gi_a.id, "year": 2025}), 201)
        # Readers and inspectors.
        self.qiaocheng = factory.authority("341602", name="谯城区市场监督管理局")
        self.anhui = factory.authority("340000", name="安徽省知识产权局")
        self.national = factory.authority("100000", name="国家知识产权局")
        self.bozhou_inspection = factory.inspection("341600")
        self.gz = factory.inspection("440100")
        self.guangdong = factory.authority("440000", name="广东省知识产权局")
        r = client.patch(f"{API}/gis/{self.gi_a.id}", headers=self.authority.headers,
                         json={"check_alert_threshold": 3, "reason": "copied-label threshold for packs"})
        ok(r)

    # --- the ledger ------------------------------------------------------------------------------

    def lot_for(self, lot_no: str, packs: int) -> dict:
        produced = (self.clock.moment - dt.timedelta(days=1)).date()
        return self.lot(lot_no, packs, production_date=produced.isoformat())

    def batch_for(self, producer, quantity: int, *, year: int, spoiled=()) -> Batch:
        c = self.client
        request = ok(c.post(f"{API}/mark-requests", headers=producer.headers,
                            json={"gi_id": self.gi_a.id, "pack_size_g": 250, "quantity": quantity, "year": year}),
                     201)
        batch = ok(c.post(f"{API}/mark-requests/{request['id']}/approve", headers=self.authority.headers,
                          json={"printer_id": self.printer.org.id}), 201)
        first = Batch(batch, self.keyring)
        ok(c.post(f"{API}/batches/{batch['id']}/printed", headers=self.printer.headers,
                  json={"spoiled": [{"first": first.serial(n)} for n in spoiled]}))
        ok(c.post(f"{API}/batches/{batch['id']}/issue", headers=self.printer.headers, json={}))
        return Batch(ok(c.get(f"{API}/batches/{batch['id']}", headers=self.authority.headers)), self.keyring)

    def activate(self, producer, batch: Batch, a: int, b: int, lot_no: str) -> None:
        ok(self.client.post(f"{API}/activations", headers=producer.headers,
                            json={"ranges": [{"first": batch.serial(a), "last": batch.serial(b)}],
                                  "lot": self.lot_for(lot_no, b - a + 1)}), 201)

    def void(self, producer, batch: Batch, a: int, b: int, kind: str = "voided") -> None:
        ok(self.client.post(f"{API}/voids", headers=producer.headers,
                            json={"ranges": [{"first": batch.serial(a), "last": batch.serial(b)}], "kind": kind,
                                  "reason": "statistics world"}))

    def report(self, producer, output_kg: str, value: str) -> dict:
        c = self.client
        ok(c.get(f"{API}/annual-reports/2025/mine", headers=producer.headers))
        ok(c.patch(f"{API}/annual-reports/2025/mine", headers=producer.headers,
                   json={"output_kg": output_kg, "output_value_yuan": value}))
        return ok(c.post(f"{API}/annual-reports/2025/mine/submit", headers=producer.headers))

    # --- consumers -------------------------------------------------------------------------------

    def check(self, code: str, *, ua: str = PHONE, ip: str = "198.51.100.7"):
        return self.client.get(f"/v/{code}", headers={"User-Agent": ua, **JSON}, environ_base={"REMOTE_ADDR": ip})

    def check_at(self, code: str, where: tuple[float, float]) -> dict:
        r = self.check(code)
        body = r.json               # every verdict answers its document at the top level
        ok(self.client.post(f"/v/{code}/location", headers=JSON,
                            json={"token": body["scan"]["token"], "lat": where[0], "lon": where[1]}))
        return body

    # --- supervision -----------------------------------------------------------------------------

    def finding(self, by, client_id: str, where: tuple[float, float], kind: str, violations: list[str], *,
                gi=None, producer=None, **extra) -> dict:
        body = {"client_id": client_id, "observed_at": self.clock.moment.isoformat(), "lat": where[0],
                "lon": where[1], "premises": {"name": f"{kind} {client_id}", "kind": kind, **extra},
                "gi_id": (gi or self.gi_a).id, "codes": [], "violations": violations}
        if producer is not None:
            body["producer_id"] = producer.org.id
        return ok(self.client.post(f"{API}/findings", headers=by.headers, json=body), 201)

    def case_step(self, by, case_id: int, action: str, **body) -> dict:
        body.setdefault("reason", f"{action}: statistics world")
        return ok(self.client.post(f"{API}/cases/{case_id}/{action}", headers=by.headers, json=body))

    def open_case(self, by, finding_id: int) -> dict:
        return ok(self.client.post(f"{API}/cases", headers=by.headers,
                                   json={"title": "亳白芍标志案", "reason": "检查发现 found on inspection",
                                         "clue_ids": [], "finding_ids": [finding_id]}), 201)

    # --- the two years ---------------------------------------------------------------------------

    def play(self) -> "Stats":
        c = self.clock
        c.set(cst(2025, 4, 1, 10, 0))
        self.a1 = self.batch_for(self.p1, 100, year=2025, spoiled=(99, 100))
        c.set(cst(2025, 5, 10, 10, 0))
        self.activate(self.p1, self.a1, 1, 50, "L-1")
        c.set(cst(2025, 6, 2, 10, 0))
        self.void(self.p1, self.a1, 51, 53)
        self.void(self.p1, self.a1, 54, 54, "lost")
        self.void(self.p1, self.a1, 55, 55, "stolen")
        c.set(cst(2025, 7, 1, 10, 0))
        self.p2_batch = self.batch_for(self.p2, 40, year=2025)
        self.activate(self.p2, self.p2_batch, 1, 20, "P2-L1")
        c.set(cst(2025, 8, 1, 10, 0))
        assert self.check(self.a1.code(4)).status_code == 200
        c.set(cst(2025, 9, 1, 10, 0))
        self.web_shop = self.finding(self.bozhou_inspection, "bz:2025-1", QIAOCHENG, "e_commerce",
                                     ["mark_without_uscc"], url="https://shop.example.cn/item/1")
        c.set(cst(2025, 12, 31, 23, 30))
        self.activate(self.p1, self.a1, 61, 62, "L-2")
        c.set(cst(2026, 1, 1, 0, 30))
        self.activate(self.p1, self.a1, 56, 60, "L-3")
        c.set(cst(2026, 1, 15, 9, 0))
        self.report(self.p1, "1234.5", "98765.43")
        c.set(cst(2026, 2, 1, 9, 0))
        ok(self.client.post(f"{API}/authorizations/{self.p4_auth.id}/transitions", headers=self.authority.headers,
                            json={"to": "approved", "reason": "公告核准 approved", "announcement_no": "A-2026-4"}))
        ok(self.client.post(f"{API}/quota-accounts", headers=self.authority.headers,
                            json={"producer_id": self.p1.org.id, "gi_id": self.gi_a.id, "year": 2026}), 201)
        self.a2 = self.batch_for(self.p1, 60, year=2026)
        c.set(cst(2026, 2, 10, 9, 0))
        self.report(self.p2, "100", "5000")
        c.set(cst(2026, 3, 1, 10, 0))
        self.activate(self.p1, self.a2, 1, 30, "L-4")
        self._checks_2026()
        self._supervision_2026()
        c.set(cst(2026, 7, 1, 9, 0))
        return self

    def _checks_2026(self) -> None:
        c = self.clock
        c.set(cst(2026, 6, 1, 10, 0))
        for _ in range(4):
            assert self.check(self.a1.code(1)).status_code == 200
        self.check_at(self.a1.code(2), QIAOCHENG)
        assert self.check(self.a1.code(2), ua=BOT).status_code == 200
        self.check_at(self.a1.code(3), QIAOCHENG)
        c.advance(minutes=2)
        self.check_at(self.a1.code(3), GUOYANG)            # 62 km in 2 minutes: impossible travel
        self.check_at(self.p2_batch.code(1), GUOYANG)
        voided = self.check(self.a1.code(51))
        assert voided.status_code == 410
        ok(self.client.post(f"/v/{self.a1.code(51)}/report", headers=JSON,
                            json={"token": voided.json["scan"]["token"], "description": "标签已作废却在售",
                                  "shop_name": "谯城区药材店", "lat": QIAOCHENG_SHOP[0], "lon": QIAOCHENG_SHOP[1]}),
           201)
        assert self.check(self.a1.code(70)).status_code == 409
        assert self.check(forged(self.a1.code(5))).status_code == 404
        assert self.check("NOT-A-CODE").status_code == 400

    def _supervision_2026(self) -> None:
        c = self.clock
        c.set(cst(2026, 6, 2, 10, 0))
        self.f_qiaocheng = self.finding(self.bozhou_inspection, "bz:1", QIAOCHENG, "retail",
                                        ["forged_or_copied_label", "look_alike"])
        self.f_guoyang = self.finding(self.bozhou_inspection, "bz:2", GUOYANG, "wholesale", ["unauthorized_use"],
                                      gi=self.gi_b)
        self.f_clean = self.finding(self.bozhou_inspection, "bz:3", GUOYANG, "production", [])
        self.f_tianhe = self.finding(self.gz, "gz:1", TIANHE, "retail", ["look_alike"], producer=self.p1)
        c.set(cst(2026, 6, 3, 10, 0))
        self.case_gz = self.open_case(self.gz, self.f_tianhe["id"])
        c.set(cst(2026, 6, 4, 10, 0))
        self.case_step(self.gz, self.case_gz["id"], "refer")
        c.set(cst(2026, 6, 5, 10, 0))
        self.case_guoyang = self.open_case(self.authority, self.f_guoyang["id"])
        self.case_step(self.authority, self.case_guoyang["id"], "investigate")
        c.set(cst(2026, 6, 6, 10, 0))
        self.case_open = self.open_case(self.bozhou_inspection, self.f_qiaocheng["id"])
        c.set(cst(2026, 6, 10, 10, 0))
        self.case_step(self.qiaocheng, self.case_gz["id"], "conclude", outcome="violation_confirmed",
                       measure="责令停止使用近似名称，罚款 5,000 元", violations=["look_alike"])
        c.set(cst(2026, 6, 12, 10, 0))
        self.case_step(self.authority, self.case_guoyang["id"], "conclude", outcome="no_violation")

    # --- reading statistics ----------------------------------------------------------------------

    def stats(self, by, status: int = 200, **params):
        r = self.client.get(f"{API}/statistics", headers=by.headers, query_string=params)
        return ok(r, status) if status != 200 or "format" not in params else r


@pytest.fixture
def world(factory, client, app, clock, reused_world) -> Stats:
    """The two years, played once per test process and database; each test starts from its rows."""
    def build() -> Stats:
        played = Stats(factory, client, app, clock).play()
        played.built_at = clock.moment
        return played

    def rebind(played: Stats) -> None:
        played.factory, played.client, played.app, played.clock = factory, client, app, clock
        played.keyring = app.extensions["gi_keyring"]
        clock.set(played.built_at)

    return reused_world("statistics", build, rebind)
