"""Offline field work: re-sent findings change nothing, reused client ids are refused, batches, races."""
from __future__ import annotations

import datetime as dt
import threading

from sqlalchemy import select

from gi_service.models import Finding, PremisesKind
from gi_service.services import findings as findings_service

from .conftest import API, DONGCHENG, body, count, written

TIMEOUT = 120


def test_the_same_finding_again_is_answered_with_the_stored_one(fw, client, session):
    """Does re-sending a finding (same organisation, client id and content) answer 200 with the stored finding,
    marked as a replay, and write nothing new — also when the GI and producer were derived from the codes?"""
    b = fw.batch(3)
    fw.activate(b, 1, 3)
    data = body(codes=[b.code(1), b.code(2)], violations=["outside_area_or_substandard"], notes="产地存疑")
    first = fw.file(data)
    assert "X-Idempotent-Replay" not in first.headers
    again = fw.file(data, expect=200)
    assert again.headers["X-Idempotent-Replay"] == "true"
    assert again.json == first.json
    assert written(session) == (1, 2, 0)


def test_a_reused_client_id_with_other_content_is_refused(fw, client, session):
    """Is the same client id with different content refused 409 client_id_reused, naming what differs, leaving the
    stored finding unchanged?"""
    data = body(gi_id=fw.gi.id, notes="first")
    first = fw.file(data).json
    r = client.post(f"{API}/findings", headers=fw.places.tianhe.headers,
                    json={**data, "notes": "second", "violations": ["look_alike"]})
    assert (r.status_code, r.json["error"]) == (409, "client_id_reused")
    assert r.json["details"] == {"finding_id": first["id"], "fields": ["violations", "notes"]}
    stored = client.get(f"{API}/findings/{first['id']}", headers=fw.places.tianhe.headers).json
    assert stored["notes"] == "first" and stored["violations"] == []
    assert written(session) == (1, 0, 0)


def test_client_ids_belong_to_one_organisation(fw, session):
    """May another organisation use the same client id for its own finding?"""
    data = body(gi_id=fw.gi.id)
    a = fw.file(data).json
    b = fw.file(data, by=fw.places.guangzhou).json
    assert a["id"] != b["id"] and count(session, Finding) == 2


def test_a_late_resend_is_still_a_replay(fw, session):
    """Is a finding accepted once still replayed when it is re-sent after the upload window (a year) closed?"""
    by = fw.places.tianhe.principal
    keyring = fw.app.extensions["gi_keyring"]
    observed = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=300)
    data = findings_service.FindingInput(
        client_id="late-1", observed_at=observed, lat=23.1291, lon=113.328,
        premises=findings_service.PremisesInput(name="店", kind=PremisesKind.retail), violations=(), gi_id=fw.gi.id)
    first = findings_service.file_finding(session, by, data, keyring=keyring, base_url="http://gi.test")
    session.commit()
    later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=200)
    again = findings_service.file_finding(session, by, data, keyring=keyring, base_url="http://gi.test", now=later)
    assert (again.created, again.finding.id) == (False, first.finding.id)


def test_a_batch_files_each_item_on_its_own(fw, client, session):
    """In an offline batch, are good items created, an earlier upload replayed, and each bad item (invalid,
    outside the jurisdiction, reused client id, not an object) reported with its own error and nothing written
    for it — and does re-sending the batch create nothing new?"""
    b = fw.batch(3)
    fw.activate(b, 1, 3)
    earlier = body("d:1", gi_id=fw.gi.id)
    fw.file(earlier)
    items = [
        earlier,                                                         # replayed
        body("d:2", codes=[b.code(1)], violations=["unauthorized_use"]),  # created
        {**body("d:3"), "premises": {"name": "x", "kind": "kiosk"}},       # invalid
        body("d:4", point=DONGCHENG, gi_id=fw.gi.id),                    # outside the jurisdiction
        {**earlier, "notes": "changed"},                                 # reused client id
        "not an object",
        body("d:5", hours_ago=5, gi_id=fw.gi.id, codes=[b.code(2), b.code(3)]),  # created
    ]
    r = client.post(f"{API}/findings/batch", headers=fw.places.tianhe.headers, json={"findings": items})
    assert r.status_code == 200, r.json
    got = [(i["index"], i["client_id"], i["status"], i["status_code"], (i.get("error") or {}).get("code"))
           for i in r.json["items"]]
    assert got == [(0, "d:1", "replayed", 200, None), (1, "d:2", "created", 201, None),
                   (2, "d:3", "error", 422, "validation_failed"), (3, "d:4", "error", 403, "outside_jurisdiction"),
                   (4, "d:1", "error", 409, "client_id_reused"), (5, None, "error", 422, "validation_failed"),
                   (6, "d:5", "created", 201, None)]
    assert (r.json["created"], r.json["replayed"], r.json["failed"]) == (2, 1, 4)
    assert "premises.kind" in r.json["items"][2]["error"]["message"]
    ids = {i["client_id"]: i["id"] for i in r.json["items"] if i["status"] != "error"}
    stored = dict(session.execute(select(Finding.client_id, Finding.id)).all())
    assert stored == ids and written(session) == (3, 3, 0)

    again = client.post(f"{API}/findings/batch", headers=fw.places.tianhe.headers, json={"findings": items})
    assert [i["status"] for i in again.json["items"]] == ["replayed", "replayed", "error", "error", "error", "error",
                                                          "replayed"]
    assert {i["client_id"]: i["id"] for i in again.json["items"] if i["status"] != "error"} == ids
    assert written(session) == (3, 3, 0)


def test_a_batch_itself_must_be_well_formed(fw, client, session):
    """Are an empty batch, more than 100 findings, more than 2,000 codes, and a batch that is not
    {"findings": [...]} refused as a whole, with nothing written; and producers refused?"""
    h = fw.places.tianhe.headers
    cases = [({"findings": []}, 422, "validation_failed"),
             ({"findings": [body(f"c:{i}", gi_id=fw.gi.id) for i in range(101)]}, 422, "validation_failed"),
             ({"findings": [body(f"c:{i}", gi_id=fw.gi.id, codes=["X"] * 200) for i in range(11)]}, 422,
              "batch_too_large"),
             ({"items": [body(gi_id=fw.gi.id)]}, 422, "validation_failed"),
             ([body(gi_id=fw.gi.id)], 422, "validation_failed")]
    for payload, status, code in cases:
        r = client.post(f"{API}/findings/batch", headers=h, json=payload)
        assert (r.status_code, r.json["error"]) == (status, code), r.json
    r = client.post(f"{API}/findings/batch", headers=fw.producer.headers, json={"findings": [body(gi_id=fw.gi.id)]})
    assert (r.status_code, r.json["error"]) == (403, "wrong_role")
    assert client.post(f"{API}/findings/batch", json={"findings": [body()]}).status_code == 401
    assert written(session) == (0, 0, 0)


def test_concurrent_uploads_of_one_finding_make_one_row(fw, app, session):
    """When a phone sends the same finding several times at once (a flaky network), is one row created and every
    answer the same finding (one 201, the others 200 replays)?"""
    b = fw.batch(3)
    fw.activate(b, 1, 3)
    data = body("race:1", codes=[b.code(1), b.code(2)], violations=["unauthorized_use"])
    n = 4
    barrier = threading.Barrier(n, timeout=TIMEOUT)
    results: list = [None] * n

    def worker(i):
        c = app.test_client()
        try:
            barrier.wait()
            r = c.post(f"{API}/findings", headers=fw.places.tianhe.headers, json=data)
            results[i] = (r.status_code, r.get_json(), r.headers.get("X-Idempotent-Replay"))
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            results[i] = exc

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(TIMEOUT)
    assert not any(t.is_alive() for t in threads), "a request never finished"
    assert not any(isinstance(r, BaseException) for r in results), results
    assert sorted(r[0] for r in results) == [200] * (n - 1) + [201], results
    assert len({r[1]["id"] for r in results}) == 1
    assert [r[2] for r in results if r[0] == 200] == ["true"] * (n - 1)
    assert written(session) == (1, 2, 0)


def test_a_twin_that_commits_between_the_lookup_and_the_insert_is_replayed(fw, session, monkeypatch):
    """If the unique constraint catches a twin upload (it committed after this request looked), is the answer the
    twin's finding (a replay), with one row — and is a twin with other content refused 409?"""
    data = body("twin:1", gi_id=fw.gi.id)
    first = fw.file(data).json
    real = findings_service._stored
    calls = []

    def blind_once(session_, organisation_id, client_id):
        calls.append(client_id)
        return None if len(calls) == 1 else real(session_, organisation_id, client_id)

    monkeypatch.setattr(findings_service, "_stored", blind_once)
    r = fw.file(data, expect=200)
    assert r.json["id"] == first["id"] and r.headers["X-Idempotent-Replay"] == "true" and len(calls) == 2
    calls.clear()
    r = fw.file({**data, "notes": "other"}, expect=409)
    assert r.json["error"] == "client_id_reused" and len(calls) == 2
    assert written(session) == (1, 0, 0)
