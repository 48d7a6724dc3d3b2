"""A producer's own report: generated as a draft, refreshed from the ledger while a draft, the declared
figures only, submitted and locked, late after 31 January (China time); and every refusal."""
from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import func, select

from gi_service.models import AnnualReport

from .conftest import API, cst, ok

MINE = f"{API}/annual-reports/2025/mine"


def count_reports(session) -> int:
    session.rollback()   # a fresh snapshot: the API committed in its own session
    return session.scalar(select(func.count()).select_from(AnnualReport))


def stored(session, report_id: int) -> AnnualReport:
    session.rollback()
    return session.get(AnnualReport, report_id)


def test_draft_declared_submitted_locked(season, session):
    """Does the draft take the declared figures, refuse to be submitted without both, lock on submission (409
    `locked` on any change afterwards) and keep the figures it was submitted with?"""
    c, h = season.client, season.producer.headers
    season.clock.set(cst(2026, 1, 10, 9, 0))
    draft = ok(c.get(MINE, headers=h))
    assert draft["status"] == "draft" and draft["declared"] == {"output_kg": None, "output_value_yuan": None,
                                                               "notes": None}
    assert (draft["due_date"], draft["filing_deadline"], draft["late"], draft["overdue"]) == \
        ("2026-01-31", "2026-03-31", False, False)
    assert ok(c.get(MINE, headers=h))["id"] == draft["id"] and count_reports(session) == 1   # one report, not two

    r = c.post(f"{MINE}/submit", headers=h)
    assert r.status_code == 422 and r.json["error"] == "declared_figures_missing"
    assert {d["field"] for d in r.json["details"]} == {"output_kg", "output_value_yuan"}
    patched = ok(c.patch(MINE, headers=h, json={"output_kg": 180000.5, "notes": "含2024年库存 incl. 2024 stock"}))
    assert patched["declared"]["output_kg"] == 180000.5 and patched["status"] == "draft"
    r = c.post(f"{MINE}/submit", headers=h)
    assert r.status_code == 422 and [d["field"] for d in r.json["details"]] == ["output_value_yuan"]
    ok(c.patch(MINE, headers=h, json={"output_value_yuan": "5400000.00"}))

    season.clock.set(cst(2026, 1, 31, 23, 59))           # the last minute of the due date, China time
    submitted = ok(c.post(f"{MINE}/submit", headers=h))
    assert submitted["status"] == "submitted" and submitted["late"] is False
    assert submitted["declared"] == {"output_kg": 180000.5, "output_value_yuan": 5400000.0,
                                     "notes": "含2024年库存 incl. 2024 stock"}
    row = stored(session, submitted["id"])
    assert (row.output_kg, row.output_value_yuan) == (Decimal("180000.500"), Decimal("5400000.00"))

    for method, url, body in (("patch", MINE, {"output_kg": 1}), ("patch", MINE, {"notes": "later"}),
                              ("post", f"{MINE}/submit", None)):
        r = getattr(c, method)(url, headers=h, json=body)
        assert (r.status_code, r.json["error"]) == (409, "locked"), (method, url)
    # The ledger moves on (the authority adjusts the 2025 quota in February): the locked figures do not.
    season.clock.set(cst(2026, 2, 3, 9, 0))
    ok(c.post(f"{API}/quota-accounts/{season.account['id']}/adjustments", headers=season.authority.headers,
              json={"amount_g": 100_000, "reason": "survey correction"}))
    again = ok(c.get(MINE, headers=h))
    assert again["figures"] == submitted["figures"] and again["generated_at"] == submitted["generated_at"]
    assert stored(session, submitted["id"]).output_kg == Decimal("180000.500")


def test_draft_figures_follow_the_ledger_until_submitted(season):
    """While a draft, is the report refreshed when the year's ledger figures change (a quota adjustment), and
    are the submitted figures those of the moment of submission?"""
    c, h = season.client, season.producer.headers
    season.clock.set(cst(2026, 1, 8, 9, 0))
    first = ok(c.get(MINE, headers=h))
    season.clock.set(cst(2026, 1, 9, 9, 0))
    adjusted = ok(c.post(f"{API}/quota-accounts/{season.account['id']}/adjustments",
                         headers=season.authority.headers, json={"amount_g": -200_000, "reason": "resurvey"}))
    refreshed = ok(c.get(MINE, headers=h))
    assert refreshed["figures"]["quota"]["granted_kg"] == pytest.approx(adjusted["allocated_kg"])
    assert refreshed["figures"]["quota"]["granted_kg"] == pytest.approx(first["figures"]["quota"]["granted_kg"] - 200)
    assert refreshed["generated_at"] > first["generated_at"]
    ok(c.patch(MINE, headers=h, json={"output_kg": 170000, "output_value_yuan": 5000000}))
    submitted = ok(c.post(f"{MINE}/submit", headers=h))
    assert submitted["figures"]["quota"] == refreshed["figures"]["quota"]


def test_submission_after_the_due_date_is_accepted_and_flagged_late(season, factory):
    """Is a submission at 00:00:30 on 1 February (China time; still 31 January in UTC) accepted but late, and is
    the lateness visible to the producer and in the authority's listing?"""
    c, h = season.client, season.producer.headers
    season.clock.set(cst(2026, 1, 25, 9, 0))
    ok(c.patch(MINE, headers=h, json={"output_kg": 1000, "output_value_yuan": 30000}))
    season.clock.set(cst(2026, 2, 1, 0, 0, 30))
    assert ok(c.get(MINE, headers=h))["overdue"] is True
    submitted = ok(c.post(f"{MINE}/submit", headers=h))
    assert submitted["late"] is True and submitted["overdue"] is False and submitted["status"] == "submitted"
    listing = ok(c.get(f"{API}/annual-reports", headers=season.authority.headers, query_string={"year": 2025}))
    [row] = listing["items"]
    assert (row["status"], row["late"], row["overdue"]) == ("submitted", True, False)
    assert listing["summary"]["late"] == 1 and listing["summary"]["on_time"] == 0
    assert ok(c.get(f"{API}/annual-reports/{submitted['id']}", headers=season.authority.headers))["late"] is True


def test_gi_is_chosen_when_the_producer_uses_several(season, factory):
    """With authorizations for two GIs, must the producer name the GI (422 `gi_id_required` listing both), and
    does each GI get its own report?"""
    season.clock.set(cst(2025, 2, 1, 9, 0))
    other = factory.gi(season.authority, name_zh="亳菊", area_adcodes=("341602",))
    factory.authorization(season.producer, other, season.authority)
    season.clock.set(cst(2026, 1, 10, 9, 0))
    r = season.client.get(MINE, headers=season.producer.headers)
    assert r.status_code == 422 and r.json["error"] == "gi_id_required"
    assert {d["gi_id"] for d in r.json["details"]} == {season.gi.id, other.id}
    a = ok(season.client.get(MINE, headers=season.producer.headers, query_string={"gi_id": season.gi.id}))
    b = ok(season.client.get(MINE, headers=season.producer.headers, query_string={"gi_id": other.id}))
    assert a["id"] != b["id"] and b["gi"]["name_zh"] == "亳菊"
    assert b["figures"]["marks"]["received"] == 0 and a["figures"]["marks"]["received"] == 1500


# --- refusals ------------------------------------------------------------------------------------

@pytest.mark.parametrize("body, field", [
    ({"output_kg": -1}, "output_kg"),
    ({"output_value_yuan": -0.01}, "output_value_yuan"),
    ({"output_kg": 1.2345}, "output_kg"),                          # more than 3 decimals (grams)
    ({"output_value_yuan": 10.001}, "output_value_yuan"),          # fractions of a fen
    ({"output_kg": 1e11}, "output_kg"),                            # above ten million tonnes
    ({"output_value_yuan": 2e12}, "output_value_yuan"),
    ({"output_kg": True}, "output_kg"),
    ({"output_kg": "a lot"}, "output_kg"),
    ({"figures": {"marks": {"received": 1}}}, "figures"),          # the ledger figures are not declarable
    ({"status": "submitted"}, "status"),
    ({"notes": "x" * 4001}, "notes"),
])
def test_declared_figures_are_checked(season, session, body, field):
    """Is every out-of-bounds or undeclarable field refused with 422 naming it, leaving the draft as it was?"""
    c, h = season.client, season.producer.headers
    season.clock.set(cst(2026, 1, 10, 9, 0))
    draft = ok(c.patch(MINE, headers=h, json={"output_kg": 12.5}))
    r = c.patch(MINE, headers=h, json=body)
    assert r.status_code == 422 and r.json["error"] == "validation_failed", r.json
    assert field in {d["field"] for d in r.json["details"]}
    row = stored(session, draft["id"])
    assert (row.output_kg, row.output_value_yuan, row.notes, row.status.value) == (Decimal("12.500"), None, None,
                                                                                   "draft")


def test_empty_patch_is_refused(season):
    """Is a PATCH that changes nothing refused (422 `no_change`) instead of answering as if it worked?"""
    season.clock.set(cst(2026, 1, 10, 9, 0))
    r = season.client.patch(MINE, headers=season.producer.headers, json={})
    assert (r.status_code, r.json["error"]) == (422, "no_change")


@pytest.mark.parametrize("year, today", [(2026, cst(2026, 1, 10, 9, 0)), (2027, cst(2026, 1, 10, 9, 0)),
                                         (2025, cst(2025, 12, 31, 23, 0))])
def test_reports_are_for_a_year_that_is_over(season, session, year, today):
    """Is a report for the current or a future year (China time) refused with 422 `year_not_over`, by every
    endpoint, and nothing generated?"""
    season.clock.set(today)
    c, h = season.client, season.producer.headers
    url = f"{API}/annual-reports/{year}/mine"
    for r in (c.get(url, headers=h), c.patch(url, headers=h, json={"output_kg": 1}), c.post(f"{url}/submit", headers=h),
              c.get(f"{API}/annual-reports", headers=season.authority.headers, query_string={"year": year}),
              c.get(f"{API}/annual-reports/rollup", headers=season.authority.headers, query_string={"year": year})):
        assert (r.status_code, r.json["error"]) == (422, "year_not_over"), r.json
    assert count_reports(session) == 0


def test_no_report_is_due_without_an_authorization_that_year(season, factory, session):
    """Does a producer that was not an authorized user in 2025 (approved only in 2026, or never) get 404
    `no_report_due`, with nothing generated?"""
    never = factory.producer("341602")
    season.clock.set(cst(2026, 1, 3, 9, 0))
    late_comer = factory.producer("341602")
    factory.authorization(late_comer, season.gi, season.authority)
    season.clock.set(cst(2026, 1, 10, 9, 0))
    for actor in (never, late_comer):
        r = season.client.get(MINE, headers=actor.headers, query_string={"gi_id": season.gi.id})
        assert (r.status_code, r.json["error"]) == (404, "no_report_due")
        r = season.client.get(MINE, headers=actor.headers)
        assert (r.status_code, r.json["error"]) == (404, "no_report_due")
    r = season.client.get(MINE, headers=season.producer.headers, query_string={"gi_id": 999_999})
    assert (r.status_code, r.json["error"]) == (404, "gi_not_found")
    assert count_reports(session) == 0


def test_who_may_touch_a_report(season, factory, session):
    """Anonymous callers get 401, printers 403 `wrong_role` everywhere, producers 403 on the authorities' views and
    on another producer's report, an authority or inspection unit elsewhere 403 `outside_jurisdiction`; the
    GI's authority, one above it and an inspection unit covering the producer may read it."""
    c = season.client
    season.clock.set(cst(2026, 1, 10, 9, 0))
    report = ok(c.get(MINE, headers=season.producer.headers))
    other_producer = factory.producer("330106")
    far_authority = factory.authority("330100")
    province = factory.authority("340000")
    near_inspection = factory.inspection("341600")
    far_inspection = factory.inspection("440100")
    one = f"{API}/annual-reports/{report['id']}"
    everything = [("get", MINE), ("patch", MINE), ("post", f"{MINE}/submit"), ("get", f"{API}/annual-reports"),
                  ("get", f"{API}/annual-reports/rollup"), ("get", one)]
    for method, url in everything:
        body = {"output_kg": 1} if method == "patch" else None
        r = getattr(c, method)(url, json=body)
        assert (r.status_code, r.json["error"]) == (401, "unauthenticated"), url
        r = getattr(c, method)(url, headers=season.printer.headers, json=body)
        assert (r.status_code, r.json["error"]) == (403, "wrong_role"), url
    for url in (f"{API}/annual-reports", f"{API}/annual-reports/rollup"):
        r = c.get(url, headers=season.producer.headers, query_string={"year": 2025})
        assert (r.status_code, r.json["error"]) == (403, "wrong_role")
    for actor in (season.authority, far_authority, near_inspection):
        r = c.patch(MINE, headers=actor.headers, json={"output_kg": 1})
        assert (r.status_code, r.json["error"]) == (403, "wrong_role")
    r = c.get(one, headers=other_producer.headers)
    assert (r.status_code, r.json["error"]) == (403, "not_your_report")
    for actor in (far_authority, far_inspection):
        r = c.get(one, headers=actor.headers)
        assert (r.status_code, r.json["error"]) == (403, "outside_jurisdiction")
    for actor in (season.authority, province, near_inspection, season.producer):
        assert ok(c.get(one, headers=actor.headers))["id"] == report["id"]
    r = c.get(f"{API}/annual-reports/999999", headers=season.authority.headers)
    assert (r.status_code, r.json["error"]) == (404, "report_not_found")
    assert stored(session, report["id"]).output_kg is None


def test_implausible_declarations_are_flagged_not_refused(season):
    """Is an output below the weight of the packs marked in the year (162.5 kg) accepted but flagged, and a
    value of 0 yuan for an output too, while a plausible declaration carries no warning?"""
    season.clock.set(cst(2026, 1, 10, 9, 0))
    r = ok(season.client.patch(MINE, headers=season.producer.headers,
                               json={"output_kg": 100, "output_value_yuan": 0}))
    assert {w["code"] for w in r["warnings"]} == {"output_below_marked", "output_without_value"}
    r = ok(season.client.patch(MINE, headers=season.producer.headers,
                               json={"output_kg": 180000, "output_value_yuan": 5000000}))
    assert r["warnings"] == []


def test_first_access_from_several_devices_at_once_makes_one_report(season, app, session):
    """When the producer opens its report from four devices at the same moment, does every request get the same
    report, with one row stored and no error?"""
    from tests.ledger.test_concurrency import run_parallel

    season.clock.set(cst(2026, 1, 10, 9, 0))
    h = season.producer.headers
    results = run_parallel(app, [lambda client: client.get(MINE, headers=h)] * 4)
    assert [status for status, _ in results] == [200] * 4
    assert len({body["id"] for _, body in results}) == 1
    assert count_reports(session) == 1
