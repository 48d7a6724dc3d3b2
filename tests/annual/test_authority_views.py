"""The authorities' side: who had to report and who is missing, the rollup per GI for the provincial filing,
and both as CSV (UTF-8 with BOM, Chinese headers) and PDF (a table with Chinese text), plus the producer's PDF.

The users of 亳白芍 in 2025 (`users`), besides the season's producer (submits on 20 January):

* 芍花堂 (341602), approved April 2025, 200 marks issued and 120 activated, submits late on 10 February;
* 利辛 (341623), approved May 2025, 100 marks issued, leaves its report a draft;
* 涡阳 (341621), approved February 2025 and suspended in August: still had to report, never opens it;
* 杭州 (330106, another province), approved March 2025 by 亳州's authority, never reports;
* revoked in 2024, and approved only in January 2026: neither had to report 2025.

And 亳菊, a second GI of the same authority, with one user that submits on time without marks.
"""
from __future__ import annotations

import csv
import datetime as dt
import io
from dataclasses import dataclass

import pypdfium2
import pytest

from gi_service.models import AuthorizationStatus
from gi_service.services import producers

from ..xlsx import read_download
from .conftest import API, PRODUCER_NAME, cst, ok, supply

LISTING = f"{API}/annual-reports"
ROLLUP = f"{API}/annual-reports/rollup"


@dataclass
class Users:
    late: object
    draft: object
    suspended: object
    far: object
    revoked: object
    newcomer: object
    chrysanthemum: object
    g2: object
    reports: dict


def transition(season, auth, to: AuthorizationStatus) -> None:
    producers.transition_authorization(season.factory.session, auth.id, to, by=season.authority.principal,
                                       reason="test")
    season.factory.session.commit()


def declare_and_submit(season, actor, output_kg, value, **query) -> dict:
    url = f"{API}/annual-reports/2025/mine"
    ok(season.client.patch(url, headers=actor.headers, json={"output_kg": output_kg, "output_value_yuan": value},
                           query_string=query))
    return ok(season.client.post(f"{url}/submit", headers=actor.headers, query_string=query))


@pytest.fixture
def users(season, factory, reused_world) -> Users:
    """The users above, on top of the season: built once per test process and database, then restored; each
    test starts on 15 February 2026 at 09:00, where the building ended."""
    def rebind(_: Users) -> None:
        season.clock.set(BUILT_AT)

    return reused_world("annual-users", lambda: build_users(season, factory), rebind)


BUILT_AT = cst(2026, 2, 15, 9, 0)


def build_users(season, factory) -> Users:
    clock = season.clock
    clock.set(cst(2024, 3, 1, 9, 0))
    revoked = factory.producer("341602", name="谯城区已撤销合作社")
    auth = factory.authorization(revoked, season.gi, season.authority)
    clock.set(cst(2024, 10, 1, 9, 0))
    transition(season, auth, AuthorizationStatus.revoked)

    clock.set(cst(2025, 2, 1, 9, 0))
    suspended = factory.producer("341621", name="涡阳县芍药种植合作社")
    auth = factory.authorization(suspended, season.gi, season.authority)
    g2 = factory.gi(season.authority, name_zh="亳菊", area_adcodes=("341602",))
    clock.set(cst(2025, 3, 1, 9, 0))
    far = factory.producer("330106", name="杭州芍药贸易有限公司")
    factory.authorization(far, season.gi, season.authority)
    chrysanthemum = factory.producer("341602", name="亳州市亳菊产业有限公司")
    factory.authorization(chrysanthemum, g2, season.authority)
    clock.set(cst(2025, 4, 1, 9, 0))
    late = factory.producer("341602", name="亳州市芍花堂饮片有限公司")
    factory.authorization(late, season.gi, season.authority)
    supply(season, late, 200, 120, "SHT-1")
    clock.set(cst(2025, 5, 1, 9, 0))
    draft = factory.producer("341623", name="利辛县白芍专业合作社")
    factory.authorization(draft, season.gi, season.authority)
    supply(season, draft, 100, 0, "-")
    clock.set(cst(2025, 8, 1, 9, 0))
    transition(season, auth, AuthorizationStatus.suspended)
    clock.set(cst(2026, 1, 3, 9, 0))
    newcomer = factory.producer("341602", name="谯城区新授权合作社")
    factory.authorization(newcomer, season.gi, season.authority)

    reports = {}
    clock.set(cst(2026, 1, 15, 9, 0))
    reports["draft"] = ok(season.client.get(f"{API}/annual-reports/2025/mine", headers=draft.headers))
    clock.set(cst(2026, 1, 20, 9, 0))
    reports["season"] = declare_and_submit(season, season.producer, "180000.5", "5400000.00")
    clock.set(cst(2026, 1, 28, 9, 0))
    reports["chrysanthemum"] = declare_and_submit(season, chrysanthemum, 500, 20000)
    clock.set(cst(2026, 2, 10, 9, 0))
    reports["late"] = declare_and_submit(season, late, "3000.125", "96000.10")
    clock.set(BUILT_AT)
    return Users(late, draft, suspended, far, revoked, newcomer, chrysanthemum, g2, reports)


def listing(season, actor=None, **query) -> dict:
    return ok(season.client.get(LISTING, headers=(actor or season.authority).headers,
                                query_string={"year": 2025, **query}))


def by_name(data: dict) -> dict[str, dict]:
    return {row["producer"]["name"]: row for row in data["items"]}


def test_listing_shows_who_is_missing(season, users):
    """Does the GI's authority see every producer that had to report 2025 — approved or suspended during the
    year, wherever it is registered — with submitted (on time or late), draft or missing, and nobody else?"""
    data = listing(season)
    rows = by_name(data)
    assert set(rows) == {PRODUCER_NAME, "亳州市芍花堂饮片有限公司", "利辛县白芍专业合作社", "涡阳县芍药种植合作社",
                         "杭州芍药贸易有限公司", "亳州市亳菊产业有限公司"}
    status = {name: (r["status"], r["late"], r["overdue"]) for name, r in rows.items()}
    assert status == {PRODUCER_NAME: ("submitted", False, False),
                      "亳州市芍花堂饮片有限公司": ("submitted", True, False),
                      "利辛县白芍专业合作社": ("draft", False, True),
                      "涡阳县芍药种植合作社": ("missing", False, True),
                      "杭州芍药贸易有限公司": ("missing", False, True),
                      "亳州市亳菊产业有限公司": ("submitted", False, False)}
    assert rows["涡阳县芍药种植合作社"]["authorization"]["states_in_year"] == ["approved", "suspended"]
    assert rows["涡阳县芍药种植合作社"]["report_id"] is None
    assert data["summary"] == {"authorized": 6, "submitted": 3, "on_time": 2, "late": 1, "draft": 1, "missing": 2,
                               "overdue": 3, "not_submitted": 3}
    assert (data["due_date"], data["filing_deadline"], data["due_passed"]) == ("2026-01-31", "2026-03-31", True)
    assert rows[PRODUCER_NAME]["marks"]["received"] == 1500 and rows[PRODUCER_NAME]["output_kg"] == 180000.5


@pytest.mark.parametrize("status, names", [
    ("missing", {"涡阳县芍药种植合作社", "杭州芍药贸易有限公司"}),
    ("late", {"亳州市芍花堂饮片有限公司"}),
    ("overdue", {"涡阳县芍药种植合作社", "杭州芍药贸易有限公司", "利辛县白芍专业合作社"}),
    ("draft", {"利辛县白芍专业合作社"}),
])
def test_listing_filters(season, users, status, names):
    """Does ?status= keep exactly the producers in that state (the summary still counting everyone)?"""
    data = listing(season, status=status)
    assert set(by_name(data)) == names and data["summary"]["authorized"] == 6


def test_listing_by_gi_and_region(season, users):
    """Do ?gi_id= and ?adcode= (producers registered inside the division) narrow the listing?"""
    assert set(by_name(listing(season, gi_id=users.g2.id))) == {"亳州市亳菊产业有限公司"}
    assert set(by_name(listing(season, adcode="341623"))) == {"利辛县白芍专业合作社"}
    assert len(listing(season, adcode="341600")["items"]) == 5
    assert listing(season, adcode="341600")["region"]["name"] == "亳州市"
    r = season.client.get(LISTING, headers=season.authority.headers, query_string={"year": 2025, "adcode": "999999"})
    assert (r.status_code, r.json["error"]) == (422, "unknown_adcode")


def test_each_supervisor_sees_its_jurisdiction(season, users, factory):
    """Does the province (above the GI's authority) see every user of the GI, an inspection unit only the
    producers in its area, another province's authority only its own producer, and a far inspection unit none?"""
    assert len(listing(season, factory.authority("340000"))["items"]) == 6
    assert set(by_name(listing(season, factory.inspection("341600")))) == {
        PRODUCER_NAME, "亳州市芍花堂饮片有限公司", "利辛县白芍专业合作社", "涡阳县芍药种植合作社", "亳州市亳菊产业有限公司"}
    assert set(by_name(listing(season, factory.authority("330100")))) == {"杭州芍药贸易有限公司"}
    assert listing(season, factory.inspection("440100"))["items"] == []


def test_rollup_per_gi(season, users):
    """Does the rollup of 亳州 sum the submitted reports per GI (marks, lots, quota, output quantity and value,
    exactly), count who has not submitted, leave out the producer registered in another province, and show the
    provincial filing deadline?"""
    data = ok(season.client.get(ROLLUP, headers=season.authority.headers, query_string={"year": 2025}))
    assert data["region"]["adcode"] == "341600"
    assert (data["filing_deadline"], data["days_to_filing_deadline"], data["filing_deadline_passed"]) == \
        ("2026-03-31", 44, False)
    g1, g2 = data["items"]
    assert g1["gi"] == {"id": season.gi.id, "name_zh": "亳白芍"}
    assert g1["producers"] == {"authorized": 4, "submitted": 2, "late": 1, "draft": 1, "missing": 1,
                               "not_submitted": 2}
    # The season's 1,500 received and the late producer's 200; the draft's 100 are not summed.
    assert g1["marks"] == {"received": 1700, "activated": 770, "voided": 25, "lost": 10, "stolen": 5,
                           "closing_stock": 895}
    assert (g1["lots"]["count"], g1["lots"]["packs"], g1["lots"]["declared_kg"]) == (3, 820, 205.0)
    assert g1["quota"]["consumed_kg"] == 425.0
    assert (g1["output_kg_exact"], g1["output_value_yuan_exact"]) == ("183000.625", "5496000.10")
    assert g2["producers"]["submitted"] == 1 and g2["output_kg"] == 500.0 and g2["marks"]["received"] == 0
    total = data["total"]
    assert total["producers"]["authorized"] == 5 and total["producers"]["not_submitted"] == 2
    assert (total["output_kg_exact"], total["output_value_yuan_exact"]) == ("183500.625", "5516000.10")
    assert total["marks"]["received"] == 1700
    other = ok(season.client.get(ROLLUP, headers=season.authority.headers,
                                 query_string={"year": 2025, "adcode": "330000"}))
    assert [g["producers"]["missing"] for g in other["items"]] == [1]


def test_listing_and_rollup_as_csv(season, users):
    """Are the CSV files UTF-8 with a byte-order mark and Chinese headers, and do they parse back to the
    JSON figures?"""
    r = season.client.get(LISTING, headers=season.authority.headers, query_string={"year": 2025, "format": "csv"})
    assert r.status_code == 200 and r.mimetype == "text/csv" and r.data.startswith(b"\xef\xbb\xbf")
    assert 'filename="annual-reports-2025.csv"' in r.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(r.data.decode("utf-8-sig"))))
    assert len(rows) == 6 and "生产者 (producer)" in rows[0] and "产值元 (output_value_yuan)" in rows[0]
    mine = next(row for row in rows if row["生产者 (producer)"] == PRODUCER_NAME)
    assert mine["报告状态 (status)"] == "已提交 submitted" and mine["提交时间 (submitted_at, China time)"] == \
        "2026-01-20 09:00"
    assert (mine["领取标志 (received)"], mine["年末库存 (closing_stock)"], mine["产量kg (output_kg)"],
            mine["产值元 (output_value_yuan)"]) == ("1500", "815", "180000.500", "5400000.00")
    late = next(row for row in rows if row["生产者 (producer)"] == "亳州市芍花堂饮片有限公司")
    assert late["逾期提交 (late)"] == "是 yes"
    missing = next(row for row in rows if row["生产者 (producer)"] == "涡阳县芍药种植合作社")
    assert missing["报告状态 (status)"] == "未提交 missing" and missing["领取标志 (received)"] == ""

    r = season.client.get(ROLLUP, headers=season.authority.headers, query_string={"year": 2025, "format": "csv"})
    assert r.data.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(r.data.decode("utf-8-sig"))))
    assert [row["地理标志 (GI)"] for row in rows] == ["亳白芍", "亳菊", "合计 Total"]
    assert (rows[0]["领取标志 (received)"], rows[0]["产量kg (output_kg)"], rows[0]["产值元 (output_value_yuan)"]) == \
        ("1700", "183000.625", "5496000.10")
    assert rows[2]["授权使用人 (authorized)"] == "5" and rows[2]["未提交 (missing)"] == "1"


def test_a_name_that_looks_like_a_formula_is_inert_in_the_csv(season, users):
    """Does a producer's name typed as a spreadsheet formula reach the authority's CSV as text after an apostrophe
    (so Excel shows it and runs nothing), while the JSON keeps the name as typed?"""
    hostile = '=HYPERLINK("http://evil.example","点击")'
    org = season.factory.session.get(type(users.late.org), users.late.org.id)
    org.name = hostile
    season.factory.session.commit()
    assert hostile in by_name(listing(season))
    r = season.client.get(LISTING, headers=season.authority.headers, query_string={"year": 2025, "format": "csv"})
    rows = list(csv.DictReader(io.StringIO(r.data.decode("utf-8-sig"))))
    assert "'" + hostile in [row["生产者 (producer)"] for row in rows]
    assert hostile not in [row["生产者 (producer)"] for row in rows]


def test_listing_and_rollup_as_excel(season, users):
    """Are the listing and the rollup Excel workbooks with the CSV's Chinese headers, the submission time a China-time
    date-time cell, the flags 是/否, the amounts numbers with their decimals, and the same from the page's link?"""
    h = season.authority.headers
    sheet = read_download(season.client.get(LISTING, headers=h, query_string={"year": 2025, "format": "xlsx"}))
    assert "生产者 (producer)" in sheet.header and "提交时间 (submitted_at, China time)" in sheet.header
    rows = sheet.dicts()
    assert len(rows) == 6
    i = next(n for n, row in enumerate(rows) if row["生产者 (producer)"] == PRODUCER_NAME)
    mine = rows[i]
    assert mine["提交时间 (submitted_at, China time)"] == dt.datetime(2026, 1, 20, 9, 0)
    assert sheet.cell(i, "submitted_at, China time").is_date
    assert (mine["领取标志 (received)"], mine["产量kg (output_kg)"], mine["产值元 (output_value_yuan)"]) == \
        (1500, 180000.5, 5400000.0)
    assert sheet.cell(i, "output_value_yuan").number_format == "#,##0.00"
    assert sheet.cell(i, "output_kg").number_format == "#,##0.000"
    assert mine["统一社会信用代码 (USCC)"] == season.producer.org.uscc and mine["逾期提交 (late)"] == "否 no"
    missing = next(row for row in rows if row["生产者 (producer)"] == "涡阳县芍药种植合作社")
    assert missing["领取标志 (received)"] is None

    r = season.client.get(ROLLUP, headers=h, query_string={"year": 2025, "format": "xlsx"})
    assert 'filename="annual-rollup-2025-' in r.headers["Content-Disposition"]
    rollup = read_download(r).dicts()
    assert [row["地理标志 (GI)"] for row in rollup] == ["亳白芍", "亳菊", "合计 Total"]
    assert (rollup[0]["产量kg (output_kg)"], rollup[0]["产值元 (output_value_yuan)"]) == (183000.625, 5496000.1)
    assert rollup[2]["授权使用人 (authorized)"] == 5

    page = read_download(season.client.get("/app/annual-reports/export", headers=h,
                                           query_string={"what": "rollup", "year": 2025, "format": "xlsx"}))
    assert page.dicts() == rollup


def pdf_text(data: bytes) -> str:
    pdf = pypdfium2.PdfDocument(data)
    return "\n".join(pdf[i].get_textpage().get_text_range() for i in range(len(pdf)))


def test_listing_rollup_and_report_as_pdf(season, users):
    """Are the PDFs real documents whose extracted text holds the title, the year, the deadlines and the
    Chinese names of the producers and the GI?"""
    h = season.authority.headers
    r = season.client.get(LISTING, headers=h, query_string={"year": 2025, "format": "pdf"})
    assert r.status_code == 200 and r.mimetype == "application/pdf" and r.data.startswith(b"%PDF")
    text = pdf_text(r.data)
    for expected in ("2025年度", PRODUCER_NAME, "涡阳县芍药种植合作社", "未提交", "2026-01-31", "2026-03-31", "逾期"):
        assert expected in text, expected

    r = season.client.get(ROLLUP, headers=h, query_string={"year": 2025, "format": "pdf"})
    assert r.data.startswith(b"%PDF")
    text = pdf_text(r.data)
    for expected in ("汇总", "2025", "亳白芍", "亳菊", "合计", "183000.625", "2026-03-31", "亳州市"):
        assert expected in text, expected

    own = season.client.get(f"{API}/annual-reports/2025/mine", headers=season.producer.headers,
                            query_string={"format": "pdf"})
    assert own.status_code == 200 and own.data.startswith(b"%PDF")
    text = pdf_text(own.data)
    for expected in (PRODUCER_NAME, "亳白芍", "2025", "已提交", "1500", "815", "180000.500"):
        assert expected in text, expected
    by_id = season.client.get(f"{API}/annual-reports/{users.reports['draft']['id']}", headers=h,
                              query_string={"format": "pdf"})
    text = pdf_text(by_id.data)
    assert "利辛县白芍专业合作社" in text and "草稿" in text and "OVERDUE" in text
