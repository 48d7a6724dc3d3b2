"""A week of consumer checks replayed: genuine packs sold across six provinces, one label copied onto 50 packs.

Questions: are the copies flagged (too many checks, impossible travel, outside the sales regions), the
genuine packs — including gifts carried to another city — left alone, the consumer page warning only on
the copied code, and the alerts in the queues of the places where copies were checked and of the producer?
"""
from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass

from sqlalchemy import select

from gi_service.codes import parse_serial
from gi_service.models import Clue, MarkCheck
from gi_service import clock

JSON = {"Accept": "application/json"}
PHONE = "Mozilla/5.0 (Linux; Android 14; HUAWEI) Mobile"
WECHAT = "Mozilla/5.0 (iPhone) Mobile MicroMessenger/8.0.50"

# Shop districts (WGS-84) where the tea is sold; the GI declares Zhejiang, Shanghai, Jiangsu, Beijing,
# Guangdong and Sichuan as its sales regions.
CITIES = {
    "hangzhou": (30.26, 120.13), "shanghai": (31.23, 121.47), "nanjing": (32.05, 118.78),
    "beijing": (39.93, 116.42), "guangzhou": (23.13, 113.33), "chengdu": (30.66, 104.07),
    "shenzhen": (22.54, 114.06), "changsha": (28.20, 112.97),
}
SALES_REGIONS = ["330000", "310000", "320000", "110000", "440000", "510000"]
START = dt.datetime(2026, 6, 1, 0, 0, tzinfo=dt.timezone.utc)   # Monday 08:00 in China


@dataclass(order=True)
class Check:
    at: dt.datetime
    pack: int            # serial number n within the batch
    city: str
    share: bool          # does this consumer press "share my location"?
    ip: str
    ua: str


def near(city: str, rng: random.Random) -> tuple[float, float]:
    """A point within a few km of the city's shop district."""
    lat, lon = CITIES[city]
    return lat + rng.uniform(-0.03, 0.03), lon + rng.uniform(-0.03, 0.03)


def shop_hours(day: int, rng: random.Random) -> dt.datetime:
    """A moment between 09:00 and 21:00 China time on day `day` of the week."""
    return START + dt.timedelta(days=day, hours=1 + rng.uniform(0, 12))


def the_week(rng: random.Random, copied: int) -> list[Check]:
    events: list[Check] = []
    genuine_cities = ["hangzhou", "shanghai", "nanjing", "beijing", "guangzhou", "chengdu"]
    pack = 0
    for city in genuine_cities:
        for _ in range(20):
            pack += 1
            if pack == copied:
                pack += 1
            ip = f"10.{len(events) % 250}.{rng.randrange(250)}.{rng.randrange(1, 250)}"
            bought = shop_hours(rng.randrange(0, 6), rng)
            # The buyer checks in the shop; some check again at home that evening, a few a third time.
            n_checks = rng.choices([1, 2, 3], weights=[5, 4, 1])[0]
            for i in range(n_checks):
                at = bought + dt.timedelta(hours=6 * i, minutes=rng.randrange(60))
                events.append(Check(at, pack, city, rng.random() < 0.6, ip, rng.choice([PHONE, WECHAT])))
    # Gifts: three packs are checked again in Beijing by their recipients two days after they were bought.
    for gift in (1, 21, 41):
        first = min(e.at for e in events if e.pack == gift)
        events.append(Check(first + dt.timedelta(days=2, hours=3), gift, "beijing", True, "10.99.0.1", PHONE))
    # The original of the copied label: sold and checked once in Hangzhou on Monday.
    events.append(Check(shop_hours(0, rng), copied, "hangzhou", True, "10.200.0.1", PHONE))
    # 50 copies: sold from Tuesday in Guangzhou and Shenzhen markets and in Changsha (outside the regions).
    for i in range(50):
        city = "guangzhou" if i < 20 else "shenzhen" if i < 40 else "changsha"
        at = shop_hours(1 + rng.randrange(0, 6), rng)
        ip = f"172.16.{i}.{rng.randrange(1, 250)}"
        for j in range(rng.choices([1, 2], weights=[3, 1])[0]):
            events.append(Check(at + dt.timedelta(minutes=5 + 90 * j), copied, city, rng.random() < 0.6, ip,
                                rng.choice([PHONE, WECHAT])))
    return sorted(events)


def test_a_week_of_checks_flags_the_copied_label_and_only_it(world, client, session, factory, monkeypatch):
    rng = random.Random(20260601)
    guangzhou, changsha = factory.inspection("440100"), factory.inspection("430100")
    chengdu = factory.authority("510100")
    r = client.patch(f"/api/v1/gis/{world.gi.id}", headers=world.authority.headers,
                     json={"sales_adcodes": SALES_REGIONS, "reason": "sales regions declared by the association"})
    assert r.status_code == 200, r.json
    b = world.batch(200)
    world.activate(b, 1, 200, quantity=200)
    copied = 77
    now = {"t": START}
    monkeypatch.setattr(clock, "now", lambda: now["t"])

    week = the_week(rng, copied)
    verdicts = set()
    for e in week:
        now["t"] = e.at
        resp = client.get(f"/v/{b.code(e.pack)}", headers={"User-Agent": e.ua, **JSON},
                          environ_base={"REMOTE_ADDR": e.ip})
        assert resp.status_code == 200, resp.json
        verdicts.add(resp.json["verdict"])
        if e.share:
            lat, lon = near(e.city, rng)
            loc = client.post(f"/v/{b.code(e.pack)}/location", headers=JSON,
                              json={"token": resp.json["scan"]["token"], "lat": lat, "lon": lon})
            assert loc.status_code == 200, loc.json
    assert verdicts == {"genuine"}       # the ledger alone cannot tell a copy: the signals must
    copies = sum(1 for e in week if e.pack == copied)
    assert copies > 50 and len(week) > 250

    session.rollback()
    alerts = session.scalars(select(Clue).where(Clue.kind == "alert")).all()
    copied_seq = parse_serial(b.serial(copied)).seq
    assert {a.seq for a in alerts} == {copied_seq}
    assert {a.alert_kind.value for a in alerts} == {"too_many_checks", "impossible_travel", "outside_sales_regions"}
    suspects = session.scalars(select(MarkCheck).where(MarkCheck.suspect_at.is_not(None))).all()
    assert [m.seq for m in suspects] == [copied_seq]
    genuine_counts = session.scalars(select(MarkCheck.count).where(MarkCheck.seq != copied_seq)).all()
    assert len(genuine_counts) == 120 and max(genuine_counts) <= 4

    # The consumer page warns on the copied code, and not on a genuine pack (not even a gift).
    doc = client.get(f"/v/{b.code(copied)}", headers=JSON).json
    assert set(doc["suspect"]["reasons"]) == {"too_many_checks", "impossible_travel", "outside_sales_regions"}
    for pack in (1, 21, 100):
        assert "suspect" not in client.get(f"/v/{b.code(pack)}", headers=JSON).json

    # Queues: Guangzhou's and Changsha's inspectors and the producer's authority see the alerts; Chengdu none.
    def kinds(actor) -> set[str]:
        items = client.get("/api/v1/clues?kind=alert", headers=actor.headers).json["items"]
        return {c["alert_kind"] for c in items}

    assert kinds(guangzhou) >= {"impossible_travel"}
    assert kinds(changsha) >= {"outside_sales_regions"}
    assert kinds(world.authority) == {"too_many_checks", "impossible_travel", "outside_sales_regions"}
    assert kinds(chengdu) == set()
