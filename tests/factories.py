"""Factories that build real rows through the services, committed like the API would."""
from __future__ import annotations

import datetime as dt
import io
import itertools
import math
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import shapely
from PIL import Image
from sqlalchemy.orm import Session

from gi_service import clock
from gi_service.models import AuthorizationBasis, GICategory, GIKind, OrgKind, Organisation
from gi_service.services import accounts, producers, registry
from gi_service.services.accounts import Principal, principal_for
from gi_service.services.uscc import make_uscc

_seq = itertools.count(1)


@dataclass
class Actor:
    org: Organisation
    principal: Principal
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def square(lon: float, lat: float, side_m: float) -> shapely.Polygon:
    """A square of `side_m` metres centred on (lon, lat)."""
    hy = side_m / 2 / 111_320.0
    hx = side_m / 2 / (111_320.0 * math.cos(math.radians(lat)))
    return shapely.box(lon - hx, lat - hy, lon + hx, lat + hy)


class Factory:
    def __init__(self, app, session: Session):
        self.app = app
        self.session = session

    def _actor(self, org: Organisation) -> Actor:
        n = next(_seq)
        user = accounts.create_user(self.session, username=f"user{n}-{org.kind.value}", password="password-123456",
                                    organisation_id=org.id, rules_exempt=True)
        # Ten years (the longest a token may live): tests that move the service clock through a season
        # must not expire their own credentials, which are stamped and checked by the same clock.
        _row, token = accounts.create_token(self.session, user, name="test", ttl_days=3650)
        self.session.commit()
        return Actor(org, principal_for(user), token)

    def authority(self, adcode: str = "341600", name: str | None = None) -> Actor:
        org = accounts.create_organisation(self.session, kind=OrgKind.authority, adcode=adcode,
                                           name=name or f"authority {adcode} #{next(_seq)}")
        return self._actor(org)

    def inspection(self, adcode: str = "440100") -> Actor:
        org = accounts.create_organisation(self.session, kind=OrgKind.inspection, adcode=adcode,
                                           name=f"inspection {adcode} #{next(_seq)}")
        return self._actor(org)

    def uscc(self, adcode: str, org_type: str = "1") -> str:
        return make_uscc("9", org_type, adcode, f"MA{next(_seq):06d}")

    def producer(self, adcode: str = "341602", name: str | None = None) -> Actor:
        org = accounts.create_organisation(self.session, kind=OrgKind.producer, adcode=adcode,
                                           uscc=self.uscc(adcode), name=name or f"producer {adcode} #{next(_seq)}")
        return self._actor(org)

    def printer(self, adcode: str = "340104") -> Actor:
        org = accounts.create_organisation(self.session, kind=OrgKind.printer, adcode=adcode,
                                           uscc=self.uscc(adcode), name=f"printer #{next(_seq)}")
        return self._actor(org)

    def gi(self, by: Actor, *, name_zh: str = "亳白芍", area_adcodes=("341602",), **fields):
        values = dict(name_zh=name_zh, kind=GIKind.protected_product, category=GICategory.herbal_medicine,
                      area_adcodes=list(area_adcodes), standard_yield_kg_per_mu=350)
        values.update(fields)
        gi = registry.create_gi(self.session, values, by=by.principal, reason="test registration")
        self.session.commit()
        return gi

    def inside_point(self, gi) -> shapely.Point:
        area = registry.area_by_id(self.session, gi.origin_area_id)
        return area.geom.representative_point()

    def plot(self, producer: Actor, gi, side_m: float = 100.0, **kw):
        p = self.inside_point(gi)
        plot = producers.create_plot(self.session, producer.org.id, gi_id=gi.id, name=kw.get("name", "plot"),
                                     geom=square(p.x, p.y, side_m), survey_year=kw.get("survey_year", 2025),
                                     by=producer.principal)
        self.session.commit()
        return plot

    def authorization(self, producer: Actor, gi, by: Actor, approve: bool = True):
        auth = producers.create_authorization(self.session, producer_id=producer.org.id, gi_id=gi.id,
                                              basis=AuthorizationBasis.approved_producer, by=by.principal,
                                              reason="test", announcement_no="A-1" if approve else None,
                                              approve=approve)
        self.session.commit()
        return auth


class LedgerWorld:
    """An authority, an authorized producer with plots and a quota, and a printer, for ledger tests."""

    def __init__(self, factory: Factory, client, *, year: int = 2026, testing_body: str = "亳州市检验中心"):
        self.factory, self.client, self.year = factory, client, year
        self.authority = factory.authority("341600")
        self.gi = factory.gi(self.authority, testing_body=testing_body, standard_yield_kg_per_mu=350,
                             name_pinyin="Bo Bai Shao")
        self.producer = factory.producer("341602")
        factory.plot(self.producer, self.gi, side_m=100)        # 15 mu -> 5,249.7 kg at 350 kg/mu
        factory.authorization(self.producer, self.gi, self.authority)
        self.printer = factory.printer()
        self.testing_body = testing_body
        r = client.post("/api/v1/quota-accounts", headers=self.authority.headers,
                        json={"producer_id": self.producer.org.id, "gi_id": self.gi.id, "year": year})
        assert r.status_code == 201, r.json
        self.account = r.json

    def rebind(self, factory: Factory, client, **more) -> None:
        """Take the current test's factory and client (and `more`: app, clock, session) — a world whose rows were
        restored for this test (`reused_world` in tests/conftest.py) keeps its ids, actors and tokens."""
        self.factory, self.client = factory, client
        for name, value in more.items():
            setattr(self, name, value)
        if "app" in more:
            self.keyring = more["app"].extensions["gi_keyring"]

    def request(self, quantity: int = 1000, pack_size_g: int = 250, **extra) -> dict:
        r = self.client.post("/api/v1/mark-requests", headers=self.producer.headers,
                             json={"gi_id": self.gi.id, "pack_size_g": pack_size_g, "quantity": quantity,
                                   "year": self.year, **extra})
        assert r.status_code == 201, r.json
        return r.json

    def approve(self, request_id: int, printer: bool = True) -> dict:
        body = {"printer_id": self.printer.org.id} if printer else {}
        r = self.client.post(f"/api/v1/mark-requests/{request_id}/approve", headers=self.authority.headers, json=body)
        assert r.status_code == 201, r.json
        return r.json

    def printed_and_issued(self, quantity: int = 1000, spoiled=()) -> dict:
        batch = self.approve(self.request(quantity)["id"])
        r = self.client.post(f"/api/v1/batches/{batch['id']}/printed", headers=self.printer.headers,
                             json={"spoiled": [{"first": s} for s in spoiled]})
        assert r.status_code == 200, r.json
        r = self.client.post(f"/api/v1/batches/{batch['id']}/issue", headers=self.printer.headers, json={})
        assert r.status_code == 200, r.json
        return self.client.get(f"/api/v1/batches/{batch['id']}", headers=self.authority.headers).json

    def lot(self, lot_no: str = "L-1", quantity: int = 1000, **overrides) -> dict:
        return {"lot_no": lot_no, "production_date": "2026-04-10", "quantity": quantity, "pack_size_g": 250,
                "test_report_no": "R-2026-001", "testing_body": self.testing_body, "test_passed": True, **overrides}


# --- shared test helpers -----------------------------------------------------------------------------

CST = ZoneInfo("Asia/Shanghai")


def cst(*args) -> dt.datetime:
    """A China Standard Time wall-clock moment, as an aware datetime."""
    return dt.datetime(*args, tzinfo=CST)


class ServiceClock:
    """The service's clock (`gi_service.clock.now`, which every service reads), frozen at a moment the test
    chooses and moved by it."""

    def __init__(self, monkeypatch, start: dt.datetime):
        self.moment = start
        monkeypatch.setattr(clock, "now", self.now)

    def now(self) -> dt.datetime:
        return self.moment.astimezone(dt.timezone.utc)

    def set(self, moment: dt.datetime) -> None:
        self.moment = moment

    def advance(self, **delta) -> None:
        self.moment += dt.timedelta(**delta)


def jpeg_with_exif(width: int = 640, height: int = 480, colour=(180, 40, 40), artist: str = "Zhang San") -> bytes:
    """A phone-like JPEG carrying a capture time, a GPS position and a person's name (`artist`) in EXIF."""
    image = Image.new("RGB", (width, height), colour)
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"                              # Make
    exif[0x013B] = artist                                    # Artist: a name that must not survive
    exif.get_ifd(0x8769)[0x9003] = "2026:06:01 10:15:30"    # DateTimeOriginal
    gps = exif.get_ifd(0x8825)
    gps[1] = "N"
    gps[2] = (23.0, 7.0, 44.0)
    gps[3] = "E"
    gps[4] = (113.0, 19.0, 40.0)
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif.tobytes(), quality=90)
    return out.getvalue()
