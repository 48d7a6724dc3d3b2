"""The statistics as CSV, SVG charts and an SVG map: parsed back, labelled, self-contained and deterministic."""
from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from ..xlsx import read_download
from .conftest import API, parse_csv

SVG = "{http://www.w3.org/2000/svg}"


def svg_of(client, actor, path: str, **params) -> tuple[ET.Element, str]:
    r = client.get(f"{API}/statistics/{path}", headers=actor.headers, query_string=params)
    assert r.status_code == 200, r.get_json(silent=True)
    assert r.mimetype == "image/svg+xml"
    assert r.headers["Content-Security-Policy"].startswith("default-src 'none'")
    text = r.get_data(as_text=True)
    return ET.fromstring(text), text


def assert_self_contained(root: ET.Element, text: str) -> None:
    """Accessible (role, title and description referenced) and referencing nothing outside the file."""
    assert root.tag == f"{SVG}svg" and root.get("role") == "img"
    ids = root.get("aria-labelledby").split()
    found = {el.get("id"): el for el in root.iter() if el.get("id")}
    assert [found[i].tag for i in ids] == [f"{SVG}title", f"{SVG}desc"]
    assert found[ids[1]].text.strip()
    assert re.findall(r"https?://[^\s\"'<)]+", text) == ["http://www.w3.org/2000/svg"]
    assert not root.findall(f".//{SVG}script") and not root.findall(f".//{SVG}image")
    assert "@import" not in text and "url(" not in text and "href" not in text


def texts(root: ET.Element) -> list[str]:
    return ["".join(el.itertext()) for el in root.iter(f"{SVG}text")]


def titles(root: ET.Element) -> list[str]:
    return [el.text for el in root.iter(f"{SVG}title")]


def test_csv_parses_back_to_the_json_figures(world):
    """Does ?format=csv (UTF-8 with BOM, bilingual headers) carry, per county and in total, the same figures as JSON?"""
    r = world.stats(world.authority, year=2026, group_by="region", format="csv")
    assert r.status_code == 200 and r.mimetype == "text/csv"
    assert r.headers["Content-Disposition"] == 'attachment; filename="statistics-2026-341600-by-region.csv"'
    header = r.data.decode("utf-8-sig").splitlines()[0]
    assert header.startswith("起始年 (from_year),截止年 (to_year)") and "覆盖率% (coverage.percent)" in header
    rows = parse_csv(r.data)
    assert [row["adcode"] for row in rows] == ["341602", "341621", "341622", "341623", "合计 total"]
    json_data = world.stats(world.authority, year=2026, group_by="region")
    for row, figures in zip(rows, [g["figures"] for g in json_data["groups"]] + [json_data["total"]]):
        assert row["from_year"] == row["to_year"] == "2026" and row["scope_adcode"] == "341600"
        assert int(row["checks.total"]) == figures["checks"]["total"]
        assert int(row["marks.activated"]) == figures["marks"]["activated"]
        assert int(row["findings.look_alike"]) == figures["findings"]["by_violation"]["look_alike"]
        assert int(row["cases.no_violation"]) == figures["cases"]["by_outcome"]["no_violation"]
        assert int(row["output.reports_missing"]) == figures["output"]["reports_missing"]
    qiaocheng, guoyang, *_, total = rows
    assert (qiaocheng["region"], qiaocheng["coverage.percent"], qiaocheng["coverage.meets_target"]) == \
        ("谯城区", "100.0", "是 yes")
    assert (guoyang["coverage.percent"], guoyang["alerts.impossible_travel"]) == ("0.0", "1")
    assert rows[2]["coverage.percent"] == "" and rows[2]["coverage.meets_target"] == ""   # nobody eligible
    assert (total["coverage.eligible"], total["coverage.users"], total["coverage.percent"],
            total["coverage.meets_target"]) == ("4", "1", "25.0", "否 no")
    assert (total["checks.total"], total["checks.bots"], total["consumer_reports"]) == ("10", "1", "1")


def test_csv_of_declared_output_keeps_its_decimals(world):
    """Does the CSV of 2025 per GI carry the declared output to the cent, and one total row without grouping?"""
    rows = parse_csv(world.stats(world.authority, year=2025, group_by="gi", format="csv").data)
    assert [(row["gi_id"], row["gi"]) for row in rows] == [(str(world.gi_a.id), "亳白芍"), (str(world.gi_b.id), "亳菊"),
                                                          ("合计 total", "")]
    assert (rows[0]["output.output_kg"], rows[0]["output.output_value_yuan"]) == ("1334.5", "103765.43")
    assert rows[1]["output.reports_missing"] == "1" and rows[2]["output.reports_due"] == "3"
    [only] = parse_csv(world.stats(world.authority, year=2025, format="csv").data)
    assert only["coverage.percent"] == "66.7" and only["marks.spoiled"] == "2"


def test_excel_has_the_csvs_figures_as_numbers(world, client):
    """Does ?format=xlsx (API and the dashboard's link) hold the CSV's rows with the same headers, counts as numbers,
    the coverage as a number with one decimal, the yes/no flag as 是/否 and the declared output as an amount?"""
    csv_rows = parse_csv(world.stats(world.authority, year=2025, group_by="gi", format="csv").data)
    r = world.stats(world.authority, year=2025, group_by="gi", format="xlsx")
    assert r.headers["Content-Disposition"] == 'attachment; filename="statistics-2025-341600-by-gi.xlsx"'
    sheet = read_download(r)
    assert sheet.header[:5] == ["起始年 (from_year)", "截止年 (to_year)", "统计地区 (scope_adcode)",
                                "统计地理标志 (scope_gi_id)", "地理标志编号 (gi_id)"]
    rows = [dict(zip([h[h.rindex("(") + 1:-1] for h in sheet.header], row)) for row in sheet.rows]
    assert len(rows) == len(csv_rows) == 3
    for row, csv_row in zip(rows, csv_rows):
        for key, text in csv_row.items():
            value = row[key]
            if value is None or isinstance(value, str):
                assert (value or "") == text, key
            else:
                assert value == float(text), key
    assert rows[0]["output.output_value_yuan"] == 103765.43 and rows[0]["output.output_kg"] == 1334.5
    assert sheet.cell(0, "output.output_value_yuan").number_format == "#,##0.00"
    assert sheet.cell(0, "coverage.percent").number_format == "#,##0.0"
    assert isinstance(rows[0]["marks.spoiled"], int) and rows[2]["gi_id"] == "合计 total"
    assert sheet.ws.freeze_panes == "A2"
    page = read_download(client.get("/app/statistics/export", headers=world.authority.headers,
                                    query_string={"year": 2025, "group_by": "gi", "format": "xlsx"}))
    assert page.rows == sheet.rows


def test_coverage_chart_shows_each_gi_against_the_90_percent_line(world, client):
    """Is the coverage chart a self-contained accessible SVG with one bar per GI, its percentage written, and the
    dashed 90% target line?"""
    root, text = svg_of(client, world.authority, "charts/coverage.svg", year=2025)
    assert_self_contained(root, text)
    assert titles(root)[0] == "专用标志覆盖率 · 亳州市 · 2025 Coverage of the GI special mark"
    desc = root.find(f"{SVG}desc").text
    assert "合计 total 66.7% (2/3)" in desc and "亳白芍 Bo Bai Shao: 2/2" in desc and "亳菊 Bozhou chrysanthemum: 0/1" in desc
    words = texts(root)
    assert "100.0%" in words and "0.0%" in words and "目标 90%" in words and "target" in words
    assert "亳白芍" in words and "Bozhou chrysanthemum" in words
    bars = [t for t in titles(root) if " — " in t]
    assert bars == ["亳白芍 Bo Bai Shao — 覆盖率 coverage: 100.0%", "亳菊 Bozhou chrysanthemum — 覆盖率 coverage: 0.0%"]
    line = root.find(f".//{SVG}g[@class='target']/{SVG}line")
    assert line.get("stroke-dasharray")
    # The line is at 90% of the axis: 10% of the plot height below its top (the 100% grid line).
    grid = sorted(float(el.get("y1")) for el in root.findall(f".//{SVG}g[@stroke='#d9dee2']/{SVG}line"))
    assert abs(float(line.get("y1")) - (grid[0] + (grid[-1] - grid[0]) * 0.1)) < 0.2

    root, _ = svg_of(client, world.authority, "charts/coverage.svg", year=2026, group_by="region")
    assert [t for t in titles(root) if " — " in t] == ["谯城区 341602 — 覆盖率 coverage: 100.0%",
                                                       "涡阳县 341621 — 覆盖率 coverage: 0.0%"]


def test_monthly_marks_chart_counts_months_in_china_time(world, client):
    """Does the monthly chart put January's activation at 00:30 China time in January 2026, and February's print
    run and issue, March's activation in their months, as marks?"""
    root, text = svg_of(client, world.authority, "charts/marks-by-month.svg", year=2026)
    assert_self_contained(root, text)
    bars = {t for t in titles(root) if " — " in t}
    assert {"1月 01 — 激活使用 activated: 5", "2月 02 — 印制 printed: 60", "2月 02 — 发放 issued: 60",
            "3月 03 — 激活使用 activated: 30", "6月 06 — 作废 voided: 0"} <= bars
    assert len(bars) == 48
    assert "印制 printed 60, 发放 issued 60, 激活使用 activated 35, 作废 voided 0" in root.find(f"{SVG}desc").text


def test_findings_and_checks_charts(world, client):
    """Do the findings chart (one bar per violation kind) and the checks chart (one per verdict, bots apart) show
    the year's counts with Chinese and English labels?"""
    root, text = svg_of(client, world.authority, "charts/findings-by-violation.svg", year=2026)
    assert_self_contained(root, text)
    bars = [t for t in titles(root)[1:]]
    assert bars == ["未经授权使用 unauthorized use: 1", "伪造或复制标志 forged or copied label: 1",
                    "产地外或不达标 outside area or substandard: 0", "近似名称或标识 look-alike name or logo: 1",
                    "授权失效 authorization not in force: 0", "未标注信用代码 mark without USCC: 0",
                    "未激活标志上市销售 unactivated label on sale: 0"]
    root, text = svg_of(client, world.national, "charts/checks-by-verdict.svg", year=2026)
    assert_self_contained(root, text)
    bars = {t for t in titles(root) if " — " in t}
    assert {"真品 genuine — 查询 checks: 8", "未知码 unknown code — 查询 checks: 1",
            "格式错误 malformed — 查询 checks: 1", "已作废 voided — 查询 checks: 1"} <= bars
    assert "12 checks by verdict; 1 visits by bots not counted." in root.find(f"{SVG}desc").text


def test_drawings_are_deterministic_and_revalidate(world, client):
    """Does the same request give the same bytes, with an ETag a dashboard can revalidate (304)?"""
    url = f"{API}/statistics/charts/coverage.svg"
    first = client.get(url, headers=world.authority.headers, query_string={"year": 2025})
    again = client.get(url, headers=world.authority.headers, query_string={"year": 2025})
    assert first.data == again.data and first.headers["ETag"] == again.headers["ETag"]
    cached = client.get(url, query_string={"year": 2025},
                        headers={**world.authority.headers, "If-None-Match": first.headers["ETag"]})
    assert cached.status_code == 304 and cached.data == b""
    other = client.get(url, headers=world.authority.headers, query_string={"year": 2026})
    assert other.headers["ETag"] != first.headers["ETag"]
    m1 = client.get(f"{API}/statistics/map.svg", headers=world.authority.headers, query_string={"year": 2026})
    m2 = client.get(f"{API}/statistics/map.svg", headers=world.authority.headers, query_string={"year": 2026})
    assert m1.data == m2.data


def test_map_of_findings_and_alerts(world, client):
    """Is the map of 亳州 drawn from the boundary data with its four counties named, the findings at their points
    (with and without violations apart), the located alert, a legend, the unplaced alert noted, and small?"""
    r = client.get(f"{API}/statistics/map.svg", headers=world.authority.headers, query_string={"year": 2026})
    assert len(r.data) < 60_000
    root, text = svg_of(client, world.authority, "map.svg", year=2026)
    assert_self_contained(root, text)
    assert "安徽省 亳州市 (341600)" in root.find(f"{SVG}desc").text
    units = root.find(f".//{SVG}g[@class='units']")
    assert [t.text for t in units.iter(f"{SVG}title")] == ["谯城区 341602", "涡阳县 341621", "蒙城县 341622",
                                                          "利辛县 341623"]
    assert all(re.fullmatch(r"(M[-0-9. L]+Z)+", p.get("d")) for p in units.iter(f"{SVG}path"))
    assert {"谯城区", "涡阳县", "蒙城县", "利辛县"} <= set(texts(root))
    width, height = (float(v) for v in root.get("viewBox").split()[2:])

    def layer(name):
        return root.find(f".//{SVG}g[@class='layer-{name}']")

    violations = layer("findings_violation").findall(f"{SVG}circle")
    clean = layer("findings_clean").findall(f"{SVG}circle")
    alerts = layer("alerts").findall(f"{SVG}path")
    assert (len(violations), len(clean), len(alerts)) == (2, 1, 1)
    assert sorted(c.find(f"{SVG}title").text for c in violations) == ["retail bz:1 (2026-06-02)",
                                                                       "wholesale bz:2 (2026-06-02)"]
    assert clean[0].get("fill") == "none"
    assert alerts[0].find(f"{SVG}title").text == "异地快速查询 impossible travel (2026-06-01)"
    for el in violations + clean:
        assert 0 < float(el.get("cx")) < width and 0 < float(el.get("cy")) < height
    # The finding in 谯城区 lies west of and above the ones in 涡阳县, as on the ground.
    qiaocheng, guoyang = sorted(violations, key=lambda c: float(c.get("cx")))
    assert float(qiaocheng.get("cy")) < float(guoyang.get("cy"))
    words = texts(root)
    assert "执法检查发现（有违法） findings with violations: 2" in words
    assert "执法检查（合规） clean inspections: 1" in words and "复制标签预警 copied-label alerts: 1" in words
    assert "另有 1 条预警无发生地点（计入生产者所在地），未在图上显示" in words


def test_map_layers_and_a_county(world, client):
    """Does ?layers= choose what is drawn, and does a county's map show its outline and its own points only?"""
    root, _ = svg_of(client, world.authority, "map.svg", year=2026, layers="alerts")
    assert root.find(f".//{SVG}g[@class='layer-findings_violation']") is None
    assert len(root.find(f".//{SVG}g[@class='layer-alerts']")) == 1
    root, text = svg_of(client, world.qiaocheng, "map.svg", year=2026)
    assert_self_contained(root, text)
    assert root.find(f".//{SVG}g[@class='units']/{SVG}path") is None
    assert root.find(f".//{SVG}path[@class='region']").get("d").startswith("M")
    assert len(root.find(f".//{SVG}g[@class='layer-findings_violation']")) == 1
    assert len(root.find(f".//{SVG}g[@class='layer-findings_clean']")) == 0
    # The impossible-travel alert happened in 涡阳县; the too-many-checks one has no place of its own.
    assert len(root.find(f".//{SVG}g[@class='layer-alerts']")) == 0
    assert "另有 1 条预警无发生地点（计入生产者所在地），未在图上显示" in texts(root)
    root, _ = svg_of(client, world.authority, "map.svg", year=2025)
    assert [c.find(f"{SVG}title").text for c in root.find(f".//{SVG}g[@class='layer-findings_violation']")] == \
        ["e_commerce bz:2025-1 (2025-09-01)"]
