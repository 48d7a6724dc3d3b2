"""Every figure of the two-year world (see conftest.py), counted exactly, per GI, region and year."""
from __future__ import annotations

from .conftest import API

MARKS_2025 = {"requested": 140, "approved": 140, "printed": 140, "spoiled": 2, "issued": 138, "activated": 72,
              "voided": 3, "lost": 1, "stolen": 1, "recalled": 0}
MARKS_2026 = {"requested": 60, "approved": 60, "printed": 60, "spoiled": 0, "issued": 60, "activated": 35,
              "voided": 0, "lost": 0, "stolen": 0, "recalled": 0}
NO_VERDICTS = {"genuine": 0, "genuine_not_activated": 0, "voided": 0, "lost_or_stolen": 0, "recalled": 0,
               "authorization_suspended": 0, "unknown": 0, "malformed": 0}
NO_VIOLATIONS = {"unauthorized_use": 0, "forged_or_copied_label": 0, "outside_area_or_substandard": 0,
                 "look_alike": 0, "authorization_not_in_force": 0, "mark_without_uscc": 0, "unactivated_label": 0}
NO_PREMISES = {"production": 0, "wholesale": 0, "retail": 0, "e_commerce": 0}


def coverage(eligible: int, users: int, percent, meets, needed: int) -> dict:
    return {"eligible": eligible, "users": users, "non_users": eligible - users,
            "rate": None if percent is None else round(users / eligible, 4), "percent": percent, "target": 0.9,
            "meets_target": meets, "users_needed_for_target": needed}


def by_key(groups: list[dict], field: str) -> dict:
    out = {}
    for g in groups:
        key = g["key"].get(field)
        out[key["adcode"] if field == "region" and key else key["id"] if field == "gi" and key else key] = g["figures"]
    return out


def test_2025_in_bozhou_every_figure(world):
    """Does the 2025 answer count every figure exactly: coverage 2 of 3 below the 90% line, marks in marks, the
    checks, the findings and the declared output with the missing and the late report?"""
    data = world.stats(world.authority, year=2025)
    assert data["period"] == {"from_year": 2025, "to_year": 2025, "from": "2024-12-31T16:00:00+00:00",
                              "until": "2025-12-31T16:00:00+00:00", "timezone": "Asia/Shanghai", "complete": True}
    assert data["scope"]["region"]["adcode"] == "341600" and data["scope"]["gi"] is None
    t = data["total"]
    # P1 and P2 used marks; P3 never did; P4 was only pending in 2025.
    assert t["coverage"] == coverage(3, 2, 66.7, False, 1)
    # 2 of P1's 100 spoiled in printing; 61-62 activated at 23:30 on 31 December count for 2025.
    assert t["marks"] == MARKS_2025
    assert t["checks"] == {"total": 1, "by_verdict": {**NO_VERDICTS, "genuine": 1}, "located": 0, "bots": 0}
    assert t["alerts"]["total"] == 0 and t["consumer_reports"] == 0
    assert t["findings"] == {"total": 1, "with_violations": 1, "without_violations": 0,
                             "by_violation": {**NO_VIOLATIONS, "mark_without_uscc": 1},
                             "by_premises": {**NO_PREMISES, "e_commerce": 1}}
    assert t["cases"] == {"opened": 0, "referred": 0, "concluded": 0,
                          "by_outcome": {"violation_confirmed": 0, "no_violation": 0}, "serious": 0}
    assert t["output"] == {"reports_due": 3, "reports_submitted": 2, "reports_missing": 1, "reports_late": 1,
                           "output_kg": 1334.5, "output_value_yuan": 103765.43}
    assert set(data["definitions"]) >= {"coverage", "marks", "checks", "findings", "cases", "output", "places"}
    assert data["labels"]["violations"]["look_alike"] == {"zh": "近似名称或标识", "en": "look-alike name or logo"}


def test_2026_in_bozhou_and_nationally(world):
    """In 2026, does 亳州 see its own checks, alerts, reports, findings and cases, while the national authority also
    counts the shop in 广州, its case, and the checks that have no place (a forged and a malformed code)?"""
    local = world.stats(world.authority, year=2026)["total"]
    assert local["coverage"] == coverage(4, 1, 25.0, False, 3)
    # 1 January 00:30 China time is 2026 here although it is still 31 December in UTC.
    assert local["marks"] == MARKS_2026
    assert local["checks"] == {"total": 10, "by_verdict": {**NO_VERDICTS, "genuine": 8, "voided": 1,
                                                           "genuine_not_activated": 1},
                               "located": 4, "bots": 1}
    assert local["alerts"] == {"total": 2, "occurrences": 3,
                               "by_kind": {"too_many_checks": 1, "impossible_travel": 1, "outside_sales_regions": 0,
                                           "unknown_burst": 0}}
    assert local["consumer_reports"] == 1
    assert local["findings"] == {"total": 3, "with_violations": 2, "without_violations": 1,
                                 "by_violation": {**NO_VIOLATIONS, "unauthorized_use": 1, "forged_or_copied_label": 1,
                                                  "look_alike": 1},
                                 "by_premises": {**NO_PREMISES, "retail": 1, "wholesale": 1, "production": 1}}
    assert local["cases"] == {"opened": 2, "referred": 0, "concluded": 1,
                              "by_outcome": {"violation_confirmed": 0, "no_violation": 1}, "serious": 0}
    assert local["output"] == {"reports_due": 4, "reports_submitted": 0, "reports_missing": 4, "reports_late": 0,
                               "output_kg": 0.0, "output_value_yuan": 0.0}

    national = world.stats(world.national, year=2026)
    assert national["scope"]["region"] == {"adcode": "100000", "name": "中华人民共和国", "full_name": "中华人民共和国",
                                           "level": "country"}
    n = national["total"]
    assert n["checks"]["total"] == 12
    assert n["checks"]["by_verdict"]["unknown"] == 1 and n["checks"]["by_verdict"]["malformed"] == 1
    assert n["findings"]["total"] == 4 and n["findings"]["by_violation"]["look_alike"] == 2
    assert n["findings"]["by_premises"]["retail"] == 2
    # The case of the shop in 广州: opened there, referred to 谯城区, concluded confirmed.
    assert n["cases"] == {"opened": 3, "referred": 1, "concluded": 2,
                          "by_outcome": {"violation_confirmed": 1, "no_violation": 1}, "serious": 0}
    assert n["coverage"] == local["coverage"] and n["marks"] == local["marks"]


def test_breakdown_by_region_is_the_next_level_down(world):
    """Does group_by=region split 亳州 into its four counties (zeros included) with each figure at its place, and
    the country into provinces with the placeless checks apart?"""
    data = world.stats(world.authority, year=2026, group_by="region")
    assert [g["key"]["region"]["adcode"] for g in data["groups"]] == ["341602", "341621", "341622", "341623"]
    regions = by_key(data["groups"], "region")
    q, g = regions["341602"], regions["341621"]
    assert q["coverage"] == coverage(1, 1, 100.0, True, 0)
    assert g["coverage"] == coverage(3, 0, 0.0, False, 3)
    assert q["marks"] == MARKS_2026 and g["marks"]["issued"] == 0
    # #1 ×4, #2 and #3 located here, the voided #51 and the never activated #70 (at P1's place: no location).
    assert q["checks"] == {"total": 8, "by_verdict": {**NO_VERDICTS, "genuine": 6, "voided": 1,
                                                      "genuine_not_activated": 1}, "located": 2, "bots": 1}
    assert g["checks"] == {"total": 2, "by_verdict": {**NO_VERDICTS, "genuine": 2}, "located": 2, "bots": 0}
    assert q["alerts"]["by_kind"]["too_many_checks"] == 1 and q["alerts"]["by_kind"]["impossible_travel"] == 0
    assert g["alerts"]["by_kind"]["impossible_travel"] == 1 and g["alerts"]["total"] == 1
    assert (q["consumer_reports"], g["consumer_reports"]) == (1, 0)
    assert (q["findings"]["total"], g["findings"]["total"]) == (1, 2)
    assert g["findings"]["without_violations"] == 1 and g["findings"]["by_premises"]["wholesale"] == 1
    assert (q["cases"]["opened"], g["cases"]["opened"], g["cases"]["by_outcome"]["no_violation"]) == (1, 1, 1)
    assert (q["output"]["reports_due"], g["output"]["reports_due"]) == (1, 3)
    for empty in ("341622", "341623"):
        assert regions[empty]["checks"]["total"] == 0 and regions[empty]["coverage"]["eligible"] == 0

    national = world.stats(world.national, year=2026, group_by="region")
    provinces = by_key(national["groups"], "region")
    assert provinces["340000"]["checks"]["total"] == 10
    assert provinces["440000"]["findings"]["total"] == 1
    assert provinces["440000"]["cases"] == {"opened": 1, "referred": 1, "concluded": 1,
                                            "by_outcome": {"violation_confirmed": 1, "no_violation": 0},
                                            "serious": 0}
    unplaced = provinces[None]
    assert unplaced["checks"]["total"] == 2 and unplaced["checks"]["by_verdict"]["unknown"] == 1
    assert national["groups"][-1]["key"]["label"] == {"zh": "无地点", "en": "no place"}


def test_breakdown_by_gi(world):
    """Does group_by=gi give each GI its coverage (亳白芍 2 of 2 meets the target, 亳菊 0 of 1 does not), marks,
    findings and reports?"""
    data = world.stats(world.authority, year=2025, group_by="gi")
    gis = by_key(data["groups"], "gi")
    a, b = gis[world.gi_a.id], gis[world.gi_b.id]
    assert data["groups"][0]["key"]["gi"] == {"id": world.gi_a.id, "name_zh": "亳白芍", "name_en": "Bo Bai Shao"}
    assert a["coverage"] == coverage(2, 2, 100.0, True, 0)
    assert b["coverage"] == coverage(1, 0, 0.0, False, 1)
    assert a["marks"] == MARKS_2025 and b["marks"]["issued"] == 0
    assert a["findings"]["total"] == 1 and b["findings"]["total"] == 0
    assert a["output"] == {"reports_due": 2, "reports_submitted": 2, "reports_missing": 0, "reports_late": 1,
                           "output_kg": 1334.5, "output_value_yuan": 103765.43}
    assert b["output"]["reports_missing"] == 1
    # One GI only: the same figures as its group.
    only = world.stats(world.authority, year=2025, gi_id=world.gi_b.id)
    assert only["scope"]["gi"]["name_zh"] == "亳菊" and only["total"] == b

    national = world.stats(world.national, year=2026, group_by="gi")
    gis = by_key([g for g in national["groups"] if g["key"]["gi"]], "gi")
    assert gis[world.gi_a.id]["checks"]["total"] == 11      # the forged code claims 亳白芍
    assert gis[world.gi_a.id]["findings"]["total"] == 3 and gis[world.gi_b.id]["findings"]["total"] == 1
    assert gis[world.gi_a.id]["cases"]["opened"] == 2 and gis[world.gi_b.id]["cases"]["opened"] == 1
    no_gi = national["groups"][-1]
    assert no_gi["key"]["gi"] is None and no_gi["figures"]["checks"]["by_verdict"]["malformed"] == 1


def test_series_by_year(world):
    """Does a from_year..to_year series give each year its own figures, and the period total coverage over the whole
    span (4 entities in force at some time, 2 of them used marks)?"""
    data = world.stats(world.authority, from_year=2025, to_year=2026, group_by="year")
    assert data["period"]["from_year"] == 2025 and data["period"]["to_year"] == 2026
    assert data["period"]["complete"] is False
    years = {g["key"]["year"]: g["figures"] for g in data["groups"]}
    assert list(years) == [2025, 2026]
    assert years[2025]["coverage"] == coverage(3, 2, 66.7, False, 1)
    assert years[2026]["coverage"] == coverage(4, 1, 25.0, False, 3)
    assert years[2025]["marks"] == MARKS_2025 and years[2026]["marks"] == MARKS_2026
    t = data["total"]
    assert t["coverage"] == coverage(4, 2, 50.0, False, 2)
    assert t["marks"] == {k: MARKS_2025[k] + MARKS_2026[k] for k in MARKS_2025}
    assert t["checks"]["total"] == 11 and t["findings"]["total"] == 4
    assert t["output"]["reports_due"] == 7 and t["output"]["reports_missing"] == 5
    # Without group_by the series has only its total.
    assert world.stats(world.authority, from_year=2025, to_year=2026)["total"] == t


def test_output_agrees_with_the_annual_report_listing(world, client):
    """Do the reports due, submitted and missing agree with the annual-report listing of the same authority?"""
    listing = client.get(f"{API}/annual-reports", headers=world.authority.headers, query_string={"year": 2025}).json
    output = world.stats(world.authority, year=2025)["total"]["output"]
    summary = listing["summary"]
    assert (output["reports_due"], output["reports_submitted"], output["reports_missing"], output["reports_late"]) \
        == (summary["authorized"], summary["submitted"], summary["not_submitted"], summary["late"])
