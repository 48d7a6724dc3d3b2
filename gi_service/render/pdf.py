"""PDF documents of the annual reports: the listing of who has reported, the rollup per GI and one producer's report.

Drawn with reportlab in Adobe's STSong-Light CJK CID font, which every PDF viewer has, so nothing is embedded.
"""
from __future__ import annotations

import io
from typing import Any

from .. import clock
from .cells import STATUS_ZH, blank, china_time, yes_no

FONT = "STSong-Light"   # Adobe's CJK CID font: every PDF viewer has it, so nothing is embedded


def _pdf_styles():
    from reportlab.lib import colors
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont

    if FONT not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(UnicodeCIDFont(FONT))
    return {
        "title": ParagraphStyle("title", fontName=FONT, fontSize=16, leading=22, spaceAfter=6),
        "meta": ParagraphStyle("meta", fontName=FONT, fontSize=9.5, leading=14),
        "h2": ParagraphStyle("h2", fontName=FONT, fontSize=12, leading=18, spaceBefore=10, spaceAfter=4),
        "cell": ParagraphStyle("cell", fontName=FONT, fontSize=7.5, leading=9.5),
        "head": ParagraphStyle("head", fontName=FONT, fontSize=7.5, leading=9.5, textColor=colors.white),
        "warn": ParagraphStyle("warn", fontName=FONT, fontSize=9.5, leading=14, textColor=colors.darkred),
    }


def _table(styles, header: list[str], rows: list[list[Any]], widths: list[float] | None = None,
           total_row: bool = False):
    from reportlab.lib import colors
    from reportlab.platypus import Paragraph, Table, TableStyle
    from xml.sax.saxutils import escape

    data = [[Paragraph(escape(h), styles["head"]) for h in header]]
    data += [[Paragraph(escape(str(c)), styles["cell"]) for c in row] for row in rows]
    table = Table(data, colWidths=widths, repeatRows=1)
    style = [("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#1f4e79")),
             ("GRID", (0, 0), (-1, -1), 0.4, colors.HexColor("#9aa5b1")),
             ("VALIGN", (0, 0), (-1, -1), "TOP"),
             ("ROWBACKGROUNDS", (0, 1), (-1, -1), [colors.white, colors.HexColor("#eef2f6")])]
    if total_row and rows:
        style.append(("BACKGROUND", (0, -1), (-1, -1), colors.HexColor("#d9e2ec")))
    table.setStyle(TableStyle(style))
    return table


def _document(title: str, meta: list[str], body: list[Any], *, landscape_page: bool = True) -> bytes:
    from reportlab.lib.pagesizes import A4, landscape
    from reportlab.lib.units import mm
    from reportlab.platypus import Paragraph, SimpleDocTemplate
    from xml.sax.saxutils import escape

    styles = _pdf_styles()
    buf = io.BytesIO()
    page = landscape(A4) if landscape_page else A4

    def footer(canvas, doc):
        canvas.saveState()
        canvas.setFont(FONT, 7.5)
        canvas.drawString(12 * mm, 8 * mm, f"gi-service · {title}")
        canvas.drawRightString(page[0] - 12 * mm, 8 * mm, f"第 {doc.page} 页 page {doc.page}")
        canvas.restoreState()

    doc = SimpleDocTemplate(buf, pagesize=page, leftMargin=12 * mm, rightMargin=12 * mm, topMargin=12 * mm,
                            bottomMargin=14 * mm, title=title, author="gi-service", subject=title)
    story = [Paragraph(escape(title), styles["title"])]
    story += [Paragraph(escape(line), styles["meta"]) for line in meta]
    story += body
    doc.build(story, onFirstPage=footer, onLaterPages=footer)
    return buf.getvalue()


def _region_text(region: dict[str, Any] | None) -> str:
    return f"{region['full_name']} ({region['adcode']})" if region else "全部辖区 all of your jurisdiction"


def annual_listing_pdf(data: dict[str, Any]) -> bytes:
    from reportlab.lib.units import mm
    from reportlab.platypus import Paragraph, Spacer

    styles = _pdf_styles()
    year, s = data["year"], data["summary"]
    title = f"{year}年度地理标志专用标志使用年报提交情况 Annual reports {year}: who has reported"
    meta = [f"年度 Year: {year}　　区域 Region: {_region_text(data['region'])}",
            f"报送截止 Due: {data['due_date']}　　省级汇总截止 Provincial filing deadline: {data['filing_deadline']}",
            f"生成时间 Generated: {china_time(data['generated_at'])} (北京时间 China time)",
            f"授权使用人 authorized {s['authorized']} · 已提交 submitted {s['submitted']} (逾期 late {s['late']}) · "
            f"草稿 draft {s['draft']} · 未提交 missing {s['missing']} · 已过期未交 overdue {s['overdue']}"]
    header = ["生产者 Producer", "统一社会信用代码 USCC", "地理标志 GI", "状态 Status", "提交时间 Submitted",
              "逾期 Late", "领取 Received", "使用 Activated", "作废/遗失/被盗 Void/lost/stolen", "年末库存 Stock",
              "产量kg Output", "产值元 Value"]
    rows = []
    for r in data["items"]:
        m, report = r["marks"], r.get("_report")
        removed = "/".join(str(blank(m[k])) for k in ("voided", "lost", "stolen")) if report else ""
        rows.append([r["producer"]["name"], r["producer"]["uscc"] or "", r["gi"]["name_zh"],
                     f"{STATUS_ZH[r['status']]} {r['status']}" + (" · 已过期 overdue" if r["overdue"] else ""),
                     china_time(r["submitted_at"]), yes_no(r["late"]) if r["status"] == "submitted" else "",
                     blank(m["received"]), blank(m["activated"]), removed, blank(m["closing_stock"]),
                     blank(report.output_kg if report else None), blank(report.output_value_yuan if report else None)])
    widths = [w * mm for w in (44, 30, 22, 24, 24, 12, 17, 17, 22, 17, 20, 22)]
    body = [Spacer(1, 4 * mm), _table(styles, header, rows, widths)] if rows else \
        [Spacer(1, 4 * mm), Paragraph("没有需要报告的授权使用人 No authorized users had to report.", styles["meta"])]
    return _document(title, meta, body)


def annual_rollup_pdf(data: dict[str, Any]) -> bytes:
    from reportlab.lib.units import mm
    from reportlab.platypus import Spacer

    styles = _pdf_styles()
    year = data["year"]
    title = f"{year}年度地理标志专用标志使用情况汇总表 Annual use of the GI special mark {year}: rollup"
    passed = "（已过 passed）" if data["filing_deadline_passed"] else f"（剩余 {data['days_to_filing_deadline']} 天 days left）"
    meta = [f"年度 Year: {year}　　区域 Region: {_region_text(data['region'])}",
            f"省级汇总报送截止 Provincial filing deadline: {data['filing_deadline']} {passed}　　"
            f"使用人报送截止 Producers' due date: {data['due_date']}",
            f"生成时间 Generated: {china_time(data['generated_at'])} (北京时间 China time)　　"
            "数字为已提交报告之和 figures sum the submitted reports"]
    header = ["地理标志 GI", "授权使用人 Authorized", "已提交 Submitted", "逾期 Late", "未提交 Not submitted",
              "领取 Received", "使用 Activated", "作废 Voided", "遗失 Lost", "被盗 Stolen", "年末库存 Stock",
              "批次 Lots", "配额kg Quota", "已用配额kg Used", "产量kg Output", "产值元 Value"]

    def cells(g):
        p, m = g["producers"], g["marks"]
        return [g["gi"]["name_zh"], p["authorized"], p["submitted"], p["late"],
                f"{p['not_submitted']} (草稿 draft {p['draft']})", m["received"], m["activated"], m["voided"],
                m["lost"], m["stolen"], m["closing_stock"], g["lots"]["count"], g["quota"]["granted_kg"],
                g["quota"]["consumed_kg"], g["output_kg_exact"], g["output_value_yuan_exact"]]

    rows = [cells(g) for g in data["items"]] + [cells(data["total"])]
    widths = [w * mm for w in (30, 15, 15, 12, 22, 15, 15, 13, 13, 13, 15, 12, 18, 18, 20, 23)]
    return _document(title, meta, [Spacer(1, 4 * mm), _table(styles, header, rows, widths, total_row=True)])


def annual_report_pdf(data: dict[str, Any]) -> bytes:
    """One producer's report (the serialized form) as a document to sign and keep."""
    from reportlab.lib.units import mm
    from reportlab.platypus import Paragraph, Spacer
    from xml.sax.saxutils import escape

    styles = _pdf_styles()
    year, f = data["year"], data["figures"]
    marks, lots, quota, declared = f.get("marks", {}), f.get("lots", {}), f.get("quota"), data["declared"]
    state = "已提交 submitted" if data["status"] == "submitted" else "草稿（未提交）DRAFT, not submitted"
    title = f"{year}年度地理标志专用标志使用报告 Annual report on the use of the GI special mark, {year}"
    meta = [f"使用人 User: {data['producer']['name']}　　统一社会信用代码 USCC: {data['producer']['uscc'] or '—'}　　"
            f"行政区划 adcode: {data['producer']['adcode']}",
            f"地理标志 GI: {data['gi']['name_zh']}" + (f" ({data['gi']['name_en']})" if data["gi"]["name_en"] else "")
            + (f"　　登记/公告号 Registration: {data['gi']['registration_no']}" if data["gi"]["registration_no"] else ""),
            f"状态 Status: {state}" + (f"　　提交 submitted {china_time(data['submitted_at'])}" if data["submitted_at"] else "")
            + ("　　逾期提交 LATE" if data["late"] else "") + ("　　已过期未交 OVERDUE" if data["overdue"] else ""),
            f"报送截止 Due: {data['due_date']}　　台账数据生成 Ledger figures as of: {china_time(data['generated_at'])}"
            f"　　打印 Printed: {china_time(clock.now().isoformat())} (北京时间 China time)"]
    body: list[Any] = [Paragraph("一、专用标志（台账数据）Special marks, from the ledger", styles["h2"])]
    mark_rows = [["年初库存 Opening stock (1 Jan)", marks.get("opening_stock")],
                 ["领取 Received (issued to you)", marks.get("received")],
                 ["使用 Activated on lots", marks.get("activated")],
                 ["作废 Voided", marks.get("voided")], ["遗失 Lost", marks.get("lost")],
                 ["被盗 Stolen", marks.get("stolen")],
                 ["其中：库存中作废/遗失/被盗 of which from stock", marks.get("removed_from_stock")],
                 ["年末库存 Closing stock (31 Dec, issued not activated)", marks.get("closing_stock")],
                 ["贴标产品重量kg Weight of marked packs (kg)", marks.get("activated_kg")]]
    body.append(_table(styles, ["项目 Item", "数量 Count"], [[a, blank(b)] for a, b in mark_rows], [120 * mm, 40 * mm]))
    body.append(Paragraph("二、生产批次 Production lots", styles["h2"]))
    pack_rows = [[p["pack_size_g"], p["lots"], p["packs"], p["marks_activated"]] for p in lots.get("by_pack_size", [])]
    pack_rows.append(["合计 Total", lots.get("count", 0), lots.get("packs", 0), marks.get("activated", 0)])
    body.append(_table(styles, ["包装规格g Pack size (g)", "批次数 Lots", "包装数 Packs", "使用标志 Marks"], pack_rows,
                       [50 * mm, 35 * mm, 35 * mm, 40 * mm], total_row=True))
    body.append(Paragraph(f"批次申报总量 Declared lot quantity: {lots.get('declared_kg', 0)} kg　　"
                          f"召回批次 Recalled lots: {lots.get('recalled', 0)}", styles["meta"]))
    body.append(Paragraph("三、年度配额 Quota", styles["h2"]))
    if quota:
        body.append(_table(styles, ["项目 Item", "kg"], [
            ["核定 Base (plots × standard yield)", quota["base_kg"]], ["调整 Adjusted", quota["adjusted_kg"]],
            ["转入 Transferred in", quota["transferred_in_kg"]], ["转出 Transferred out", quota["transferred_out_kg"]],
            ["可用合计 Granted", quota["granted_kg"]], ["已用 Consumed", quota["consumed_kg"]],
            ["剩余 Available", quota["available_kg"]]], [120 * mm, 40 * mm]))
    else:
        body.append(Paragraph("本年度无配额账户 No quota account for this year.", styles["meta"]))
    body.append(Paragraph("四、申报数据 Declared by the user", styles["h2"]))
    body.append(_table(styles, ["项目 Item", "申报值 Declared"], [
        ["产量kg Output quantity (kg)", "" if declared["output_kg"] is None else f"{declared['output_kg']:.3f}"],
        ["产值元 Output value (yuan)",
         "" if declared["output_value_yuan"] is None else f"{declared['output_value_yuan']:.2f}"]],
        [120 * mm, 40 * mm]))
    if declared["notes"]:
        body.append(Paragraph("说明 Notes: " + escape(declared["notes"]), styles["meta"]))
    for w in data["warnings"]:
        body.append(Paragraph("注意 Note: " + escape(w["message"]), styles["warn"]))
    body.append(Spacer(1, 6 * mm))
    return _document(title, meta, body, landscape_page=False)
