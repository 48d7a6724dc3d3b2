"""Bulk imports through the API: a dry run reports every bad row and writes nothing, a real run writes all rows
or none, a second run of the same file changes nothing, and the file-level refusals (size, rows, zip bombs, XML
entities, role) come before any row is read."""
from __future__ import annotations

import io
import zipfile

import openpyxl
from sqlalchemy import func, select

from gi_service.models import Authorization, AuthorizationStatus, ImportRun, OrgKind, Organisation, Plot
from gi_service.services.uscc import make_uscc

from ..xlsx import XLSX
from .conftest import API, PRODUCER_HEADER, csv_bytes, with_member, xlsx


def producers_in(session) -> list[tuple[str, str, str]]:
    session.rollback()   # a new transaction: see what the requests committed
    return list(session.execute(select(Organisation.name, Organisation.uscc, Organisation.adcode)
                                .where(Organisation.kind == OrgKind.producer).order_by(Organisation.id)))


def uscc(n: int, adcode: str = "341602") -> str:
    return make_uscc("9", "1", adcode, f"QX{n:06d}")


def bad_check_character(code: str) -> str:
    return code[:17] + ("0" if code[17] != "0" else "1")


def test_templates_show_the_expected_columns(world):
    """Does each template (Excel with an explanation sheet, or CSV) list the import's columns as "中文 (key)", the
    required ones marked, and is it for authorities only?"""
    r = world.client.get(f"{API}/imports/plots/template", headers=world.authority.headers)
    assert r.status_code == 200 and r.mimetype == XLSX
    assert r.headers["Content-Disposition"] == 'attachment; filename="import-plots-template.xlsx"'
    wb = openpyxl.load_workbook(io.BytesIO(r.data))
    data, notes = wb.worksheets
    assert [c.value for c in data[1]] == ["生产者统一社会信用代码 (uscc)", "地块编号 (plot_code)", "地理标志编号 (gi_id)",
                                          "地块名称 (name)", "调查年度 (survey_year)", "边界 (boundary)"]
    assert data.freeze_panes == "A2" and data.column_dimensions["A"].number_format == "@"
    explained = {row[0]: row for row in notes.iter_rows(min_row=2, values_only=True) if row[0]}
    assert explained["边界 (boundary)"][1] == "是 yes" and "WKT" in explained["边界 (boundary)"][2]
    r = world.client.get(f"{API}/imports/producers/template", headers=world.authority.headers,
                         query_string={"format": "csv"})
    assert r.mimetype == "text/csv" and r.data.decode("utf-8-sig").splitlines()[0].startswith("名称 (name),统一社会信用代码")
    producer = world.factory.producer("341602")
    r = world.client.get(f"{API}/imports/producers/template", headers=producer.headers)
    assert (r.status_code, r.json["error"]) == (403, "wrong_role")


def test_dry_run_reports_every_bad_row_and_writes_nothing(world, session):
    """Does a dry run name each bad row with its spreadsheet row number, column and what to fix (a mistyped USCC by
    its position), report the good rows it would create, and leave the database as it was?"""
    good1, good2 = uscc(1), uscc(2)
    data = xlsx([PRODUCER_HEADER,
                 ["亳州市芍花堂饮片有限公司", good1, "341602", "张三 13800000000"],
                 ["涡阳县芍药种植合作社", bad_check_character(good2), None, None],
                 [None, None, None, None],                          # a blank row is skipped, its number kept
                 ["谯城区中药材合作社", good2, "440100", None],       # outside Bozhou
                 ["X", uscc(3), None, None],                         # too short a name
                 ["亳州重复公司", good1, None, None]])                 # the same USCC twice
    r = world.post("producers", data, dry_run=True)
    assert r.status_code == 200, r.json
    report = r.json
    assert (report["valid"], report["written"], report["rows"], report["created"], report["format"]) == \
        (False, False, 5, 1, "xlsx")
    problems = {(p["row"], p["column"], p["code"]) for p in report["problems"]}
    assert problems == {(3, "uscc", "invalid_uscc"), (5, "adcode", "outside_jurisdiction"),
                        (6, "name", "too_short"), (7, "uscc", "duplicate_in_file")}
    by_row = {p["row"]: p for p in report["problems"]}
    assert by_row[3]["details"]["position"] == 18 and "position 18" in by_row[3]["message"]
    assert by_row[3]["message_zh"] == "统一社会信用代码有误"
    assert by_row[7]["details"] == {"first_row": 2}
    assert report["outcomes"] == [{"row": 2, "action": "created", "id": report["outcomes"][0]["id"], "key": good1}]
    assert producers_in(session) == []
    assert session.scalar(select(func.count()).select_from(ImportRun)) == 0


def test_a_real_run_writes_all_rows_or_none_and_a_rerun_changes_nothing(world, session):
    """Is a real run with one bad row refused as a whole (422, the report as details), the corrected file written
    in one go (201, an import run recorded), and the same file imported again changed nothing?"""
    rows = [PRODUCER_HEADER, ["亳州市芍花堂饮片有限公司", uscc(1), "341602", "张三"],
            ["涡阳县芍药种植合作社", bad_check_character(uscc(2)), None, None]]
    r = world.post("producers", xlsx(rows))
    assert (r.status_code, r.json["error"]) == (422, "import_rows_invalid")
    assert r.json["details"]["problems"][0]["row"] == 3 and producers_in(session) == []
    rows[2][1] = uscc(2)
    data = xlsx(rows)
    r = world.post("producers", data)
    assert r.status_code == 201, r.json
    assert (r.json["written"], r.json["created"], r.json["unchanged"]) == (True, 2, 0)
    assert producers_in(session) == [("亳州市芍花堂饮片有限公司", uscc(1), "341602"),
                                     ("涡阳县芍药种植合作社", uscc(2), "341602")]   # the place from the USCC
    again = world.post("producers", data)
    assert again.status_code == 201
    assert (again.json["created"], again.json["unchanged"]) == (0, 2)
    assert again.json["previous_runs"][0]["id"] == r.json["run_id"]
    assert len(producers_in(session)) == 2
    runs = session.scalars(select(ImportRun).order_by(ImportRun.id)).all()
    assert [(x.kind, x.rows, x.created, x.unchanged, x.user_id) for x in runs] == \
        [("producers", 2, 2, 0, world.authority.principal.user_id), ("producers", 2, 0, 2,
                                                                     world.authority.principal.user_id)]


def test_a_changed_row_is_refused_naming_its_fields(world, session):
    """Is a row that matches a registered producer by USCC but says something else refused (record_differs with
    the fields), never overwriting the record?"""
    world.post("producers", xlsx([PRODUCER_HEADER, ["亳州市芍花堂饮片有限公司", uscc(1), None, "张三"]]))
    r = world.post("producers", xlsx([PRODUCER_HEADER, ["亳州市芍花堂饮片股份有限公司", uscc(1), None, "李四"]]),
                   dry_run=True)
    [problem] = r.json["problems"]
    assert (problem["row"], problem["column"], problem["code"]) == (2, "name", "record_differs")
    assert problem["details"]["fields"] == {"name": {"file": "亳州市芍花堂饮片股份有限公司", "record": "亳州市芍花堂饮片有限公司"},
                                            "contact": {"file": "李四", "record": "张三"}}
    assert producers_in(session)[0][0] == "亳州市芍花堂饮片有限公司"


def test_csv_in_utf8_or_gb18030(world, session):
    """Is a CSV read in UTF-8 with or without BOM and in GB18030 (what Chinese Excel's plain CSV is), with Chinese
    names intact and the encoding reported, and are its rows numbered as a spreadsheet shows them even when a
    quoted cell holds a line break?"""
    for n, encoding in enumerate(("utf-8-sig", "utf-8", "gb18030"), start=1):
        data = csv_bytes([["名称", "统一社会信用代码", "地址"], [f"亳州市第{n}中药材合作社", uscc(n), "亳州市\n谯城区"]],
                         encoding)
        r = world.post("producers", data, filename="producers.csv")
        assert r.status_code == 201, r.json
        assert (r.json["format"], r.json["encoding"]) == ("csv", encoding)
    assert [p[0] for p in producers_in(session)] == ["亳州市第1中药材合作社", "亳州市第2中药材合作社", "亳州市第3中药材合作社"]
    data = csv_bytes([["名称", "统一社会信用代码", "地址"], ["亳州市甲合作社", uscc(7), "两行\n地址"],
                      ["亳州市乙合作社", bad_check_character(uscc(8)), ""]])
    [problem] = world.post("producers", data, filename="p.csv", dry_run=True).json["problems"]
    assert (problem["row"], problem["column"]) == (3, "uscc")


def test_refusals_of_the_whole_file(world):
    """Are a non-authority (403), a file too large (413), too many rows, missing columns, an unknown column, an
    old .xls, a damaged workbook and a form without a file refused with their codes, before any row is taken?"""
    producer = world.factory.producer("341602")
    inspection = world.factory.inspection("341600")
    data = xlsx([PRODUCER_HEADER, ["亳州市芍花堂饮片有限公司", uscc(1), None, None]])
    for actor in (producer, inspection):
        r = world.post("producers", data, actor=actor)
        assert (r.status_code, r.json["error"]) == (403, "wrong_role")
    assert world.client.post(f"{API}/imports/producers", data={"file": (io.BytesIO(data), "f.xlsx")},
                             content_type="multipart/form-data").status_code == 401

    world.limits(import_max_mb=1)
    r = world.post("producers", data + b"\0" * (1024 * 1024))
    assert (r.status_code, r.json["error"]) == (413, "import_too_large")
    world.limits(import_max_mb=10, import_max_rows=2)
    r = world.post("producers", xlsx([PRODUCER_HEADER, *[[f"合作社{i}", uscc(i), None, None] for i in range(1, 4)]]))
    assert (r.status_code, r.json["error"], r.json["details"]) == (422, "too_many_rows", {"max_rows": 2})

    r = world.post("producers", xlsx([["名称 (name)", "地址"], ["亳州市芍花堂饮片有限公司", "亳州"]]))
    assert (r.status_code, r.json["error"], r.json["details"]["missing"]) == (422, "missing_columns", ["uscc"])
    r = world.post("producers", xlsx([["序号", *PRODUCER_HEADER, "联系电话", "备注"],
                                      [1, "亳州市芍花堂饮片有限公司", uscc(1), None, None, "138", "x"]]), dry_run=True)
    # A running number and remarks are read past; a column the import does not know is named.
    assert [(p["row"], p["column"], p["code"]) for p in r.json["problems"]] == [(1, "联系电话", "unknown_column")]
    r = world.post("producers", b"\xd0\xcf\x11\xe0" + b"\0" * 100, filename="old.xls")
    assert (r.status_code, r.json["error"]) == (422, "unreadable_file")
    r = world.post("producers", data[:200], filename="broken.xlsx")
    assert (r.status_code, r.json["error"]) == (422, "unreadable_file")
    r = world.client.post(f"{API}/imports/producers", headers=world.authority.headers,
                          data={"dry_run": "maybe"}, content_type="multipart/form-data")
    assert r.status_code == 422 and {d["field"] for d in r.json["details"]} == {"dry_run", "file"}
    r = world.client.post(f"{API}/imports/producers", headers=world.authority.headers, json={})
    assert r.status_code == 415


def test_zip_bombs_are_refused_before_parsing(world):
    """Is a workbook whose sheet expands a thousandfold refused as a zip bomb (unsafe_file), as is one whose parts
    together would expand beyond the limit, without the service parsing them?"""
    data = xlsx([PRODUCER_HEADER])
    bomb = with_member(data, "xl/worksheets/sheet1.xml", b"<" + b" " * (8 * 1024 * 1024))
    r = world.post("producers", bomb)
    assert (r.status_code, r.json["error"], r.json["details"]["reason"]) == (422, "unsafe_file", "zip_bomb")
    # Stored, not compressed (no ratio to see), but more than the limit once unpacked.
    world.limits(import_max_mb=1)            # unpacked at most 100 MB
    big = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(big, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            dst.writestr(info, src.read(info.filename))
        for i in range(120):
            dst.writestr(f"xl/media/pad{i}.bin", b"\0" * (1024 * 1024))
    r = world.post("producers", big.getvalue())
    assert (r.status_code, r.json["error"], r.json["details"]["reason"]) == (422, "unsafe_file", "zip_bomb")


def test_xml_entities_are_refused(world):
    """Is a workbook whose sheet declares entities (billion laughs) refused as unsafe_file, and would openpyxl
    itself parse through defusedxml?"""
    from openpyxl.xml import DEFUSEDXML

    assert DEFUSEDXML is True
    laughs = (b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>'
              b'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData><row r="1">'
              b'<c r="A1" t="inlineStr"><is><t>&lol2;</t></is></c></row></sheetData></worksheet>')
    r = world.post("producers", with_member(xlsx([PRODUCER_HEADER]), "xl/worksheets/sheet1.xml", laughs))
    assert (r.status_code, r.json["error"], r.json["details"]["reason"]) == (422, "unsafe_file", "xml_entities")


def test_authorizations_are_registered_approved_within_the_gis_jurisdiction(world, session):
    """Are authorizations imported approved with their announcement number (the basis the GI's kind allows by
    default), and refused for a GI another authority manages, a producer not registered, a duplicate row?"""
    producer = world.factory.producer("341602")
    other_authority = world.factory.authority("330100")
    elsewhere = world.factory.gi(other_authority, name_zh="西湖龙井", area_adcodes=("330106",))
    header = ["生产者统一社会信用代码 (uscc)", "地理标志编号 (gi_id)", "核准公告号 (announcement_no)", "有效期止 (valid_until)"]
    data = xlsx([header,
                 [producer.org.uscc, world.gi.id, "国家知识产权局公告第354号", "2030-12-31"],
                 [producer.org.uscc, elsewhere.id, "公告第1号", None],
                 [uscc(99), world.gi.id, "公告第2号", None],
                 [producer.org.uscc, world.gi.id, "国家知识产权局公告第354号", None],
                 [producer.org.uscc, 9999, "公告第3号", "31/12/2030"]])
    r = world.post("authorizations", data, dry_run=True)
    problems = {(p["row"], p["column"], p["code"]) for p in r.json["problems"]}
    assert problems == {(3, "gi_id", "outside_jurisdiction"), (4, "uscc", "producer_not_found"),
                        (5, "gi_id", "duplicate_in_file"), (6, "valid_until", "not_a_date")}
    r = world.post("authorizations", xlsx([header, [producer.org.uscc, world.gi.id, "国家知识产权局公告第354号",
                                                    "2030-12-31"]]))
    assert r.status_code == 201, r.json
    session.rollback()   # a new transaction: see what the requests committed
    auth = session.scalar(select(Authorization))
    assert (auth.status, auth.announcement_no, auth.basis.value, str(auth.valid_until)) == \
        (AuthorizationStatus.approved, "国家知识产权局公告第354号", "approved_producer", "2030-12-31")
    assert auth.events[0].reason.startswith("imported from file.xlsx (row 2)")
    again = world.post("authorizations", xlsx([header, [producer.org.uscc, world.gi.id, "国家知识产权局公告第354号",
                                                        None]]))
    assert (again.status_code, again.json["unchanged"]) == (201, 1)


def test_plots_by_code_with_geojson_or_wkt_boundaries(world, session):
    """Are plots imported with their code from WKT and GeoJSON boundaries, matched again by USCC and code (unchanged
    on a re-import), and refused with a duplicate code in the file, coordinates that are not WGS-84, a boundary
    outside the production area, or a changed boundary?"""
    producer = world.factory.producer("341602")
    header = ["生产者统一社会信用代码 (uscc)", "地块编号 (plot_code)", "地理标志编号 (gi_id)", "地块名称 (name)",
              "调查年度 (survey_year)", "边界 (boundary)"]
    good = [[producer.org.uscc, "SH-001", world.gi.id, "十八里镇1号地", 2025, world.boundary()],
            [producer.org.uscc, "SH-002", world.gi.id, "十八里镇2号地", "2025", world.boundary(dx=0.002,
                                                                                           as_geojson=True)]]
    bad = [[producer.org.uscc, "SH-001", world.gi.id, "重复", 2025, world.boundary(dx=0.004)],
           [producer.org.uscc, "SH-003", world.gi.id, "投影坐标", 2025,
            "POLYGON((500000 3700000, 500100 3700000, 500100 3700100, 500000 3700000))"],
           [producer.org.uscc, "SH-004", world.gi.id, "不是面", 2025, "POINT(115.78 33.84)"],
           [producer.org.uscc, "SH-005", world.gi.id, "产区外", 2025, world.boundary(dx=3.0)],
           [producer.org.uscc, "SH-006", world.gi.id, "年度", 1970, world.boundary(dx=0.006)]]
    r = world.post("plots", xlsx([header, *good, *bad]), dry_run=True)
    problems = {(p["row"], p["column"], p["code"]) for p in r.json["problems"]}
    assert problems == {(4, "plot_code", "duplicate_in_file"), (5, "boundary", "invalid_geometry"),
                        (6, "boundary", "invalid_geometry"), (7, "boundary", "plot_outside_area"),
                        (8, "survey_year", "validation_failed")}
    projected = next(p for p in r.json["problems"] if p["row"] == 5)
    assert projected["details"]["reason"] == "not_lonlat"
    r = world.post("plots", xlsx([header, *good]))
    assert r.status_code == 201, r.json
    session.rollback()   # a new transaction: see what the requests committed
    assert [(p.code, p.name, p.survey_year) for p in session.scalars(select(Plot).order_by(Plot.id))] == \
        [("SH-001", "十八里镇1号地", 2025), ("SH-002", "十八里镇2号地", 2025)]
    again = world.post("plots", xlsx([header, *good]))
    assert (again.status_code, again.json["unchanged"], again.json["created"]) == (201, 2, 0)
    moved = [good[0][:5] + [world.boundary(dx=0.001)]]
    r = world.post("plots", xlsx([header, *moved]), dry_run=True)
    [problem] = r.json["problems"]
    assert (problem["column"], problem["code"]) == ("boundary", "record_differs")
    plot = world.client.get(f"{API}/plots/{again.json['outcomes'][0]['id']}", headers=producer.headers).json
    assert plot["code"] == "SH-001"


def test_plots_only_of_producers_in_the_jurisdiction(world):
    """Is a plot of a producer registered outside the authority's jurisdiction refused on its USCC?"""
    far = world.factory.producer("440106")
    header = ["uscc", "plot_code", "gi_id", "name", "survey_year", "boundary"]
    r = world.post("plots", xlsx([header, [far.org.uscc, "GZ-1", world.gi.id, "广州地块", 2025, world.boundary()]]),
                   dry_run=True)
    assert [(p["row"], p["column"], p["code"]) for p in r.json["problems"]] == [(2, "uscc", "not_your_producer")]


def test_an_all_digit_code_typed_as_a_number_is_explained(world):
    """Is a USCC that Excel turned into a number (15 significant digits kept) refused saying so, not as a wrong
    check character?"""
    r = world.post("producers", xlsx([PRODUCER_HEADER, ["亳州市芍花堂饮片有限公司", 913416021234567890, None, None]]),
                   dry_run=True)
    [problem] = r.json["problems"]
    assert (problem["row"], problem["column"], problem["code"]) == (2, "uscc", "number_lost_digits")


def test_unknown_import_is_not_found(world):
    """Is an import of something that is not a kind of import a 404?"""
    r = world.post("printers", xlsx([["x"]]))
    assert r.status_code == 404


def test_a_row_registered_meanwhile_is_a_problem_not_a_crash(world, session, monkeypatch):
    """When the unique index refuses a row's insert (another request registered the same USCC between the row's
    check and its insert), is the row reported as a conflict and nothing written, rather than a server error?"""
    from gi_service.services import imports

    def racing(session, **kwargs):
        # The other request's row and this one's, as the unique index sees them at the flush.
        for name in ("另一请求", kwargs["name"]):
            session.add(Organisation(kind=OrgKind.producer, name=name, uscc=kwargs["uscc"], adcode="341602"))
        session.flush()

    monkeypatch.setattr(imports.accounts, "create_organisation", racing)
    r = world.post("producers", xlsx([PRODUCER_HEADER, ["亳州市芍花堂饮片有限公司", uscc(1), None, None]]))
    assert (r.status_code, r.json["error"]) == (422, "import_rows_invalid")
    [problem] = r.json["details"]["problems"]
    assert (problem["row"], problem["column"], problem["code"]) == (2, "uscc", "conflict")
    assert producers_in(session) == []
