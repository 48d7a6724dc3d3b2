"""A ledger world with a batch of real labels, supervisors in four places, and helpers to file findings.

Places: the producer and the GI's authority are in 亳州 (341602 / 341600); the shop inspected
is in 广州 天河区 (440106); a web shop is inspected from 北京 东城区 (110101); 上海 (310000)
has nothing to do with any of it.
"""
from __future__ import annotations

import copy
import datetime as dt
import io
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import func, select

from gi_service.models import Finding, FindingCode, FindingPhoto, MarkCheck, Scan
from tests.factories import jpeg_with_exif as make_jpeg
from tests.verify.conftest import World, forged  # noqa: F401  (forged is re-exported for the tests)

API = "/api/v1"
TIANHE = (23.1291, 113.3280)        # (lat, lon) a market in 广州 天河区 440106
DONGCHENG = (39.9042, 116.4074)     # 北京 东城区 110101
HUANGPU = (31.2304, 121.4737)       # 上海 黄浦区 310101
BOZHOU = (33.85, 115.7)             # 亳州 谯城区 341602
PACIFIC = (30.0, 150.0)             # no county of China
CST = dt.timezone(dt.timedelta(hours=8))


def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def at(hours_ago: float = 1.0) -> str:
    """An observation time `hours_ago` before now, written as a phone in China would (+08:00)."""
    return (now() - dt.timedelta(hours=hours_ago)).astimezone(CST).isoformat(timespec="seconds")


def body(client_id: str = "dev1:0001", *, point=TIANHE, hours_ago: float = 1.0, premises=None, **fields) -> dict:
    """A valid finding body at a Guangzhou retail shop, with no codes and no violation unless given."""
    data = {
        "client_id": client_id, "observed_at": at(hours_ago), "lat": point[0], "lon": point[1],
        "premises": premises or {"name": "天河茶叶市场 A12 档", "kind": "retail", "address": "广州市天河区某路 1 号"},
        "codes": [], "violations": [],
    }
    data.update(fields)
    return data


def count(session, model) -> int:
    session.expire_all()
    return session.scalar(select(func.count()).select_from(model))


def written(session) -> tuple[int, int, int]:
    """(findings, codes, photos) rows in the database."""
    return count(session, Finding), count(session, FindingCode), count(session, FindingPhoto)


def consumer_checks(session) -> tuple[int, int]:
    return count(session, Scan), count(session, MarkCheck)


def stored_files(app) -> list[Path]:
    root = Path(app.extensions["gi_storage"].root)
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def jpeg_with_exif(width: int = 640, height: int = 480, colour=(180, 40, 40)) -> bytes:
    """A phone-like JPEG whose EXIF carries a capture time, a GPS position and the name "Li Si"."""
    return make_jpeg(width, height, colour, artist="Li Si")


def small_png(colour=(0, 128, 0, 255)) -> bytes:
    out = io.BytesIO()
    Image.new("RGBA", (24, 16), colour).save(out, "PNG")
    return out.getvalue()


class Places:
    """Supervisors by place, besides the world's own authority (亳州, 341600, which registered the GI)."""

    def __init__(self, factory):
        self.tianhe = factory.inspection("440106")           # where the shop is
        self.guangzhou = factory.authority("440100")
        self.qiaocheng = factory.inspection("341602")        # the producer's county
        self.beijing = factory.inspection("110000")
        self.shanghai = factory.authority("310000")
        self.national = factory.authority("100000")


class FindingWorld(World):
    def __init__(self, factory, client, app):
        super().__init__(factory, client, app)
        self.places = Places(factory)

    def file(self, data: dict, by=None, expect: int | None = 201):
        r = self.client.post(f"{API}/findings", headers=(by or self.places.tianhe).headers, json=data)
        if expect is not None:
            assert r.status_code == expect, r.json
        return r

    def photo(self, finding_id: int, data: bytes, by=None, name: str = "IMG_0001.jpg", **fields):
        form = {"photo": (io.BytesIO(data), name, "image/jpeg"), **fields}
        return self.client.post(f"{API}/findings/{finding_id}/photos", headers=(by or self.places.tianhe).headers,
                                data=form, content_type="multipart/form-data")


@pytest.fixture
def fw(factory, client, app, reused_world) -> FindingWorld:
    """The findings world (built once per test process and database, then restored for each test)."""
    return reused_world("findings", lambda: FindingWorld(factory, client, app),
                        lambda world: world.rebind(factory, client, app=app))


@pytest.fixture
def filed(fw, app, reused_world):
    """`filed(key, build)`: what `build(fw)` files on the findings world — and returns (ids, a finding as the API
    answered it) — built once per test process, database and key, then restored for every later test asking for
    the same key (the findings world's rows with them). Ask for it before the test writes anything; each test
    gets its own deep copy of what `build` returned.

    Rows only: files (photos, in the test's own instance folder) and the service clock are not restored, so a
    build must store no file (checked) and must not move the clock; a build that dates its rows from the real
    time must put into `key` what its tests compare those dates with (see `three` in test_listing.py)."""
    def get(key: str, build):
        def built():
            made = build(fw)
            assert stored_files(app) == [], "a reused world's files would not be there for the next test"
            return made

        return copy.deepcopy(reused_world(f"findings+{key}", built, lambda made: None))

    return get


def one_finding(fw) -> dict:
    """A finding in the Tianhe shop about a forged label, its code the first of a real, activated batch of 3."""
    b = fw.batch(3)
    fw.activate(b, 1, 3)
    return fw.file(body(codes=[b.code(1)], violations=["forged_or_copied_label"])).json


@pytest.fixture
def finding(filed) -> dict:
    """`one_finding` as the API answered it (filed once per test process and database, then restored): the
    photo tests add their photos to it."""
    return filed("one-finding", one_finding)
