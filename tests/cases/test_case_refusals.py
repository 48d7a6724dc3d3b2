"""Every way a case request is refused: wrong role, outside jurisdiction, evidence elsewhere or twice, illegal
transitions, missing reason or measure, referrals that are not needed or have nowhere to go — each with its
status and stable code, and nothing written."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from gi_service.models import Case, CaseEvent, CaseEvidence, Clue, ClueStatus, CreditEntry, Finding

from .conftest import API, QIAOCHENG, count, fresh


def _nothing_written(session, cases: int = 0) -> None:
    assert count(session, Case) == cases
    assert count(session, CaseEvidence) == (0 if cases == 0 else count(session, CaseEvidence))


# --- opening ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("who, status, code", [
    ("producer", 403, "wrong_role"), ("printer", 403, "wrong_role"), (None, 401, "unauthenticated")])
def test_only_supervisors_open_cases(story, client, session, who, status, code):
    """Are producers, printers and anonymous callers refused opening a case (and listing cases)?"""
    fid = story.finding()
    headers = getattr(story, who).headers if who else {}
    r = client.post(f"{API}/cases", headers=headers, json={"title": "x case", "reason": "because",
                                                           "finding_ids": [fid]})
    assert (r.status_code, r.json["error"]) == (status, code)
    r = client.get(f"{API}/cases", headers=headers)
    assert (r.status_code, r.json["error"]) == (status, code)
    _nothing_written(session)
    assert session.get(Finding, fid).case_id is None


def test_evidence_outside_jurisdiction_is_refused(story, client, session):
    """Can Shanghai's inspection unit open a case from a Guangzhou finding or a clue routed to Guangzhou and
    Bozhou? (No: 403 outside_jurisdiction, and the clue stays open.)"""
    fid = story.finding()
    clue_id = story.clue()
    for evidence in ({"finding_ids": [fid]}, {"clue_ids": [clue_id]}):
        r = client.post(f"{API}/cases", headers=story.shanghai.headers,
                        json={"title": "not mine", "reason": "curious", **evidence})
        assert (r.status_code, r.json["error"]) == (403, "outside_jurisdiction"), r.json
    _nothing_written(session)
    assert session.get(Clue, clue_id).status == ClueStatus.open


@pytest.mark.parametrize("body, field", [
    ({"title": "no reason", "finding_ids": [1]}, "reason"),
    ({"reason": "no title", "finding_ids": [1]}, "title"),
    ({"title": "bad reason", "reason": "", "finding_ids": [1]}, "reason"),
    ({"title": "extra", "reason": "extra field", "finding_ids": [1], "owner": 3}, "owner"),
])
def test_open_needs_title_and_reason(story, client, session, body, field):
    """Is a body without a title or a reason (or with an unknown field) refused 422, naming the field?"""
    story.finding()
    r = client.post(f"{API}/cases", headers=story.gz.headers, json=body)
    assert r.status_code == 422 and r.json["error"] == "validation_failed"
    assert r.json["details"][0]["field"] == field
    _nothing_written(session)


def test_open_needs_evidence_that_exists(story, client, session):
    """Is a case with no evidence refused 422 no_evidence, and one with an unknown finding or clue 404?"""
    r = client.post(f"{API}/cases", headers=story.gz.headers, json={"title": "empty", "reason": "hunch"})
    assert (r.status_code, r.json["error"]) == (422, "no_evidence")
    r = client.post(f"{API}/cases", headers=story.gz.headers,
                    json={"title": "ghost", "reason": "hunch", "finding_ids": [999]})
    assert (r.status_code, r.json["error"]) == (404, "finding_not_found")
    r = client.post(f"{API}/cases", headers=story.gz.headers,
                    json={"title": "ghost", "reason": "hunch", "clue_ids": [999]})
    assert (r.status_code, r.json["error"]) == (404, "clue_not_found")
    _nothing_written(session)


def test_dismissed_clue_must_be_reopened_first(story, client, session):
    """Is a dismissed clue refused (409 clue_dismissed) rather than silently revived?"""
    clue_id = story.clue(status=ClueStatus.dismissed)
    r = client.post(f"{API}/cases", headers=story.gz.headers,
                    json={"title": "revive", "reason": "second look", "clue_ids": [clue_id]})
    assert (r.status_code, r.json["error"]) == (409, "clue_dismissed")
    _nothing_written(session)
    assert session.get(Clue, clue_id).status == ClueStatus.dismissed


def test_evidence_naming_two_producers_asks_to_choose(story, client, session):
    """Does evidence about two producers answer 422 ambiguous_producer listing both, and open the case for the
    one chosen with producer_id?"""
    other = story.factory.producer("341602", name="另一家亳州企业")
    f1 = story.finding()
    f2 = story.finding(producer=other.org.id)
    r = client.post(f"{API}/cases", headers=story.gz.headers,
                    json={"title": "two", "reason": "two producers", "finding_ids": [f1, f2]})
    assert (r.status_code, r.json["error"]) == (422, "ambiguous_producer")
    assert {c["id"] for c in r.json["details"]["candidates"]} == {story.producer.org.id, other.org.id}
    _nothing_written(session)
    case = story.open(story.gz, finding_ids=[f1, f2], producer_id=other.org.id)
    assert case["producer"]["id"] == other.org.id


def test_evidence_in_another_open_case_needs_an_explicit_join(story, client, session):
    """Is a finding already in an open case refused for a second case (409 naming that case) unless
    join_other_cases is set, and is adding it twice to the same case refused (409 already_evidence)?"""
    fid = story.finding()
    first = story.open(story.gz, finding_ids=[fid])
    r = client.post(f"{API}/cases", headers=story.gz.headers,
                    json={"title": "again", "reason": "same finding", "finding_ids": [fid]})
    assert (r.status_code, r.json["error"]) == (409, "evidence_in_open_case")
    assert r.json["details"] == [{"clue_id": None, "finding_id": fid, "case_id": first["id"],
                                  "case_number": first["number"]}]
    assert count(session, Case) == 1

    r = client.post(f"{API}/cases/{first['id']}/evidence", headers=story.gz.headers,
                    json={"reason": "twice", "finding_ids": [fid]})
    assert (r.status_code, r.json["error"]) == (409, "already_evidence")
    assert count(session, CaseEvidence) == 1

    joined = story.open(story.gz, finding_ids=[fid], join_other_cases=True)
    assert joined["number"].endswith("-0002")
    # The finding still points at the case that handles it first.
    fresh(session)
    assert session.get(Finding, fid).case_id == first["id"]


def test_evidence_of_a_concluded_case_may_open_a_new_one(story, client, session):
    """May a finding whose case was concluded be used again (e.g. a new investigation) without joining?"""
    fid = story.finding()
    first = story.open(story.gz, finding_ids=[fid])
    story.step(story.gz, first["id"], "investigate")
    story.step(story.gz, first["id"], "conclude", outcome="no_violation")
    second = story.open(story.gz, finding_ids=[fid])
    fresh(session)
    assert session.get(Finding, fid).case_id == second["id"]


def test_adding_evidence_about_another_producer_is_refused(story, client, session):
    """Is new evidence naming another producer than the case's refused (422 other_producer)?"""
    other = story.factory.producer("341602")
    case = story.open(story.gz, finding_ids=[story.finding()])
    r = client.post(f"{API}/cases/{case['id']}/evidence", headers=story.gz.headers,
                    json={"reason": "more", "finding_ids": [story.finding(producer=other.org.id)]})
    assert (r.status_code, r.json["error"]) == (422, "other_producer")
    assert count(session, CaseEvidence) == 1


# --- the workflow ----------------------------------------------------------------------------------

def test_illegal_transitions_name_the_allowed_ones(story, client, session):
    """Is concluding an open case, or touching a concluded one, refused 409 invalid_transition naming the
    allowed next statuses, with no event written?"""
    case = story.open(story.gz, finding_ids=[story.finding()])
    r = client.post(f"{API}/cases/{case['id']}/conclude", headers=story.gz.headers,
                    json={"outcome": "no_violation", "reason": "too quick"})
    assert (r.status_code, r.json["error"]) == (409, "invalid_transition")
    assert r.json["details"]["allowed"] == ["investigating", "referred"]
    story.step(story.gz, case["id"], "investigate")
    r = client.post(f"{API}/cases/{case['id']}/investigate", headers=story.gz.headers, json={"reason": "again"})
    assert (r.status_code, r.json["error"]) == (409, "invalid_transition")
    assert r.json["details"]["allowed"] == ["referred", "concluded"]
    story.step(story.gz, case["id"], "conclude", outcome="no_violation", reason="genuine after all")
    events = count(session, CaseEvent)
    for action, body in (("investigate", {}), ("refer", {}), ("conclude", {"outcome": "no_violation"})):
        r = client.post(f"{API}/cases/{case['id']}/{action}", headers=story.gz.headers,
                        json={"reason": "after the end", **body})
        assert (r.status_code, r.json["error"]) == (409, "invalid_transition"), action
        assert r.json["details"]["allowed"] == []
    r = client.post(f"{API}/cases/{case['id']}/evidence", headers=story.gz.headers,
                    json={"reason": "late", "finding_ids": [story.finding()]})
    assert (r.status_code, r.json["error"]) == (409, "case_concluded")
    assert count(session, CaseEvent) == events


def test_every_step_needs_a_reason_and_a_confirmed_violation_its_measure(story, client, session):
    """Are a transition without a reason (422), a confirmed violation without the measure (422
    measure_required) or without any violation kind (422 violations_required) refused, leaving the case as
    it was?"""
    case = story.open(story.gz, finding_ids=[story.finding(violations=[])])
    r = client.post(f"{API}/cases/{case['id']}/investigate", headers=story.gz.headers, json={})
    assert r.status_code == 422 and r.json["details"][0]["field"] == "reason"
    story.step(story.gz, case["id"], "investigate")
    r = client.post(f"{API}/cases/{case['id']}/conclude", headers=story.gz.headers,
                    json={"outcome": "violation_confirmed", "reason": "guilty"})
    assert (r.status_code, r.json["error"]) == (422, "measure_required")
    r = client.post(f"{API}/cases/{case['id']}/conclude", headers=story.gz.headers,
                    json={"outcome": "violation_confirmed", "reason": "guilty", "measure": "   "})
    assert (r.status_code, r.json["error"]) == (422, "measure_required")
    r = client.post(f"{API}/cases/{case['id']}/conclude", headers=story.gz.headers,
                    json={"outcome": "violation_confirmed", "reason": "guilty", "measure": "罚款"})
    assert (r.status_code, r.json["error"]) == (422, "violations_required")
    r = client.post(f"{API}/cases/{case['id']}/conclude", headers=story.gz.headers,
                    json={"outcome": "violation_confirmed", "reason": "guilty", "measure": "罚款",
                          "violations": ["made_up_kind"]})
    assert r.status_code == 422 and r.json["details"][0]["field"].startswith("violations")
    fresh(session)
    assert session.get(Case, case["id"]).status.value == "investigating"
    assert count(session, CreditEntry) == 0


def test_only_the_owner_changes_a_case(story, client, session):
    """May a supervisor above the owner, or an unrelated unit, change it? (403 not_case_owner / not_your_case.)"""
    case = story.open(story.gz, finding_ids=[story.finding()])
    r = client.post(f"{API}/cases/{case['id']}/investigate", headers=story.guangdong.headers,
                    json={"reason": "I am above"})
    assert (r.status_code, r.json["error"]) == (403, "not_case_owner")
    r = client.post(f"{API}/cases/{case['id']}/investigate", headers=story.shanghai.headers,
                    json={"reason": "I am elsewhere"})
    assert (r.status_code, r.json["error"]) == (403, "not_your_case")
    assert count(session, CaseEvent) == 1


def test_who_sees_a_case(story, client, session):
    """Do the owner and supervisors covering it read a case, while an unrelated unit, the producer and the
    anonymous public are refused (403 not_your_case / wrong_role, 401), and does a missing case answer 404?"""
    case = story.open(story.gz, finding_ids=[story.finding()])
    assert client.get(f"{API}/cases/{case['id']}", headers=story.gz.headers).json["your_roles"] == \
        ["owner", "opened"]
    assert client.get(f"{API}/cases/{case['id']}", headers=story.guangdong.headers).status_code == 200
    r = client.get(f"{API}/cases/{case['id']}", headers=story.shanghai.headers)
    assert (r.status_code, r.json["error"]) == (403, "not_your_case")
    r = client.get(f"{API}/cases/{case['id']}", headers=story.authority.headers)   # Bozhou, before referral
    assert (r.status_code, r.json["error"]) == (403, "not_your_case")
    r = client.get(f"{API}/cases/{case['id']}", headers=story.producer.headers)
    assert (r.status_code, r.json["error"]) == (403, "wrong_role")
    assert client.get(f"{API}/cases/{case['id']}").status_code == 401
    assert client.get(f"{API}/cases/9999", headers=story.gz.headers).json["error"] == "case_not_found"
    # Queues: Shanghai sees nothing anywhere; Guangdong sees it under "all" only.
    for queue in ("mine", "party", "all"):
        assert client.get(f"{API}/cases?queue={queue}", headers=story.shanghai.headers).json["total"] == 0
    assert client.get(f"{API}/cases?queue=mine", headers=story.guangdong.headers).json["total"] == 0
    assert client.get(f"{API}/cases?queue=all", headers=story.guangdong.headers).json["total"] == 1
    assert client.get(f"{API}/cases?adcode=440106", headers=story.gz.headers).json["total"] == 1
    assert client.get(f"{API}/cases?adcode=440103", headers=story.gz.headers).json["total"] == 0
    r = client.get(f"{API}/cases?adcode=999999", headers=story.gz.headers)
    assert (r.status_code, r.json["error"]) == (422, "unknown_adcode")
    r = client.get(f"{API}/cases?queue=everything", headers=story.gz.headers)
    assert r.status_code == 422
    r = client.get(f"{API}/cases?owner=1", headers=story.gz.headers)
    assert (r.status_code, r.json["error"]) == (400, "unknown_parameter")


# --- referral --------------------------------------------------------------------------------------

def test_referral_inside_the_jurisdiction_is_not_needed(story, client, session):
    """Is referring a case whose producer and issuing authority are in the owner's jurisdiction refused (422
    not_needed), and the case left with its owner?"""
    fid = story.finding(story.bozhou_inspection, place=QIAOCHENG, kind="production")
    case = story.open(story.bozhou_inspection, finding_ids=[fid])
    r = client.post(f"{API}/cases/{case['id']}/refer", headers=story.bozhou_inspection.headers,
                    json={"reason": "not mine?"})
    assert (r.status_code, r.json["error"]) == (422, "not_needed")
    fresh(session)
    stored = session.get(Case, case["id"])
    assert stored.owner_org_id == story.bozhou_inspection.org.id and stored.status.value == "open"


def test_referral_needs_a_producer_and_an_authority_at_its_place(story, client, session):
    """Is a case naming no producer refused referral (422 no_producer), and one whose producer's place has no
    authority registered refused (422 no_production_authority)?"""
    unnamed = story.open(story.gz, finding_ids=[story.finding(producer=0, gi=0)])
    r = client.post(f"{API}/cases/{unnamed['id']}/refer", headers=story.gz.headers, json={"reason": "where to?"})
    assert (r.status_code, r.json["error"]) == (422, "no_producer")
    hangzhou = story.factory.producer("330106")            # no authority covers Zhejiang
    case = story.open(story.gz, finding_ids=[story.finding(producer=hangzhou.org.id, gi=0)])
    r = client.post(f"{API}/cases/{case['id']}/refer", headers=story.gz.headers, json={"reason": "to Hangzhou"})
    assert (r.status_code, r.json["error"]) == (422, "no_production_authority")
    fresh(session)
    assert {c.owner_org_id for c in session.scalars(select(Case))} == {story.gz.org.id}


def test_wholesale_finding_makes_the_referrer_the_circulation_place(story, client, session):
    """Does a referrer whose finding was at a wholesale market stay a party as the circulation place?"""
    case = story.open(story.gz, finding_ids=[story.finding(kind="wholesale", name="江南果菜批发市场")])
    referred = story.step(story.gz, case["id"], "refer")
    assert {p["role"] for p in referred["parties"] if p["organisation"]["id"] == story.gz.org.id} == \
        {"opened", "circulation_place"}
    # The receiving authority cannot refer it on: the producer is in its own jurisdiction.
    r = client.post(f"{API}/cases/{case['id']}/refer", headers=story.authority.headers, json={"reason": "again"})
    assert (r.status_code, r.json["error"]) == (409, "invalid_transition")
    story.step(story.authority, case["id"], "investigate")
    r = client.post(f"{API}/cases/{case['id']}/refer", headers=story.authority.headers, json={"reason": "again"})
    assert (r.status_code, r.json["error"]) == (422, "not_needed")
    # The referrer, now a party, may not add evidence.
    r = client.post(f"{API}/cases/{case['id']}/evidence", headers=story.gz.headers,
                    json={"reason": "more", "finding_ids": [story.finding()]})
    assert (r.status_code, r.json["error"]) == (403, "not_case_owner")
