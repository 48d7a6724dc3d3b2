"""Values as the files print them (CSV cells, PDF table cells): the same words in every format."""
from __future__ import annotations

import datetime as dt
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
