"""Cases: opened from clues and findings, investigated, referred to the production place, concluded."""
from __future__ import annotations

from typing import Literal, Optional

from flask import current_app
from pydantic import ConfigDict, Field

from ..db import get_session
from ..http.access import signed_in
from ..http.contract import endpoint
from ..http.schemas import Adcode, Id, Offset, Query, Reason, Strict
from ..models import CaseOutcome, CaseStatus, OrgKind, ViolationKind
from ..services import cases, credit
from . import bp

TAG = ["cases"]
ACCESS = signed_in(OrgKind.authority, OrgKind.inspection,
                   note="read: the owner, the parties and supervisors covering them; write: the owner only")
OWNER = signed_in(OrgKind.authority, OrgKind.inspection, note="the case's owner (the organisation whose queue it is "
                                                              "in)")
READ_ERRORS = {403: "not an authority or inspection unit, or not your case (not_your_case)", 404: "no such case"}
WRITE_ERRORS = {**READ_ERRORS, 403: "not an authority or inspection unit, or not the case's owner (not_case_owner)",
                409: "invalid_transition naming the allowed ones"}
EvidenceIds = Field(default_factory=list, max_length=cases.MAX_EVIDENCE)


class CaseOpenBody(Strict):
    # At least one clue or finding (no_evidence otherwise), stated in the schema too.
    model_config = ConfigDict(json_schema_extra={"anyOf": [
        {"required": ["clue_ids"], "properties": {"clue_ids": {"minItems": 1}}},
        {"required": ["finding_ids"], "properties": {"finding_ids": {"minItems": 1}}}]})
    title: str = Field(min_length=2, max_length=200)
    reason: Reason
    clue_ids: list[Id] = EvidenceIds
    finding_ids: list[Id] = EvidenceIds
    producer_id: Optional[Id] = Field(default=None, description="choose the producer when the evidence names "
                                                                 "several (or none)")
    gi_id: Optional[Id] = Field(default=None, description="choose the GI when the evidence names several (or none)")
    join_other_cases: bool = Field(default=False, description="use evidence that is already in another open case "
                                                              "in this one too")
    note: Optional[str] = Field(default=None, max_length=1000)


class EvidenceBody(Strict):
    model_config = ConfigDict(json_schema_extra={"anyOf": [
        {"required": ["clue_ids"], "properties": {"clue_ids": {"minItems": 1}}},
        {"required": ["finding_ids"], "properties": {"finding_ids": {"minItems": 1}}}]})
    reason: Reason
    clue_ids: list[Id] = EvidenceIds
    finding_ids: list[Id] = EvidenceIds
    join_other_cases: bool = False
    note: Optional[str] = Field(default=None, max_length=1000)


class CaseReasonBody(Strict):
    reason: Reason


class ConcludeBody(Strict):
    outcome: CaseOutcome
    reason: Reason
    measure: Optional[str] = Field(default=None, max_length=4000,
                                   description="the measure taken; required for violation_confirmed")
    violations: Optional[list[ViolationKind]] = Field(default=None, max_length=len(ViolationKind),
                                                      description="the confirmed kinds (default: the evidence's)")
    producer_at_fault: bool = Field(default=True, description="false when the producer was not the violator (e.g. "
                                                              "its labels were copied): no credit entry")


class CaseQuery(Query):
    queue: Literal["mine", "party", "all"] = Field(
        default="mine", description="mine: cases you own; party: cases you are a party to (read-only); all: every "
                                    "case you may see")
    status: Optional[CaseStatus] = None
    outcome: Optional[CaseOutcome] = None
    gi_id: Optional[Id] = None
    producer_id: Optional[Id] = None
    serious: Optional[bool] = None
    adcode: Optional[Adcode] = Field(default=None, description="found inside this division")
    limit: int = Field(default=50, ge=1, le=500)
    offset: Offset = 0


def _rules() -> credit.CreditRules:
    return current_app.extensions["gi_credit_rules"]


@endpoint(bp, "/cases", methods=["POST"], access=signed_in(OrgKind.authority, OrgKind.inspection,
                                                           note="evidence the caller can see"),
          body=CaseOpenBody, status=201, tags=TAG,
          responses={403: "wrong role, or evidence outside your jurisdiction", 404: "no such clue or finding",
                     409: "evidence already in another open case (evidence_in_open_case), or a dismissed clue",
                     422: "no evidence, or it names several producers or GIs (ambiguous_producer / ambiguous_gi)"},
          summary="Open a case from clues and findings; it goes into the caller's queue")
def open_case(principal, body: CaseOpenBody):
    session = get_session()
    case = cases.open_case(session, principal, title=body.title, reason=body.reason, clue_ids=body.clue_ids,
                           finding_ids=body.finding_ids, producer_id=body.producer_id, gi_id=body.gi_id,
                           join_other_cases=body.join_other_cases, note=body.note)
    session.commit()
    return cases.serialize(session, case, principal, full=True)


@endpoint(bp, "/cases", access=ACCESS, query=CaseQuery, tags=TAG,
          summary="A queue of cases: your own, those you are a party to, or all you may see; latest activity first")
def list_cases(principal, query: CaseQuery):
    session = get_session()
    f = cases.CaseFilter(queue=query.queue, status=query.status, outcome=query.outcome, gi_id=query.gi_id,
                         producer_id=query.producer_id, serious=query.serious, adcode=query.adcode)
    rows, total = cases.list_cases(session, principal, f, limit=query.limit, offset=query.offset)
    return {"items": [cases.serialize(session, c, principal) for c in rows], "total": total,
            "limit": query.limit, "offset": query.offset, "queue": query.queue}


@endpoint(bp, "/cases/<id:case_id>", access=ACCESS, tags=TAG, responses=READ_ERRORS,
          summary="One case with its evidence, parties, events and credit consequences")
def get_case(principal, case_id: int):
    session = get_session()
    return cases.serialize(session, cases.get_case(session, case_id, principal), principal, full=True)


@endpoint(bp, "/cases/<id:case_id>/evidence", methods=["POST"], access=OWNER, body=EvidenceBody, tags=TAG,
          responses={**WRITE_ERRORS, 409: "already evidence here, in another open case, or the case is concluded",
                     422: "the evidence names another producer"},
          summary="Add clues or findings to a case that is not concluded")
def add_evidence(principal, case_id: int, body: EvidenceBody):
    session = get_session()
    case = cases.add_evidence(session, case_id, principal, clue_ids=body.clue_ids, finding_ids=body.finding_ids,
                              reason=body.reason, note=body.note, join_other_cases=body.join_other_cases)
    session.commit()
    return cases.serialize(session, case, principal, full=True)


@endpoint(bp, "/cases/<id:case_id>/investigate", methods=["POST"], access=OWNER, body=CaseReasonBody, tags=TAG,
          responses=WRITE_ERRORS, summary="Start (or, after a referral, take up) the investigation")
def investigate_case(principal, case_id: int, body: CaseReasonBody):
    session = get_session()
    case = cases.start_investigation(session, case_id, principal, reason=body.reason)
    session.commit()
    return cases.serialize(session, case, principal, full=True)


@endpoint(bp, "/cases/<id:case_id>/refer", methods=["POST"], access=OWNER, body=CaseReasonBody, tags=TAG,
          responses={**WRITE_ERRORS, 422: "no producer, not needed (inside your jurisdiction), or no authority "
                                          "registered for the production place"},
          summary="Refer the case with its evidence to the production place's authority (linked enforcement)")
def refer_case(principal, case_id: int, body: CaseReasonBody):
    session = get_session()
    case = cases.refer_case(session, case_id, principal, reason=body.reason)
    session.commit()
    return cases.serialize(session, case, principal, full=True)


@endpoint(bp, "/cases/<id:case_id>/conclude", methods=["POST"], access=OWNER, body=ConcludeBody, tags=TAG,
          responses={**WRITE_ERRORS, 422: "violation_confirmed without the measure or the violations"},
          summary="Conclude: violation_confirmed (with the measure; the credit rules apply) or no_violation")
def conclude_case(principal, case_id: int, body: ConcludeBody):
    session = get_session()
    case = cases.conclude_case(session, case_id, principal, outcome=body.outcome, reason=body.reason,
                               rules=_rules(), measure=body.measure,
                               violations=[v.value for v in body.violations] if body.violations is not None else None,
                               producer_at_fault=body.producer_at_fault)
    session.commit()
    return cases.serialize(session, case, principal, full=True)
