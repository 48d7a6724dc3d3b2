"""Reading the audit trail: authorities only, each for the organisations in its jurisdiction; search by user,
organisation, action, target, outcome and time; page back; download every match as CSV, on the API and the page."""
from __future__ import annotations

import csv
import io

import pytest

HTML = {"Accept": "text/html"}


@pytest.fixture
def world(client, factory, reused_world):
    """Records by staff in Bozhou (341600) and in Guangzhou (440100), and a refused sign-in of an unknown name.

    Made once per test process and database, then restored for each test (`reused_world`): the trail's records,
    their chain and its head are rows like any other, and the tests only read them (the actors' columns, through
    the API)."""
    def build() -> dict:
        bozhou, guangzhou = factory.authority("341600"), factory.authority("440100")
        national = factory.authority("100000")
        producer = factory.producer("341602")
        for n in range(3):
            client.post("/api/v1/tokens", headers=producer.headers, json={"name": f"p{n}"})
        client.post("/api/v1/tokens", headers=guangzhou.headers, json={"name": "g"})
        client.post("/api/v1/tokens", headers=bozhou.headers, json={"name": ""})         # refused: 422
        client.post("/api/v1/auth/login", json={"username": "=cmd|' /C calc'!A0", "password": "x"})
        token_id = client.get("/api/v1/tokens", headers=producer.headers).json["tokens"][1]["id"]
        client.delete(f"/api/v1/tokens/{token_id}", headers=producer.headers)
        return dict(bozhou=bozhou, guangzhou=guangzhou, national=national, producer=producer, token_id=token_id)

    return reused_world("audit-read", build, lambda world: None)


def get(client, actor, **params):
    return client.get("/api/v1/audit", headers=actor.headers, query_string=params)


def test_an_authority_reads_its_jurisdiction_only_and_the_national_one_reads_all(client, world):
    """Does Bozhou see its own and its producer's records but not Guangzhou's or the unknown sign-in, and does the
    national authority see all?"""
    mine = get(client, world["bozhou"]).json["records"]
    assert {r["username"] for r in mine} == {world["producer"].principal.username, world["bozhou"].principal.username}
    everything = get(client, world["national"]).json["records"]
    assert len(everything) == 7 and {r["org_adcode"] for r in everything} == {"341602", "341600", "440100", None}
    guangzhou = get(client, world["guangzhou"]).json["records"]
    assert [r["organisation_id"] for r in guangzhou] == [world["guangzhou"].org.id]


@pytest.mark.parametrize("who", ["producer", "anonymous"])
def test_only_authorities_read_the_trail(client, world, who):
    resp = client.get("/api/v1/audit", headers=world["producer"].headers if who == "producer" else {})
    assert resp.status_code == (403 if who == "producer" else 401)


def test_search_by_user_organisation_action_target_outcome_and_time(client, world):
    """Does each filter narrow the search, newest first?"""
    n, p = world["national"], world["producer"]
    assert len(get(client, n, username=p.principal.username).json["records"]) == 4
    assert len(get(client, n, user_id=p.principal.user_id).json["records"]) == 4
    assert len(get(client, n, organisation_id=world["guangzhou"].org.id).json["records"]) == 1
    assert {r["action"] for r in get(client, n, action="api.create_token").json["records"]} == {"api.create_token"}
    assert len(get(client, n, action="api.*").json["records"]) == 7
    [r] = get(client, n, target=f"token:{world['token_id']}").json["records"]
    assert r["action"] == "api.revoke_token"
    failures = get(client, n, outcome="failure").json["records"]
    assert [r["error_code"] for r in failures] == ["invalid_credentials", "validation_failed"]
    today = get(client, n, date_from="2000-01-01", date_to="2099-12-31").json["records"]
    assert len(today) == 7 and get(client, n, date_to="2000-01-01").json["records"] == []
    ids = [r["id"] for r in get(client, n).json["records"]]
    assert ids == sorted(ids, reverse=True)


def test_paging_back_with_before_id(client, world):
    first = get(client, world["national"], limit=3).json
    second = get(client, world["national"], limit=3, before_id=first["next_before_id"]).json
    third = get(client, world["national"], limit=3, before_id=second["next_before_id"]).json
    ids = [r["id"] for page in (first, second, third) for r in page["records"]]
    assert len(ids) == 7 and ids == sorted(set(ids), reverse=True) and third["next_before_id"] is None


@pytest.mark.parametrize("params,field", [({"outcome": "maybe"}, "outcome"), ({"action": "drop table"}, "action"),
                                          ({"date_from": "2026-02-30"}, "date_from"), ({"who": "x"}, "who"),
                                          ({"date_from": "2026-05-02", "date_to": "2026-05-01"}, None)])
def test_malformed_searches_are_refused_saying_what_to_fix(client, world, params, field):
    resp = get(client, world["national"], **params)
    assert resp.status_code in (400, 422) and resp.json["message"]
    if field:
        assert field in resp.get_data(as_text=True)


def test_the_csv_download_holds_every_match_with_chinese_headers_and_inert_cells(client, world):
    """Does format=csv download every matching record (not a page), Chinese headers first, with a text cell that
    a spreadsheet would run as a formula made inert?"""
    resp = get(client, world["national"], format="csv", limit=1)
    assert resp.status_code == 200 and resp.mimetype == "text/csv"
    assert "attachment" in resp.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(resp.get_data().decode("utf-8-sig"))))
    assert rows[0][:3] == ["记录编号 (id)", "链序号 (seq)", "时间 (at, China time)"] and len(rows) == 1 + 7
    usernames = [row[9] for row in rows[1:]]
    assert "'=cmd|' /C calc'!A0" in usernames
    bozhou = list(csv.reader(io.StringIO(get(client, world["bozhou"], format="csv").get_data().decode("utf-8-sig"))))
    assert len(bozhou) == 1 + 5


def test_the_excel_download_holds_every_match_typed_with_formula_looking_text_as_text(client, world):
    """Does format=xlsx download every matching record as a workbook — Chinese headers, the header row frozen,
    ids as numbers, the time as a date-time, and a username that looks like a formula kept as text?"""
    import datetime as dt

    from tests.xlsx import read_download

    sheet = read_download(get(client, world["national"], format="xlsx", limit=1))
    assert sheet.header[:3] == ["记录编号 (id)", "链序号 (seq)", "时间 (at)"] and len(sheet.rows) == 7
    assert sheet.ws.freeze_panes == "A2"
    rows = sheet.dicts()
    assert all(isinstance(r["记录编号 (id)"], int) and isinstance(r["时间 (at)"], dt.datetime) for r in rows)
    cell = next(sheet.cell(i, "username") for i, r in enumerate(rows) if r["用户名 (username)"] == "=cmd|' /C calc'!A0")
    assert cell.data_type == "s"                                    # a string, never a formula
    assert len(read_download(get(client, world["bozhou"], format="xlsx")).rows) == 5


def test_the_audit_page_searches_and_downloads_for_authorities_only(client, world):
    """Does /app/audit list the jurisdiction's records with the search applied, offer the download, and refuse
    other kinds of account?"""
    headers = {**HTML, **world["bozhou"].headers}
    page = client.get("/app/audit", headers=headers)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "审计日志" in html and html.count('<tr id="audit-') == 5
    page = client.get("/app/audit", headers=headers, query_string={"outcome": "failure"})
    assert page.get_data(as_text=True).count("<tr id=\"audit-") == 1
    bad = client.get("/app/audit", headers=headers, query_string={"date_from": "yesterday"})
    assert bad.status_code == 422 and bad.headers["X-Error-Code"] == "validation_failed"
    download = client.get("/app/audit", headers=headers, query_string={"format": "csv", "outcome": "success"})
    assert download.mimetype == "text/csv" and len(download.get_data().decode("utf-8-sig").splitlines()) == 1 + 4
    assert client.get("/app/audit", headers={**HTML, **world["producer"].headers}).status_code == 403
