"""CSV files: the statistics and the annual reports (UTF-8 with a byte-order mark, headers "中文 (key)"), the open
data's GI registry (with a byte-order mark) and the ledger report (台账).

The byte-order mark makes Excel read the file as UTF-8 (it assumes the local code page otherwise).
"""
from __future__ import annotations

import csv
import io
from typing import Any, Callable, Iterable, Iterator

from ..services import opendata, reports
from ..services.annual_reports import ROLLUP_MARKS
from ..services.statistics import (ALERT_LABELS, MARK_LABELS, OUTCOME_LABELS, PREMISES_LABELS, VERDICT_LABELS,
                                   VIOLATION_LABELS)
from .cells import AUDIT_COLUMNS, STATUS_ZH, blank, china_time, yes_no


def _file(header: list[str], rows: Iterable[list[Any]]) -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue().encode("utf-8-sig")


# --- statistics ----------------------------------------------------------------------------------

def _columns() -> list[tuple[str, str, Callable[[dict[str, Any]], Any]]]:
    """(key, Chinese header, getter) for every figure, in a stable order."""
    cols: list[tuple[str, str, Callable[[dict[str, Any]], Any]]] = [
        ("coverage.eligible", "应覆盖主体", lambda f: f["coverage"]["eligible"]),
        ("coverage.users", "使用主体", lambda f: f["coverage"]["users"]),
        ("coverage.percent", "覆盖率%", lambda f: f["coverage"]["percent"]),
        ("coverage.meets_target", "达到90%目标", lambda f: f["coverage"]["meets_target"]),
    ]
    for k, label in MARK_LABELS.items():
        cols.append((f"marks.{k}", f"标志{label.zh}", lambda f, k=k: f["marks"][k]))
    cols.append(("checks.total", "查询次数", lambda f: f["checks"]["total"]))
    for k, label in VERDICT_LABELS.items():
        cols.append((f"checks.{k}", f"查询-{label.zh}", lambda f, k=k: f["checks"]["by_verdict"][k]))
    cols += [("checks.located", "有位置的查询", lambda f: f["checks"]["located"]),
             ("checks.bots", "机器人访问", lambda f: f["checks"]["bots"]),
             ("alerts.total", "预警", lambda f: f["alerts"]["total"])]
    for k, label in ALERT_LABELS.items():
        cols.append((f"alerts.{k}", f"预警-{label.zh}", lambda f, k=k: f["alerts"]["by_kind"][k]))
    cols += [("alerts.occurrences", "预警触发次数", lambda f: f["alerts"]["occurrences"]),
             ("consumer_reports", "消费者举报", lambda f: f["consumer_reports"]),
             ("findings.total", "执法检查发现", lambda f: f["findings"]["total"]),
             ("findings.with_violations", "有违法的发现", lambda f: f["findings"]["with_violations"]),
             ("findings.without_violations", "合规检查", lambda f: f["findings"]["without_violations"])]
    for k, label in VIOLATION_LABELS.items():
        cols.append((f"findings.{k}", f"违法-{label.zh}", lambda f, k=k: f["findings"]["by_violation"][k]))
    for k, label in PREMISES_LABELS.items():
        cols.append((f"findings.premises.{k}", f"场所-{label.zh}", lambda f, k=k: f["findings"]["by_premises"][k]))
    cols += [("cases.opened", "立案", lambda f: f["cases"]["opened"]),
             ("cases.referred", "移送", lambda f: f["cases"]["referred"]),
             ("cases.concluded", "结案", lambda f: f["cases"]["concluded"])]
    for k, label in OUTCOME_LABELS.items():
        cols.append((f"cases.{k}", f"结案-{label.zh}", lambda f, k=k: f["cases"]["by_outcome"][k]))
    cols += [("cases.serious", "严重违法", lambda f: f["cases"]["serious"]),
             ("output.reports_due", "应报年报", lambda f: f["output"]["reports_due"]),
             ("output.reports_submitted", "已交年报", lambda f: f["output"]["reports_submitted"]),
             ("output.reports_missing", "未交年报", lambda f: f["output"]["reports_missing"]),
             ("output.reports_late", "逾期年报", lambda f: f["output"]["reports_late"]),
             ("output.output_kg", "产量kg", lambda f: f["output"]["output_kg"]),
             ("output.output_value_yuan", "产值元", lambda f: f["output"]["output_value_yuan"])]
    return cols


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return yes_no(value)
    return value


def statistics_csv(data: dict[str, Any]) -> bytes:
    """The statistics (``statistics.compute(...).to_dict()``): one row per group (when grouped) and a total row."""
    cols = _columns()
    group_by = data["group_by"]
    key_headers = {"gi": ["地理标志编号 (gi_id)", "地理标志 (gi)"], "region": ["行政区划代码 (adcode)", "地区 (region)"],
                   "year": ["年度 (year)"]}.get(group_by, [])
    head = ["起始年 (from_year)", "截止年 (to_year)", "统计地区 (scope_adcode)", "统计地理标志 (scope_gi_id)",
            *key_headers, *[f"{zh} ({key})" for key, zh, _ in cols]]
    period, scope = data["period"], data["scope"]
    prefix = [period["from_year"], period["to_year"], scope["region"]["adcode"],
              scope["gi"]["id"] if scope["gi"] else ""]

    def key_cells(key: dict[str, Any] | None) -> list[Any]:
        if key is None:
            return ["合计 total"] + [""] * (len(key_headers) - 1) if key_headers else []
        if group_by == "gi":
            gi = key["gi"]
            return [gi["id"], gi["name_zh"]] if gi else ["", key["label"]["zh"]]
        if group_by == "region":
            region = key["region"]
            if region is None:
                return ["", key["label"]["zh"]]
            return [region["adcode"], region["name"] + (f" ({key['label']['zh']})" if key.get("direct") else "")]
        return [key["year"]]

    rows = [[*prefix, *key_cells(g["key"]), *[_cell(get(g["figures"])) for _, _, get in cols]] for g in data["groups"]]
    rows.append([*prefix, *key_cells(None), *[_cell(get(data["total"])) for _, _, get in cols]])
    return _file(head, rows)


# --- annual reports ------------------------------------------------------------------------------

LISTING_HEADERS = ["年度 (year)", "生产者 (producer)", "统一社会信用代码 (USCC)", "行政区划 (adcode)",
                   "地理标志 (GI)", "GI编号 (gi_id)", "授权状态 (authorization)", "报告状态 (status)",
                   "提交时间 (submitted_at, China time)", "逾期提交 (late)", "已过期未交 (overdue)",
                   "领取标志 (received)", "使用标志 (activated)", "作废 (voided)", "遗失 (lost)", "被盗 (stolen)",
                   "年末库存 (closing_stock)", "批次数 (lots)", "批次包装数 (lot_packs)", "批次申报量kg (lot_kg)",
                   "配额kg (quota_granted_kg)", "已用配额kg (quota_consumed_kg)", "产量kg (output_kg)",
                   "产值元 (output_value_yuan)"]
ROLLUP_HEADERS = ["年度 (year)", "地理标志 (GI)", "GI编号 (gi_id)", "授权使用人 (authorized)", "已提交 (submitted)",
                  "其中逾期 (late)", "草稿 (draft)", "未提交 (missing)", "领取标志 (received)", "使用标志 (activated)",
                  "作废 (voided)", "遗失 (lost)", "被盗 (stolen)", "年末库存 (closing_stock)", "批次数 (lots)",
                  "批次包装数 (lot_packs)", "批次申报量kg (lot_kg)", "配额kg (quota_granted_kg)",
                  "已用配额kg (quota_consumed_kg)", "产量kg (output_kg)", "产值元 (output_value_yuan)"]


def _listing_cells(year: int, r: dict[str, Any]) -> list[Any]:
    report = r.get("_report")
    return [year, r["producer"]["name"], r["producer"]["uscc"] or "", r["producer"]["adcode"], r["gi"]["name_zh"],
            r["gi"]["id"], r["authorization"]["status"], f"{STATUS_ZH[r['status']]} {r['status']}",
            china_time(r["submitted_at"]), yes_no(r["late"]), yes_no(r["overdue"]),
            *[blank(r["marks"][k]) for k in ("received", "activated", "voided", "lost", "stolen", "closing_stock")],
            blank(r["lots"]["count"]), blank(r["lots"]["packs"]), blank(r["lots"]["declared_kg"]),
            blank(r["quota"]["granted_kg"]), blank(r["quota"]["consumed_kg"]),
            blank(report.output_kg if report else None), blank(report.output_value_yuan if report else None)]


def _rollup_cells(year: int, g: dict[str, Any]) -> list[Any]:
    p, m = g["producers"], g["marks"]
    return [year, g["gi"]["name_zh"], blank(g["gi"]["id"]), p["authorized"], p["submitted"], p["late"], p["draft"],
            p["missing"], *[m[k] for k in ROLLUP_MARKS], g["lots"]["count"], g["lots"]["packs"],
            g["lots"]["declared_kg"], g["quota"]["granted_kg"], g["quota"]["consumed_kg"], g["output_kg_exact"],
            g["output_value_yuan_exact"]]


def annual_listing_csv(data: dict[str, Any]) -> bytes:
    """The listing of who had to report a year (``annual_reports.listing``)."""
    return _file(LISTING_HEADERS, (_listing_cells(data["year"], r) for r in data["items"]))


def annual_rollup_csv(data: dict[str, Any]) -> bytes:
    """The rollup per GI for the provincial filing (``annual_reports.rollup``), with its total row."""
    return _file(ROLLUP_HEADERS, [*(_rollup_cells(data["year"], g) for g in data["items"]),
                                  _rollup_cells(data["year"], data["total"])])


# --- open data and the ledger report ---------------------------------------------------------------

def registry_csv(items: list[opendata.Published]) -> bytes:
    """The open data's GI registry (``opendata.records``), with CRLF line ends."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow([name for name, _ in opendata.REGISTRY_COLUMNS])
    writer.writerows(opendata.registry_rows(items))
    return buf.getvalue().encode("utf-8-sig")


def ledger_report_csv(report: dict[str, Any], part: str = "rows") -> str:
    """The ledger report (台账, ``reports.ledger_report``): its rows, or its mismatches (`part`)."""
    buf = io.StringIO()
    if part == "mismatches":
        writer = csv.writer(buf)
        writer.writerow(["batch_id", "state", "first", "last", "count", "problem"])
        for m in report["mismatches"]:
            writer.writerow([m["batch_id"], m["state"], m["first"], m["last"], m["count"], m["problem"]])
        return buf.getvalue()
    writer = csv.writer(buf)
    writer.writerow([*reports.GROUP, *reports.COLUMNS, "balanced"])
    for r in report["rows"]:
        writer.writerow([r[c] for c in reports.GROUP] + [r[c] for c in reports.COLUMNS] + [r["balanced"]])
    return buf.getvalue()


# --- the audit trail -----------------------------------------------------------------------------------

def _inert(value: Any) -> Any:
    """A cell a spreadsheet will not run: text starting with =, +, -, @ (or a tab or CR) gets a leading
    apostrophe. The trail holds text from anyone (a username tried at sign-in, a path)."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def audit_csv(records: Iterable[dict[str, Any]], *, chunk_rows: int = 500) -> Iterator[bytes]:
    """The audit trail's records (``audit.record_dict``) as CSV, streamed in chunks (UTF-8 with a BOM)."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow([header for _key, header, _cell in AUDIT_COLUMNS])
    yield buf.getvalue().encode("utf-8-sig")
    buf.seek(0)
    buf.truncate()
    for n, record in enumerate(records, 1):
        writer.writerow([_inert(cell(record)) for _key, _header, cell in AUDIT_COLUMNS])
        if n % chunk_rows == 0:
            yield buf.getvalue().encode("utf-8")
            buf.seek(0)
            buf.truncate()
    if buf.tell():
        yield buf.getvalue().encode("utf-8")
