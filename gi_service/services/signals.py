"""Copied-label signals: the scan log watched for labels that were copied, and clues raised from it.

A genuine label is one physical object. When its code shows up where one object cannot be,
the label was probably copied (photocopied, or its code reprinted onto fakes). Four signals:

* **too many checks** — one code checked at least the GI's threshold times
  (``GIProduct.check_alert_threshold``, else ``GI_CHECK_ALERT_THRESHOLD``; bots not counted);
* **impossible travel** — two checks of one code whose shared locations are at least
  ``GI_TRAVEL_MIN_KM`` apart (browser locations can be off by kilometres) and imply more than
  ``GI_TRAVEL_MAX_KMH`` (1,000 km/h: faster than any parcel);
* **outside the sales regions** — a located check more than ``GI_SALES_REGION_TOLERANCE_KM``
  outside every sales region the GI declared (``sales_adcodes``; no regions, no signal);
* **a burst of unknown codes** — ``GI_UNKNOWN_BURST_COUNT`` unknown codes from one client (the
  keyed daily IP hash) within ``GI_UNKNOWN_BURST_MINUTES``: someone trying forged codes, or a
  shop's fakes being checked one after another.

Each signal raises one alert per subject (``Clue.dedup_key``): a repeat bumps its
``occurrences`` and refreshes its evidence. An alert is routed (``CluePlace``) to the place it
happened (the county of the located check) and to the producer's place, or, when no producer
is known, to the GI's authority. Alerts about a serial also mark its ``MarkCheck`` row as
suspect, so the consumer page warns everyone who checks that code afterwards.

The checks cost nothing on the consumer's path: the code signals run in the check log's flusher
over each written batch (``on_flush``: the counters come back from the batch's upsert; one count
of recent unknown codes per client in the batch), and the location signals run when a consumer
shares a location. The consumer whose check reaches the threshold is warned on that very answer
(services/verification.py judges the count it shows), before the flush raises the alert.
"""
from __future__ import annotations

import datetime as dt
import functools
import math
from dataclasses import dataclass
from typing import Any, Iterable

from pyproj import Geod
from shapely import Point
from shapely.ops import nearest_points
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from ..codes import Serial
from ..config import Settings
from ..db import dialect_insert
from ..models import (AlertKind, Clue, ClueKind, CluePlace, ClueStatus, GIProduct, MarkCheck, Organisation, PlaceRole, Scan,
                      UAClass, Verdict)
from .scans import place

_GEOD = Geod(ellps="WGS84")
TRAVEL_HISTORY = 50   # located checks of one code compared with a new one (copies beyond that are flagged anyway)

SUMMARIES = {
    AlertKind.too_many_checks: "code {serial} checked {count} times (threshold {threshold})",
    AlertKind.impossible_travel: "code {serial} checked {km:.0f} km apart within {minutes:.0f} min "
                                 "({kmh:.0f} km/h)",
    AlertKind.outside_sales_regions: "code {serial} checked {km:.0f} km outside the declared sales regions",
    AlertKind.unknown_burst: "{count} unknown codes from one client within {minutes} min",
}


@dataclass(frozen=True)
class Raised:
    """An alert raised or repeated by a check."""

    clue_id: int
    kind: AlertKind
    new: bool


def distance_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Geodesic distance on the WGS-84 ellipsoid, in km."""
    _az1, _az2, metres = _GEOD.inv(lon1, lat1, lon2, lat2)
    return metres / 1000.0


def serial_of(series: str, seq: int) -> Serial:
    """The serial stored as (series, seq) in scans and counters."""
    return Serial(series[:4], 2000 + int(series[4:6]), seq)


def _serial_text(series: str, seq: int) -> str:
    return serial_of(series, seq).display


def _dedup(kind: AlertKind, subject: str) -> str:
    return f"{kind.value}:{subject}"


def raise_alert(session: Session, kind: AlertKind, *, subject: str, at: dt.datetime, summary: str,
                details: dict[str, Any], places: Iterable[tuple[PlaceRole, str | None]], gi_id: int | None = None,
                producer_id: int | None = None, serial: Serial | tuple[str, int] | None = None,
                scan_id: int | None = None, adcode: str | None = None,
                suspect_reasons: tuple[str, ...] | None = None, times: int = 1) -> Raised:
    """Insert the alert for (kind, subject) or, if it exists, count one more occurrence of it.

    Concurrent first occurrences race on the unique dedup key: the upsert lets exactly one insert
    win and counts the others on it. `suspect_reasons`, when the caller has the serial's counters
    at hand, saves looking them up. `times` counts several occurrences at once (a flushed batch).
    """
    series, seq = (serial.series, serial.seq) if isinstance(serial, Serial) else (serial or (None, None))
    key = _dedup(kind, subject)
    insert = dialect_insert(session)
    stmt = insert(Clue).values(kind=ClueKind.alert, alert_kind=kind, dedup_key=key, created_at=at, last_at=at,
                               occurrences=times, gi_id=gi_id, producer_id=producer_id, series=series, seq=seq,
                               scan_id=scan_id, adcode=adcode, summary=summary[:300], details=details,
                               status=ClueStatus.open)
    # One statement whoever comes first: racing first occurrences make one row, each counted once.
    stmt = stmt.on_conflict_do_update(
        index_elements=[Clue.dedup_key],
        set_={"occurrences": Clue.occurrences + stmt.excluded.occurrences, "last_at": stmt.excluded.last_at, "summary": stmt.excluded.summary,
              "details": stmt.excluded.details, "scan_id": func.coalesce(stmt.excluded.scan_id, Clue.scan_id),
              "adcode": func.coalesce(stmt.excluded.adcode, Clue.adcode)})
    clue_id, occurrences = session.execute(stmt.returning(Clue.id, Clue.occurrences)).one()
    add_places(session, clue_id, places)
    if series is not None and seq is not None and not already_suspect_of(kind, suspect_reasons):
        mark_suspect(session, series, seq, kind, at)
    return Raised(clue_id, kind, occurrences == times)


def already_suspect_of(kind: AlertKind, reasons: tuple[str, ...] | None) -> bool:
    """Whether the serial's counters already name `kind` (None: not known, look it up)."""
    return reasons is not None and kind.value in reasons


def add_places(session: Session, clue_id: int, places: Iterable[tuple[PlaceRole, str | None]]) -> None:
    rows = [{"clue_id": clue_id, "role": role, "adcode": adcode} for role, adcode in dict.fromkeys(places) if adcode]
    if rows:
        insert = dialect_insert(session)
        session.execute(insert(CluePlace).values(rows).on_conflict_do_nothing())


def mark_suspect(session: Session, series: str, seq: int, kind: AlertKind, at: dt.datetime) -> None:
    """Flag a serial's counters as suspect (the page warns), adding `kind` to its reasons once."""
    row = session.execute(select(MarkCheck.suspect_reasons).where(MarkCheck.series == series,
                                                                  MarkCheck.seq == seq)).first()
    if row is None:
        return
    reasons = [r for r in (row[0] or "").split(",") if r]
    if kind.value in reasons:
        return
    reasons.append(kind.value)
    session.execute(update(MarkCheck).where(MarkCheck.series == series, MarkCheck.seq == seq)
                    .values(suspect_reasons=",".join(reasons),
                            suspect_at=func.coalesce(MarkCheck.suspect_at, at))
                    .execution_options(synchronize_session=False))


def home_places(session: Session, gi_id: int | None, producer_id: int | None) -> list[tuple[PlaceRole, str]]:
    """The producer's place, or the GI authority's jurisdiction when there is no producer."""
    if producer_id is not None:
        adcode = session.scalar(select(Organisation.adcode).where(Organisation.id == producer_id))
        if adcode:
            return [(PlaceRole.producer_place, adcode)]
    if gi_id is not None:
        adcode = session.scalar(select(Organisation.adcode).join(GIProduct, GIProduct.authority_id == Organisation.id)
                                .where(GIProduct.id == gi_id))
        if adcode:
            return [(PlaceRole.gi_authority, adcode)]
    return [(PlaceRole.gi_authority, "100000")]


# --- on every flushed batch of checks ------------------------------------------------------------

def on_flush(session: Session, settings: Settings, result) -> list[Raised]:
    """Signals a batch of checks raises by itself (services/checklog.py calls this in the flush's transaction).

    * too many checks: a counted serial whose counter (after the batch's upsert) reached the GI's
      threshold; one occurrence per check of the batch at or beyond it, as if judged check by check;
    * a burst of unknown codes: per client with unknown codes in the batch, one count over its recent
      unknown checks (one statement for the whole batch, never one per check).

    Only the checks really inserted are judged, so a retried flush raises nothing twice. Alerts are
    raised in the order of their keys (two processes flushing at once never wait on each other in a
    cycle).
    """
    raised: list[Raised] = []
    latest: dict[tuple[str, int], Any] = {}
    per_key: dict[tuple[str, int], int] = {}
    for c in result.inserted:
        if c.counted and c.ua_class != UAClass.bot and c.gi_id is not None:
            key = (c.series, c.seq)
            per_key[key] = per_key.get(key, 0) + 1
            if key not in latest or (c.at, c.id) > (latest[key].at, latest[key].id):
                latest[key] = c
    from .verification import gi_facts

    for key in sorted(latest):
        counter = result.counters.get(key)
        if counter is None:
            continue
        c = latest[key]
        threshold = gi_facts(session, c.gi_id).check_alert_threshold or settings.check_alert_threshold
        if counter.count < threshold:
            continue
        # Checks of this batch at or past the threshold: count - n + 1 ... count.
        times = min(per_key[key], counter.count - threshold + 1)
        serial = _serial_text(c.series, c.seq)
        places = [(PlaceRole.scan_place, counter.last_adcode), *home_places(session, c.gi_id, c.producer_id)]
        reasons = tuple(r for r in (counter.suspect_reasons or "").split(",") if r)
        raised.append(raise_alert(
            session, AlertKind.too_many_checks, subject=f"{c.series}:{c.seq}", at=c.at,
            summary=SUMMARIES[AlertKind.too_many_checks].format(serial=serial, count=counter.count,
                                                                 threshold=threshold),
            details={"serial": serial, "count": counter.count, "threshold": threshold,
                     "first_at": counter.first_at.isoformat() if counter.first_at else None,
                     "first_place": place(counter.first_adcode), "last_place": place(counter.last_adcode)},
            places=places, gi_id=c.gi_id, producer_id=c.producer_id, serial=(c.series, c.seq),
            scan_id=c.id, adcode=counter.last_adcode, suspect_reasons=reasons, times=times))
    unknown: dict[str, list] = {}
    for c in result.inserted:
        if c.verdict == Verdict.unknown and c.ip_hash:
            unknown.setdefault(c.ip_hash, []).append(c)
    if unknown:
        raised += _unknown_bursts(session, settings, unknown)
    return raised


def _unknown_bursts(session: Session, settings: Settings, unknown: dict[str, list]) -> list[Raised]:
    """One count per client over its unknown checks in the window ending at its latest check of the batch."""
    window = dt.timedelta(minutes=settings.unknown_burst_minutes)
    latest = {h: max(checks, key=lambda c: (c.at, c.id)) for h, checks in unknown.items()}
    since = min(c.at for c in latest.values()) - window
    rows = session.execute(select(Scan.ip_hash, Scan.at, Scan.series)
                           .where(Scan.ip_hash.in_(sorted(latest)), Scan.at >= since,
                                  Scan.verdict == Verdict.unknown)).all()
    history: dict[str, list] = {}
    for ip_hash, at, series in rows:
        history.setdefault(ip_hash, []).append((at, series))
    raised = []
    for ip_hash in sorted(latest):
        scan = latest[ip_hash]
        start = scan.at - window
        recent = [(at, series) for at, series in history.get(ip_hash, ()) if start <= at <= scan.at]
        count = len(recent)
        if count < settings.unknown_burst_count:
            continue
        times = min(len(unknown[ip_hash]), count - settings.unknown_burst_count + 1)
        tally: dict[str | None, int] = {}
        for _at, series in recent:
            tally[series] = tally.get(series, 0) + 1
        claimed = sorted(tally.items(), key=lambda kv: (-kv[1], kv[0] or ""))[:10]
        day = scan.at.date().isoformat()
        # Route to the authority of the GI most of the codes claim to be of (unknown codes have no producer).
        top = next((series for series, _n in claimed if series), None)
        claimed_gi_id = session.scalar(select(GIProduct.id).where(GIProduct.mark_prefix == top[:4])) if top else None
        raised.append(raise_alert(
            session, AlertKind.unknown_burst, subject=f"{ip_hash}:{day}", at=scan.at,
            summary=SUMMARIES[AlertKind.unknown_burst].format(count=count, minutes=settings.unknown_burst_minutes),
            details={"count": count, "minutes": settings.unknown_burst_minutes, "client": ip_hash[:12],
                     "claimed_series": [{"series": s, "checks": n} for s, n in claimed]},
            places=home_places(session, claimed_gi_id, None) if claimed_gi_id else [(PlaceRole.gi_authority, "100000")],
            gi_id=claimed_gi_id, scan_id=scan.id, times=times))
    return raised


# --- when a consumer shares a location -----------------------------------------------------------

def after_location(session: Session, settings: Settings, scan: Scan, *, gi_id: int, producer_id: int) -> list[Raised]:
    """Signals a located check can raise: impossible travel, outside the sales regions."""
    if scan.lat is None or scan.series is None or scan.ua_class == UAClass.bot or not scan.mac_ok:
        return []
    raised = []
    travel = _impossible_travel(session, settings, scan)
    home = home_places(session, gi_id, producer_id)
    serial = _serial_text(scan.series, scan.seq)
    if travel is not None:
        other, km, hours = travel
        kmh = km / hours if hours > 0 else math.inf
        raised.append(raise_alert(
            session, AlertKind.impossible_travel, subject=f"{scan.series}:{scan.seq}", at=scan.at,
            summary=SUMMARIES[AlertKind.impossible_travel].format(serial=serial, km=km, minutes=hours * 60,
                                                                   kmh=min(kmh, 1e9)),
            details={"serial": serial, "km": round(km, 1), "minutes": round(hours * 60, 1),
                     "kmh": round(kmh) if math.isfinite(kmh) else None, "max_kmh": settings.travel_max_kmh,
                     "checks": [_located(scan), _located(other)]},
            places=[(PlaceRole.scan_place, scan.adcode), (PlaceRole.scan_place, other.adcode), *home],
            gi_id=gi_id, producer_id=producer_id, serial=(scan.series, scan.seq), scan_id=scan.id,
            adcode=scan.adcode))
    gi = session.get(GIProduct, gi_id)
    outside = _outside_sales_regions(gi.sales_adcodes or [], scan, settings.sales_region_tolerance_km) if gi else None
    if outside is not None:
        raised.append(raise_alert(
            session, AlertKind.outside_sales_regions, subject=f"{scan.series}:{scan.seq}", at=scan.at,
            summary=SUMMARIES[AlertKind.outside_sales_regions].format(serial=serial, km=outside),
            details={"serial": serial, "km_outside": round(outside, 1), "sales_adcodes": list(gi.sales_adcodes),
                     "tolerance_km": settings.sales_region_tolerance_km, "check": _located(scan)},
            places=[(PlaceRole.scan_place, scan.adcode), *home], gi_id=gi_id, producer_id=producer_id,
            serial=(scan.series, scan.seq), scan_id=scan.id, adcode=scan.adcode))
    return raised


def _located(scan: Scan) -> dict[str, Any]:
    p = place(scan.adcode)
    return {"scan_id": scan.id, "at": scan.at.isoformat(), "lat": scan.lat, "lon": scan.lon, "adcode": scan.adcode,
            "place": p["city_name"] if p else None}


def _impossible_travel(session: Session, settings: Settings, scan: Scan) -> tuple[Scan, float, float] | None:
    """The located check of the same code that is least reachable from this one, if none is reachable.

    Speeds are judged on the checks' times (when the code was read), not on when the location was
    shared. Among the other located checks, the one implying the highest speed is returned when
    that speed exceeds the limit and the distance is beyond location noise.
    """
    others = session.scalars(select(Scan).where(Scan.series == scan.series, Scan.seq == scan.seq,
                                                Scan.id != scan.id, Scan.lat.is_not(None),
                                                Scan.ua_class != UAClass.bot)
                             .order_by(Scan.at.desc(), Scan.id.desc()).limit(TRAVEL_HISTORY)).all()
    worst: tuple[float, Scan, float, float] | None = None
    for other in others:
        km = distance_km(scan.lat, scan.lon, other.lat, other.lon)
        if km < max(settings.travel_min_km, 0.001):
            continue
        hours = abs((scan.at - other.at).total_seconds()) / 3600.0
        speed = km / hours if hours > 0 else math.inf
        if speed > settings.travel_max_kmh and (worst is None or speed > worst[0]):
            worst = (speed, other, km, hours)
    return None if worst is None else (worst[1], worst[2], worst[3])


@functools.lru_cache(maxsize=32)
def _sales_geometry(adcodes: tuple[str, ...]):
    from geodata.areas import area_from_adcodes

    return area_from_adcodes(list(adcodes)).geometry


def _outside_sales_regions(sales_adcodes: list[str], scan: Scan, tolerance_km: float) -> float | None:
    """How far (km) a located check lies outside every declared sales region, if beyond the tolerance."""
    if not sales_adcodes:
        return None
    from geodata.admin import get_registry

    registry = get_registry()
    if scan.adcode and any(registry.is_within(scan.adcode, s) for s in sales_adcodes):
        return None
    geometry = _sales_geometry(tuple(sorted(sales_adcodes)))
    point = Point(scan.lon, scan.lat)
    if geometry.covers(point):
        return None
    nearest = nearest_points(geometry, point)[0]
    km = distance_km(scan.lat, scan.lon, nearest.y, nearest.x)
    return km if km > tolerance_km else None
