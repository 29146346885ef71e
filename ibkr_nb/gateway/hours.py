"""When FX pairs and futures trade: their own weekly sessions, apart from the stock market's.

New York time. IDEALPRO FX trades from Sunday 17:15 to Friday 17:00, pausing 17:00-17:15 each
day; CME Globex equity futures (ES, NQ) from Sunday 18:00 to Friday 17:00, halting 17:00-18:00
each day. Holidays are not modelled for these two (the stock exchange's are, in
:mod:`.market`). Stocks and options follow :func:`.market.trading_phase`.
"""

from __future__ import annotations

from datetime import datetime

from .market import ET

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
