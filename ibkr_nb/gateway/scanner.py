"""Market scanners over the simulated stock universe: the parameters XML and the scans.

Instruments: STK (US stocks and ETFs). Locations: STK.US, STK.US.MAJOR and the primary
exchanges (STK.NASDAQ, STK.NYSE, STK.ARCA). Scan codes rank the whole universe (no minimum
move: with two dozen stocks a gainers scan also lists the best of the losers):

* TOP_PERC_GAIN / TOP_PERC_LOSE: change from the previous close, in %.
* TOP_OPEN_PERC_GAIN / TOP_OPEN_PERC_LOSE: change from today's open, in %.
* MOST_ACTIVE / HOT_BY_VOLUME: today's volume in shares.
* TOP_PRICE_RANGE: today's high - low as % of the last price.

Filters (old ScannerSubscription fields and the new tag names): abovePrice / priceAbove,
belowPrice / priceBelow, aboveVolume / volumeAbove, changePercAbove, changePercBelow.
"""

from __future__ import annotations

from xml.sax.saxutils import escape

SCAN_CODES = {
    "TOP_PERC_GAIN": ("Top % Gainers", lambda q: _change(q.last, q.close), True),
    "TOP_PERC_LOSE": ("Top % Losers", lambda q: _change(q.last, q.close), False),
    "TOP_OPEN_PERC_GAIN": ("Top % Gainers Since Open", lambda q: _change(q.last, q.open), True),
    "TOP_OPEN_PERC_LOSE": ("Top % Losers Since Open", lambda q: _change(q.last, q.open), False),
    "MOST_ACTIVE": ("Most Active", lambda q: q.volume, True),
    "HOT_BY_VOLUME": ("Hot Contracts by Volume", lambda q: q.volume, True),
    "TOP_PRICE_RANGE": ("Top Price Range", lambda q: 100.0 * (q.high - q.low) / q.last, True),
}
LOCATIONS = {
    "STK.US": None,
    "STK.US.MAJOR": None,
    "STK.NASDAQ": "NASDAQ",
    "STK.NYSE": "NYSE",
    "STK.ARCA": "ARCA",
}
FILTERS = {  # tag -> (display name, test(quote, limit))
    "priceAbove": ("Price Above", lambda q, x: q.last > x),
    "priceBelow": ("Price Below", lambda q, x: q.last < x),
    "volumeAbove": ("Volume Above", lambda q, x: q.volume > x),
    "changePercAbove": ("Change % Above", lambda q, x: _change(q.last, q.close) > x),
    "changePercBelow": ("Change % Below", lambda q, x: _change(q.last, q.close) < x),
}
_OLD_FIELDS = {"abovePrice": "priceAbove", "belowPrice": "priceBelow", "aboveVolume": "volumeAbove"}
MAX_ROWS = 50


class ScanError(ValueError):
    """A subscription the scanner cannot run; the message names the field and what is valid."""


def _change(price: float, base: float) -> float:
    return 100.0 * (price / base - 1.0) if base else 0.0


def scanner_parameters_xml() -> str:
    """The reqScannerParameters document: instruments, locations, scan codes and filters."""
    scans = "".join(
        f"<ScanType><displayName>{escape(name)}</displayName><scanCode>{code}</scanCode>"
        f"<instruments>STK</instruments></ScanType>"
        for code, (name, _, _) in SCAN_CODES.items()
    )
    locations = "".join(
        f"<Location><displayName>{code}</displayName><locationCode>{code}</locationCode>"
        f"<instruments>STK</instruments></Location>"
        for code in LOCATIONS
    )
    fields = "".join(
        f'<RangeFilter><id>{tag}</id><AbstractField type="scanner.filter.DoubleField">'
        f"<code>{tag}</code><displayName>{escape(name)}</displayName></AbstractField>"
        f"</RangeFilter>"
        for tag, (name, _) in FILTERS.items()
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        "<!-- ibkr-nb paper gateway: the scans it simulates over its stock universe -->\n"
        "<ScanParameterResponse>"
        "<InstrumentList><Instrument><name>US Stocks</name><type>STK</type>"
        "<filters>" + ",".join(FILTERS) + "</filters></Instrument></InstrumentList>"
        f"<LocationTree>{locations}</LocationTree>"
        f"<ScanTypeList>{scans}</ScanTypeList>"
        f"<FilterList>{fields}</FilterList>"
        "</ScanParameterResponse>"
    )


def parse_tag_values(text: str) -> dict[str, str]:
    """ib_async's ``tag=value;tag=value;`` form as a dict."""
    out = {}
    for part in text.split(";"):
        if "=" in part:
            tag, value = part.split("=", 1)
            out[tag.strip()] = value.strip()
    return out


def scan(quotes, primary_exchange: dict[str, str], v: dict) -> list:
    """The ranked quotes a scanner subscription ``v`` (decoded request) selects.

    ``quotes`` are the current quotes of the universe; ``primary_exchange`` maps symbol to
    listing exchange. Raises :class:`ScanError` for an unknown instrument, location, scan code
    or filter, or a filter value that is not a number.
    """
    if (v.get("instrument") or "STK") != "STK":
        raise ScanError(f"instrument {v.get('instrument')!r} is not scanned; valid: STK")
    location = v.get("locationCode") or "STK.US.MAJOR"
    if location not in LOCATIONS:
        raise ScanError(f"location {location!r} is not scanned; valid: {', '.join(LOCATIONS)}")
    code = v.get("scanCode") or ""
    if code not in SCAN_CODES:
        raise ScanError(f"scan code {code!r} is not simulated; valid: {', '.join(SCAN_CODES)}")
    limits = {new: v[old] for old, new in _OLD_FIELDS.items() if v.get(old) not in (None, 0)}
    for tag, text in parse_tag_values(v.get("filterOptions") or "").items():
        if tag not in FILTERS:
            raise ScanError(f"filter {tag!r} is not simulated; valid: {', '.join(FILTERS)}")
        try:
            limits[tag] = float(text)
        except ValueError:
            raise ScanError(f"filter {tag} needs a number, got {text!r}") from None
    exchange = LOCATIONS[location]
    _, key, descending = SCAN_CODES[code]
    picked = [
        q
        for q in quotes
        if (exchange is None or primary_exchange[q.symbol] == exchange)
        and all(FILTERS[tag][1](q, limit) for tag, limit in limits.items())
    ]
    picked.sort(key=lambda q: (-key(q) if descending else key(q), q.symbol))
    rows = v.get("numberOfRows") or -1
    return picked[: MAX_ROWS if rows < 0 else min(rows, MAX_ROWS)]
