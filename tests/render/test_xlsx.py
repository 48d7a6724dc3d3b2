"""The Excel writer (render/xlsx.py): typed cells, Chinese headers, a frozen header, widths from the column's kind
and its values, and text that never becomes a formula."""
from __future__ import annotations

import datetime as dt
import zipfile
import io
from decimal import Decimal

from gi_service.render.csv import csv_text
from gi_service.render.tables import Column, Table
from gi_service.render.xlsx import MAX_WIDTH, sheet_name, xlsx_bytes

from ..xlsx import read_xlsx

COLUMNS = [Column("name", "名称"), Column("uscc", "统一社会信用代码"), Column("count", "数量", "integer"),
           Column("value", "产值元", "decimal", places=2), Column("day", "日期", "date"),
           Column("at", "时间", "datetime"), Column("ok", "合格", "flag")]
AT = dt.datetime(2026, 1, 20, 1, 0, tzinfo=dt.timezone.utc)       # 09:00 China time


def table(rows) -> Table:
    return Table("测试 test", COLUMNS, rows)


def test_cells_keep_their_types():
    """Is an amount a number with its decimals shown, a date a date, an instant China time, an id text, a count an
    integer, a flag 是/否, and an empty value an empty cell?"""
    sheet = read_xlsx(xlsx_bytes(table([
        ["亳州市芍花堂", "91341600MA2N0X0X1U", 1500, Decimal("5400000.10"), dt.date(2026, 3, 31), AT, True],
        ["涡阳县合作社", None, 0, None, None, None, False]])))
    assert sheet.header == ["名称 (name)", "统一社会信用代码 (uscc)", "数量 (count)", "产值元 (value)", "日期 (day)",
                            "时间 (at)", "合格 (ok)"]
    first, second = sheet.rows
    assert first == ["亳州市芍花堂", "91341600MA2N0X0X1U", 1500, 5400000.1, dt.datetime(2026, 3, 31),
                     dt.datetime(2026, 1, 20, 9, 0), "是 yes"]
    assert sheet.cell(0, "value").number_format == "#,##0.00" and sheet.cell(0, "value").data_type == "n"
    assert sheet.cell(0, "day").is_date and sheet.cell(0, "day").number_format == "yyyy-mm-dd"
    assert sheet.cell(0, "at").is_date and sheet.cell(0, "at").number_format == "yyyy-mm-dd hh:mm"
    assert sheet.cell(0, "uscc").data_type == "s"
    assert second == ["涡阳县合作社", None, 0, None, None, None, "否 no"]


def test_header_is_frozen_bold_and_filtered():
    """Does the header row stay when scrolling (frozen at A2), stand out (bold) and carry an autofilter?"""
    sheet = read_xlsx(xlsx_bytes(table([["a", "b", 1, 1, None, None, True]])))
    assert sheet.ws.freeze_panes == "A2"
    assert sheet.ws["A1"].font.b
    assert sheet.ws.auto_filter.ref == "A1:G2"
    assert sheet.ws.title == "测试 test"


def test_widths_follow_kind_and_sampled_values():
    """Is a column as wide as its widest sampled value (CJK counting double), a date column wide enough for a
    date whatever its header, and no column wider than the cap?"""
    long_name = "安徽省亳州市谯城区十八里镇中药材种植专业合作社联合社"      # 26 CJK characters: 52 cells
    sheet = read_xlsx(xlsx_bytes(Table("w", [Column("n", "名"), Column("d", "日", "date"), Column("x", "长")],
                                       [["ab", dt.date(2026, 1, 1), "x" * 500], [long_name, None, "y"]])))
    # Excel stores a width with its cell padding (a fraction of a character more than asked).
    widths = {c: int(sheet.ws.column_dimensions[c].width) for c in "ABC"}
    assert widths["A"] == 54          # the long name and a margin of two
    assert widths["B"] >= 11          # "2026-04-30" fits
    assert widths["C"] == MAX_WIDTH


def test_formula_looking_text_stays_text():
    """Is text that begins with =, +, -, @, a tab or a CR stored as a string cell (with Excel's quote prefix), never
    as a formula, and written to the CSV after an apostrophe (as the audit trail's CSV always did), except in a
    table for programs (the open data's registry), and never a number or a date?"""
    hostile = ["=HYPERLINK(\"http://evil\",\"x\")", "+1+1", "-2+3", "@SUM(A1)", "\t=1", "\r=1"]
    data = xlsx_bytes(Table("t", [Column("v", "值")], [[h] for h in hostile]))
    sheet = read_xlsx(data)
    # A carriage return is stored escaped as _x000D_ (ECMA-376), which openpyxl leaves as it is.
    assert [r[0] for r in sheet.rows] == hostile[:5] + ["_x000D_=1"]
    for i in range(len(hostile)):
        cell = sheet.cell(i, "v")
        assert cell.data_type == "s" and cell.quotePrefix, hostile[i]
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        assert b"<f>" not in z.read("xl/worksheets/sheet1.xml")
    assert csv_text(Table("t", [Column("v", "值")], [[h] for h in hostile[:4]])).splitlines()[1:] == \
        ['"\'=HYPERLINK(""http://evil"",""x"")"', "'+1+1", "'-2+3", "'@SUM(A1)"]
    assert csv_text(Table("t", [Column("v", "值")], [[h] for h in hostile[:4]], csv_inert=False)).splitlines()[1:] == \
        ['"=HYPERLINK(""http://evil"",""x"")"', "+1+1", "-2+3", "@SUM(A1)"]
    numbers = Table("t", [Column("n", "数", "integer"), Column("d", "值", "decimal")], [[-3, Decimal("-2.50")]])
    assert csv_text(numbers).splitlines()[1] == "-3,-2.50"


def test_rows_from_a_generator_and_an_empty_table():
    """Are rows read once from any iterable (a generator beyond the width sample), and does a table without rows
    still give its header?"""
    rows = ([i, f"n{i}"] for i in range(1000))
    sheet = read_xlsx(xlsx_bytes(Table("g", [Column("i", "序号", "integer"), Column("n", "名")], rows)))
    assert len(sheet.rows) == 1000 and sheet.rows[-1] == [999, "n999"]
    empty = read_xlsx(xlsx_bytes(Table("e", [Column("i", "序号", "integer")], [])))
    assert empty.header == ["序号 (i)"] and empty.rows == []


def test_naive_instants_are_utc_and_sheet_names_are_legal():
    """Is an instant without a zone (SQLite's) read as UTC, and a title with characters Excel forbids made legal?"""
    sheet = read_xlsx(xlsx_bytes(Table("a/b", [Column("at", "时间", "datetime")], [[dt.datetime(2026, 1, 1, 0, 0)]])))
    assert sheet.rows == [[dt.datetime(2026, 1, 1, 8, 0)]]
    assert sheet.ws.title == "a b"
    assert sheet_name("[台账]: 2026/04*?") == "台账   2026 04"
    assert sheet_name("x" * 40) == "x" * 31 and sheet_name("[]") == "Sheet1"


def test_an_instant_is_kept_to_the_second_it_is_in():
    """Does an instant a fraction before the next second (or minute) stay in its own second, as the CSV shows it,
    rather than being rounded up by the reader of the cell?"""
    late = dt.datetime(2026, 12, 6, 23, 59, 59, 999699, tzinfo=dt.timezone.utc)
    t = Table("t", [Column("at", "时间", "datetime")], [[late]])
    sheet = read_xlsx(xlsx_bytes(t))
    assert sheet.rows == [[dt.datetime(2026, 12, 7, 7, 59, 59)]]
    assert csv_text(t).splitlines()[1].endswith("2026-12-07 07:59")
