"""The tables an office downloads, each built once from what a service returns and written as CSV or Excel.

* ``statistics_table``       — the statistics, one row per group and a total row;
* ``annual_listing_table``   — who had to report a year and how their reports stand;
* ``annual_rollup_table``    — the submitted reports rolled up per GI, with the total row;
* ``registry_table``         — the open data's GI registry;
* ``ledger_report_table``    — the ledger report (台账): its rows or its mismatches;
* ``serious_violators_table``— the serious-violator list (严重违法失信名单).

The CSV of each is what it was before the Excel files came (tests pin them), hence the per-column `csv` in a
few places.
"""
from __future__ import annotations

import json
from decimal import Decimal
from typing import Any, Iterable

from .. import clock
from ..services import opendata, reports
from ..services.annual_reports import ROLLUP_MARKS
from ..services.statistics import (ALERT_LABELS, MARK_LABELS, OUTCOME_LABELS, PREMISES_LABELS, VERDICT_LABELS,
                                   VIOLATION_LABELS)
from .cells import STATUS_ZH
from .tables import Column, Table, day, instant

C = Column


# --- statistics ------------------------------------------------------------------------------------

def _stat_columns() -> list[tuple[Column, Any]]:
    """(column, getter) for every figure, in a stable order."""
    cols: list[tuple[Column, Any]] = [
        (C("coverage.eligible", "应覆盖主体", "integer"), lambda f: f["coverage"]["eligible"]),
        (C("coverage.users", "使用主体", "integer"), lambda f: f["coverage"]["users"]),
        (C("coverage.percent", "覆盖率%", "decimal", places=1), lambda f: f["coverage"]["percent"]),
        (C("coverage.meets_target", "达到90%目标", "flag"), lambda f: f["coverage"]["meets_target"]),
    ]
    for k, label in MARK_LABELS.items():
        cols.append((C(f"marks.{k}", f"标志{label.zh}", "integer"), lambda f, k=k: f["marks"][k]))
    cols.append((C("checks.total", "查询次数", "integer"), lambda f: f["checks"]["total"]))
    for k, label in VERDICT_LABELS.items():
        cols.append((C(f"checks.{k}", f"查询-{label.zh}", "integer"), lambda f, k=k: f["checks"]["by_verdict"][k]))
    cols += [(C("checks.located", "有位置的查询", "integer"), lambda f: f["checks"]["located"]),
             (C("checks.bots", "机器人访问", "integer"), lambda f: f["checks"]["bots"]),
             (C("alerts.total", "预警", "integer"), lambda f: f["alerts"]["total"])]
    for k, label in ALERT_LABELS.items():
        cols.append((C(f"alerts.{k}", f"预警-{label.zh}", "integer"), lambda f, k=k: f["alerts"]["by_kind"][k]))
    cols += [(C("alerts.occurrences", "预警触发次数", "integer"), lambda f: f["alerts"]["occurrences"]),
             (C("consumer_reports", "消费者举报", "integer"), lambda f: f["consumer_reports"]),
             (C("findings.total", "执法检查发现", "integer"), lambda f: f["findings"]["total"]),
             (C("findings.with_violations", "有违法的发现", "integer"), lambda f: f["findings"]["with_violations"]),
             (C("findings.without_violations", "合规检查", "integer"),
              lambda f: f["findings"]["without_violations"])]
    for k, label in VIOLATION_LABELS.items():
        cols.append((C(f"findings.{k}", f"违法-{label.zh}", "integer"),
                     lambda f, k=k: f["findings"]["by_violation"][k]))
    for k, label in PREMISES_LABELS.items():
        cols.append((C(f"findings.premises.{k}", f"场所-{label.zh}", "integer"),
                     lambda f, k=k: f["findings"]["by_premises"][k]))
    cols += [(C("cases.opened", "立案", "integer"), lambda f: f["cases"]["opened"]),
             (C("cases.referred", "移送", "integer"), lambda f: f["cases"]["referred"]),
             (C("cases.concluded", "结案", "integer"), lambda f: f["cases"]["concluded"])]
    for k, label in OUTCOME_LABELS.items():
        cols.append((C(f"cases.{k}", f"结案-{label.zh}", "integer"), lambda f, k=k: f["cases"]["by_outcome"][k]))
    cols += [(C("cases.serious", "严重违法", "integer"), lambda f: f["cases"]["serious"]),
             (C("output.reports_due", "应报年报", "integer"), lambda f: f["output"]["reports_due"]),
             (C("output.reports_submitted", "已交年报", "integer"), lambda f: f["output"]["reports_submitted"]),
             (C("output.reports_missing", "未交年报", "integer"), lambda f: f["output"]["reports_missing"]),
             (C("output.reports_late", "逾期年报", "integer"), lambda f: f["output"]["reports_late"]),
             (C("output.output_kg", "产量kg", "decimal", places=3), lambda f: f["output"]["output_kg"]),
             (C("output.output_value_yuan", "产值元", "decimal", places=2),
              lambda f: f["output"]["output_value_yuan"])]
    return cols


GROUP_COLUMNS = {"gi": [C("gi_id", "地理标志编号", "integer"), C("gi", "地理标志")],
                 "region": [C("adcode", "行政区划代码"), C("region", "地区")],
                 "year": [C("year", "年度", "integer")]}


def statistics_table(data: dict[str, Any]) -> Table:
    """The statistics (``statistics.compute(...).to_dict()``): one row per group (when grouped) and a total row."""
    figures = _stat_columns()
    group_by = data["group_by"]
    key_columns = GROUP_COLUMNS.get(group_by, [])
    columns = [C("from_year", "起始年", "integer"), C("to_year", "截止年", "integer"),
               C("scope_adcode", "统计地区"), C("scope_gi_id", "统计地理标志", "integer"),
               *key_columns, *[c for c, _ in figures]]
    period, scope = data["period"], data["scope"]
    prefix = [period["from_year"], period["to_year"], scope["region"]["adcode"],
              scope["gi"]["id"] if scope["gi"] else None]

    def key_cells(key: dict[str, Any] | None) -> list[Any]:
        if key is None:
            return ["合计 total"] + [None] * (len(key_columns) - 1) if key_columns else []
        if group_by == "gi":
            gi = key["gi"]
            return [gi["id"], gi["name_zh"]] if gi else [None, key["label"]["zh"]]
        if group_by == "region":
            region = key["region"]
            if region is None:
                return [None, key["label"]["zh"]]
            return [region["adcode"], region["name"] + (f" ({key['label']['zh']})" if key.get("direct") else "")]
        return [key["year"]]

    rows = [[*prefix, *key_cells(g["key"]), *[get(g["figures"]) for _, get in figures]] for g in data["groups"]]
    rows.append([*prefix, *key_cells(None), *[get(data["total"]) for _, get in figures]])
    return Table("统计 statistics", columns, rows)


# --- annual reports --------------------------------------------------------------------------------

def _kg(key: str, zh: str) -> Column:
    return C(key, zh, "decimal", places=3)


LISTING_COLUMNS = [
    C("year", "年度", "integer"), C("producer", "生产者"), C("USCC", "统一社会信用代码"), C("adcode", "行政区划"),
    C("GI", "地理标志"), C("gi_id", "GI编号", "integer"), C("authorization", "授权状态"), C("status", "报告状态"),
    C("submitted_at, China time", "提交时间", "datetime"), C("late", "逾期提交", "flag"),
    C("overdue", "已过期未交", "flag"), C("received", "领取标志", "integer"), C("activated", "使用标志", "integer"),
    C("voided", "作废", "integer"), C("lost", "遗失", "integer"), C("stolen", "被盗", "integer"),
    C("closing_stock", "年末库存", "integer"), C("lots", "批次数", "integer"), C("lot_packs", "批次包装数", "integer"),
    _kg("lot_kg", "批次申报量kg"), _kg("quota_granted_kg", "配额kg"), _kg("quota_consumed_kg", "已用配额kg"),
    _kg("output_kg", "产量kg"), C("output_value_yuan", "产值元", "decimal", places=2)]
ROLLUP_COLUMNS = [
    C("year", "年度", "integer"), C("GI", "地理标志"), C("gi_id", "GI编号", "integer"),
    C("authorized", "授权使用人", "integer"), C("submitted", "已提交", "integer"), C("late", "其中逾期", "integer"),
    C("draft", "草稿", "integer"), C("missing", "未提交", "integer"), C("received", "领取标志", "integer"),
    C("activated", "使用标志", "integer"), C("voided", "作废", "integer"), C("lost", "遗失", "integer"),
    C("stolen", "被盗", "integer"), C("closing_stock", "年末库存", "integer"), C("lots", "批次数", "integer"),
    C("lot_packs", "批次包装数", "integer"), _kg("lot_kg", "批次申报量kg"), _kg("quota_granted_kg", "配额kg"),
    _kg("quota_consumed_kg", "已用配额kg"), _kg("output_kg", "产量kg"),
    C("output_value_yuan", "产值元", "decimal", places=2)]


def _listing_cells(year: int, r: dict[str, Any]) -> list[Any]:
    report = r.get("_report")
    return [year, r["producer"]["name"], r["producer"]["uscc"] or "", r["producer"]["adcode"], r["gi"]["name_zh"],
            r["gi"]["id"], r["authorization"]["status"], f"{STATUS_ZH[r['status']]} {r['status']}",
            instant(r["submitted_at"]), r["late"], r["overdue"],
            *[r["marks"][k] for k in ("received", "activated", "voided", "lost", "stolen", "closing_stock")],
            r["lots"]["count"], r["lots"]["packs"], r["lots"]["declared_kg"],
            r["quota"]["granted_kg"], r["quota"]["consumed_kg"],
            report.output_kg if report else None, report.output_value_yuan if report else None]


def _rollup_cells(year: int, g: dict[str, Any]) -> list[Any]:
    p, m = g["producers"], g["marks"]
    return [year, g["gi"]["name_zh"], g["gi"]["id"], p["authorized"], p["submitted"], p["late"], p["draft"],
            p["missing"], *[m[k] for k in ROLLUP_MARKS], g["lots"]["count"], g["lots"]["packs"],
            g["lots"]["declared_kg"], g["quota"]["granted_kg"], g["quota"]["consumed_kg"],
            Decimal(g["output_kg_exact"]), Decimal(g["output_value_yuan_exact"])]


def annual_listing_table(data: dict[str, Any]) -> Table:
    """The listing of who had to report a year (``annual_reports.listing``)."""
    return Table(f"{data['year']}年度报告 annual reports", LISTING_COLUMNS,
                 (_listing_cells(data["year"], r) for r in data["items"]))


def annual_rollup_table(data: dict[str, Any]) -> Table:
    """The rollup per GI for the provincial filing (``annual_reports.rollup``), with its total row."""
    return Table(f"{data['year']}年度汇总 rollup", ROLLUP_COLUMNS,
                 [*(_rollup_cells(data["year"], g) for g in data["items"]), _rollup_cells(data["year"], data["total"])])


# --- the open data's registry ------------------------------------------------------------------------

REGISTRY_ZH = {
    "gi_id": ("记录编号", "integer"), "version": ("版本", "integer"), "name_zh": ("名称", "text"),
    "name_pinyin": ("名称拼音", "text"), "name_en": ("英文名称", "text"), "kind": ("保护类型代码", "text"),
    "kind_zh": ("保护类型", "text"), "category": ("产品类别代码", "text"), "category_zh": ("产品类别", "text"),
    "registration_no": ("公告号/注册号", "text"), "registration_date": ("公告/注册日期", "date"),
    "legacy_agi_code": ("原农产品地理标志编号", "text"), "status": ("状态代码", "text"), "status_zh": ("状态", "text"),
    "origin_country": ("国家", "text"), "managing_body": ("申请人/管理机构", "text"), "standard": ("标准", "text"),
    "area_adcodes": ("产地范围行政区划代码", "text"), "area_units_zh": ("产地范围", "text"),
    "area_km2": ("产地面积km²", "decimal"), "area_source_crs": ("原坐标系", "text"),
    "sales_adcodes": ("销售地区代码", "text"), "sales_regions_zh": ("销售地区", "text"),
    "record_changed_at": ("记录变更时间", "datetime"),
}


def _registry_changed_at(value: Any) -> str:
    """The CSV's instant: China time to the second with its offset (the open data's format since it began)."""
    return value.astimezone(clock.CHINA_TZ).isoformat(timespec="seconds") if value is not None else ""


REGISTRY_TABLE_COLUMNS = [
    C(key, REGISTRY_ZH[key][0], REGISTRY_ZH[key][1], places=3,
      csv=_registry_changed_at if key == "record_changed_at" else None)
    for key, _ in opendata.REGISTRY_COLUMNS]


def registry_table(items: list[opendata.Published]) -> Table:
    """The open data's GI registry (``opendata.records``): bare keys as the CSV's headers (its data dictionary)."""
    return Table("地理标志登记簿 GI registry", REGISTRY_TABLE_COLUMNS, opendata.registry_rows(items),
                 csv_headers="key", csv_inert=False)


# --- the ledger report (台账) -------------------------------------------------------------------------

LEDGER_ZH = {"year": "年度", "gi_id": "地理标志编号", "producer_id": "生产者编号", "printer_id": "印制单位编号",
             "requested": "申请", "approved": "核准", "printed": "印制", "spoiled": "损耗", "issued": "发放",
             "activated": "启用", "voided": "作废", "lost": "遗失被盗", "printer_stock": "印制单位库存",
             "producer_stock": "生产者库存", "not_printed": "未印制"}
LEDGER_COLUMNS = [*(C(k, LEDGER_ZH[k], "integer") for k in (*reports.GROUP, *reports.COLUMNS)),
                  C("balanced", "账实相符", "flag", csv=str)]
MISMATCH_COLUMNS = [C("batch_id", "批次编号", "integer"), C("state", "状态"), C("first", "起始序号"),
                    C("last", "终止序号"), C("count", "数量", "integer"), C("problem", "问题")]


def ledger_report_table(report: dict[str, Any], part: str = "rows") -> Table:
    """The ledger report (``reports.ledger_report``): its rows, or its mismatches (`part`)."""
    if part == "mismatches":
        return Table("台账不符 mismatches", MISMATCH_COLUMNS,
                     ([m[c.key] for c in MISMATCH_COLUMNS] for m in report["mismatches"]),
                     csv_headers="key", csv_bom=False)
    return Table("台账 ledger report", LEDGER_COLUMNS,
                 ([r[c] for c in reports.GROUP] + [r[c] for c in reports.COLUMNS] + [r["balanced"]]
                  for r in report["rows"]), csv_headers="key", csv_bom=False)


# --- the serious-violator list ------------------------------------------------------------------------

VIOLATOR_COLUMNS = [C("id", "名单编号", "integer"), C("producer", "生产者"), C("uscc", "统一社会信用代码"),
                    C("adcode", "行政区划代码"), C("place", "所在地"), C("case_number", "案件编号"),
                    C("rule", "认定依据"), C("reason", "列入事由"), C("listed_at", "列入时间", "datetime"),
                    C("repair_after", "可申请信用修复日期", "date"), C("current", "当前在列", "flag")]
VIOLATOR_HISTORY_COLUMNS = [C("delisted_at", "移出时间", "datetime"), C("delist_reason", "移出事由")]


def serious_violators_table(items: Iterable[dict[str, Any]], *, history: bool = False) -> Table:
    """The serious-violator list (``credit.listing_dict`` with the producer), with its history when asked."""
    columns = VIOLATOR_COLUMNS + (VIOLATOR_HISTORY_COLUMNS if history else [])

    def cells(d: dict[str, Any]) -> list[Any]:
        p = d["producer"]
        row = [d["id"], p["name"], p["uscc"], p["adcode"], p["place_name"], d["case_number"], d["rule"], d["reason"],
               instant(d["listed_at"]), day(d["repair_after"]), d["current"]]
        return row + ([instant(d["delisted_at"]), d["delist_reason"]] if history else [])

    return Table("严重违法失信名单 serious violators", columns, (cells(d) for d in items))


# --- the audit trail -----------------------------------------------------------------------------------

AUDIT_SHEET_COLUMNS = [
    Column("id", "记录编号", "integer"), Column("seq", "链序号", "integer"), Column("at", "时间", "datetime"),
    Column("channel", "渠道"), Column("action", "操作"), Column("target", "对象"), Column("outcome", "结果"),
    Column("error_code", "错误代码"), Column("http_status", "HTTP状态", "integer"), Column("username", "用户名"),
    Column("user_id", "用户编号", "integer"), Column("organisation_id", "单位编号", "integer"),
    Column("role", "角色"), Column("org_adcode", "单位区划"), Column("address", "来源地址"),
    Column("request_id", "请求编号"), Column("method", "方法"), Column("path", "路径"), Column("detail", "详情"),
]


def audit_table(records: Iterable[dict[str, Any]]) -> Table:
    """The audit trail's records (``audit.record_dict``, read once, in order) as typed rows: ids and statuses as
    numbers, the time as a time (China time in the workbook), channel and outcome in both languages."""
    from .cells import CHANNEL_ZH, OUTCOME_ZH

    def rows():
        for r in records:
            yield [r["id"], r["seq"], instant(r["at"]), CHANNEL_ZH.get(r["channel"], r["channel"]), r["action"],
                   r["target"], OUTCOME_ZH.get(r["outcome"], r["outcome"]), r["error_code"], r["http_status"],
                   r["username"], r["user_id"], r["organisation_id"], r["role"], r["org_adcode"], r["address"],
                   r["request_id"], r["method"], r["path"],
                   json.dumps(r["detail"], ensure_ascii=False, sort_keys=True) if r["detail"] else None]

    return Table("审计记录 audit trail", AUDIT_SHEET_COLUMNS, rows())
