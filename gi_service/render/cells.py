"""Values as the files print them (CSV cells, PDF table cells): the same words in every format."""
from __future__ import annotations

import datetime as dt
import json
from typing import Any

from .. import clock

STATUS_ZH = {"submitted": "已提交", "draft": "草稿", "missing": "未提交"}


def yes_no(flag: bool) -> str:
    return "是 yes" if flag else "否 no"


def blank(value: Any) -> Any:
    return "" if value is None else value


def china_time(iso: str | None) -> str:
    """An ISO instant as China's wall-clock time, to the minute ("" for none)."""
    return dt.datetime.fromisoformat(iso).astimezone(clock.CHINA_TZ).strftime("%Y-%m-%d %H:%M") if iso else ""


# --- the audit trail (services/audit.py): one column list for every download format --------------------

OUTCOME_ZH = {"success": "成功 success", "failure": "失败 failure"}
CHANNEL_ZH = {"api": "接口 api", "web": "网页 web", "cli": "命令行 cli"}

# (key, header, cell from a record dict) in the order the files list them; the headers say Chinese first.
AUDIT_COLUMNS: list[tuple[str, str, Any]] = [
    ("id", "记录编号 (id)", lambda r: r["id"]),
    ("seq", "链序号 (seq)", lambda r: blank(r["seq"])),
    ("at", "时间 (at, China time)",
     lambda r: dt.datetime.fromisoformat(r["at"]).astimezone(clock.CHINA_TZ).strftime("%Y-%m-%d %H:%M:%S")),
    ("channel", "渠道 (channel)", lambda r: CHANNEL_ZH.get(r["channel"], r["channel"])),
    ("action", "操作 (action)", lambda r: r["action"]),
    ("target", "对象 (target)", lambda r: blank(r["target"])),
    ("outcome", "结果 (outcome)", lambda r: OUTCOME_ZH.get(r["outcome"], r["outcome"])),
    ("error_code", "错误代码 (error_code)", lambda r: blank(r["error_code"])),
    ("http_status", "HTTP状态 (http_status)", lambda r: blank(r["http_status"])),
    ("username", "用户名 (username)", lambda r: blank(r["username"])),
    ("user_id", "用户编号 (user_id)", lambda r: blank(r["user_id"])),
    ("organisation_id", "单位编号 (organisation_id)", lambda r: blank(r["organisation_id"])),
    ("role", "角色 (role)", lambda r: blank(r["role"])),
    ("org_adcode", "单位区划 (org_adcode)", lambda r: blank(r["org_adcode"])),
    ("address", "来源地址 (address)", lambda r: blank(r["address"])),
    ("request_id", "请求编号 (request_id)", lambda r: blank(r["request_id"])),
    ("method", "方法 (method)", lambda r: blank(r["method"])),
    ("path", "路径 (path)", lambda r: blank(r["path"])),
    ("detail", "详情 (detail)", lambda r: json.dumps(r["detail"], ensure_ascii=False, sort_keys=True)
     if r["detail"] else ""),
]
