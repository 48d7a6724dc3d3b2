"""The scan log: one row per consumer check, per-serial counters, and opt-in locations.

Privacy by construction:

* No IP address is stored. ``ip_hash`` is HMAC-SHA256 of the IP under a key derived from
  the app secret and the date (China Standard Time), so one day's checks from one address
  can be linked (abuse signals) but not across days, and not without the secret.
* The user-agent string is reduced to a class (mobile, in-app, desktop, bot, other).
* A location is stored only when the consumer presses the button on the page; the page
  rounds it to 0.01° before sending and the server rounds again. It is resolved to a
  county with the service's own boundaries; no third-party geolocation is asked.

Counting stays cheap at scale: ``mark_checks`` holds one row per checked serial, upserted
with the scans of each flushed batch (services/checklog.py), so "checked N times, first on DATE
in CITY" is one row read, joined into the verdict's own lookup.
"""
from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import re
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, bindparam, case, delete, func, or_, select, text, update
from sqlalchemy.orm import Session, aliased

from .. import clock
from ..codes import Serial
from ..errors import Conflict, Forbidden, NotFound
from ..models import MarkCheck, Scan, ScanIdBlock, UAClass, Verdict
from . import partitions
from .checklog import PendingCheck

LOCATION_PRECISION = 2              # decimal places of a shared location: 0.01° ≈ 1.1 km
TOKEN_TTL = dt.timedelta(hours=1)   # how long after a check its location may still be shared

_IN_APP = re.compile(r"MicroMessenger|AlipayClient|DingTalk|Weibo|\bQQ/|baiduboxapp|aweme|NewsArticle|Lark",
                     re.IGNORECASE)
_BOT = re.compile(r"bot\b|bot/|crawl|spider|slurp|preview|facebookexternalhit|embedly|curl/|wget/|python-|httpx|"
                  r"go-http-client|java/|okhttp|headless|libwww|scrapy", re.IGNORECASE)
_MOBILE = re.compile(r"Mobile|Android|iPhone|iPad|iPod|HarmonyOS|OpenHarmony", re.IGNORECASE)
_DESKTOP = re.compile(r"Windows NT|Macintosh|X11|CrOS", re.IGNORECASE)


def ua_class(user_agent: str | None) -> UAClass:
    """A coarse class of a User-Agent header; bots are recognised first, in-app browsers before phones."""
    ua = user_agent or ""
    if _BOT.search(ua):
        return UAClass.bot
    if _IN_APP.search(ua):
        return UAClass.in_app
    if _MOBILE.search(ua):
        return UAClass.mobile
    if _DESKTOP.search(ua):
        return UAClass.desktop
    return UAClass.other


def _subkey(secret: str, purpose: bytes) -> bytes:
    return hmac.new(secret.encode(), purpose, hashlib.sha256).digest()


def ip_hash(secret: str, ip: str | None, at: dt.datetime) -> str | None:
    """HMAC of an IP under that day's key (China date): linkable within a day, not across days."""
    if not ip:
        return None
    day = clock.china_date(at).isoformat()
    key = _subkey(secret, b"gi-scan-ip-v1|" + day.encode())
    return hmac.new(key, ip.encode(), hashlib.sha256).hexdigest()[:32]


# --- scan tokens -------------------------------------------------------------------------------

def _token_mac(secret: str, scan_id: int, expires: int, code: str) -> str:
    msg = f"{scan_id}.{expires}.{code}".encode()
    digest = hmac.new(_subkey(secret, b"gi-scan-token-v1"), msg, hashlib.sha256).digest()[:16]
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def scan_token(secret: str, scan, code: str) -> str:
    """A token that lets the page add a location to this one scan (anything with `id` and `at`), for an hour."""
    expires = int((scan.at + TOKEN_TTL).timestamp())
    return f"{scan.id}.{expires}.{_token_mac(secret, scan.id, expires, code)}"


def read_scan_token(secret: str, token: str, code: str, now: dt.datetime | None = None) -> int:
    """The scan id a token names, if it was made for this code and has not expired (else 403)."""
    bad = Forbidden("the scan token is not valid for this code, or it has expired; check the code again",
                    code="invalid_scan_token")
    parts = token.split(".") if isinstance(token, str) else []
    if len(parts) != 3 or not parts[0].isdigit() or not parts[1].isdigit():
        raise bad
    scan_id, expires = int(parts[0]), int(parts[1])
    if not hmac.compare_digest(_token_mac(secret, scan_id, expires, code), parts[2]):
        raise bad
    if (now or clock.now()).timestamp() > expires:
        raise bad
    return scan_id


# --- recording ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Checks:
    """The counters of one serial's checks (this check included when it was counted)."""

    count: int
    first_at: dt.datetime | None
    first_adcode: str | None
    last_adcode: str | None
    # Set once a copied-label alert named this serial (services/signals.py), with the alert kinds.
    suspect_at: dt.datetime | None = None
    suspect_reasons: tuple[str, ...] = ()

    @classmethod
    def none(cls) -> Checks:
        return cls(0, None, None, None)

    @classmethod
    def from_row(cls, row) -> Checks:
        return cls(int(row[0]), row[1], row[2], row[3], row[4], tuple(r for r in (row[5] or "").split(",") if r))


_CHECK_COLUMNS = (MarkCheck.count, MarkCheck.first_at, MarkCheck.first_adcode, MarkCheck.last_adcode,
                  MarkCheck.suspect_at, MarkCheck.suspect_reasons)


def new_check(checklog, *, verdict: Verdict, detail: str | None, serial: Serial | None, mac_ok: bool, counted: bool,
              secret: str, ip: str | None, user_agent: str | None, gi_id: int | None = None,
              producer_id: int | None = None, now: dt.datetime | None = None):
    """One consumer check, given its id and handed to the check log (written behind the answer).

    `counted` (a real mark) bumps the serial's counters unless the caller is a bot: link previews
    and crawlers would inflate "checked N times".
    """
    now = now or clock.now()
    ua = ua_class(user_agent)
    check = PendingCheck(
        id=checklog.new_id(), at=now, series=serial.series if serial else None, seq=serial.seq if serial else None,
        mac_ok=mac_ok, verdict=verdict, detail=detail, ip_hash=ip_hash(secret, ip, now), ua_class=ua,
        counted=serial is not None and counted and ua != UAClass.bot, gi_id=gi_id, producer_id=producer_id)
    checklog.append(check)
    return check


_CHECKS_OF = select(*_CHECK_COLUMNS).where(MarkCheck.series == bindparam("series"), MarkCheck.seq == bindparam("seq"))


def checks_of(session: Session, serial: Serial) -> Checks:
    """The counters of a serial without counting (HEAD requests, bots)."""
    row = session.connection().execute(_CHECKS_OF, {"series": serial.series, "seq": serial.seq}).first()
    return Checks.from_row(row) if row else Checks.none()


def rounded(value: float) -> float:
    return round(float(value), LOCATION_PRECISION)


def record_location(session: Session, scan_id: int, *, lat: float, lon: float,
                    now: dt.datetime | None = None) -> tuple[Scan, dict[str, Any]]:
    """Add a consumer-shared location (rounded, with its county) to a scan, once.

    The serial's "latest place" moves only forward: a location shared late for an older check
    does not replace that of a newer one. Bots' checks are not counted, so they move nothing.
    """
    from . import jurisdiction

    now = now or clock.now()
    lat, lon = rounded(lat), rounded(lon)
    units = jurisdiction.classify([lon], [lat])[0]
    adcode = units["county"]["adcode"] if units["county"] else None
    result = session.execute(update(Scan).where(Scan.id == scan_id, Scan.located_at.is_(None))
                             .values(lat=lat, lon=lon, adcode=adcode, located_at=now)
                             .execution_options(synchronize_session=False))
    scan = session.get(Scan, scan_id)
    if scan is None:
        raise NotFound(f"scan {scan_id} does not exist", code="scan_not_found")
    if result.rowcount != 1:
        raise Conflict("this check already has a location", code="already_located")
    if adcode and scan.mac_ok and scan.series is not None and scan.ua_class != UAClass.bot:
        # Newest by the checks' times (ids come in blocks per process and are not in time order).
        located = aliased(Scan)
        previous_at = (select(located.at).where(located.id == MarkCheck.last_located_scan_id)
                       .scalar_subquery())
        newest = or_(MarkCheck.last_located_scan_id.is_(None), previous_at < scan.at,
                     and_(previous_at == scan.at, MarkCheck.last_located_scan_id < scan_id))
        session.execute(update(MarkCheck)
                        .where(MarkCheck.series == scan.series, MarkCheck.seq == scan.seq)
                        .values(last_adcode=case((newest, adcode), else_=MarkCheck.last_adcode),
                                last_located_at=case((newest, now), else_=MarkCheck.last_located_at),
                                last_located_scan_id=case((newest, scan_id), else_=MarkCheck.last_located_scan_id),
                                first_adcode=case((MarkCheck.first_scan_id == scan_id, adcode),
                                                  else_=MarkCheck.first_adcode))
                        .execution_options(synchronize_session=False))
    return scan, {"lat": lat, "lon": lon, "adcode": adcode, "place": place(adcode)}


def place(adcode: str | None) -> dict[str, Any] | None:
    """County, city and province names of a county adcode (None if unknown)."""
    if not adcode:
        return None
    from geodata.admin import get_registry

    registry = get_registry()
    unit = registry.get(adcode)
    if unit is None:
        return None
    chain = [unit, *registry.ancestors(adcode)]

    def first(tier: str):
        u = next((u for u in chain if tier in u.tiers), None)
        return {"adcode": u.adcode, "name": u.name} if u else None

    out = {"adcode": adcode, "county": first("county"), "city": first("city"), "province": first("province")}
    # What a person calls "the city": the prefecture, else (e.g. a province-administered county) the county.
    out["city_name"] = (out["city"] or out["county"] or {"name": unit.name})["name"]
    return out


# --- retention ---------------------------------------------------------------------------------

IP_HASH_RETENTION = dt.timedelta(days=30)    # bursts are judged within minutes; abuse review within weeks
ID_BLOCK_RETENTION = dt.timedelta(days=30)   # who took which block of check ids: for reviewing incidents
SCAN_RETENTION = dt.timedelta(days=730)      # two years of checks for the signals and the statistics


@dataclass(frozen=True)
class PruneResult:
    ip_hashes_cleared: int
    scans_deleted: int
    kept_as_evidence: int
    id_blocks_deleted: int = 0
    partitions_dropped: list[str] = field(default_factory=list)     # months dropped whole (PostgreSQL)


def prune(session: Session, *, now: dt.datetime | None = None, ip_hash_days: int | None = None,
          scan_days: int | None = None, batch: int = 50_000) -> PruneResult:
    """Forget what the scan log no longer needs: IP hashes after 30 days (of checks and of consumer
    reports), checks after two years, the record of which process took which block of check ids
    (``scan_id_blocks``) after 30 days.

    A check a clue points to (an alert or a consumer report) is evidence and is kept. The per-serial
    counters (``mark_checks``) keep their totals, so "checked N times" stays true. On PostgreSQL the
    log is partitioned by month (services/partitions.py): a month is dropped whole once all of it is
    older than the retention period (so a check may outlive it by up to a month), its evidence copied
    into ``scans_kept`` first; only the partition from before partitioning is pruned row by row. On
    SQLite, deletes go in batches of `batch` rows so a first run on a large log does not hold one huge
    transaction. Safe to run daily: a second run finds nothing to do.
    """
    from ..models import Clue, ConsumerReport

    now = now or clock.now()
    hash_cutoff = now - (dt.timedelta(days=ip_hash_days) if ip_hash_days is not None else IP_HASH_RETENTION)
    scan_cutoff = now - (dt.timedelta(days=scan_days) if scan_days is not None else SCAN_RETENTION)
    cleared = session.execute(update(Scan).where(Scan.at < hash_cutoff, Scan.ip_hash.is_not(None))
                              .values(ip_hash=None).execution_options(synchronize_session=False)).rowcount
    session.execute(update(ConsumerReport).where(ConsumerReport.created_at < hash_cutoff,
                                                 ConsumerReport.ip_hash.is_not(None))
                    .values(ip_hash=None).execution_options(synchronize_session=False))
    session.commit()
    evidence = select(Clue.scan_id).where(Clue.scan_id.is_not(None))
    deleted, dropped = 0, []
    if partitions.is_partitioned(session):
        # Whole months at once: detached, their evidence copied into scans_kept, dropped.
        gone = partitions.drop_before(session, scan_cutoff)
        session.commit()
        deleted = sum(d.rows - d.kept for d in gone)
        dropped = [d.name for d in gone]
        # Only the log from before partitioning is still pruned row by row, until it has aged out.
        before = partitions.before_partition(session)
        while before is not None:
            n = session.execute(text(
                f'DELETE FROM "{before.name}" WHERE id IN (SELECT id FROM "{before.name}" WHERE at < :cutoff '
                "AND id NOT IN (SELECT scan_id FROM clues WHERE scan_id IS NOT NULL) LIMIT :batch)"),
                {"cutoff": scan_cutoff, "batch": batch}).rowcount
            session.commit()
            deleted += n
            if not n:
                break
    else:
        while True:
            ids = session.scalars(select(Scan.id).where(Scan.at < scan_cutoff, Scan.id.not_in(evidence))
                                  .order_by(Scan.id).limit(batch)).all()
            if not ids:
                break
            deleted += session.execute(delete(Scan).where(Scan.id.in_(ids))
                                       .execution_options(synchronize_session=False)).rowcount
            session.commit()
    kept = session.scalar(select(func.count()).select_from(Scan).where(Scan.at < scan_cutoff)) or 0
    blocks = session.execute(delete(ScanIdBlock).where(ScanIdBlock.taken_at < now - ID_BLOCK_RETENTION)
                             .execution_options(synchronize_session=False)).rowcount
    session.commit()
    return PruneResult(int(cleared or 0), deleted, int(kept), int(blocks or 0), dropped)
