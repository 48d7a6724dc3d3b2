"""Cases: investigations opened from clues and findings, linked across production, circulation and sales places.

A case is opened by an authority or inspection unit from one or more clues (copied-label alerts,
consumer reports) and findings it can see. Its GI, producer, place and suspected violations are
derived from that evidence (evidence naming two producers is refused until the opener chooses one).
Workflow::

    open ──► investigating ──► concluded (violation_confirmed with the measure taken | no_violation)
      │            │  ▲             ▲
      └──► referred ◄──┘────────────┘

Every step is a ``CaseEvent`` with who (user and organisation) and why. Only the owner — the
organisation whose queue the case is in — changes it.

**Linked enforcement** (生产地、流通地、销售地联动查处): when the producer's registered place, or the
jurisdiction of the authority that issued its marks (the GI's authority), lies outside the owner's
jurisdiction, the owner refers the case to the production place's authority: the authority
organisation whose jurisdiction is the deepest one covering the producer's place. It becomes the
owner; the evidence stays attached, so it travels with the case; the referring organisation stays a
party as the sales place (its findings were at retail or e-commerce premises, or it had only
consumers' clues) or the circulation place (wholesale premises), and the issuing authority becomes
a party too. Parties see the case and its outcome, read-only. A referral that would not leave the
owner's jurisdiction is refused (``not_needed``): the owner handles the case itself.

Who sees a case: its owner, its parties, and authorities and inspection units whose jurisdiction
covers the owner's or a party's place (supervisors above them, or beside them in the same place).

Concluding ``violation_confirmed`` against a producer applies the credit rules (services/credit.py)
in the same transaction.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Iterable

from sqlalchemy import exists, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from geodata.admin import get_registry

from .. import clock
from ..db import get_by_id, where_given
from ..errors import Conflict, Forbidden, GIError, InvalidTransition, NotFound, ValidationFailed
from ..models import (Case, CaseEvent, CaseEvidence, CaseOutcome, CaseParty, CasePartyRole, CaseStatus, Clue,
                      ClueStatus, Finding, GIProduct, OrgKind, Organisation, PremisesKind, ViolationKind)
from . import clues as clue_service
from . import credit
from .accounts import Principal
from .jurisdiction import division_codes, jurisdiction_codes

SUPERVISORS = (OrgKind.authority, OrgKind.inspection)
S = CaseStatus
TRANSITIONS: dict[CaseStatus, tuple[CaseStatus, ...]] = {
    S.open: (S.investigating, S.referred),
    S.investigating: (S.referred, S.concluded),
    S.referred: (S.investigating, S.concluded),
    S.concluded: (),
}
ACTIVE = (S.open, S.investigating, S.referred)
# The place role the referring organisation keeps, by the premises its findings were made at.
PREMISES_ROLE = {
    PremisesKind.retail: CasePartyRole.sales_place,
    PremisesKind.e_commerce: CasePartyRole.sales_place,
    PremisesKind.wholesale: CasePartyRole.circulation_place,
}
MAX_EVIDENCE = 100
VIOLATION_ORDER = [v.value for v in ViolationKind]


class Unprocessable(GIError):
    status = 422
    code = "unprocessable"


# --- helpers --------------------------------------------------------------------------------------

def _require_supervisor(by: Principal) -> None:
    if by.org_kind not in SUPERVISORS:
        raise Forbidden("cases are for authorities and inspection units", code="wrong_role")


def _within(adcode: str | None, root: str) -> bool:
    return adcode is not None and get_registry().is_within(adcode, root)


def _orgs(session: Session, ids: Iterable[int]) -> dict[int, Organisation]:
    ids = {i for i in ids if i is not None}
    if not ids:
        return {}
    return {o.id: o for o in session.scalars(select(Organisation).where(Organisation.id.in_(ids)))}


def _sorted_violations(values: Iterable[str]) -> list[str]:
    return sorted(set(values), key=lambda v: VIOLATION_ORDER.index(v) if v in VIOLATION_ORDER else 99)


def _event(session: Session, case: Case, by: Principal | None, action: str, *, reason: str | None = None,
           from_status: CaseStatus | None = None, to_status: CaseStatus | None = None,
           data: dict[str, Any] | None = None, at: dt.datetime | None = None) -> CaseEvent:
    event = CaseEvent(case_id=case.id, at=at or clock.now(), by_id=by.user_id if by else None,
                      by_org_id=by.organisation_id if by else None, action=action,
                      from_status=from_status.value if from_status else None,
                      to_status=to_status.value if to_status else None, reason=reason, data=data or {})
    session.add(event)
    case.events.append(event)
    return event


def _check_transition(case: Case, to: CaseStatus) -> None:
    allowed = TRANSITIONS[case.status]
    if to not in allowed:
        names = [s.value for s in allowed]
        raise InvalidTransition(
            f"case {case.number} is {case.status.value}; it cannot become {to.value} "
            f"(allowed: {', '.join(names) if names else 'none, the case is closed'})",
            details={"from": case.status.value, "to": to.value, "allowed": names})


def _add_party(case: Case, org_id: int, role: CasePartyRole) -> bool:
    if any(p.organisation_id == org_id and p.role == role for p in case.parties):
        return False
    case.parties.append(CaseParty(organisation_id=org_id, role=role))
    return True


# --- visibility -----------------------------------------------------------------------------------

def can_see(session: Session, by: Principal, case: Case) -> bool:
    org_ids = {case.owner_org_id} | {p.organisation_id for p in case.parties}
    if by.organisation_id in org_ids:
        return True
    if by.org_kind not in SUPERVISORS:
        return False
    return any(by.covers(o.adcode) for o in _orgs(session, org_ids).values())


def roles_of(by: Principal, case: Case, session: Session) -> list[str]:
    roles = ["owner"] if case.owner_org_id == by.organisation_id else []
    roles += sorted({p.role.value for p in case.parties if p.organisation_id == by.organisation_id})
    if not roles and can_see(session, by, case):
        roles = ["supervisor"]
    return roles


def get_case(session: Session, case_id: int, by: Principal, *, lock: bool = False) -> Case:
    _require_supervisor(by)
    case = get_by_id(session, Case, case_id, what="case", code="case_not_found", lock=lock,
                     options=(selectinload(Case.parties), selectinload(Case.evidence), selectinload(Case.events)))
    if not can_see(session, by, case):
        raise Forbidden(f"case {case_id} is neither in your queue nor are you a party to it or above one",
                        code="not_your_case")
    return case


def _owned_case(session: Session, case_id: int, by: Principal, action: str) -> Case:
    case = get_case(session, case_id, by, lock=True)
    if case.owner_org_id != by.organisation_id:
        owner = session.get(Organisation, case.owner_org_id)
        raise Forbidden(f"case {case.number} is in the queue of {owner.name}; only its owner may {action} "
                        "(parties and supervisors read it)", code="not_case_owner",
                        details={"owner_org_id": owner.id})
    return case


# --- evidence -------------------------------------------------------------------------------------

@dataclass
class Evidence:
    clues: list[Clue]
    findings: list[Finding]

    def producer_ids(self) -> list[int]:
        ids: list[int] = []
        for c in self.clues:
            if c.producer_id:
                ids.append(c.producer_id)
        for f in self.findings:
            if f.producer_id:
                ids.append(f.producer_id)
            else:
                ids += [code.producer_id for code in f.codes if code.producer_id]
        return list(dict.fromkeys(ids))

    def gi_ids(self) -> list[int]:
        return list(dict.fromkeys([x.gi_id for x in (*self.clues, *self.findings) if x.gi_id]))

    def violations(self) -> list[str]:
        return _sorted_violations(v for f in self.findings for v in (f.violations or []))


def _load_evidence(session: Session, by: Principal, clue_ids: list[int], finding_ids: list[int]) -> Evidence:
    clue_ids, finding_ids = list(dict.fromkeys(clue_ids)), list(dict.fromkeys(finding_ids))
    if not clue_ids and not finding_ids:
        raise ValidationFailed("give at least one clue or finding (clue_ids, finding_ids)", code="no_evidence",
                               details=[{"field": "clue_ids", "problem": "empty"},
                                        {"field": "finding_ids", "problem": "empty"}])
    if len(clue_ids) + len(finding_ids) > MAX_EVIDENCE:
        raise ValidationFailed(f"at most {MAX_EVIDENCE} pieces of evidence at once", code="too_much_evidence")
    clues = [clue_service.get_clue(session, cid, by, lock=True) for cid in sorted(clue_ids)]
    for clue in clues:
        if clue.status == ClueStatus.dismissed:
            raise Conflict(f"clue {clue.id} was dismissed ({clue.status_reason}); reopen it first "
                           f"(POST /api/v1/clues/{clue.id}/status)", code="clue_dismissed",
                           details={"clue_id": clue.id})
    findings = []
    for fid in sorted(finding_ids):
        finding = session.scalar(select(Finding).where(Finding.id == fid).options(selectinload(Finding.codes))
                                 .with_for_update(of=Finding))
        if finding is None:
            raise NotFound(f"finding {fid} does not exist", code="finding_not_found")
        if finding.organisation_id != by.organisation_id and not by.covers(finding.adcode):
            raise Forbidden(f"finding {fid} was made outside your jurisdiction ({by.adcode}) by another unit",
                            code="outside_jurisdiction")
        findings.append(finding)
    return Evidence(clues, findings)


def _check_not_elsewhere(session: Session, ev: Evidence, *, case_id: int | None, join: bool) -> None:
    """Refuse evidence already in another active case unless the caller explicitly joins it to this one too."""
    clue_ids = [c.id for c in ev.clues]
    finding_ids = [f.id for f in ev.findings]
    conds = []
    if clue_ids:
        conds.append(CaseEvidence.clue_id.in_(clue_ids))
    if finding_ids:
        conds.append(CaseEvidence.finding_id.in_(finding_ids))
    rows = session.execute(select(CaseEvidence.clue_id, CaseEvidence.finding_id, Case.id, Case.number, Case.status)
                           .join(Case, Case.id == CaseEvidence.case_id).where(or_(*conds))
                           .order_by(Case.id)).all()
    same = [r for r in rows if r.id == case_id]
    if same:
        r = same[0]
        what = f"clue {r.clue_id}" if r.clue_id else f"finding {r.finding_id}"
        raise Conflict(f"{what} is already evidence in this case", code="already_evidence",
                       details={"clue_id": r.clue_id, "finding_id": r.finding_id})
    active = [r for r in rows if r.status in ACTIVE]
    if active and not join:
        raise Conflict("evidence already in another open case: " + "; ".join(
            f"{'clue ' + str(r.clue_id) if r.clue_id else 'finding ' + str(r.finding_id)} in case {r.number}"
            for r in active) + ". Add to that case, or set join_other_cases: true to use it in this case too",
            code="evidence_in_open_case",
            details=[{"clue_id": r.clue_id, "finding_id": r.finding_id, "case_id": r.id, "case_number": r.number}
                     for r in active])


def _choose(kind: str, candidates: list[int], chosen: int | None, names: dict[int, str]) -> int | None:
    if chosen is not None:
        return chosen
    if len(candidates) > 1:
        listed = ", ".join(f"{c} ({names.get(c, '?')})" for c in candidates)
        raise Unprocessable(f"the evidence points to {len(candidates)} {kind}s: {listed}; choose one with "
                            f"{kind}_id (open separate cases for the others)", code=f"ambiguous_{kind}",
                            details={"candidates": [{"id": c, "name": names.get(c)} for c in candidates]})
    return candidates[0] if candidates else None


def _attach(session: Session, case: Case, ev: Evidence, by: Principal, *, note: str | None, now: dt.datetime,
            why: str) -> None:
    for clue in ev.clues:
        case.evidence.append(CaseEvidence(clue_id=clue.id, added_by_id=by.user_id, added_at=now, note=note))
        clue.status = ClueStatus.referred
        clue.status_reason = f"taken into case {case.number}: {why}"[:1000]
        clue.status_by_id, clue.status_at = by.user_id, now
    active_ids = set()
    held = [f.case_id for f in ev.findings if f.case_id]
    if held:
        active_ids = set(session.scalars(select(Case.id).where(Case.id.in_(held), Case.status.in_(ACTIVE))))
    for finding in ev.findings:
        case.evidence.append(CaseEvidence(finding_id=finding.id, added_by_id=by.user_id, added_at=now, note=note))
        # A finding points at the case that handles it; one joined from an open case keeps pointing there.
        if finding.case_id is None or finding.case_id not in active_ids:
            finding.case_id = case.id


def _evidence_summary(ev: Evidence) -> dict[str, Any]:
    return {"clue_ids": [c.id for c in ev.clues], "finding_ids": [f.id for f in ev.findings]}


# --- opening --------------------------------------------------------------------------------------

def _next_number(session: Session, adcode: str, year: int) -> str:
    prefix = f"{adcode}-{year}-"
    numbers = session.scalars(select(Case.number).where(Case.number.like(prefix + "%"))).all()
    seqs = [int(n[len(prefix):]) for n in numbers if n[len(prefix):].isdigit()]
    return f"{prefix}{(max(seqs) + 1) if seqs else 1:04d}"


def open_case(session: Session, by: Principal, *, title: str, reason: str, clue_ids: list[int],
              finding_ids: list[int], producer_id: int | None = None, gi_id: int | None = None,
              join_other_cases: bool = False, note: str | None = None) -> Case:
    """Open a case from clues and findings the caller can see; it goes into the caller's queue."""
    _require_supervisor(by)
    ev = _load_evidence(session, by, clue_ids, finding_ids)
    _check_not_elsewhere(session, ev, case_id=None, join=join_other_cases)
    producer_names = {o.id: o.name for o in _orgs(session, ev.producer_ids()).values()}
    producer_id = _choose("producer", ev.producer_ids(), producer_id, producer_names)
    if producer_id is not None:
        producer = session.get(Organisation, producer_id)
        if producer is None or producer.kind != OrgKind.producer:
            raise NotFound(f"producer {producer_id} does not exist", code="producer_not_found")
    gi_names = dict(session.execute(select(GIProduct.id, GIProduct.name_zh)
                                    .where(GIProduct.id.in_(ev.gi_ids()))).all()) if ev.gi_ids() else {}
    gi_id = _choose("gi", ev.gi_ids(), gi_id, gi_names)
    if gi_id is not None and session.get(GIProduct, gi_id) is None:
        raise NotFound(f"GI {gi_id} does not exist", code="gi_not_found")
    found_at = next((f.adcode for f in ev.findings if f.adcode), None) or \
        next((c.adcode for c in ev.clues if c.adcode), None) or by.adcode
    now = clock.now()
    year = clock.china_year(now)
    case = None
    for _attempt in range(5):
        number = _next_number(session, by.adcode, year)
        case = Case(number=number, title=title, status=S.open, violations=ev.violations(), serious=False,
                    owner_org_id=by.organisation_id, opened_by_org_id=by.organisation_id, opened_by_id=by.user_id,
                    opened_at=now, updated_at=now, gi_id=gi_id, producer_id=producer_id, adcode=found_at)
        try:
            with session.begin_nested():
                session.add(case)
                session.flush()
            break
        except IntegrityError:  # a concurrent opening took the number: take the next one
            case = None
    if case is None:
        raise Conflict("could not assign a case number; try again", code="case_number_busy")
    _add_party(case, by.organisation_id, CasePartyRole.opened)
    _attach(session, case, ev, by, note=note, now=now, why=reason)
    _event(session, case, by, "opened", reason=reason, to_status=S.open, at=now,
           data={**_evidence_summary(ev), "producer_id": producer_id, "gi_id": gi_id, "adcode": found_at,
                 "violations": case.violations, "joined_other_cases": join_other_cases})
    session.flush()
    return case


def add_evidence(session: Session, case_id: int, by: Principal, *, clue_ids: list[int], finding_ids: list[int],
                 reason: str, note: str | None = None, join_other_cases: bool = False) -> Case:
    """Attach more clues or findings to a case in the caller's queue that is not concluded."""
    case = _owned_case(session, case_id, by, "add evidence")
    if case.status == S.concluded:
        raise Conflict(f"case {case.number} is concluded; open a new case for new evidence", code="case_concluded")
    ev = _load_evidence(session, by, clue_ids, finding_ids)
    _check_not_elsewhere(session, ev, case_id=case.id, join=join_other_cases)
    others = [p for p in ev.producer_ids() if p != case.producer_id]
    if case.producer_id is not None and others:
        names = {o.id: o.name for o in _orgs(session, others).values()}
        listed = ", ".join(f"{p} ({names.get(p)})" for p in others)
        raise Unprocessable(f"the new evidence points to another producer ({listed}) than the case's "
                            f"({case.producer_id}); open a separate case for it",
                            code="other_producer", details={"producer_ids": others})
    if case.producer_id is None:
        case.producer_id = _choose("producer", others, None, {o.id: o.name for o in _orgs(session, others).values()})
    if case.gi_id is None:
        gis = ev.gi_ids()
        case.gi_id = _choose("gi", gis, None, {})
    now = clock.now()
    _attach(session, case, ev, by, note=note, now=now, why=reason)
    case.violations = _sorted_violations([*(case.violations or []), *ev.violations()])
    case.updated_at = now
    _event(session, case, by, "evidence_added", reason=reason, at=now,
           data={**_evidence_summary(ev), "violations": case.violations, "producer_id": case.producer_id,
                 "joined_other_cases": join_other_cases})
    session.flush()
    return case


# --- workflow -------------------------------------------------------------------------------------

def start_investigation(session: Session, case_id: int, by: Principal, *, reason: str) -> Case:
    case = _owned_case(session, case_id, by, "change it")
    _check_transition(case, S.investigating)
    now = clock.now()
    _event(session, case, by, "status_changed", reason=reason, from_status=case.status, to_status=S.investigating,
           at=now)
    case.status, case.updated_at = S.investigating, now
    session.flush()
    return case


def production_authority(session: Session, adcode: str) -> Organisation | None:
    """The authority whose jurisdiction is the deepest one covering `adcode` (lowest id among equals)."""
    registry = get_registry()
    best: tuple[int, int, Organisation] | None = None
    for org in session.scalars(select(Organisation).where(Organisation.kind == OrgKind.authority,
                                                          Organisation.is_active.is_(True))
                               .order_by(Organisation.id)):
        if not _within(adcode, org.adcode):
            continue
        depth = len(registry.ancestors(org.adcode)) if registry.get(org.adcode) else 0
        if best is None or depth > best[0]:
            best = (depth, org.id, org)
    return best[2] if best else None


def refer_case(session: Session, case_id: int, by: Principal, *, reason: str) -> Case:
    """Hand the case to the production place's authority (see the module docstring)."""
    case = _owned_case(session, case_id, by, "refer it")
    _check_transition(case, S.referred)
    if case.producer_id is None:
        raise Unprocessable(f"case {case.number} names no producer; a case is referred to the producer's place, "
                            "so add evidence naming the producer first", code="no_producer")
    owner = session.get(Organisation, case.owner_org_id)
    producer = session.get(Organisation, case.producer_id)
    gi = session.get(GIProduct, case.gi_id) if case.gi_id else None
    issuer = session.get(Organisation, gi.authority_id) if gi is not None else None
    producer_outside = not _within(producer.adcode, owner.adcode)
    issuer_outside = issuer is not None and not _within(issuer.adcode, owner.adcode)
    if not (producer_outside or issuer_outside):
        raise Unprocessable(f"the producer ({producer.adcode}) and the authority that issued its marks are inside "
                            f"your jurisdiction ({owner.adcode}); handle the case yourself", code="not_needed")
    target = production_authority(session, producer.adcode)
    if target is None:
        raise Unprocessable(f"no authority is registered for the producer's place ({producer.adcode}); "
                            "register one first", code="no_production_authority")
    if target.id == owner.id:
        raise Unprocessable(f"you are the production place's authority for {producer.adcode}; handle the case "
                            "yourself", code="not_needed")
    kinds = {f.premises_kind for f in session.scalars(
        select(Finding).join(CaseEvidence, CaseEvidence.finding_id == Finding.id)
        .where(CaseEvidence.case_id == case.id, Finding.organisation_id == owner.id))}
    roles = sorted({PREMISES_ROLE[k] for k in kinds if k in PREMISES_ROLE}, key=lambda r: r.value)
    if not roles and not kinds:
        roles = [CasePartyRole.sales_place]   # consumers' checks and reports happen where the product is sold
    for role in roles:
        _add_party(case, owner.id, role)
    _add_party(case, target.id, CasePartyRole.production_place)
    if issuer is not None:
        _add_party(case, issuer.id, CasePartyRole.issuing_authority)
    now = clock.now()
    _event(session, case, by, "referred", reason=reason, from_status=case.status, to_status=S.referred, at=now,
           data={"from_org_id": owner.id, "to_org_id": target.id, "to_org_name": target.name,
                 "producer_adcode": producer.adcode, "producer_outside": producer_outside,
                 "issuing_authority_id": issuer.id if issuer else None, "issuing_authority_outside": issuer_outside,
                 "referrer_roles": [r.value for r in roles]})
    case.status, case.owner_org_id, case.updated_at = S.referred, target.id, now
    session.flush()
    return case


def conclude_case(session: Session, case_id: int, by: Principal, *, outcome: CaseOutcome, reason: str,
                  rules: credit.CreditRules, measure: str | None = None, violations: list[str] | None = None,
                  producer_at_fault: bool = True) -> Case:
    """Close the case with its outcome; a confirmed violation by the producer goes to its credit record."""
    case = _owned_case(session, case_id, by, "conclude it")
    _check_transition(case, S.concluded)
    measure = (measure or "").strip() or None
    if outcome == CaseOutcome.violation_confirmed:
        if measure is None:
            raise ValidationFailed("a confirmed violation needs the measure taken (measure: fine, confiscation, "
                                   "order to stop, ...)", code="measure_required",
                                   details=[{"field": "measure", "problem": "required for violation_confirmed"}])
        confirmed = _sorted_violations(violations if violations is not None else (case.violations or []))
        if not confirmed:
            raise ValidationFailed("a confirmed violation needs its kinds (violations); the evidence named none",
                                   code="violations_required",
                                   details=[{"field": "violations", "problem": "required for violation_confirmed"}])
    else:
        confirmed = []
    now = clock.now()
    old = case.status
    case.status, case.outcome, case.measure = S.concluded, outcome, measure
    if outcome == CaseOutcome.violation_confirmed:
        case.violations = confirmed
    case.concluded_at, case.concluded_by_id, case.updated_at = now, by.user_id, now
    _event(session, case, by, "concluded", reason=reason, from_status=old, to_status=S.concluded, at=now,
           data={"outcome": outcome.value, "measure": measure, "violations": confirmed,
                 "producer_at_fault": producer_at_fault})
    if outcome == CaseOutcome.violation_confirmed:
        if case.producer_id is None or not producer_at_fault:
            why = "the case names no producer" if case.producer_id is None else "the producer was not at fault"
            _event(session, case, None, "credit_not_applied", reason=why, at=now)
        else:
            session.flush()
            summary = credit.record_violation(session, case, rules, violations=confirmed, now=now)
            _event(session, case, None, "credit_applied", at=now,
                   reason=("serious violation: " + ", ".join(summary["rules"])) if summary["serious"]
                   else "violation recorded (not serious under the credit rules)", data=summary)
    session.flush()
    return case


# --- queues ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class CaseFilter:
    queue: str = "mine"               # mine | party | all
    status: CaseStatus | None = None
    outcome: CaseOutcome | None = None
    gi_id: int | None = None
    producer_id: int | None = None
    serious: bool | None = None
    adcode: str | None = None         # found inside this division


def list_cases(session: Session, by: Principal, f: CaseFilter, *, limit: int, offset: int) -> tuple[list[Case], int]:
    """A queue: the caller's own cases, those it is a party to, or every case it may see."""
    _require_supervisor(by)
    me = by.organisation_id
    party = exists().where(CaseParty.case_id == Case.id, CaseParty.organisation_id == me)
    if f.queue == "mine":
        stmt = select(Case).where(Case.owner_org_id == me)
    elif f.queue == "party":
        stmt = select(Case).where(party, Case.owner_org_id != me)
    else:
        codes = jurisdiction_codes(by.adcode)
        if codes is None:
            stmt = select(Case)
        else:
            covered = select(Organisation.id).where(Organisation.adcode.in_(codes))
            stmt = select(Case).where(or_(
                Case.owner_org_id == me, party, Case.owner_org_id.in_(covered),
                exists().where(CaseParty.case_id == Case.id, CaseParty.organisation_id.in_(covered))))
    stmt = where_given(stmt, Case, status=f.status, outcome=f.outcome, gi_id=f.gi_id, producer_id=f.producer_id,
                       serious=f.serious)
    if f.adcode:
        codes = division_codes(f.adcode)
        if codes is not None:
            stmt = stmt.where(Case.adcode.in_(codes))
    total = session.scalar(select(func.count()).select_from(stmt.subquery()))
    rows = session.scalars(stmt.options(selectinload(Case.parties))
                           .order_by(Case.updated_at.desc(), Case.id.desc()).limit(limit).offset(offset)).all()
    return list(rows), int(total or 0)


# --- serialization --------------------------------------------------------------------------------

def _org_dict(o: Organisation | None) -> dict[str, Any] | None:
    if o is None:
        return None
    unit = get_registry().get(o.adcode)
    return {"id": o.id, "kind": o.kind.value, "name": o.name, "adcode": o.adcode,
            "place_name": unit.name if unit else None}


def serialize(session: Session, case: Case, by: Principal, *, full: bool = False) -> dict[str, Any]:
    org_ids = {case.owner_org_id, case.opened_by_org_id, case.producer_id} | {p.organisation_id for p in case.parties}
    if full:
        org_ids |= {e.by_org_id for e in case.events}
    orgs = _orgs(session, org_ids)
    gi = session.get(GIProduct, case.gi_id) if case.gi_id else None
    unit = get_registry().get(case.adcode)
    producer = orgs.get(case.producer_id) if case.producer_id else None
    mine = case.owner_org_id == by.organisation_id
    data: dict[str, Any] = {
        "id": case.id, "number": case.number, "title": case.title, "status": case.status.value,
        "outcome": case.outcome.value if case.outcome else None, "measure": case.measure,
        "violations": case.violations or [], "serious": case.serious,
        "owner": _org_dict(orgs.get(case.owner_org_id)), "opened_by_org": _org_dict(orgs.get(case.opened_by_org_id)),
        "opened_by": case.opened_by_id, "opened_at": case.opened_at.isoformat(),
        "updated_at": case.updated_at.isoformat(),
        "concluded_at": case.concluded_at.isoformat() if case.concluded_at else None,
        "concluded_by": case.concluded_by_id,
        "gi": {"id": gi.id, "name": gi.name_zh} if gi else None,
        "producer": ({"id": producer.id, "name": producer.name, "uscc": producer.uscc, "adcode": producer.adcode}
                     if producer else None),
        "adcode": case.adcode, "place_name": unit.name if unit else None,
        "your_roles": roles_of(by, case, session),
        "allowed_transitions": [s.value for s in TRANSITIONS[case.status]] if mine else [],
        "parties": [{"organisation": _org_dict(orgs.get(p.organisation_id)), "role": p.role.value}
                    for p in sorted(case.parties, key=lambda p: (p.role.value, p.organisation_id))],
        "links": {"self": f"/api/v1/cases/{case.id}"},
    }
    if not full:
        return data
    data["evidence"] = _evidence_dicts(session, case)
    data["events"] = [{"id": e.id, "at": e.at.isoformat(), "action": e.action, "by": e.by_id,
                       "by_org": _org_dict(orgs.get(e.by_org_id)) if e.by_org_id else None,
                       "from_status": e.from_status, "to_status": e.to_status, "reason": e.reason, "data": e.data}
                      for e in case.events]
    from ..models import CreditEntry

    data["credit"] = [credit.entry_dict(e, case_number=case.number) for e in session.scalars(
        select(CreditEntry).where(CreditEntry.case_id == case.id).order_by(CreditEntry.id))]
    return data


def _evidence_dicts(session: Session, case: Case) -> list[dict[str, Any]]:
    clue_ids = [e.clue_id for e in case.evidence if e.clue_id]
    finding_ids = [e.finding_id for e in case.evidence if e.finding_id]
    clues = {c.id: c for c in session.scalars(select(Clue).where(Clue.id.in_(clue_ids))
                                             .options(selectinload(Clue.places), selectinload(Clue.report)))} \
        if clue_ids else {}
    findings = {f.id: f for f in session.scalars(select(Finding).where(Finding.id.in_(finding_ids))
                                                .options(selectinload(Finding.codes),
                                                         selectinload(Finding.photos)))} if finding_ids else {}
    out = []
    for e in case.evidence:
        item: dict[str, Any] = {"id": e.id, "added_at": e.added_at.isoformat(), "added_by": e.added_by_id,
                                "note": e.note}
        if e.clue_id:
            clue = clues[e.clue_id]
            item.update(kind="clue", clue=clue_service.serialize(clue))
        else:
            f = findings[e.finding_id]
            item.update(kind="finding", finding={
                "id": f.id, "organisation_id": f.organisation_id, "observed_at": f.observed_at.isoformat(),
                "lat": f.lat, "lon": f.lon, "adcode": f.adcode, "premises_name": f.premises_name,
                "premises_kind": f.premises_kind.value, "premises_url": f.premises_url,
                "premises_address": f.premises_address, "gi_id": f.gi_id, "producer_id": f.producer_id,
                "violations": f.violations or [], "notes": f.notes,
                "codes": [{"code": c.code, "verdict": c.verdict, "detail": c.detail} for c in f.codes],
                "photos": [{"id": p.id, "sha256": p.sha256, "width": p.width, "height": p.height,
                            "taken_at": p.taken_at} for p in f.photos]})
        out.append(item)
    return out
