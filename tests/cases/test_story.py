"""The linked-enforcement story end to end: a Guangzhou inspection finds forged 亳白芍 labels of a Bozhou
producer, opens a case, refers it to Bozhou, Bozhou confirms a serious violation, and the credit rules
list the producer, suspend its authorization and void its unactivated marks through the ledger.
"""
from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from gi_service.models import (Authorization, AuthorizationEvent, AuthorizationStatus, CreditEntry, LedgerEvent,
                               MarkRange, MarkState)
from gi_service.services import ledger

from .conftest import API, fresh


def test_guangzhou_finding_reaches_bozhou_and_suspends_the_producer(story, client, session):
    """Does a Guangzhou finding about a Bozhou producer become a case that is referred to Bozhou with its
    evidence, concluded there as a serious violation (listed, suspended, unactivated marks voided in a ledger
    that still verifies), answered 451 on the consumer page, and seen concluded in Guangzhou's party queue?"""
    s = story
    batch = s.batch(100)
    s.activate(batch, 1, 10)
    s.activate(batch, 21, 30)            # issued but unactivated: 11–20 and 31–100
    fid = s.finding(codes=[batch.code(3)], violations=["forged_or_copied_label"])
    clue_id = s.clue()

    # Guangzhou's queue of clues has the alert; it opens a case from it and its own finding.
    clues = client.get(f"{API}/clues", headers=s.gz.headers).json["items"]
    assert [c["id"] for c in clues] == [clue_id] and clues[0]["status"] == "open"
    case = s.open(s.gz, clue_ids=[clue_id], finding_ids=[fid])
    year = dt.datetime.now(dt.timezone(dt.timedelta(hours=8))).year
    assert case["number"] == f"440100-{year}-0001"
    assert case["status"] == "open" and case["owner"]["id"] == s.gz.org.id
    assert case["producer"]["id"] == s.producer.org.id and case["gi"]["id"] == s.gi.id
    assert case["adcode"] == "440106" and case["violations"] == ["forged_or_copied_label"]
    assert [(p["organisation"]["id"], p["role"]) for p in case["parties"]] == [(s.gz.org.id, "opened")]
    assert {e["kind"] for e in case["evidence"]} == {"clue", "finding"}
    assert case["allowed_transitions"] == ["investigating", "referred"]
    clue = client.get(f"{API}/clues/{clue_id}", headers=s.gz.headers).json
    assert clue["status"] == "referred" and case["number"] in clue["status_reason"]

    s.step(s.gz, case["id"], "investigate", reason="样品送检 / samples sent for testing")
    referred = s.step(s.gz, case["id"], "refer", reason="生产者在亳州 / the producer is in Bozhou")
    # The deepest authority covering 谯城区 is Bozhou's (341600), not Anhui's (340000).
    assert referred["status"] == "referred" and referred["owner"]["id"] == s.authority.org.id
    parties = {(p["organisation"]["id"], p["role"]) for p in referred["parties"]}
    assert parties == {(s.gz.org.id, "opened"), (s.gz.org.id, "sales_place"),
                       (s.authority.org.id, "production_place"), (s.authority.org.id, "issuing_authority")}
    assert referred["your_roles"] == ["opened", "sales_place"] and referred["allowed_transitions"] == []

    # Guangzhou no longer owns it: it reads it in its party queue and can no longer change it.
    assert client.get(f"{API}/cases", headers=s.gz.headers).json["total"] == 0
    party = client.get(f"{API}/cases?queue=party", headers=s.gz.headers).json
    assert [c["id"] for c in party["items"]] == [case["id"]]
    r = client.post(f"{API}/cases/{case['id']}/conclude", headers=s.gz.headers,
                    json={"outcome": "no_violation", "reason": "closing"})
    assert r.status_code == 403 and r.json["error"] == "not_case_owner"

    # Bozhou's queue has it, with the evidence that travelled with it.
    mine = client.get(f"{API}/cases?queue=mine", headers=s.authority.headers).json
    assert [c["id"] for c in mine["items"]] == [case["id"]]
    detail = client.get(f"{API}/cases/{case['id']}", headers=s.authority.headers).json
    finding = next(e["finding"] for e in detail["evidence"] if e["kind"] == "finding")
    assert finding["premises_kind"] == "retail" and finding["codes"][0]["code"] == batch.code(3)
    assert [e["action"] for e in detail["events"]] == ["opened", "status_changed", "referred"]
    referral = detail["events"][-1]
    assert referral["by_org"]["id"] == s.gz.org.id and referral["data"]["producer_outside"] is True

    s.step(s.authority, case["id"], "investigate", reason="立案调查 / investigation opened in Bozhou")
    done = s.step(s.authority, case["id"], "conclude", outcome="violation_confirmed",
                  measure="没收假冒标识 2,000 枚，罚款 5 万元", reason="生产者承认印制假冒标识")
    assert done["status"] == "concluded" and done["outcome"] == "violation_confirmed" and done["serious"] is True
    assert [e["action"] for e in done["events"]][-2:] == ["concluded", "credit_applied"]
    kinds = [e["kind"] for e in done["credit"]]
    assert kinds == ["serious_violation", "listed", "suspended", "marks_voided"]
    assert all(e["rule"] == "forged_labels" for e in done["credit"])
    voided_entry = done["credit"][-1]
    assert voided_entry["details"]["count"] == 80

    # The authorization is suspended by the service itself (no user), for the reason of the case.
    fresh(session)
    auth = session.scalar(select(Authorization).where(Authorization.producer_id == s.producer.org.id))
    assert auth.status == AuthorizationStatus.suspended
    event = session.scalars(select(AuthorizationEvent).where(AuthorizationEvent.authorization_id == auth.id)
                            .order_by(AuthorizationEvent.id.desc())).first()
    assert event.changed_by_id is None and case["number"] in event.reason

    # Issued but unactivated marks are voided through the ledger: one event per range, naming the case.
    voids = session.scalars(select(LedgerEvent).where(LedgerEvent.kind == "voided").order_by(LedgerEvent.seq)).all()
    assert [(e.ranges, e.count, e.actor_user_id) for e in voids] == [([[11, 20]], 10, None), ([[31, 100]], 70, None)]
    assert all(case["number"] in e.reason for e in voids)
    assert voided_entry["details"]["ledger_events"] == [e.seq for e in voids]
    states = {(r.seq_start, r.seq_end): r.state for r in session.scalars(select(MarkRange))}
    assert states == {(1, 10): MarkState.activated, (11, 20): MarkState.voided, (21, 30): MarkState.activated,
                      (31, 100): MarkState.voided}
    assert ledger.verify(session).ok

    # Consumers scanning its activated marks see the suspension; a voided label is named as such.
    r = client.get(f"/v/{batch.code(3)}", headers={"Accept": "application/json"})
    assert r.status_code == 451 and r.json["verdict"] == "authorization_suspended"
    assert r.json["detail"] == "suspended"
    assert client.get(f"/v/{batch.code(15)}", headers={"Accept": "application/json"}).status_code == 410

    # The public list names the producer; Guangzhou sees the outcome in its party queue.
    public = client.get(f"{API}/serious-violators").json
    assert [(i["producer"]["id"], i["case_number"], i["rule"]) for i in public["items"]] == \
        [(s.producer.org.id, case["number"], "forged_labels")]
    seen = client.get(f"{API}/cases?queue=party&status=concluded", headers=s.gz.headers).json["items"]
    assert [(c["id"], c["outcome"], c["measure"], c["serious"]) for c in seen] == \
        [(case["id"], "violation_confirmed", "没收假冒标识 2,000 枚，罚款 5 万元", True)]
    # ... and its supervisor in Guangdong reads the case too, without being able to change it.
    sup = client.get(f"{API}/cases/{case['id']}", headers=s.guangdong.headers)
    assert sup.status_code == 200 and sup.json["your_roles"] == ["supervisor"]

    # The producer's credit record, as the producer itself sees it.
    record = client.get(f"{API}/producers/{s.producer.org.id}/credit", headers=s.producer.headers).json
    assert record["summary"] == {"confirmed_violations": 1, "serious_violations": 1, "currently_listed": True,
                                 "suspended_authorizations": [auth.id]}
    assert session.scalar(select(CreditEntry.case_id).limit(1)) == case["id"]
