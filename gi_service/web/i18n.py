"""Words of the web pages in Chinese (the default) and English, chosen per session with ?lang=.

One table for every page keeps the two languages side by side, so a missing translation is
visible in review (and `tests/browser/test_i18n.py` checks every key has both). Service error
messages are English; `error_text` puts a Chinese summary of the stable error code before them.
"""
from __future__ import annotations

from enum import Enum
from typing import Any

from flask import request, session

LANGS = ("zh", "en")
DEFAULT_LANG = "zh"

TEXTS: dict[str, tuple[str, str]] = {
    # layout
    "brand": ("地理标志服务", "GI service"),
    "other_lang": ("English", "中文"),
    "signed_in_as": ("当前用户", "Signed in as"),
    "logout": ("退出登录", "Sign out"),
    "login": ("登录", "Sign in"),
    "skip": ("跳到正文", "Skip to content"),
    "nav_home": ("首页", "Home"),
    "nav_registry": ("地理标志", "GIs"),
    "nav_producers": ("生产者", "Producers"),
    "nav_quota": ("配额", "Quota"),
    "nav_requests": ("标志申请", "Mark requests"),
    "nav_batches": ("批次", "Batches"),
    "nav_orders": ("印制订单", "Print orders"),
    "nav_plots": ("地块", "Plots"),
    "nav_marks": ("我的标志", "My marks"),
    "kind_authority": ("知识产权管理部门", "authority"),
    "kind_producer": ("生产者", "producer"),
    "kind_printer": ("印制单位", "printer"),
    "kind_inspection": ("执法检查单位", "inspection unit"),
    # login
    "login_title": ("登录", "Sign in"),
    "login_intro": ("使用机构分配的账号登录。", "Sign in with the account your organisation gave you."),
    "username": ("用户名", "Username"),
    "password": ("密码", "Password"),
    "login_failed": ("用户名或密码错误，或账号已停用。", "Wrong username or password, or the account is disabled."),
    "login_missing": ("请输入用户名和密码。", "Enter your username and password."),
    "signed_out": ("已退出登录。", "You are signed out."),
    "session_expired": ("登录已过期，请重新登录。", "Your session has expired; sign in again."),
    "welcome": ("欢迎，{name}。", "Welcome, {name}."),
    # errors
    "error_title": ("出错了", "Something went wrong"),
    "forbidden_title": ("无权访问", "Not allowed"),
    "forbidden_text": ("您的账号无权打开此页面或执行此操作。", "Your account may not open this page or do this."),
    "not_found_title": ("未找到", "Not found"),
    "not_found_text": ("没有这个页面或记录。", "There is no such page or record."),
    "csrf_title": ("表单已失效", "The form has expired"),
    "csrf_text": ("安全校验未通过：表单已过期或不是从本站提交的。请返回、刷新页面后重试。",
                  "The security check failed: the form expired or was not sent from this site. "
                  "Go back, reload the page and try again."),
    "server_error_text": ("服务器发生意外错误，请稍后重试，并在报告时提供请求编号。",
                          "An unexpected error occurred; try again later and quote the request id."),
    "request_id": ("请求编号", "Request id"),
    "back_home": ("返回首页", "Back to the home page"),
    "form_error": ("未能完成：", "Not done: "),
    "required_field": ("{field}：必填", "{field}: required"),
    "bad_number": ("{field}：请输入数字", "{field}: enter a number"),
    "bad_date": ("{field}：日期格式为 YYYY-MM-DD", "{field}: dates are YYYY-MM-DD"),
    "bad_range": ("{field}：每行一个序列号，或“起始 ~ 结束”", "{field}: one serial per line, or 'first ~ last'"),
    "out_of_range": ("{field}：超出允许范围", "{field}: out of range"),
    # common words
    "save": ("保存", "Save"),
    "search": ("检索", "Search"),
    "submit": ("提交", "Submit"),
    "reason": ("理由", "Reason"),
    "note": ("备注", "Note"),
    "status": ("状态", "Status"),
    "actions": ("操作", "Actions"),
    "name": ("名称", "Name"),
    "year": ("年度", "Year"),
    "date": ("日期", "Date"),
    "when": ("时间", "When"),
    "who": ("经办人", "By"),
    "details": ("详情", "Details"),
    "none": ("暂无", "None yet"),
    "all": ("全部", "All"),
    "count": ("数量", "Count"),
    "gi": ("地理标志", "GI"),
    "producer": ("生产者", "Producer"),
    "printer": ("印制单位", "Printer"),
    "uscc": ("统一社会信用代码", "USCC"),
    "adcode": ("行政区划代码", "Adcode"),
    "address": ("地址", "Address"),
    "contact": ("联系方式", "Contact"),
    "kg": ("千克", "kg"),
    "g": ("克", "g"),
    "mu": ("亩", "mu"),
    "from": ("起", "First"),
    "to": ("止", "Last"),
    "open": ("查看", "Open"),
    "showing_newest": ("共 {total} 条，显示最新 {n} 条；可按状态筛选。", "{total} in all; the newest {n} are shown. Filter by status."),
    # home
    "home_title": ("工作台", "Workspace"),
    "home_authority_intro": ("辖区内的地理标志、生产者、配额与标志申请。",
                             "GIs, producers, quotas and mark requests in your jurisdiction."),
    "home_producer_intro": ("您的地块、配额、标志申请与标志使用。", "Your plots, quota, mark requests and marks."),
    "home_printer_intro": ("交给本单位印制的专用标志订单。", "Special-mark orders placed with your printing house."),
    "home_inspection_intro": ("辖区内的线索与地理标志档案。", "Clues and GI records in your jurisdiction."),
    "pending_requests": ("待审批的标志申请", "Mark requests to decide"),
    "pending_authorizations": ("待核准的使用申请", "Authorizations to decide"),
    "gis_managed": ("管理的地理标志", "GIs you manage"),
    "producers_in_jurisdiction": ("辖区内生产者", "Producers in your jurisdiction"),
    "batches_without_printer": ("待下达印制的批次", "Batches awaiting a print order"),
    "quota_available": ("可用配额", "Quota available"),
    "requests_open": ("审批中的申请", "Requests being decided"),
    "marks_in_stock": ("库存标志（已发放未启用）", "Marks in stock (issued, not activated)"),
    "marks_activated": ("已启用标志", "Marks activated"),
    "orders_to_print": ("待印制订单", "Orders to print"),
    "orders_to_issue": ("已印制待发放", "Printed, to issue"),
    "marks_at_printer": ("本单位库存标志", "Marks in your stock"),
    "open_clues": ("待处理线索", "Open clues"),
    "main_work": ("主要工作", "Main work"),
    # registry
    "registry_title": ("地理标志档案", "GI registry"),
    "registry_search_hint": ("名称、拼音或英文，如 longjing", "Name, pinyin or English, e.g. longjing"),
    "results": ("共 {n} 条", "{n} found"),
    "kind": ("类型", "Kind"),
    "category": ("类别", "Category"),
    "registration_no": ("公告 / 注册号", "Announcement / registration no."),
    "registration_date": ("公告 / 注册日期", "Date"),
    "standard": ("标准", "Standard"),
    "testing_body": ("指定检测机构", "Designated testing body"),
    "managing_body": ("管理机构", "Managing body"),
    "standard_yield": ("标准亩产（千克/亩）", "Standard yield (kg/mu)"),
    "area": ("产地范围", "Production area"),
    "area_size": ("面积", "Size"),
    "area_source": ("数据来源", "Source"),
    "no_map": ("尚未登记产地范围图形。", "No production-area geometry is registered."),
    "quality": ("质量技术要求", "Quality and technical requirements"),
    "versions": ("版本历史", "Version history"),
    "version": ("版本", "Version"),
    "change_kind": ("变更类型", "Change"),
    "changed_fields": ("变更字段", "Fields"),
    "amend_title": ("修订档案（生成新版本）", "Amend the record (a new version)"),
    "amend_hint": ("留空的字段保持不变。", "Fields left empty stay as they are."),
    "amended": ("已修订为第 {v} 版。", "Amended: now version {v}."),
    "mark_prefix": ("序列号前缀", "Serial prefix"),
    # producers
    "producers_title": ("生产者", "Producers"),
    "producer_search_hint": ("名称或统一社会信用代码", "Name or USCC"),
    "plots": ("地块", "Plots"),
    "plots_map": ("地块分布图", "Map of the plots"),
    "plot_name": ("地块名称", "Plot name"),
    "survey_year": ("测量年度", "Survey year"),
    "add_plot": ("登记地块", "Register a plot"),
    "plot_geojson": ("地块边界（GeoJSON Polygon，WGS-84 经纬度）", "Boundary (GeoJSON Polygon, WGS-84 lon/lat)"),
    "plot_added": ("地块已登记：{mu} 亩。", "Plot registered: {mu} mu."),
    "plot_retired": ("地块已注销（保留用于往年配额）。", "Plot retired (kept for past years' quotas)."),
    "retire": ("注销", "Retire"),
    "authorizations": ("专用标志使用核准", "Authorizations to use the special mark"),
    "authorization": ("使用核准", "Authorization"),
    "basis": ("依据", "Basis"),
    "announcement_no": ("公告号", "Announcement no."),
    "valid": ("有效期", "Valid"),
    "history": ("历史", "History"),
    "transition": ("变更状态", "Change status"),
    "transition_to": ("变更为", "New status"),
    "transitioned": ("核准状态已变更为：{status}。", "Authorization is now {status}."),
    "register_authorization": ("登记核准（直接核准）", "Register an authorization (approved)"),
    "authorization_created": ("已登记使用核准。", "Authorization registered."),
    "apply_authorization": ("申请使用专用标志", "Apply to use the special mark"),
    "authorization_applied": ("已提交使用申请，等待主管部门核准。", "Application sent; the authority will decide."),
    # quota
    "quota_title": ("配额账户", "Quota accounts"),
    "quota_account": ("配额账户 #{id}", "Quota account #{id}"),
    "base": ("基础配额", "Base"),
    "adjusted": ("调整", "Adjusted"),
    "transferred_in": ("转入", "Transferred in"),
    "transferred_out": ("转出", "Transferred out"),
    "consumed": ("已用", "Consumed"),
    "available": ("可用", "Available"),
    "open_account": ("开立年度配额（地块面积 × 标准亩产）", "Open a yearly quota (plot area × standard yield)"),
    "account_opened": ("已开立配额账户：{kg} 千克。", "Quota account opened: {kg} kg."),
    "adjust": ("调整配额", "Adjust the quota"),
    "amount_kg": ("数量（千克，负数为扣减）", "Amount (kg; negative to reduce)"),
    "adjusted_ok": ("配额已调整，可用 {kg} 千克。", "Quota adjusted; {kg} kg available."),
    "transfer": ("转让配额", "Transfer quota"),
    "to_producer": ("受让生产者", "To producer"),
    "transfer_amount": ("数量（千克）", "Amount (kg)"),
    "transferred": ("已转让 {kg} 千克。", "{kg} kg transferred."),
    "entries": ("账户流水", "Movements"),
    "entry_kind": ("类型", "Kind"),
    "amount": ("数量", "Amount"),
    # requests
    "requests_title": ("专用标志申请", "Special-mark requests"),
    "new_request": ("申请专用标志", "Request special marks"),
    "pack_size_g": ("包装规格（克）", "Pack size (g)"),
    "quantity": ("数量（枚）", "Quantity (marks)"),
    "gtin": ("商品条码 GTIN（可选）", "GTIN (optional)"),
    "quota_needed": ("所需配额", "Quota needed"),
    "requested_at": ("申请时间", "Requested"),
    "requested": ("已提交申请 #{id}，等待审批。", "Request #{id} sent for approval."),
    "approve": ("批准", "Approve"),
    "refuse": ("不予批准", "Refuse"),
    "cancel": ("撤回", "Withdraw"),
    "choose_printer": ("印制单位", "Printer"),
    "no_printer_yet": ("暂不指定", "Not yet"),
    "approved_batch": ("已批准：批次 #{id}，序列号 {first} ~ {last}。", "Approved: batch #{id}, serials {first} ~ {last}."),
    "refused": ("已不予批准申请 #{id}。", "Request #{id} refused."),
    "cancelled": ("已撤回申请 #{id}。", "Request #{id} withdrawn."),
    "no_authorized_gi": ("您尚无已核准的地理标志，不能申请专用标志。",
                         "You have no approved GI authorization yet, so you cannot request marks."),
    "decision": ("决定", "Decision"),
    # batches
    "batches_title": ("标志批次", "Mark batches"),
    "orders_title": ("印制订单", "Print orders"),
    "batch": ("批次 #{id}", "Batch #{id}"),
    "serials": ("序列号", "Serials"),
    "ranges": ("序列号区段", "Serial ranges"),
    "state": ("状态", "State"),
    "lot": ("批次号", "Lot"),
    "print_order": ("下达印制订单", "Place the print order"),
    "ordered": ("已向 {printer} 下达印制订单。", "Print order placed with {printer}."),
    "record_printed": ("登记印制完成", "Record the print run"),
    "spoiled_serials": ("印制废品序列号（每行一个或“起始 ~ 结束”，可留空）",
                        "Spoiled serials (one per line or 'first ~ last'; may be empty)"),
    "printed_ok": ("已登记印制完成。", "Print run recorded."),
    "write_off": ("库存报废", "Write off stock"),
    "write_off_ranges": ("报废序列号", "Serials to write off"),
    "written_off": ("已报废 {n} 枚。", "{n} marks written off."),
    "issue": ("发放给生产者", "Issue to the producer"),
    "issue_ranges": ("发放序列号（留空则发放全部库存）", "Serials to issue (empty: all of the stock)"),
    "issued_ok": ("已发放 {n} 枚。", "{n} marks issued."),
    "print_file": ("下载印制文件", "Download the print file"),
    "print_file_note": ("每次下载都记入台账；重复下载会在订单上标记。",
                        "Every download is recorded in the ledger; a repeated download is flagged on the order."),
    "format": ("格式", "Format"),
    "paper": ("纸张", "Paper"),
    "label_size": ("标签尺寸", "Label size"),
    "download": ("下载", "Download"),
    "downloads": ("下载次数", "Downloads"),
    "repeated_download": ("重复下载", "repeated download"),
    "labels": ("标签图片", "Label images"),
    "label_png": ("PNG", "PNG"),
    "label_svg": ("SVG", "SVG"),
    # marks (producer)
    "marks_title": ("我的标志", "My marks"),
    "stock": ("标志库存", "Marks in hand"),
    "use_range": ("填入启用表单", "Use for activation"),
    "activate": ("启用标志（批次质检合格后）", "Activate marks (after the lot passed its test)"),
    "activate_ranges": ("启用序列号（每行一个或“起始 ~ 结束”）", "Serials to activate (one per line or 'first ~ last')"),
    "lot_no": ("生产批次号", "Lot number"),
    "production_date": ("生产日期", "Production date"),
    "lot_quantity": ("批次包装数", "Packs in the lot"),
    "test_report_no": ("检验报告编号", "Test report no."),
    "test_passed": ("检验合格", "Test passed"),
    "activated": ("已在批次 {lot} 上启用 {n} 枚标志。", "{n} marks activated on lot {lot}."),
    "void": ("作废 / 挂失", "Void / report lost"),
    "void_ranges": ("序列号", "Serials"),
    "void_kind": ("类型", "Kind"),
    "voided_ok": ("已登记 {n} 枚：{kind}。", "{n} marks recorded as {kind}."),
    "lots": ("生产批次", "Production lots"),
    "recall": ("召回", "Recall"),
    "recalled": ("批次 {lot} 已召回。", "Lot {lot} recalled."),
}

# Values of the domain's enums, as people read them.
VALUES: dict[str, tuple[str, str]] = {
    # GI kinds and statuses
    "protected_product": ("地理标志保护产品", "protected GI product"),
    "collective_mark": ("集体商标", "collective mark"),
    "certification_mark": ("证明商标", "certification mark"),
    "foreign_gi": ("中欧协定互认互保地理标志", "foreign GI (EU-China agreement)"),
    "applied": ("已申请", "applied"),
    "published": ("已公告", "published"),
    "registered": ("已登记", "registered"),
    "amended": ("已变更", "amended"),
    "created": ("创建", "created"),
    "status_changed": ("状态变更", "status changed"),
    "area_changed": ("产地范围变更", "area changed"),
    # categories
    "tea": ("茶叶", "tea"), "grain": ("粮食", "grain"), "fruit": ("水果", "fruit"), "vegetable": ("蔬菜", "vegetable"),
    "meat": ("肉制品", "meat"), "aquatic": ("水产品", "aquatic"), "herbal_medicine": ("中药材", "herbal medicine"),
    "wine": ("葡萄酒", "wine"), "spirits": ("酒类", "spirits"), "processed_food": ("加工食品", "processed food"),
    "handicraft": ("手工艺品", "handicraft"), "other": ("其他", "other"),
    # authorizations
    "pending": ("待核准", "pending"),
    "approved": ("已核准", "approved"),
    "suspended": ("已暂停", "suspended"),
    "revoked": ("已撤销", "revoked"),
    "lapsed": ("已失效", "lapsed"),
    "approved_producer": ("公告核准的生产者", "producer approved by announcement"),
    "collective_member": ("集体成员", "member of the collective"),
    "certification_licensee": ("证明商标被许可人", "certification licensee"),
    "foreign_gi_distributor": ("境外地理标志在华经销商", "distributor of a foreign GI"),
    # requests and batches
    "requested": ("审批中", "requested"),
    "refused": ("不予批准", "refused"),
    "cancelled": ("已撤回", "withdrawn"),
    "ordered": ("已下达印制", "ordered"),
    "printed": ("已印制", "printed"),
    "issued": ("已发放", "issued"),
    "closed": ("已关闭", "closed"),
    # mark states
    "allocated": ("已分配", "allocated"),
    "spoiled": ("印制废品", "spoiled"),
    "activated": ("已启用", "activated"),
    "voided": ("已作废", "voided"),
    "lost": ("已挂失（遗失）", "lost"),
    "stolen": ("已挂失（被盗）", "stolen"),
    # quality-requirement sections
    "variety": ("品种", "variety"), "site": ("立地条件", "site"), "climate": ("气候", "climate"),
    "cultivation": ("栽培管理", "cultivation"), "process": ("加工工艺", "process"),
    "sensory": ("感官特色", "sensory"), "physico_chemical": ("理化指标", "physico-chemical"),
    "safety": ("安全要求", "safety"), "packaging": ("包装标识", "packaging"),
    # lots
    "active": ("正常", "active"),
    "recalled": ("已召回", "recalled"),
    # quota entries
    "open": ("开立", "opened"), "adjust": ("调整", "adjusted"), "consume": ("使用", "consumed"),
    "transfer_in": ("转入", "transfer in"), "transfer_out": ("转出", "transfer out"), "release": ("退回", "released"),
}

# Chinese summaries of the services' stable error codes; the English message follows them.
ERRORS_ZH: dict[str, str] = {
    "quota_exceeded": "配额不足",
    "no_quota_account": "尚未开立本年度配额账户",
    "quota_account_exists": "该年度配额账户已开立",
    "not_authorized": "未获专用标志使用核准",
    "wrong_state": "当前状态不允许此操作",
    "not_pending": "申请已处理",
    "not_ordered": "尚未下达印制订单",
    "not_printed": "尚未印制",
    "nothing_to_issue": "没有可发放的库存",
    "invalid_serial": "序列号有误",
    "invalid_range": "序列号区段有误",
    "not_in_batch": "废品序列号不属于本批次",
    "unknown_serial": "序列号不存在",
    "not_your_marks": "不是本单位的标志",
    "not_your_order": "不是本单位的订单",
    "not_your_account": "不是本单位的配额账户",
    "not_your_producer": "不是本单位或辖区内的生产者",
    "outside_jurisdiction": "超出管辖范围",
    "wrong_role": "账号类型不符",
    "lot_test_failed": "批次检验不合格，不能启用标志",
    "wrong_testing_body": "检测机构不是指定机构",
    "more_marks_than_packs": "标志数量超过批次包装数",
    "pack_size_mismatch": "包装规格不符",
    "lot_mismatch": "批次号已存在且信息不一致",
    "lot_recalled": "批次已召回",
    "already_recalled": "批次已召回",
    "validation_failed": "填写有误",
    "invalid_transition": "不允许的状态变更",
    "duplicate_authorization": "已存在使用核准",
    "wrong_basis": "核准依据与地理标志类型不符",
    "no_standard_yield": "该地理标志未登记标准亩产",
    "invalid_gtin": "商品条码有误",
    "plot_outside_area": "地块超出产地范围",
    "invalid_geometry": "地块边界无效",
    "gi_without_area": "该地理标志尚无产地范围",
    "no_change": "没有任何变更",
    "same_account": "不能转让给自己",
    "producer_not_found": "生产者不存在",
    "printer_not_found": "印制单位不存在或已停用",
    "not_issued_yet": "标志尚未发放",
    "bad_label_size": "标签尺寸有误",
    "module_too_small": "标签太小，二维码无法可靠识读",
    "version_conflict": "档案已被他人修改，请刷新",
    "unknown_adcode": "行政区划代码有误",
    "not_found": "未找到",
    "forbidden": "无权操作",
}


def current_lang() -> str:
    lang = session.get("lang")
    return lang if lang in LANGS else DEFAULT_LANG


def remember_lang() -> None:
    """`?lang=zh|en` on any page switches the language for the rest of the session."""
    asked = request.args.get("lang", "").strip().lower()[:2]
    if asked in LANGS and session.get("lang") != asked:
        session["lang"] = asked


def t(key: str, **values: Any) -> str:
    zh, en = TEXTS[key]
    text = en if current_lang() == "en" else zh
    return text.format(**values) if values else text


def v(value: Any) -> str:
    """A domain value (enum or its string) in the page's language; unknown values as they are."""
    if value is None:
        return "—"
    key = value.value if isinstance(value, Enum) else str(value)
    pair = VALUES.get(key)
    if pair is None:
        return key
    return pair[1] if current_lang() == "en" else pair[0]


def error_text(code: str, message: str) -> str:
    """A service error for people: the Chinese summary of its code first (zh), then the message."""
    if current_lang() == "zh" and code in ERRORS_ZH:
        return f"{ERRORS_ZH[code]}：{message}"
    return message
