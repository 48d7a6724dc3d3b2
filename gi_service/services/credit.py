"""Credit supervision: a producer's credit record, the rules that call a violation serious, and their effects.

When a case is concluded ``violation_confirmed`` against a producer (``record_violation``), the
producer's credit record gets an entry; the **credit rules** decide whether the violation is
serious. A serious violation, in the same transaction as the conclusion:

1. puts the producer on the public serious-violator list (``SeriousViolator``), with the date from
   which credit repair may take it off again (``repair_after``);
2. suspends its approved authorization for the case's GI (or for every GI, if a matching rule
   says ``"suspend": "all_gis"``) with an authorization event made by the service itself;
3. voids its issued but unactivated marks of each suspended GI through the ledger (one ledger
   event per serial range, the reason naming the case): labels still in the producer's hands
   cannot be put on product any more. Marks already activated stay as they are, and the
   consumer page answers ``authorization_suspended`` for them (the suspension takes effect on
   every label at once).

Each step writes its own ``CreditEntry``. Lifting a suspension (``lift_suspension``) restores the
authorization only: voided marks stay voided (the ledger is append-only; the producer requests
new marks within its quota), and the listing stays until the authority delists it after
``repair_after`` (``delist``).

The rules are JSON (``GI_CREDIT_RULES``), read once when the application starts; a malformed file
stops the start with a message naming the file and the field::

    {
      "repair_after_days": 365,
      "rules": [
        {"name": "forged_labels", "violations_any": ["forged_or_copied_label"]},
        {"name": "repeat_within_two_years", "repeat_within_days": 730}
      ]
    }

A rule matches when **all** its conditions hold: ``violations_any`` (one of these violation kinds
was confirmed), ``repeat_within_days`` (the producer had at least ``repeat_count`` other confirmed
violations in that many days before, of the same GI if ``same_gi``). Options: ``suspend``
(``"case_gi"`` or ``"all_gis"``) and ``repair_after_days`` (overrides the file's default). A
violation is serious when any rule matches; the first matching rule names the decision, the
widest suspension and the longest repair period of all matching rules apply.
"""
from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator
from sqlalchemy import false, func, select
from sqlalchemy.orm import Session

from .. import clock
from ..config import ConfigError
from ..db import get_by_id
from ..errors import Conflict, Forbidden, NotFound
from ..models import (Authorization, AuthorizationStatus, Case, CreditEntry, CreditEntryKind, GIProduct, OrgKind,
                      Organisation, SeriousViolator, ViolationKind)
from . import marks as marks_service
from . import producers
from .accounts import Principal
from .jurisdiction import division_codes
from .registry import can_manage_gi

SUPERVISORS = (OrgKind.authority, OrgKind.inspection)
VIOLATION_KINDS = (CreditEntryKind.violation, CreditEntryKind.serious_violation)


# --- the rules ------------------------------------------------------------------------------------

class CreditRule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$")
    description: Optional[str] = Field(default=None, max_length=500)
    violations_any: Optional[list[ViolationKind]] = Field(default=None, min_length=1)
    repeat_within_days: Optional[int] = Field(default=None, ge=1, le=36500)
    repeat_count: int = Field(default=1, ge=1, le=100)
    same_gi: bool = False
    suspend: Literal["case_gi", "all_gis"] = "case_gi"
    repair_after_days: Optional[int] = Field(default=None, ge=0, le=36500)

    @model_validator(mode="after")
    def _has_condition(self) -> "CreditRule":
        if self.violations_any is None and self.repeat_within_days is None:
            raise ValueError(f"rule {self.name!r} has no condition: give violations_any and/or repeat_within_days")
        return self

    def describe(self) -> str:
        parts = []
        if self.violations_any:
            parts.append("violations include " + " or ".join(v.value for v in self.violations_any))
        if self.repeat_within_days:
            what = "confirmed violation" + ("s" if self.repeat_count > 1 else "")
            scope = " of the same GI" if self.same_gi else ""
            parts.append(f"{self.repeat_count} other {what}{scope} within {self.repeat_within_days} days")
        return " and ".join(parts)


class CreditRules(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    repair_after_days: int = Field(default=365, ge=0, le=36500)
    rules: list[CreditRule] = Field(default_factory=list, max_length=100)
    # Where they came from: "built-in" or the file's name (not part of the file).
    _source: str = PrivateAttr(default="built-in")

    @property
    def source(self) -> str:
        return self._source

    @field_validator("rules")
    @classmethod
    def _unique_names(cls, rules: list[CreditRule]) -> list[CreditRule]:
        seen: set[str] = set()
        for rule in rules:
            if rule.name in seen:
                raise ValueError(f"two rules are named {rule.name!r}; rule names must be unique")
            seen.add(rule.name)
        return rules

    def public(self) -> dict[str, Any]:
        return {"source": self.source, "repair_after_days": self.repair_after_days,
                "rules": [{**r.model_dump(mode="json", exclude_none=True), "summary": r.describe()}
                          for r in self.rules]}


DEFAULT_RULES: dict[str, Any] = {
    "repair_after_days": 365,
    "rules": [
        {"name": "forged_labels", "description": "forged or copied special-mark labels",
         "violations_any": ["forged_or_copied_label"]},
        {"name": "repeat_within_two_years", "description": "another confirmed violation within two years",
         "repeat_within_days": 730},
    ],
}


def load_rules(path: Path | None) -> CreditRules:
    """The credit rules from `path` (GI_CREDIT_RULES), or the built-in ones; ConfigError saying what is wrong."""
    if path is None:
        return CreditRules.model_validate(DEFAULT_RULES)
    where = f"GI_CREDIT_RULES ({path})"
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{where}: the file does not exist; create it or unset GI_CREDIT_RULES to use the "
                          "built-in rules") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{where}: cannot be read: {exc}") from None
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ConfigError(f"{where}: not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: must be a JSON object with \"rules\" (and optionally \"repair_after_days\")")
    try:
        rules = CreditRules.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors(include_url=False):
            loc = ".".join(str(p) for p in err["loc"]) or "(file)"
            msg = "unknown field; remove it" if err["type"] == "extra_forbidden" else err["msg"]
            problems.append(f"{loc}: {msg}")
        raise ConfigError(f"{where}: " + "; ".join(problems)) from None
    rules._source = Path(path).name
    return rules


# --- deciding -------------------------------------------------------------------------------------

@dataclass
class Decision:
    serious: bool
    matched: list[CreditRule] = field(default_factory=list)
    repeats: int = 0       # other confirmed violations counted by the widest repeat window that was asked

    @property
    def rule(self) -> str | None:
        return self.matched[0].name if self.matched else None

    @property
    def suspend_all(self) -> bool:
        return any(r.suspend == "all_gis" for r in self.matched)

    def repair_after_days(self, rules: CreditRules) -> int:
        return max((r.repair_after_days if r.repair_after_days is not None else rules.repair_after_days)
                   for r in self.matched) if self.matched else rules.repair_after_days


def _previous_violations(session: Session, producer_id: int, *, since: dt.datetime, exclude_case_id: int,
                         gi_id: int | None) -> int:
    stmt = select(func.count()).select_from(CreditEntry).where(
        CreditEntry.producer_id == producer_id, CreditEntry.kind.in_(VIOLATION_KINDS), CreditEntry.at >= since,
        (CreditEntry.case_id.is_(None)) | (CreditEntry.case_id != exclude_case_id))
    if gi_id is not None:
        stmt = stmt.where(CreditEntry.gi_id == gi_id)
    return int(session.scalar(stmt) or 0)


def decide(session: Session, rules: CreditRules, *, producer_id: int, gi_id: int | None, case_id: int,
           violations: list[str], now: dt.datetime) -> Decision:
    """Which rules call this confirmed violation serious."""
    decision = Decision(serious=False)
    confirmed = set(violations)
    for rule in rules.rules:
        ok = True
        if rule.violations_any is not None:
            ok = any(v.value in confirmed for v in rule.violations_any)
        if ok and rule.repeat_within_days is not None:
            n = _previous_violations(session, producer_id, since=now - dt.timedelta(days=rule.repeat_within_days),
                                     exclude_case_id=case_id, gi_id=gi_id if rule.same_gi else None)
            decision.repeats = max(decision.repeats, n)
            ok = n >= rule.repeat_count
        if ok:
            decision.matched.append(rule)
    decision.serious = bool(decision.matched)
    return decision


# --- effects of a confirmed violation -------------------------------------------------------------

def _entry(session: Session, *, producer_id: int, kind: CreditEntryKind, reason: str, case_id: int | None = None,
           gi_id: int | None = None, rule: str | None = None, details: dict[str, Any] | None = None,
           by: Principal | None = None, at: dt.datetime | None = None) -> CreditEntry:
    entry = CreditEntry(producer_id=producer_id, gi_id=gi_id, kind=kind, case_id=case_id, rule=rule,
                        reason=reason[:1000], details=details or {}, by_id=by.user_id if by else None,
                        at=at or clock.now())
    session.add(entry)
    return entry


def record_violation(session: Session, case: Case, rules: CreditRules, *, violations: list[str],
                     now: dt.datetime | None = None) -> dict[str, Any]:
    """Write the credit consequences of `case`'s confirmed violation (in the caller's transaction).

    Returns a summary of what was done (also kept in the case's event log).
    """
    now = now or clock.now()
    producer_id = case.producer_id
    assert producer_id is not None
    decision = decide(session, rules, producer_id=producer_id, gi_id=case.gi_id, case_id=case.id,
                      violations=violations, now=now)
    names = [r.name for r in decision.matched]
    kinds = ", ".join(violations)
    summary: dict[str, Any] = {"serious": decision.serious, "rules": names, "violations": violations,
                               "suspended": [], "voided": [], "listed": None}
    _entry(session, producer_id=producer_id, gi_id=case.gi_id, case_id=case.id, at=now,
           kind=CreditEntryKind.serious_violation if decision.serious else CreditEntryKind.violation,
           rule=decision.rule,
           reason=(f"case {case.number}: confirmed {kinds}" + (f"; serious by rule {', '.join(names)}"
                                                                if decision.serious else "")),
           details={"violations": violations, "measure": case.measure, "rules": names,
                    "other_violations_counted": decision.repeats})
    case.serious = decision.serious
    if not decision.serious:
        session.flush()
        return summary

    # 1. the public list
    repair_days = decision.repair_after_days(rules)
    today = clock.china_date(now)
    listing = SeriousViolator(producer_id=producer_id, case_id=case.id, rule=decision.rule,
                              reason=f"案件 {case.number} 确认严重违法 / serious violation confirmed in case "
                                     f"{case.number}: {kinds}"[:1000],
                              listed_at=now, repair_after=today + dt.timedelta(days=repair_days))
    session.add(listing)
    session.flush()
    _entry(session, producer_id=producer_id, gi_id=case.gi_id, case_id=case.id, rule=decision.rule, at=now,
           kind=CreditEntryKind.listed,
           reason=f"listed as a serious violator (case {case.number}); credit repair possible from "
                  f"{listing.repair_after.isoformat()}",
           details={"serious_violator_id": listing.id, "repair_after": listing.repair_after.isoformat(),
                    "repair_after_days": repair_days})
    summary["listed"] = {"id": listing.id, "repair_after": listing.repair_after.isoformat()}

    # 2. suspension, 3. voiding the marks not yet on product
    stmt = select(Authorization).where(Authorization.producer_id == producer_id,
                                       Authorization.status == AuthorizationStatus.approved)
    if not decision.suspend_all:
        stmt = stmt.where(Authorization.gi_id == case.gi_id) if case.gi_id is not None else stmt.where(false())
    auths = list(session.scalars(stmt.order_by(Authorization.id).with_for_update()))
    why = f"serious violation confirmed in case {case.number} (rule {decision.rule})"
    for auth in auths:
        producers.system_transition(session, auth, AuthorizationStatus.suspended, reason=f"suspended: {why}", at=now)
        _entry(session, producer_id=producer_id, gi_id=auth.gi_id, case_id=case.id, rule=decision.rule, at=now,
               kind=CreditEntryKind.suspended, reason=f"authorization {auth.id} suspended: {why}",
               details={"authorization_id": auth.id, "scope": "all_gis" if decision.suspend_all else "case_gi"})
        summary["suspended"].append({"authorization_id": auth.id, "gi_id": auth.gi_id})
        voided = marks_service.void_unactivated(
            session, producer_id=producer_id, gi_id=auth.gi_id, by=None,
            reason=f"voided with the suspension decided in case {case.number} (rule {decision.rule})",
            data={"case_id": case.id, "case_number": case.number, "rule": decision.rule})
        if voided:
            count = sum(v.count for v in voided)
            _entry(session, producer_id=producer_id, gi_id=auth.gi_id, case_id=case.id, rule=decision.rule, at=now,
                   kind=CreditEntryKind.marks_voided,
                   reason=f"{count} issued but unactivated mark(s) voided through the ledger (case {case.number})",
                   details={"count": count, "ranges": [v.as_dict() for v in voided],
                            "ledger_events": [v.event_seq for v in voided]})
            summary["voided"].append({"gi_id": auth.gi_id, "count": count,
                                      "ledger_events": [v.event_seq for v in voided]})
    if not auths:
        summary["note"] = "no approved authorization to suspend"
    session.flush()
    return summary


# --- lifting and delisting ------------------------------------------------------------------------

def lift_suspension(session: Session, producer_id: int, *, gi_id: int, reason: str, by: Principal) -> Authorization:
    """The GI's authority lifts a suspension: the authorization is approved again, nothing else is restored."""
    producer = producers.get_producer(session, producer_id)
    gi = session.get(GIProduct, gi_id)
    if gi is None:
        raise NotFound(f"GI {gi_id} does not exist", code="gi_not_found")
    if by.org_kind != OrgKind.authority or not can_manage_gi(session, by, gi):
        raise Forbidden(f"only the authority managing {gi.name_zh} lifts suspensions of its authorizations",
                        code="outside_jurisdiction")
    auth = session.scalar(select(Authorization).where(Authorization.producer_id == producer.id,
                                                      Authorization.gi_id == gi.id).with_for_update())
    if auth is None:
        raise NotFound(f"producer {producer.id} has no authorization for GI {gi.id}", code="authorization_not_found")
    if auth.status != AuthorizationStatus.suspended:
        raise Conflict(f"the authorization of producer {producer.id} for {gi.name_zh} is {auth.status.value}, "
                       "not suspended", code="not_suspended", details={"status": auth.status.value})
    producers.transition_authorization(session, auth.id, AuthorizationStatus.approved, by=by,
                                       reason=f"suspension lifted: {reason}")
    listed = session.scalars(select(SeriousViolator).where(SeriousViolator.producer_id == producer.id,
                                                          SeriousViolator.delisted_at.is_(None))).all()
    _entry(session, producer_id=producer.id, gi_id=gi.id, kind=CreditEntryKind.suspension_lifted, by=by,
           reason=f"suspension of authorization {auth.id} lifted: {reason}",
           details={"authorization_id": auth.id, "restored": ["authorization"],
                    "not_restored": ["voided marks stay voided (the ledger is append-only)"]
                    + (["the serious-violator listing (delisting needs credit repair)"] if listed else [])})
    session.flush()
    return auth


def get_listing(session: Session, listing_id: int, *, lock: bool = False) -> SeriousViolator:
    return get_by_id(session, SeriousViolator, listing_id, what="serious-violator entry", code="listing_not_found",
                     lock=lock)


def delist(session: Session, listing_id: int, *, reason: str, by: Principal,
           today: dt.date | None = None) -> SeriousViolator:
    """Take a producer off the serious-violator list after its credit repair period."""
    listing = get_listing(session, listing_id, lock=True)
    producer = session.get(Organisation, listing.producer_id)
    if by.org_kind != OrgKind.authority or not by.covers(producer.adcode):
        raise Forbidden("only an authority covering the producer's registered place delists it",
                        code="outside_jurisdiction")
    if listing.delisted_at is not None:
        raise Conflict(f"entry {listing_id} was already delisted on {listing.delisted_at:%Y-%m-%d}",
                       code="already_delisted")
    today = today or clock.today()
    if listing.repair_after is not None and today < listing.repair_after:
        raise Conflict(f"credit repair is possible from {listing.repair_after.isoformat()}; "
                       f"{(listing.repair_after - today).days} day(s) to go", code="too_early",
                       details={"repair_after": listing.repair_after.isoformat()})
    now = clock.now()
    listing.delisted_at, listing.delisted_by_id, listing.delist_reason = now, by.user_id, reason
    _entry(session, producer_id=listing.producer_id, case_id=listing.case_id, kind=CreditEntryKind.delisted, by=by,
           rule=listing.rule, reason=f"delisted from the serious-violator list: {reason}", at=now,
           details={"serious_violator_id": listing.id, "listed_at": listing.listed_at.isoformat()})
    session.flush()
    return listing


# --- reading --------------------------------------------------------------------------------------

def list_serious_violators(session: Session, *, include_delisted: bool = False, adcode: str | None = None,
                           producer_id: int | None = None, limit: int = 100, offset: int = 0
                           ) -> tuple[list[tuple[SeriousViolator, Organisation, Case]], int]:
    stmt = (select(SeriousViolator, Organisation, Case)
            .join(Organisation, Organisation.id == SeriousViolator.producer_id)
            .join(Case, Case.id == SeriousViolator.case_id))
    if not include_delisted:
        stmt = stmt.where(SeriousViolator.delisted_at.is_(None))
    if producer_id is not None:
        stmt = stmt.where(SeriousViolator.producer_id == producer_id)
    if adcode:
        codes = division_codes(adcode)
        if codes is not None:
            stmt = stmt.where(Organisation.adcode.in_(codes))
    total = session.scalar(select(func.count()).select_from(stmt.subquery()))
    rows = session.execute(stmt.order_by(SeriousViolator.listed_at.desc(), SeriousViolator.id.desc())
                           .limit(limit).offset(offset)).all()
    return [tuple(r) for r in rows], int(total or 0)


def require_credit_reader(by: Principal | None, producer: Organisation) -> None:
    """A producer's credit record: the producer itself and supervisors covering its registered place."""
    if by is not None and (by.organisation_id == producer.id
                           or (by.org_kind in SUPERVISORS and by.covers(producer.adcode))):
        return
    raise Forbidden(f"the credit record of producer {producer.id} is for the producer itself and the authorities "
                    "and inspection units covering its registered place", code="not_your_producer")


def credit_record(session: Session, producer_id: int, *, by: Principal) -> dict[str, Any]:
    producer = producers.get_producer(session, producer_id)
    require_credit_reader(by, producer)
    entries = list(session.scalars(select(CreditEntry).where(CreditEntry.producer_id == producer.id)
                                   .order_by(CreditEntry.at.desc(), CreditEntry.id.desc())))
    listings = list(session.scalars(select(SeriousViolator).where(SeriousViolator.producer_id == producer.id)
                                    .order_by(SeriousViolator.id.desc())))
    auths = producers.list_authorizations(session, producer_id=producer.id)
    case_ids = {e.case_id for e in entries if e.case_id} | {s.case_id for s in listings}
    numbers = dict(session.execute(select(Case.id, Case.number).where(Case.id.in_(case_ids))).all()) if case_ids \
        else {}
    return {
        "producer": {"id": producer.id, "name": producer.name, "uscc": producer.uscc, "adcode": producer.adcode},
        "summary": {
            "confirmed_violations": sum(1 for e in entries if e.kind in VIOLATION_KINDS),
            "serious_violations": sum(1 for e in entries if e.kind == CreditEntryKind.serious_violation),
            "currently_listed": any(s.delisted_at is None for s in listings),
            "suspended_authorizations": [a.id for a in auths if a.status == AuthorizationStatus.suspended],
        },
        "authorizations": [{"id": a.id, "gi_id": a.gi_id, "gi_name": a.gi.name_zh, "status": a.status.value}
                           for a in auths],
        "listings": [listing_dict(s, case_number=numbers.get(s.case_id), history=True) for s in listings],
        "entries": [entry_dict(e, case_number=numbers.get(e.case_id)) for e in entries],
    }


def entry_dict(e: CreditEntry, *, case_number: str | None = None) -> dict[str, Any]:
    return {"id": e.id, "at": e.at.isoformat(), "kind": e.kind.value, "gi_id": e.gi_id, "case_id": e.case_id,
            "case_number": case_number, "rule": e.rule, "reason": e.reason, "details": e.details,
            "by": e.by_id}


def listing_dict(s: SeriousViolator, *, producer: Organisation | None = None, case_number: str | None = None,
                 history: bool = False) -> dict[str, Any]:
    data: dict[str, Any] = {"id": s.id, "case_id": s.case_id, "case_number": case_number, "rule": s.rule,
                            "reason": s.reason, "listed_at": s.listed_at.isoformat(),
                            "repair_after": s.repair_after.isoformat() if s.repair_after else None,
                            "current": s.delisted_at is None}
    if producer is not None:
        from geodata.admin import get_registry

        unit = get_registry().get(producer.adcode)
        data["producer"] = {"id": producer.id, "name": producer.name, "uscc": producer.uscc,
                            "adcode": producer.adcode, "place_name": unit.name if unit else None}
    if history:
        data.update(delisted_at=s.delisted_at.isoformat() if s.delisted_at else None,
                    delisted_by=s.delisted_by_id, delist_reason=s.delist_reason)
    return data


