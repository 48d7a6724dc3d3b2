"""Credit supervision: which confirmed violations the rules call serious (built-in and from a rules file),
what a serious one does, what lifting a suspension restores, when a listing may be delisted, and who reads
a producer's credit record."""
from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy import select, update

from gi_service import create_app
from gi_service.config import ConfigError
from gi_service.models import (Authorization, AuthorizationEvent, AuthorizationStatus, CreditEntry, LedgerEvent,
                               MarkRange, MarkState, SeriousViolator)

from ..xlsx import read_download
from .conftest import API, QIAOCHENG, count, fresh

JSON = {"Accept": "application/json"}


def _auth(session, producer_id: int, gi_id: int) -> Authorization:
    fresh(session)
    return session.scalar(select(Authorization).where(Authorization.producer_id == producer_id,
                                                      Authorization.gi_id == gi_id))


def _kinds(session, producer_id: int) -> list[str]:
    fresh(session)
    return [e.kind.value for e in session.scalars(select(CreditEntry).where(CreditEntry.producer_id == producer_id)
                                                  .order_by(CreditEntry.id))]


# --- the built-in rules ----------------------------------------------------------------------------

def test_a_violation_that_is_not_serious_is_only_recorded(story, client, session):
    """Does a first look-alike violation go on the credit record without listing, suspending or voiding?"""
    batch = story.batch(20)
    story.activate(batch, 1, 5)
    case = story.concluded_case(["look_alike"])
    assert case["serious"] is False and [e["kind"] for e in case["credit"]] == ["violation"]
    assert case["events"][-1]["action"] == "credit_applied"
    assert _auth(session, story.producer.org.id, story.gi.id).status == AuthorizationStatus.approved
    assert count(session, LedgerEvent, LedgerEvent.kind == "voided") == 0
    assert client.get(f"/v/{batch.code(2)}", headers=JSON).status_code == 200
    assert client.get(f"{API}/serious-violators").json["items"] == []


def test_a_repeat_within_two_years_is_serious(story, client, session):
    """Is a second confirmed violation within 730 days serious by the repeat rule, while one whose earlier
    violation is older than that is not?"""
    first = story.concluded_case(["look_alike"])
    assert first["serious"] is False
    # Two years and a day later, the earlier violation no longer counts.
    session.execute(update(CreditEntry).values(at=dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=731)))
    session.commit()
    second = story.concluded_case(["mark_without_uscc"])
    assert second["serious"] is False
    third = story.concluded_case(["mark_without_uscc"])
    assert third["serious"] is True
    assert [(e["kind"], e["rule"]) for e in third["credit"]][:2] == \
        [("serious_violation", "repeat_within_two_years"), ("listed", "repeat_within_two_years")]
    assert third["credit"][0]["details"]["other_violations_counted"] == 1
    assert _auth(session, story.producer.org.id, story.gi.id).status == AuthorizationStatus.suspended


def test_a_producer_that_was_not_at_fault_gets_no_entry(story, client, session):
    """When the producer was the victim (its labels copied by someone else), does a confirmed forgery leave its
    credit record and authorization untouched, saying why in the case's log?"""
    case = story.concluded_case(["forged_or_copied_label"], producer_at_fault=False)
    assert case["outcome"] == "violation_confirmed" and case["serious"] is False and case["credit"] == []
    assert case["events"][-1]["action"] == "credit_not_applied"
    assert _kinds(session, story.producer.org.id) == []
    assert _auth(session, story.producer.org.id, story.gi.id).status == AuthorizationStatus.approved


def test_no_violation_writes_nothing_to_the_credit_record(story, client, session):
    """Does a case concluded no_violation leave the credit record empty?"""
    fid = story.finding(story.authority, place=QIAOCHENG, kind="production")
    case = story.open(story.authority, finding_ids=[fid])
    story.step(story.authority, case["id"], "investigate")
    done = story.step(story.authority, case["id"], "conclude", outcome="no_violation", reason="labels genuine")
    assert done["outcome"] == "no_violation" and done["credit"] == [] and done["measure"] is None
    assert count(session, CreditEntry) == 0


def test_the_rules_in_force_are_public(client):
    """Can anyone read the credit rules in force, with a summary of each?"""
    r = client.get(f"{API}/credit-rules")
    assert r.status_code == 200 and r.json["source"] == "built-in" and r.json["repair_after_days"] == 365
    assert [(x["name"], x["summary"]) for x in r.json["rules"]] == [
        ("forged_labels", "violations include forged_or_copied_label"),
        ("repeat_within_two_years", "1 other confirmed violation within 730 days")]


# --- a rules file ----------------------------------------------------------------------------------

def test_a_rules_file_replaces_the_built_in_rules(story, rules_app, session):
    """With a rules file calling look-alike names serious and suspending every GI, is a look-alike violation
    serious, are both of the producer's authorizations suspended with the rule's repair period, and is a
    forgery (no longer in the rules) only recorded?"""
    app = rules_app(json.dumps({"repair_after_days": 90, "rules": [
        {"name": "look_alike_everywhere", "violations_any": ["look_alike"], "suspend": "all_gis",
         "repair_after_days": 30}]}))
    rc = app.test_client()
    second_gi = story.factory.gi(story.authority, name_zh="亳菊", area_adcodes=("341602",))
    story.factory.authorization(story.producer, second_gi, story.authority)
    assert rc.get(f"{API}/credit-rules").json["source"].startswith("credit-rules-")

    case = story.concluded_case(["look_alike"], client=rc)
    assert case["serious"] is True
    assert [(e["kind"], e["gi_id"]) for e in case["credit"] if e["kind"] == "suspended"] == \
        [("suspended", story.gi.id), ("suspended", second_gi.id)]
    for gi in (story.gi, second_gi):
        assert _auth(session, story.producer.org.id, gi.id).status == AuthorizationStatus.suspended
    listing = session.scalar(select(SeriousViolator))
    assert listing.rule == "look_alike_everywhere"
    assert (listing.repair_after - dt.datetime.now(dt.timezone(dt.timedelta(hours=8))).date()).days == 30

    other = story.factory.producer("341602")
    story.factory.authorization(other, story.gi, story.authority)
    forged = story.concluded_case(["forged_or_copied_label"], client=rc, producer=other.org.id)
    assert forged["serious"] is False
    assert _auth(session, other.org.id, story.gi.id).status == AuthorizationStatus.approved


@pytest.mark.parametrize("text, message", [
    ("{not json", "not valid JSON"),
    ("[]", "must be a JSON object"),
    ('{"rules": [{"name": "vague"}]}', "has no condition"),
    ('{"rules": [{"name": "x", "violations_any": ["stealing"]}]}', "rules.0.violations_any.0"),
    ('{"rules": [{"name": "x", "repeat_within_days": 0}]}', "rules.0.repeat_within_days"),
    ('{"rules": [{"name": "x", "violations_any": ["look_alike"], "suspend": "everything"}]}', "rules.0.suspend"),
    ('{"rules": [], "repair_after": 365}', "repair_after: unknown field"),
    ('{"rules": [{"name": "a", "repeat_within_days": 5}, {"name": "a", "repeat_within_days": 9}]}',
     "two rules are named 'a'"),
])
def test_a_malformed_rules_file_stops_the_start(rules_app, text, message):
    """Does a malformed rules file stop the application at start with a message naming the file and the
    problem (instead of failing when a case is concluded)?"""
    with pytest.raises(ConfigError, match="GI_CREDIT_RULES") as err:
        rules_app(text)
    assert message in str(err.value)


def test_a_missing_rules_file_stops_the_start(app, tmp_path):
    """Does a GI_CREDIT_RULES path that does not exist stop the start, saying how to fix it?"""
    settings = app.config["GI_SETTINGS"].with_overrides(credit_rules_path=tmp_path / "nope.json")
    with pytest.raises(ConfigError, match="does not exist; create it or unset GI_CREDIT_RULES"):
        create_app(settings)


# --- lifting and delisting -------------------------------------------------------------------------

def test_lifting_restores_the_authorization_but_not_the_voided_marks(story, client, session):
    """After a serious violation, may only the GI's authority lift the suspension; does lifting make the
    activated marks genuine again while the voided marks stay voided and the listing stays?"""
    batch = story.batch(50)
    story.activate(batch, 1, 10)
    story.concluded_case(["forged_or_copied_label"], measure="罚款 5 万元")
    assert client.get(f"/v/{batch.code(5)}", headers=JSON).status_code == 451
    url = f"{API}/producers/{story.producer.org.id}/suspension/lift"
    body = {"gi_id": story.gi.id, "reason": "整改完成 / rectified"}
    for who, expected in ((story.bozhou_inspection, (403, "wrong_role")),
                          (story.guangdong, (403, "outside_jurisdiction")),
                          (story.producer, (403, "wrong_role"))):
        r = client.post(url, headers=who.headers, json=body)
        assert (r.status_code, r.json["error"]) == expected
    r = client.post(url, headers=story.authority.headers, json={"gi_id": story.gi.id})
    assert r.status_code == 422 and r.json["details"][0]["field"] == "reason"
    other_gi = story.factory.gi(story.authority, name_zh="亳菊", area_adcodes=("341602",))
    r = client.post(url, headers=story.authority.headers, json={"gi_id": other_gi.id, "reason": "no such"})
    assert (r.status_code, r.json["error"]) == (404, "authorization_not_found")
    assert _auth(session, story.producer.org.id, story.gi.id).status == AuthorizationStatus.suspended

    r = client.post(url, headers=story.authority.headers, json=body)
    assert r.status_code == 200 and r.json["status"] == "approved"
    assert "append-only" in r.json["not_restored"]["voided_marks"]
    assert client.get(f"/v/{batch.code(5)}", headers=JSON).status_code == 200
    assert client.get(f"/v/{batch.code(30)}", headers=JSON).status_code == 410
    fresh(session)
    assert {r.state for r in session.scalars(select(MarkRange).where(MarkRange.seq_start > 10))} == \
        {MarkState.voided}
    auth = _auth(session, story.producer.org.id, story.gi.id)
    history = [(e.from_status, e.to_status, e.changed_by_id) for e in session.scalars(
        select(AuthorizationEvent).where(AuthorizationEvent.authorization_id == auth.id)
        .order_by(AuthorizationEvent.id))]
    assert history[-2:] == [("approved", "suspended", None),
                            ("suspended", "approved", story.authority.principal.user_id)]
    assert _kinds(session, story.producer.org.id)[-1] == "suspension_lifted"
    assert count(session, SeriousViolator, SeriousViolator.delisted_at.is_(None)) == 1
    r = client.post(url, headers=story.authority.headers, json=body)
    assert (r.status_code, r.json["error"]) == (409, "not_suspended")


def test_delisting_waits_for_the_repair_period(story, client, session):
    """Is delisting before repair_after refused (409 too_early), and refused to those not covering the
    producer?"""
    story.concluded_case(["forged_or_copied_label"])
    listing = session.scalar(select(SeriousViolator))
    url = f"{API}/serious-violators/{listing.id}/delist"
    r = client.post(url, headers=story.authority.headers, json={"reason": "repaired"})
    assert (r.status_code, r.json["error"]) == (409, "too_early")
    assert r.json["details"]["repair_after"] == listing.repair_after.isoformat()
    r = client.post(url, headers=story.guangdong.headers, json={"reason": "repaired"})
    assert (r.status_code, r.json["error"]) == (403, "outside_jurisdiction")
    r = client.post(url, headers=story.bozhou_inspection.headers, json={"reason": "repaired"})
    assert (r.status_code, r.json["error"]) == (403, "wrong_role")
    r = client.post(f"{API}/serious-violators/999/delist", headers=story.authority.headers, json={"reason": "x1"})
    assert (r.status_code, r.json["error"]) == (404, "listing_not_found")
    fresh(session)
    assert session.get(SeriousViolator, listing.id).delisted_at is None


def test_delisting_after_the_repair_period_keeps_the_history(story, rules_app, client, session):
    """Once repair_after has come, does the authority delist the producer (recorded with who and why), the
    public list drop it, and the history stay visible to supervisors only?"""
    rc = rules_app(json.dumps({"repair_after_days": 0, "rules": [
        {"name": "forged", "violations_any": ["forged_or_copied_label"]}]})).test_client()
    story.concluded_case(["forged_or_copied_label"], client=rc)
    public = client.get(f"{API}/serious-violators").json
    assert public["total"] == 1 and "delisted_at" not in public["items"][0]
    listing_id = public["items"][0]["id"]
    r = client.post(f"{API}/serious-violators/{listing_id}/delist", headers=story.authority.headers,
                    json={"reason": "信用修复完成 / credit repaired"})
    assert r.status_code == 200 and r.json["current"] is False and r.json["delist_reason"].startswith("信用修复")
    assert client.get(f"{API}/serious-violators").json["items"] == []
    history = client.get(f"{API}/serious-violators?include_delisted=true", headers=story.gz.headers).json
    assert [(i["id"], i["current"], i["delisted_by"]) for i in history["items"]] == \
        [(listing_id, False, story.authority.principal.user_id)]
    assert client.get(f"{API}/serious-violators?include_delisted=true").status_code == 401
    r = client.get(f"{API}/serious-violators?include_delisted=true", headers=story.producer.headers)
    assert (r.status_code, r.json["error"]) == (403, "wrong_role")
    r = client.post(f"{API}/serious-violators/{listing_id}/delist", headers=story.authority.headers,
                    json={"reason": "again"})
    assert (r.status_code, r.json["error"]) == (409, "already_delisted")
    assert _kinds(session, story.producer.org.id) == ["serious_violation", "listed", "suspended", "delisted"]


def test_the_list_as_csv_and_excel(story, rules_app, client, session):
    """Does the list download as CSV and Excel (API and page) with every entry, the listing time a China-time
    date-time cell and the repair date a date; with the delisted entries for supervisors only?"""
    rc = rules_app(json.dumps({"repair_after_days": 0, "rules": [
        {"name": "forged", "violations_any": ["forged_or_copied_label"]}]})).test_client()
    story.concluded_case(["forged_or_copied_label"], client=rc)
    listing = session.scalar(select(SeriousViolator))
    r = client.get(f"{API}/serious-violators", query_string={"format": "csv", "limit": 1, "offset": 5})
    assert r.status_code == 200 and r.mimetype == "text/csv" and r.data.startswith(b"\xef\xbb\xbf")
    lines = r.data.decode("utf-8-sig").splitlines()
    assert lines[0].startswith("名单编号 (id),生产者 (producer),统一社会信用代码 (uscc)") and len(lines) == 2
    assert story.producer.org.uscc in lines[1] and lines[1].endswith(",是 yes")
    sheet = read_download(client.get(f"{API}/serious-violators", query_string={"format": "xlsx"}))
    [row] = sheet.dicts()
    assert row["名单编号 (id)"] == listing.id and row["统一社会信用代码 (uscc)"] == story.producer.org.uscc
    assert sheet.cell(0, "listed_at").is_date and sheet.cell(0, "repair_after").is_date
    assert row["列入时间 (listed_at)"] == listing.listed_at.astimezone(dt.timezone(dt.timedelta(hours=8))) \
        .replace(tzinfo=None, microsecond=0)
    assert "移出时间 (delisted_at)" not in sheet.header
    page = read_download(client.get("/app/credit/export", headers=story.producer.headers,
                                    query_string={"format": "xlsx", "history": "1"}))
    assert page.header == sheet.header        # a producer asks for the history in vain: the current list
    client.post(f"{API}/serious-violators/{listing.id}/delist", headers=story.authority.headers,
                json={"reason": "信用修复完成"})
    assert read_download(client.get(f"{API}/serious-violators", query_string={"format": "xlsx"})).rows == []
    history = read_download(client.get(f"{API}/serious-violators", headers=story.gz.headers,
                                       query_string={"format": "xlsx", "include_delisted": "true"}))
    assert history.dicts()[0]["移出事由 (delist_reason)"] == "信用修复完成"
    assert history.dicts()[0]["当前在列 (current)"] == "否 no"
    r = client.get(f"{API}/serious-violators", query_string={"format": "xlsx", "include_delisted": "true"})
    assert r.status_code == 401
    page = read_download(client.get("/app/credit/export", headers=story.gz.headers,
                                    query_string={"format": "xlsx", "history": "1"}))
    assert page.rows == history.rows


def test_who_reads_a_producers_credit_record(story, client):
    """Do the producer itself and supervisors covering it read its credit record, while another producer, a
    supervisor elsewhere and the public are refused?"""
    story.concluded_case(["look_alike"])
    url = f"{API}/producers/{story.producer.org.id}/credit"
    for who in (story.producer, story.authority, story.bozhou_inspection, story.anhui):
        r = client.get(url, headers=who.headers)
        assert r.status_code == 200 and r.json["summary"]["confirmed_violations"] == 1
        assert [e["kind"] for e in r.json["entries"]] == ["violation"]
    other = story.factory.producer("341602")
    for who in (other, story.gz, story.printer):
        r = client.get(url, headers=who.headers)
        assert (r.status_code, r.json["error"]) == (403, "not_your_producer")
    assert client.get(url).status_code == 401
    assert client.get(f"{API}/producers/9999/credit", headers=story.authority.headers).status_code == 404


def test_the_public_list_filters_by_place(story, client):
    """Does the public list filter by the producer's division, and refuse a code that is no division (422)?"""
    story.concluded_case(["forged_or_copied_label"])
    assert client.get(f"{API}/serious-violators?adcode=341600").json["total"] == 1
    assert client.get(f"{API}/serious-violators?adcode=440000").json["total"] == 0
    assert client.get(f"{API}/serious-violators?producer_id={story.producer.org.id}").json["total"] == 1
    r = client.get(f"{API}/serious-violators?adcode=999999")
    assert (r.status_code, r.json["error"]) == (422, "unknown_adcode")
