"""Statistics of the special mark and its supervision, per GI, region (adcode tree) and year.

What is counted (also returned as ``definitions`` with every answer, and in docs/reports.md):

* **coverage** (专用标志覆盖率) — *eligible* entities are authorizations (one producer for one
  GI) that were in force (approved) at some instant of the period, from the authorization's
  status history (``AuthorizationEvent``); *users* are those of them that had marks issued to
  them or activated in the period (ledger events ``issued``/``activated``). Coverage =
  users ÷ eligible, against the target of 90 %. A producer authorized for two GIs is two
  entities. For a multi-year period the same rule applies to the whole period.
* **marks** — the ``count`` (marks, not events) of the ledger events of the period by kind:
  requested, approved, printed (a whole print run, spoiled ones included), spoiled, issued,
  activated, voided, lost, stolen, recalled (marks on recalled lots).
* **checks** — consumer checks (``scans``) of the period by verdict; bots (link previews,
  crawlers) are not checks and are counted apart. A check belongs to the GI its code names (its
  serial prefix, so forged codes claiming a GI count for that GI).
* **alerts** (copied-label signals) by kind, and **consumer reports** (suspected fakes), by
  when they were raised.
* **findings** by violation kind (a finding with several kinds counts once per kind) and
  premises kind; a finding without violations is a clean inspection.
* **cases** opened, referred (cases with a referral event in the period) and concluded, by
  outcome; serious ones among the concluded.
* **output** — the declared quantity and value of the submitted annual reports for the
  period's years, how many reports were due (authorization approved or suspended during the
  year), submitted, missing and late.

Places: producers (coverage, marks, output) by their registered place; findings by the county
of their point; checks by the county of the consumer's shared location, else the registered
place of the producer whose real label was checked (unknown codes without a location have no
place: they count only nationally); alerts and consumer reports by the county where they
happened, else the producer's place, else the GI authority's; cases by where they were found.
Years are calendar years in China Standard Time. Everything is aggregated in SQL (GROUP BY
GI, place and year) and only the grouped rows are folded here into the breakdown asked for.

Who may read: authorities and inspection units, for their own jurisdiction (a national unit,
100000, for all of China); ``adcode`` narrows it to a division inside it.
"""
from __future__ import annotations

import datetime as dt
import enum
import functools
import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Callable, Iterable, Sequence

from sqlalchemy import Integer, String, and_, case, exists, func, literal, or_, select, true, type_coerce, union
from sqlalchemy.orm import Session, aliased

from geodata.admin import AdminUnit, get_registry

from .. import clock, i18n
from ..db import UTCDateTime, is_postgres
from ..errors import Forbidden, NotFound, ValidationFailed
from ..i18n import Label
from ..models import (AlertKind, AnnualReport, AnnualReportStatus, Authorization, AuthorizationEvent,
                      AuthorizationStatus, Case, CaseEvent, CaseOutcome, Clue, ClueKind, Finding, GIProduct,
                      LedgerEvent, MarkBatch, OrgKind, Organisation, PremisesKind, Scan, UAClass, Verdict,
                      ViolationKind)
from .accounts import Principal
from .annual_reports import due_date
from .jurisdiction import jurisdiction_codes

SUPERVISORS = (OrgKind.authority, OrgKind.inspection)
TARGET = 0.9
MAX_YEARS = 20
GROUPS = ("gi", "region", "year")
MARK_KINDS = ("requested", "approved", "printed", "spoiled", "issued", "activated", "voided", "lost", "stolen",
              "recalled")
USE_KINDS = ("issued", "activated")
CHART_MARK_KINDS = ("printed", "issued", "activated", "voided")
IN_FORCE = (AuthorizationStatus.approved.value,)
MUST_REPORT = (AuthorizationStatus.approved.value, AuthorizationStatus.suspended.value)
MAX_MAP_POINTS = 300           # per layer; beyond it the layer is drawn per county

# --- labels (Chinese first, with English), from the one table of texts (gi_service/i18n/texts.py) ---------

def _key(value: Any) -> str:
    return value.value if isinstance(value, enum.Enum) else str(value)


def _labels(group: str, keys: Iterable[Any]) -> dict[str, Label]:
    """The labels of a breakdown's keys (enum values or names), in their order; a key without a text fails here."""
    return {_key(k): i18n.label(f"stats.{group}.{_key(k)}") for k in keys}


MARK_LABELS = _labels("mark", MARK_KINDS)
VERDICT_LABELS = _labels("verdict", Verdict)
ALERT_LABELS = _labels("alert", AlertKind)
VIOLATION_LABELS = _labels("violation", ViolationKind)
PREMISES_LABELS = _labels("premises", PremisesKind)
OUTCOME_LABELS = _labels("outcome", CaseOutcome)
DIRECT = i18n.label("stats.direct")
UNPLACED = i18n.label("stats.unplaced")
NO_GI = i18n.label("stats.no_gi")
DEFINITIONS: dict[str, dict[str, str]] = i18n.pairs("stats.definition.")


class YearInFuture(ValidationFailed):
    code = "year_in_future"


# --- scope ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Scope:
    """What a statistics request covers: years, one GI or all, and a region (100000 for all of China)."""

    from_year: int
    to_year: int
    gi: GIProduct | None
    region: AdminUnit
    codes: tuple[str, ...] | None          # the region's subtree, None for all of China
    current_year: int

    @property
    def years(self) -> list[int]:
        return list(range(self.from_year, self.to_year + 1))

    @property
    def start(self) -> dt.datetime:
        return clock.year_window(self.from_year)[0]

    @property
    def end(self) -> dt.datetime:
        return clock.year_window(self.to_year)[1]

    @property
    def gi_id(self) -> int | None:
        return self.gi.id if self.gi is not None else None


def _invalid(field_name: str, message: str, code: str = "validation_failed") -> ValidationFailed:
    return ValidationFailed(message, code=code, details=[{"field": field_name, "problem": message}])


def _require_supervisor(by: Principal | None) -> Principal:
    if by is None or by.org_kind not in SUPERVISORS:
        raise Forbidden("statistics are for authorities and inspection units", code="wrong_role")
    return by


def resolve_scope(session: Session, by: Principal, *, year: int | None = None, from_year: int | None = None,
                  to_year: int | None = None, gi_id: int | None = None, adcode: str | None = None,
                  now: dt.datetime | None = None) -> Scope:
    """Check who asks and what: 403 outside the caller's jurisdiction, 422 for a bad period, GI or adcode."""
    _require_supervisor(by)
    current = clock.china_year(now or clock.now())
    if year is not None and (from_year is not None or to_year is not None):
        raise _invalid("year", "give either year, or from_year and to_year for a series, not both",
                       code="period_conflict")
    if year is not None:
        from_year = to_year = year
    elif from_year is None and to_year is None:
        raise _invalid("year", f"give the year (e.g. year={current}) or from_year and to_year for a series",
                       code="year_required")
    elif from_year is None or to_year is None:
        missing = "from_year" if from_year is None else "to_year"
        raise _invalid(missing, "a series needs both from_year and to_year", code="year_required")
    if from_year > to_year:
        raise _invalid("from_year", f"from_year {from_year} is after to_year {to_year}", code="period_reversed")
    if to_year - from_year + 1 > MAX_YEARS:
        raise _invalid("to_year", f"a series covers at most {MAX_YEARS} years", code="period_too_long")
    if to_year > current:
        raise YearInFuture(f"{to_year} has not begun (it is {current} in China); ask for {current} or earlier",
                           details=[{"field": "year" if year is not None else "to_year",
                                     "problem": f"must be {current} or earlier"}])
    registry = get_registry()
    code = adcode or by.adcode
    region = registry.get(code)
    if region is None:
        raise _invalid("adcode", f"adcode {code} is not a known administrative division", code="unknown_adcode")
    if not by.covers(code):
        raise Forbidden(f"{code} ({region.full_name}) is outside your jurisdiction ({by.adcode}); ask for your "
                        "jurisdiction or a division inside it", code="outside_jurisdiction",
                        details={"adcode": code, "jurisdiction": by.adcode})
    gi = None
    if gi_id is not None:
        gi = session.get(GIProduct, gi_id)
        if gi is None:
            raise _invalid("gi_id", f"GI {gi_id} does not exist", code="gi_not_found")
    codes = jurisdiction_codes(code)
    return Scope(from_year, to_year, gi, region, tuple(codes) if codes is not None else None, current)


# --- the grouped queries -------------------------------------------------------------------------
#
# Each query selects per-row (gi_id, adcode, year, key, value) in a subquery and groups the outer
# select by those columns: grouping by labelled columns of a subquery keeps the GROUP BY identical on
# both backends (PostgreSQL refuses a GROUP BY whose CASE carries its own bound parameters).

Cell = tuple[int | None, str | None, int]           # (gi_id, adcode, year)


def _year_of(column, scope: Scope):
    """The China calendar year of a UTC timestamp column, for rows already inside the period."""
    years = scope.years
    if len(years) == 1:
        return literal(years[0], Integer)
    return case(*[(column < clock.year_window(y)[1], literal(y, Integer)) for y in years[:-1]],
                else_=literal(years[-1], Integer))


def _in_period(column, scope: Scope):
    return and_(column >= scope.start, column < scope.end)


def _place_filter(place, scope: Scope):
    return true() if scope.codes is None else place.in_(scope.codes)


def _gi_filter(gi_column, scope: Scope):
    return true() if scope.gi_id is None else gi_column == scope.gi_id


def _grouped(session: Session, inner, *, sums: Sequence[str] = ("value",)) -> list[tuple]:
    sub = inner.subquery()
    keys = [sub.c.gi_id, sub.c.adcode, sub.c.year, sub.c.key]
    stmt = select(*keys, *[func.sum(sub.c[s]) for s in sums]).group_by(*keys)
    return list(session.execute(stmt).all())


class Cells:
    """Counters per (GI, place, year): the grouped rows of every query, before folding."""

    def __init__(self) -> None:
        self.counts: dict[Cell, Counter] = defaultdict(Counter)

    def add(self, rows: Iterable[tuple], name: Callable[[Any], str], column: int = 4) -> None:
        for row in rows:
            value = row[column]
            if value:
                self.counts[(row[0], row[1], int(row[2]))][name(row[3])] += value


def _marks(session: Session, scope: Scope, cells: Cells) -> None:
    producer = aliased(Organisation)
    e = LedgerEvent
    inner = (select(e.gi_id.label("gi_id"), producer.adcode.label("adcode"), _year_of(e.at, scope).label("year"),
                    e.kind.label("key"), e.count.label("value"))
             .join(producer, producer.id == e.producer_id)
             .where(e.kind.in_(MARK_KINDS), _in_period(e.at, scope), _gi_filter(e.gi_id, scope),
                    _place_filter(producer.adcode, scope)))
    cells.add(_grouped(session, inner), lambda k: f"marks.{k}")


def _scan_columns(scope: Scope):
    """(from-clause joins, gi expression, place expression) of a consumer check."""
    batch = aliased(MarkBatch)
    producer = aliased(Organisation)
    claimed = aliased(GIProduct)
    gi = func.coalesce(batch.gi_id, claimed.id)
    place = func.coalesce(Scan.adcode, producer.adcode)

    def joined(stmt):
        return (stmt.outerjoin(batch, and_(Scan.mac_ok.is_(True), batch.series == Scan.series,
                                           batch.seq_start <= Scan.seq, batch.seq_end >= Scan.seq))
                .outerjoin(producer, producer.id == batch.producer_id)
                .outerjoin(claimed, claimed.mark_prefix == func.substr(Scan.series, 1, 4)))
    return joined, gi, place


def _checks(session: Session, scope: Scope, cells: Cells) -> None:
    joined, gi, place = _scan_columns(scope)
    key = case((Scan.ua_class == UAClass.bot, literal("bots")), else_=type_coerce(Scan.verdict, String))
    located = case((and_(Scan.adcode.is_not(None), Scan.ua_class != UAClass.bot), 1), else_=0)
    inner = joined(select(gi.label("gi_id"), place.label("adcode"), _year_of(Scan.at, scope).label("year"),
                          key.label("key"), literal(1, Integer).label("value"), located.label("located"))
                   .select_from(Scan)).where(_in_period(Scan.at, scope), _gi_filter(gi, scope),
                                             _place_filter(place, scope))
    rows = _grouped(session, inner, sums=("value", "located"))
    cells.add(rows, lambda k: "checks.bots" if k == "bots" else f"checks.verdict.{_key(k)}")
    cells.add(rows, lambda k: "checks.located", column=5)


def _clue_place():
    producer = aliased(Organisation)
    authority = aliased(Organisation)
    gi = aliased(GIProduct)
    place = func.coalesce(Clue.adcode, producer.adcode, authority.adcode)

    def joined(stmt):
        return (stmt.outerjoin(producer, producer.id == Clue.producer_id)
                .outerjoin(gi, gi.id == Clue.gi_id)
                .outerjoin(authority, authority.id == gi.authority_id))
    return joined, place


def _clues(session: Session, scope: Scope, cells: Cells) -> None:
    joined, place = _clue_place()
    key = case((Clue.kind == ClueKind.consumer_report, literal("consumer_report")),
               else_=type_coerce(Clue.alert_kind, String))
    inner = joined(select(Clue.gi_id.label("gi_id"), place.label("adcode"),
                          _year_of(Clue.created_at, scope).label("year"), key.label("key"),
                          literal(1, Integer).label("value"), Clue.occurrences.label("occurrences"))
                   .select_from(Clue)).where(_in_period(Clue.created_at, scope), _gi_filter(Clue.gi_id, scope),
                                             _place_filter(place, scope))
    rows = _grouped(session, inner, sums=("value", "occurrences"))
    cells.add(rows, lambda k: "consumer_reports" if k == "consumer_report" else f"alerts.kind.{_key(k)}")
    cells.add([r for r in rows if r[3] != "consumer_report"], lambda k: "alerts.occurrences", column=5)


def _violations_table(session: Session):
    if is_postgres(session):
        return func.jsonb_array_elements_text(Finding.violations).table_valued("value").alias("violation")
    return func.json_each(Finding.violations).table_valued("value").alias("violation")


def _violation_count(session: Session):
    fn = func.jsonb_array_length if is_postgres(session) else func.json_array_length
    return fn(Finding.violations)


def _findings(session: Session, scope: Scope, cells: Cells) -> None:
    year = _year_of(Finding.observed_at, scope).label("year")
    where = (_in_period(Finding.observed_at, scope), _gi_filter(Finding.gi_id, scope),
             _place_filter(Finding.adcode, scope))
    with_violations = case((_violation_count(session) > 0, 1), else_=0)
    inner = select(Finding.gi_id.label("gi_id"), Finding.adcode.label("adcode"), year,
                   Finding.premises_kind.label("key"), literal(1, Integer).label("value"),
                   with_violations.label("with_violations")).where(*where)
    rows = _grouped(session, inner, sums=("value", "with_violations"))
    cells.add(rows, lambda k: f"findings.premises.{_key(k)}")
    cells.add(rows, lambda k: "findings.total")
    cells.add(rows, lambda k: "findings.with_violations", column=5)
    violation = _violations_table(session)
    inner = (select(Finding.gi_id.label("gi_id"), Finding.adcode.label("adcode"), year,
                    violation.c.value.label("key"), literal(1, Integer).label("value"))
             .select_from(Finding).join(violation, true()).where(*where))
    cells.add(_grouped(session, inner), lambda k: f"findings.violation.{k}")


def _cases(session: Session, scope: Scope, cells: Cells) -> None:
    opened = select(Case.gi_id.label("gi_id"), Case.adcode.label("adcode"),
                    _year_of(Case.opened_at, scope).label("year"), literal("opened").label("key"),
                    literal(1, Integer).label("value")).where(
        _in_period(Case.opened_at, scope), _gi_filter(Case.gi_id, scope), _place_filter(Case.adcode, scope))
    cells.add(_grouped(session, opened), lambda k: "cases.opened")
    outcome = select(Case.gi_id.label("gi_id"), Case.adcode.label("adcode"),
                     _year_of(Case.concluded_at, scope).label("year"), Case.outcome.label("key"),
                     literal(1, Integer).label("value"), case((Case.serious.is_(True), 1), else_=0).label("serious")
                     ).where(Case.concluded_at.is_not(None), _in_period(Case.concluded_at, scope),
                             _gi_filter(Case.gi_id, scope), _place_filter(Case.adcode, scope))
    rows = _grouped(session, outcome, sums=("value", "serious"))
    cells.add(rows, lambda k: f"cases.outcome.{_key(k)}")
    cells.add(rows, lambda k: "cases.serious", column=5)
    # A case referred twice in one year is one referred case of that year.
    referrals = (select(CaseEvent.case_id, _year_of(CaseEvent.at, scope).label("year"))
                 .where(CaseEvent.action == "referred", _in_period(CaseEvent.at, scope)).distinct().subquery())
    referred = (select(Case.gi_id.label("gi_id"), Case.adcode.label("adcode"), referrals.c.year.label("year"),
                       literal("referred").label("key"), literal(1, Integer).label("value"))
                .join(referrals, referrals.c.case_id == Case.id)
                .where(_gi_filter(Case.gi_id, scope), _place_filter(Case.adcode, scope)))
    cells.add(_grouped(session, referred), lambda k: "cases.referred")


def _authorizations_in(statuses: Sequence[str], start: dt.datetime, end: dt.datetime):
    """Ids of the authorizations that had one of `statuses` at some instant of [start, end)."""
    e = AuthorizationEvent
    until = func.lead(e.changed_at, type_=UTCDateTime()).over(partition_by=e.authorization_id,
                                                               order_by=(e.changed_at, e.id))
    spans = select(e.authorization_id.label("id"), e.to_status.label("status"), e.changed_at.label("since"),
                   until.label("until")).subquery()
    from_history = select(spans.c.id).where(spans.c.status.in_(statuses), spans.c.since < end,
                                            or_(spans.c.until.is_(None), spans.c.until > start))
    # An authorization recorded without any history (before it was kept) counts by its current state.
    without_history = select(Authorization.id).where(
        Authorization.status.in_(statuses), Authorization.created_at < end,
        ~exists().where(e.authorization_id == Authorization.id))
    return union(from_history, without_history)


def _coverage(session: Session, scope: Scope, start: dt.datetime, end: dt.datetime) -> list[tuple]:
    """(gi_id, adcode, eligible, users) for authorizations in force during [start, end)."""
    producer = aliased(Organisation)
    used = exists().where(LedgerEvent.producer_id == Authorization.producer_id,
                          LedgerEvent.gi_id == Authorization.gi_id, LedgerEvent.kind.in_(USE_KINDS),
                          LedgerEvent.at >= start, LedgerEvent.at < end)
    inner = (select(Authorization.gi_id.label("gi_id"), producer.adcode.label("adcode"),
                    case((used, 1), else_=0).label("used"))
             .join(producer, producer.id == Authorization.producer_id)
             .where(Authorization.id.in_(_authorizations_in(IN_FORCE, start, end)),
                    _gi_filter(Authorization.gi_id, scope), _place_filter(producer.adcode, scope))).subquery()
    return list(session.execute(select(inner.c.gi_id, inner.c.adcode, func.count(), func.sum(inner.c.used))
                                .group_by(inner.c.gi_id, inner.c.adcode)).all())


def _output(session: Session, scope: Scope, cells: Cells) -> None:
    producer = aliased(Organisation)
    for year in scope.years:
        start, end = clock.year_window(year)
        submitted = aliased(AnnualReport)
        inner = (select(Authorization.gi_id.label("gi_id"), producer.adcode.label("adcode"),
                        literal(year, Integer).label("year"), literal("due").label("key"),
                        literal(1, Integer).label("value"),
                        case((submitted.id.is_not(None), 1), else_=0).label("submitted"))
                 .join(producer, producer.id == Authorization.producer_id)
                 .outerjoin(submitted, and_(submitted.producer_id == Authorization.producer_id,
                                            submitted.gi_id == Authorization.gi_id, submitted.year == year,
                                            submitted.status == AnnualReportStatus.submitted))
                 .where(Authorization.id.in_(_authorizations_in(MUST_REPORT, start, end)),
                        _gi_filter(Authorization.gi_id, scope), _place_filter(producer.adcode, scope)))
        rows = _grouped(session, inner, sums=("value", "submitted"))
        cells.add(rows, lambda k: "output.due")
        cells.add(rows, lambda k: "output.submitted_of_due", column=5)
    late = case(*[(and_(AnnualReport.year == y, AnnualReport.submitted_at >= clock.end_of_day(due_date(y))), 1)
                  for y in scope.years], else_=0)
    inner = (select(AnnualReport.gi_id.label("gi_id"), producer.adcode.label("adcode"),
                    AnnualReport.year.label("year"), literal("submitted").label("key"),
                    literal(1, Integer).label("value"), late.label("late"),
                    func.coalesce(AnnualReport.output_kg, 0).label("kg"),
                    func.coalesce(AnnualReport.output_value_yuan, 0).label("yuan"))
             .join(producer, producer.id == AnnualReport.producer_id)
             .where(AnnualReport.status == AnnualReportStatus.submitted,
                    AnnualReport.year.between(scope.from_year, scope.to_year),
                    _gi_filter(AnnualReport.gi_id, scope), _place_filter(producer.adcode, scope)))
    rows = _grouped(session, inner, sums=("value", "late", "kg", "yuan"))
    cells.add(rows, lambda k: "output.submitted")
    cells.add(rows, lambda k: "output.late", column=5)
    cells.add(rows, lambda k: "output.kg", column=6)
    cells.add(rows, lambda k: "output.yuan", column=7)


# --- folding ---------------------------------------------------------------------------------------

def _rate(users: int, eligible: int) -> dict[str, Any]:
    rate = users / eligible if eligible else None
    needed = max(0, math.ceil(TARGET * eligible - 1e-9) - users)
    return {"eligible": eligible, "users": users, "non_users": eligible - users,
            "rate": round(rate, 4) if rate is not None else None,
            "percent": round(rate * 100, 1) if rate is not None else None,
            "target": TARGET, "meets_target": (rate >= TARGET) if rate is not None else None,
            "users_needed_for_target": needed}


def _decimal(value: Any, places: int) -> float:
    return float(round(Decimal(str(value or 0)), places))


def figures(c: Counter, coverage: tuple[int, int]) -> dict[str, Any]:
    """The figures of one group (or the total) from its counters and its (eligible, users)."""
    eligible, users = coverage
    by_verdict = {v: int(c[f"checks.verdict.{v}"]) for v in VERDICT_LABELS}
    by_alert = {k: int(c[f"alerts.kind.{k}"]) for k in ALERT_LABELS}
    by_violation = {k: int(c[f"findings.violation.{k}"]) for k in VIOLATION_LABELS}
    by_premises = {k: int(c[f"findings.premises.{k}"]) for k in PREMISES_LABELS}
    by_outcome = {k: int(c[f"cases.outcome.{k}"]) for k in OUTCOME_LABELS}
    due, submitted_of_due = int(c["output.due"]), int(c["output.submitted_of_due"])
    return {
        "coverage": _rate(users, eligible),
        "marks": {k: int(c[f"marks.{k}"]) for k in MARK_KINDS},
        "checks": {"total": sum(by_verdict.values()), "by_verdict": by_verdict, "located": int(c["checks.located"]),
                   "bots": int(c["checks.bots"])},
        "alerts": {"total": sum(by_alert.values()), "by_kind": by_alert, "occurrences": int(c["alerts.occurrences"])},
        "consumer_reports": int(c["consumer_reports"]),
        "findings": {"total": int(c["findings.total"]), "with_violations": int(c["findings.with_violations"]),
                     "without_violations": int(c["findings.total"] - c["findings.with_violations"]),
                     "by_violation": by_violation, "by_premises": by_premises},
        "cases": {"opened": int(c["cases.opened"]), "referred": int(c["cases.referred"]),
                  "concluded": sum(by_outcome.values()), "by_outcome": by_outcome, "serious": int(c["cases.serious"])},
        "output": {"reports_due": due, "reports_submitted": int(c["output.submitted"]),
                   "reports_missing": due - submitted_of_due, "reports_late": int(c["output.late"]),
                   "output_kg": _decimal(c["output.kg"], 3), "output_value_yuan": _decimal(c["output.yuan"], 2)},
    }


@functools.lru_cache(maxsize=64)
def _child_map(adcode: str) -> dict[str, str]:
    """Every adcode under `adcode` mapped to the child of `adcode` it lies in (the next level down)."""
    registry = get_registry()
    out = {}
    for child in registry.children(adcode):
        out[child.adcode] = child.adcode
        for unit in registry.descendants(child.adcode):
            out[unit.adcode] = child.adcode
    return out


def _region_of(scope: Scope) -> Callable[[str | None], str | None]:
    root = scope.region.adcode
    mapping = _child_map(root)
    registry = get_registry()
    children = sorted(set(mapping.values()))

    def child(adcode: str | None) -> str | None:
        if adcode is None:
            return None
        if adcode == root:
            return root
        hit = mapping.get(adcode)
        if hit is None:  # an abolished or newer code: place it by its prefix, as is_within does
            try:
                hit = next((c for c in children if registry.is_within(adcode, c)), None)
            except ValueError:
                hit = None
        return hit
    return child


def _unit_dict(unit: AdminUnit) -> dict[str, Any]:
    return {"adcode": unit.adcode, "name": unit.name, "full_name": unit.full_name, "level": unit.level}


def _gi_dict(gi: GIProduct | None) -> dict[str, Any] | None:
    if gi is None:
        return None
    return {"id": gi.id, "name_zh": gi.name_zh, "name_en": gi.name_en or gi.name_pinyin}


@dataclass
class Result:
    scope: Scope
    group_by: str | None
    total: dict[str, Any]
    groups: list[dict[str, Any]] = field(default_factory=list)
    generated_at: dt.datetime = field(default_factory=lambda: clock.now())

    def to_dict(self) -> dict[str, Any]:
        s = self.scope
        return {
            "period": {"from_year": s.from_year, "to_year": s.to_year, "from": s.start.isoformat(),
                       "until": s.end.isoformat(), "timezone": "Asia/Shanghai",
                       "complete": s.to_year < s.current_year},
            "scope": {"region": _unit_dict(s.region), "gi": _gi_dict(s.gi)},
            "group_by": self.group_by,
            "total": self.total,
            "groups": self.groups,
            "definitions": DEFINITIONS,
            "labels": label_table(),
            "generated_at": self.generated_at.isoformat(),
        }


def label_table() -> dict[str, dict[str, dict[str, str]]]:
    """The Chinese and English names of every breakdown key, for dashboards and charts."""
    def table(labels: dict[str, Label]) -> dict[str, dict[str, str]]:
        return {k: {"zh": v.zh, "en": v.en} for k, v in labels.items()}
    return {"marks": table(MARK_LABELS), "verdicts": table(VERDICT_LABELS), "alerts": table(ALERT_LABELS),
            "violations": table(VIOLATION_LABELS), "premises": table(PREMISES_LABELS),
            "outcomes": table(OUTCOME_LABELS)}


def compute(session: Session, scope: Scope, group_by: str | None = None) -> Result:
    """Every figure of the scope, in total and per group (gi, region or year)."""
    if group_by is not None and group_by not in GROUPS:
        raise _invalid("group_by", f"group_by must be one of {', '.join(GROUPS)}")
    cells = Cells()
    _marks(session, scope, cells)
    _checks(session, scope, cells)
    _clues(session, scope, cells)
    _findings(session, scope, cells)
    _cases(session, scope, cells)
    _output(session, scope, cells)
    period_coverage = _coverage(session, scope, scope.start, scope.end)

    total_counts: Counter = Counter()
    for counter in cells.counts.values():
        total_counts.update(counter)
    total = figures(total_counts, (sum(r[2] for r in period_coverage), sum(int(r[3] or 0) for r in period_coverage)))
    result = Result(scope, group_by, total)
    if group_by is None:
        return result

    if group_by == "year":
        keyed: dict[Any, Counter] = {y: Counter() for y in scope.years}
        for (_gi, _place, year), counter in cells.counts.items():
            keyed[year].update(counter)
        coverage = {}
        for y in scope.years:
            rows = _coverage(session, scope, *clock.year_window(y))
            coverage[y] = (sum(r[2] for r in rows), sum(int(r[3] or 0) for r in rows))
        result.groups = [{"key": {"year": y}, "figures": figures(keyed[y], coverage[y])} for y in scope.years]
        return result

    if group_by == "gi":
        key_of: Callable[[Cell], Any] = lambda cell: cell[0]  # noqa: E731
    else:
        child = _region_of(scope)
        key_of = lambda cell: child(cell[1])  # noqa: E731
    keyed = defaultdict(Counter)
    for cell, counter in cells.counts.items():
        keyed[key_of(cell)].update(counter)
    cov: dict[Any, list[int]] = defaultdict(lambda: [0, 0])
    for gi_id, adcode, eligible, users in period_coverage:
        k = key_of((gi_id, adcode, 0))
        cov[k][0] += eligible
        cov[k][1] += int(users or 0)

    if group_by == "gi":
        ids = sorted({k for k in [*keyed, *cov] if k is not None})
        if scope.gi_id is not None and scope.gi_id not in ids:
            ids = [scope.gi_id]
        gis = {g.id: g for g in session.scalars(select(GIProduct).where(GIProduct.id.in_(ids)))} if ids else {}
        groups = [{"key": {"gi": _gi_dict(gis[i])}, "figures": figures(keyed.get(i, Counter()), tuple(cov[i]))}
                  for i in ids]
        if None in keyed or None in cov:
            groups.append({"key": {"gi": None, "label": {"zh": NO_GI.zh, "en": NO_GI.en}},
                           "figures": figures(keyed.get(None, Counter()), tuple(cov[None]))})
        result.groups = groups
        return result

    registry = get_registry()
    root = scope.region.adcode
    groups = []
    for unit in registry.children(root):
        groups.append({"key": {"region": _unit_dict(unit)},
                       "figures": figures(keyed.get(unit.adcode, Counter()), tuple(cov[unit.adcode]))})
    if not groups or root in keyed or root in cov:
        # Registered at the region itself (or a county: nothing below it in the data).
        groups.append({"key": {"region": _unit_dict(scope.region), "direct": True,
                               "label": {"zh": DIRECT.zh, "en": DIRECT.en}},
                       "figures": figures(keyed.get(root, Counter()), tuple(cov[root]))})
    if None in keyed or None in cov:
        groups.append({"key": {"region": None, "label": {"zh": UNPLACED.zh, "en": UNPLACED.en}},
                       "figures": figures(keyed.get(None, Counter()), tuple(cov[None]))})
    result.groups = groups
    return result


# --- charts ----------------------------------------------------------------------------------------

CHARTS = {
    "coverage": "coverage of the special mark per GI (or ?group_by=region|year) as bars, with the 90% line",
    "marks-by-month": "marks printed, issued, activated and voided per month of one year, as grouped bars",
    "findings-by-violation": "findings per violation kind, as horizontal bars",
    "checks-by-verdict": "consumer checks per verdict, as bars (bots not counted)",
}


def marks_by_month(session: Session, scope: Scope) -> dict[int, dict[str, int]]:
    """Marks per ledger kind per China calendar month of the scope's single year."""
    if scope.from_year != scope.to_year:
        raise _invalid("year", "the monthly chart is for one year: give year instead of from_year/to_year",
                       code="single_year_required")
    year = scope.from_year
    month = case(*[(LedgerEvent.at < clock.month_start(year, m + 1), literal(m, Integer)) for m in range(1, 12)],
                 else_=literal(12, Integer))
    producer = aliased(Organisation)
    inner = (select(LedgerEvent.kind.label("kind"), month.label("month"), LedgerEvent.count.label("value"))
             .join(producer, producer.id == LedgerEvent.producer_id)
             .where(LedgerEvent.kind.in_(CHART_MARK_KINDS), _in_period(LedgerEvent.at, scope),
                    _gi_filter(LedgerEvent.gi_id, scope), _place_filter(producer.adcode, scope))).subquery()
    out = {m: dict.fromkeys(CHART_MARK_KINDS, 0) for m in range(1, 13)}
    for kind, m, value in session.execute(select(inner.c.kind, inner.c.month, func.sum(inner.c.value))
                                          .group_by(inner.c.kind, inner.c.month)):
        out[int(m)][kind] = int(value or 0)
    return out


def require_chart(name: str) -> None:
    if name not in CHARTS:
        raise NotFound(f"no chart named {name!r}; charts: {', '.join(CHARTS)}", code="chart_not_found",
                       details={"charts": list(CHARTS)})


# --- the map's points ------------------------------------------------------------------------------

MAP_LAYERS = ("findings", "alerts")


@dataclass(frozen=True)
class MapMark:
    """A point of the statistics map, in lon/lat: one finding or alert (`at` when it happened; an alert's `kind`),
    or a county's `count` of them at its centre when a layer has too many to draw one by one."""

    layer: str                      # findings_violation | findings_clean | alerts
    lon: float
    lat: float
    count: int = 1
    name: str = ""                  # the premises of a finding, or the county of an aggregate
    kind: str | None = None         # an alert's kind
    at: dt.datetime | None = None


@dataclass
class MapMarks:
    """The statistics map's points and what its legend says about them."""

    marks: list[MapMark] = field(default_factory=list)
    findings: dict[str, int] = field(default_factory=dict)     # findings_violation, findings_clean
    findings_grouped: bool = False
    alerts_placed: int = 0
    alerts_unplaced: int = 0
    alerts_grouped: bool = False


@functools.lru_cache(maxsize=4096)
def county_centre(adcode: str) -> tuple[float, float] | None:
    """(lon, lat) of a county's centroid (its representative point if the centroid falls outside it)."""
    registry = get_registry()
    if registry.get(adcode) is None:
        return None
    geom = registry.boundary(adcode)
    c = geom.centroid
    if not geom.contains(c):
        c = geom.representative_point()
    return (c.x, c.y)


def _finding_marks(session: Session, scope: Scope) -> tuple[list[MapMark], dict[str, int], bool]:
    where = (_in_period(Finding.observed_at, scope), _gi_filter(Finding.gi_id, scope),
             _place_filter(Finding.adcode, scope))
    flag = case((_violation_count(session) > 0, 1), else_=0)
    flags = select(flag.label("v")).where(*where).subquery()
    totals = dict(session.execute(select(flags.c.v, func.count()).group_by(flags.c.v)).all())
    counts = {"findings_violation": int(totals.get(1, 0)), "findings_clean": int(totals.get(0, 0))}
    layer = lambda v: "findings_violation" if v else "findings_clean"  # noqa: E731
    if sum(counts.values()) <= MAX_MAP_POINTS:
        rows = session.execute(select(Finding.lon, Finding.lat, flag, Finding.premises_name, Finding.observed_at)
                               .where(*where).order_by(Finding.observed_at, Finding.id)).all()
        return [MapMark(layer(v), lon, lat, 1, name, at=at) for lon, lat, v, name, at in rows], counts, False
    inner = select(Finding.adcode.label("adcode"), flag.label("v")).where(*where).subquery()
    rows = session.execute(select(inner.c.adcode, inner.c.v, func.count()).group_by(inner.c.adcode, inner.c.v)
                           .order_by(inner.c.adcode, inner.c.v)).all()
    return _aggregated(rows, layer), counts, True


def _aggregated(rows, layer_of) -> list[MapMark]:
    registry = get_registry()
    marks = []
    for adcode, variant, n in rows:
        centre = county_centre(adcode) if adcode else None
        if centre is None:
            continue
        unit = registry.get(adcode)
        marks.append(MapMark(layer_of(variant), *centre, int(n), unit.name if unit else adcode))
    return marks


def _alert_marks(session: Session, scope: Scope) -> tuple[list[MapMark], int, int, bool]:
    """Alerts at their check's rounded location, else their county's centre; (marks, placed, unplaced, grouped)."""
    joined, place = _clue_place()
    scan = aliased(Scan)
    scope_where = (Clue.kind == ClueKind.alert, _in_period(Clue.created_at, scope), _gi_filter(Clue.gi_id, scope),
                   _place_filter(place, scope))
    located = Clue.adcode.is_not(None)
    rows = session.execute(joined(select(located.label("located"), func.count()).select_from(Clue))
                           .where(*scope_where).group_by(located)).all()
    placed = sum(int(n) for flag, n in rows if flag)
    unplaced = sum(int(n) for flag, n in rows if not flag)
    where = (*scope_where, located, _place_filter(Clue.adcode, scope))
    if placed <= MAX_MAP_POINTS:
        rows = session.execute(joined(select(Clue.adcode, scan.lon, scan.lat, Clue.alert_kind, Clue.created_at)
                                      .select_from(Clue)).outerjoin(scan, scan.id == Clue.scan_id)
                               .where(*where).order_by(Clue.created_at, Clue.id)).all()
        marks = []
        for adcode, lon, lat, kind, at in rows:
            if lon is None or lat is None:
                centre = county_centre(adcode)
                if centre is None:
                    continue
                lon, lat = centre
            marks.append(MapMark("alerts", lon, lat, 1, kind=_key(kind), at=at))
        return marks, placed, unplaced, False
    inner = joined(select(Clue.adcode.label("adcode")).select_from(Clue)).where(*where).subquery()
    rows = session.execute(select(inner.c.adcode, literal(0), func.count()).group_by(inner.c.adcode)
                           .order_by(inner.c.adcode)).all()
    return _aggregated(rows, lambda _v: "alerts"), placed, unplaced, True


def parse_layers(text: str | None) -> tuple[str, ...]:
    if text is None or not text.strip():
        return MAP_LAYERS
    layers = []
    for raw in text.split(","):
        name = raw.strip()
        if name not in MAP_LAYERS:
            raise _invalid("layers", f"unknown layer {name!r}; layers: {', '.join(MAP_LAYERS)} (comma-separated)",
                           code="unknown_layer")
        if name not in layers:
            layers.append(name)
    return tuple(layers)


def map_marks(session: Session, scope: Scope, layers: Sequence[str] = MAP_LAYERS) -> MapMarks:
    """The findings and alerts of the scope as points of a map, per layer asked (render.maps draws them)."""
    out = MapMarks()
    if "findings" in layers:
        marks, out.findings, out.findings_grouped = _finding_marks(session, scope)
        out.marks += marks
    if "alerts" in layers:
        marks, out.alerts_placed, out.alerts_unplaced, out.alerts_grouped = _alert_marks(session, scope)
        out.marks += marks
    return out
