"""Time in the service: China Standard Time, its days and years, and the service clock.

`now()` is the service clock: the current instant, aware, in UTC. Everything the service stamps or
compares with the present reads it here, looked up on this module at call time (``clock.now()``),
the columns' defaults included (``db.timestamp``), so a test freezes or moves time by patching this
one function (``tests/factories.ServiceClock``).

Days, years and deadlines are reckoned in China Standard Time (UTC+8, no daylight saving): a day
or a year is the half-open window of UTC instants ``[start, end)`` it covers.
"""
from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

CHINA_TZ = ZoneInfo("Asia/Shanghai")


def now() -> dt.datetime:
    """The service clock: the current instant in UTC (patch this to move the service's time)."""
    return dt.datetime.now(dt.timezone.utc)


def china_date(moment: dt.datetime) -> dt.date:
    """The calendar date of an instant in China."""
    return moment.astimezone(CHINA_TZ).date()


def china_year(moment: dt.datetime) -> int:
    """The calendar year of an instant in China."""
    return moment.astimezone(CHINA_TZ).year


def today() -> dt.date:
    """Today's date in China, by the service clock."""
    return china_date(now())


def start_of_day(day: dt.date) -> dt.datetime:
    """The first instant of `day` in China Standard Time, in UTC."""
    return dt.datetime.combine(day, dt.time(), tzinfo=CHINA_TZ).astimezone(dt.timezone.utc)


def end_of_day(day: dt.date) -> dt.datetime:
    """The first instant after `day` in China Standard Time, in UTC."""
    return start_of_day(day + dt.timedelta(days=1))


def year_window(year: int) -> tuple[dt.datetime, dt.datetime]:
    """[1 January 00:00, next 1 January 00:00) of `year` in China Standard Time, as UTC instants."""
    return end_of_day(dt.date(year - 1, 12, 31)), end_of_day(dt.date(year, 12, 31))


def month_start(year: int, month: int) -> dt.datetime:
    """The first instant of `month` of `year` in China Standard Time, in UTC (month 13: next January)."""
    y, m = (year + 1, 1) if month == 13 else (year, month)
    return dt.datetime(y, m, 1, tzinfo=CHINA_TZ).astimezone(dt.timezone.utc)
