"""When FX pairs and futures trade: their own weekly sessions, apart from the stock market's.

New York time. IDEALPRO FX trades from Sunday 17:15 to Friday 17:00, pausing 17:00-17:15 each
day; CME Globex equity futures (ES, NQ) from Sunday 18:00 to Friday 17:00, halting 17:00-18:00
each day. Holidays are not modelled for these two (the stock exchange's are, in
:mod:`.market`). Stocks and options follow :func:`.market.trading_phase`.

Futures settle daily at the stock market's close (16:00, 13:00 on early-close days; CME settles
E-mini equity futures at 15:00 Chicago time = 16:00 New York), on its session days.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import lru_cache

from .market import ET, day_index, is_session, session_bounds

# sec type -> (daily reopening, minutes after midnight; the daily close is 17:00)
REOPEN_MINUTE = {"CASH": 17 * 60 + 15, "FUT": 18 * 60}
CLOSE_MINUTE = 17 * 60
SUNDAY, FRIDAY, SATURDAY = 6, 4, 5


def has_own_hours(sec_type: str) -> bool:
    """True for the security types that trade around the clock on weekdays (FX, futures)."""
    return sec_type in REOPEN_MINUTE


def is_open(sec_type: str, ts: float) -> bool:
    """Whether an FX pair (``CASH``) or a future (``FUT``) trades at POSIX time ``ts``."""
    et = datetime.fromtimestamp(ts, ET)
    minute = et.hour * 60 + et.minute
    reopen = REOPEN_MINUTE[sec_type]
    day = et.weekday()
    if day == SATURDAY or (day == SUNDAY and minute < reopen):
        return False
    if day == FRIDAY and minute >= CLOSE_MINUTE:
        return False
    return not CLOSE_MINUTE <= minute < reopen


def last_settlement(ts: float) -> float:
    """POSIX time of the latest daily futures settlement at or before ``ts``."""
    return _last_settlement(int(ts))


@lru_cache(maxsize=256)
def _last_settlement(ts: int) -> float:
    day = datetime.fromtimestamp(ts, ET).date()
    while True:
        if is_session(day):
            close = session_bounds(day_index(day))[1]
            if close <= ts:
                return close
        day -= timedelta(days=1)
