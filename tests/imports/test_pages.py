"""The import page: templates, an upload checked as a dry run with its report row by row, the confirmation that
imports the checked file (all rows or none), and who may use it."""
from __future__ import annotations

import io
import re

from sqlalchemy import select

from gi_service.models import OrgKind, Organisation
from gi_service.services.uscc import make_uscc

from ..xlsx import XLSX
from .conftest import PRODUCER_HEADER, xlsx


def uscc(n: int) -> str:
    return make_uscc("9", "1", "341602", f"QX{n:06d}")


def check(world, data: bytes, kind: str = "producers", filename: str = "producers.xlsx"):
    return world.client.post("/app/imports/check", headers=world.authority.headers,
                             data={"kind": kind, "file": (io.BytesIO(data), filename)},
                             content_type="multipart/form-data")


def hidden(html: str) -> dict[str, str]:
    form = html[html.index('id="import-confirm"'):]
    return dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', form))


def test_the_page_offers_the_templates(world):
    """Does the page list the three imports' templates (Excel and CSV) and each column, for authorities only?"""
    r = world.client.get("/app/imports", headers=world.authority.headers)
    assert r.status_code == 200
    html = r.get_data(as_text=True)
    for kind in ("producers", "authorizations", "plots"):
        assert f'id="template-{kind}-xlsx"' in html and f'id="template-{kind}-csv"' in html
    assert "统一社会信用代码 (uscc)" in html
    t = world.client.get("/app/imports/template", headers=world.authority.headers,
                         query_string={"kind": "plots", "format": "xlsx"})
    assert t.status_code == 200 and t.mimetype == XLSX
    assert world.client.get("/app/imports/template", headers=world.authority.headers,
                            query_string={"kind": "printers"}).status_code == 404
    assert world.client.get("/app/imports/template", headers=world.authority.headers,
                            query_string={"kind": "plots", "format": "xls"}).status_code == 422
    producer = world.factory.producer("341602")
    assert world.client.get("/app/imports", headers=producer.headers).status_code == 403


def test_check_shows_every_bad_row_then_confirm_imports_the_checked_file(world, session):
    """Does an upload with bad rows show each row, column and problem (422, nothing written); does a good one show
    the counts and a confirmation that writes the rows (303) and cannot be replayed once done?"""
    bad = xlsx([PRODUCER_HEADER, ["亳州市芍花堂饮片有限公司", uscc(1)[:17] + "0", None, None],
                ["谯城区合作社", uscc(2), "440100", None]])
    r = check(world, bad)
    assert r.status_code == 422 and r.headers["X-Error-Code"] == "import_rows_invalid"
    html = r.get_data(as_text=True)
    table = html[html.index('id="import-problems"'):]
    assert re.search(r'<td class="num">2</td><td class="mono">uscc</td>\s*<td>统一社会信用代码有误：USCC position 18', table)
    assert '<td class="num">3</td><td class="mono">adcode</td>' in table
    assert 'id="import-confirm"' not in html

    good = xlsx([PRODUCER_HEADER, ["亳州市芍花堂饮片有限公司", uscc(1), None, "张三"], ["谯城区合作社", uscc(2), None, None]])
    r = check(world, good)
    assert r.status_code == 200
    html = r.get_data(as_text=True)
    assert 'id="import-ready"' in html
    session.rollback()
    assert session.scalar(select(Organisation.id).where(Organisation.kind == OrgKind.producer)) is None
    fields = hidden(html)
    assert fields["kind"] == "producers" and len(fields["sha256"]) == 64
    r = world.client.post("/app/imports/confirm", headers=world.authority.headers, data=fields)
    assert r.status_code == 303, r.get_data(as_text=True)[:500]
    session.rollback()
    assert [o.name for o in session.scalars(select(Organisation).where(Organisation.kind == OrgKind.producer)
                                            .order_by(Organisation.id))] == ["亳州市芍花堂饮片有限公司", "谯城区合作社"]
    page = world.client.get("/app/imports", headers=world.authority.headers).get_data(as_text=True)
    assert "producers.xlsx" in page[page.index('id="import-runs"'):]
    again = world.client.post("/app/imports/confirm", headers=world.authority.headers, data=fields)
    assert again.status_code == 404                     # the checked file was dropped once imported
    forged = world.client.post("/app/imports/confirm", headers=world.authority.headers,
                               data={**fields, "sha256": "../../etc/passwd"})
    assert forged.status_code == 422


def test_a_later_check_replaces_the_pending_file(world, session):
    """Does a second check replace the first as the user's pending import, so confirming the first imports nothing
    (404) and confirming the second imports the second?"""
    first = hidden(check(world, xlsx([PRODUCER_HEADER, ["亳州市芍花堂饮片有限公司", uscc(1), None, None]])).get_data(
        as_text=True))
    second = hidden(check(world, xlsx([PRODUCER_HEADER, ["谯城区合作社", uscc(2), None, None]])).get_data(as_text=True))
    assert world.client.post("/app/imports/confirm", headers=world.authority.headers, data=first).status_code == 404
    assert world.client.post("/app/imports/confirm", headers=world.authority.headers, data=second).status_code == 303
    session.rollback()
    assert [o.name for o in session.scalars(select(Organisation).where(Organisation.kind == OrgKind.producer))] == \
        ["谯城区合作社"]


def test_a_file_refused_as_a_whole_is_shown_on_the_page(world):
    """Is a workbook refused as a whole (missing columns; not a workbook) shown on the page with its status?"""
    r = check(world, xlsx([["名称"], ["亳州市芍花堂饮片有限公司"]]))
    assert r.status_code == 422 and r.headers["X-Error-Code"] == "missing_columns"
    r = check(world, b"PK\x03\x04 not really", filename="x.xlsx")
    assert r.status_code == 422 and r.headers["X-Error-Code"] == "unreadable_file"
    r = world.client.post("/app/imports/check", headers=world.authority.headers, data={"kind": "printers"},
                          content_type="multipart/form-data")
    assert r.status_code == 422


def test_the_producers_page_links_the_import_for_authorities(world):
    """Does the producers' page link the import page for an authority, and not for an inspection unit?"""
    html = world.client.get("/app/producers", headers=world.authority.headers).get_data(as_text=True)
    assert '<a href="/app/imports" id="bulk-import">' in html
    inspection = world.factory.inspection("341600")
    assert 'id="bulk-import"' not in world.client.get("/app/producers", headers=inspection.headers).get_data(
        as_text=True)
