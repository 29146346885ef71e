"""How tables look in a notebook: masked account ids, money with two decimals, exchange time.

``table(frame)`` wraps a DataFrame for display without changing it: ``.data`` keeps the
floats and UTC timestamps; only the rendering (HTML through a pandas Styler, and plain text)
masks account ids (``DU****567``), shows money with thousands separators and two decimals,
fractions as percentages and tz-aware times in the exchange's time zone (New York).
Rendered output carries no random ids, so the same frame renders to the same text.
"""

from __future__ import annotations

import hashlib
import re

import pandas as pd

from ibkr_nb.frames import EXCHANGE_TZ

_masking = {"on": True}
ACCOUNT_COLUMNS = frozenset({"account", "account_id", "acct_number"})
MONEY_WORDS = frozenset(
    {
        "price", "pnl", "value", "cost", "commission", "notional", "proceeds", "basis",
        "gain", "loss", "margin", "equity", "adjustment", "amount", "difference", "profit",
        "close", "open", "high", "low", "wap", "ours", "ibkr", "st", "lt", "risk", "total",
        "realized", "unrealized", "cash", "funds",
    }
)  # fmt: skip
PERCENT_WORDS = frozenset({"pct", "return", "rate", "stated", "observed", "gap"})
_ACCOUNT_ID = re.compile(r"\b([A-Z]{1,2})(\d{4,})(\d{3})\b")


def set_account_masking(on: bool) -> None:
    """Mask account ids in everything rendered from now on (on by default: notebooks get
    shared). ``set_account_masking(False)`` shows them in full."""
    _masking["on"] = bool(on)


def account_masking() -> bool:
    return _masking["on"]


def mask_account(account, mask: bool | None = None) -> str:
    """``DU1234567`` -> ``DU****567`` (prefix letters, four stars, last three digits)."""
    text = "" if account is None or account is pd.NA else str(account)
    if not (account_masking() if mask is None else mask):
        return text
    return _ACCOUNT_ID.sub(lambda m: f"{m.group(1)}****{m.group(3)}", text)


def money(value: float, currency: str = "") -> str:
    """``1234.5`` -> ``1,234.50`` (``currency`` appended when given); NaN -> empty."""
    if value is None or pd.isna(value):
        return ""
    return f"{round(float(value), 2) + 0.0:,.2f}" + (f" {currency}" if currency else "")


def exchange_time(value) -> pd.Timestamp | None:
    """A tz-aware timestamp in the exchange's time zone (naive ones are taken as UTC)."""
    if value is None or pd.isna(value):
        return None
    stamp = pd.Timestamp(value)
    return (stamp if stamp.tzinfo else stamp.tz_localize("UTC")).tz_convert(EXCHANGE_TZ)


def _words(column) -> set[str]:
    return set(str(column).lower().split("_"))


class Table:
    """A DataFrame shown with the notebook conventions; ``.data`` is the unchanged frame."""

    def __init__(self, data: pd.DataFrame, money=None, percent=None, caption: str = ""):
        self.data = data
        numeric = [c for c in data.columns if pd.api.types.is_float_dtype(data[c])]
        self.percent = (
            list(percent)
            if percent is not None
            else [c for c in numeric if _words(c) & PERCENT_WORDS]
        )
        self.money = (
            list(money)
            if money is not None
            else [c for c in numeric if _words(c) & MONEY_WORDS and c not in self.percent]
        )
        self.caption = caption

    def shown(self) -> pd.DataFrame:
        """The frame as displayed: accounts masked, times in New York (values as text)."""
        out = self.data.copy()
        for column in out.columns:
            series = out[column]
            if column in ACCOUNT_COLUMNS or str(column).endswith("_account"):
                out[column] = series.map(mask_account)
            elif isinstance(series.dtype, pd.DatetimeTZDtype):
                out[column] = series.dt.tz_convert(EXCHANGE_TZ)
            elif series.dtype == object and account_masking():
                out[column] = series.map(lambda v: mask_account(v) if isinstance(v, str) else v)
        return out

    def formatters(self) -> dict:
        numbers = [c for c in self.data.columns if pd.api.types.is_float_dtype(self.data[c])]
        fmt = {c: (lambda v: "" if pd.isna(v) else f"{v:,.6g}") for c in numbers}
        fmt.update({c: money for c in self.money})
        fmt.update({c: (lambda v: "" if pd.isna(v) else f"{v:.2%}") for c in self.percent})
        return fmt

    def styler(self):
        shown = self.shown()
        digest = hashlib.sha1(shown.to_csv(index=False).encode()).hexdigest()[:10]  # index hidden
        styler = shown.style.format(self.formatters(), na_rep="").set_uuid(f"ibkrnb{digest}")
        if self.caption:
            styler = styler.set_caption(self.caption)
        return styler.hide(axis="index")

    def _repr_html_(self) -> str:
        return self.styler().to_html()

    def __repr__(self) -> str:
        text = self.shown().to_string(index=False, formatters=self.formatters(), na_rep="")
        return f"{self.caption}\n{text}" if self.caption else text


def table(frame: pd.DataFrame, *, money=None, percent=None, caption: str = "") -> Table:
    """``frame`` for display: money columns (float columns named like price, pnl, value,
    cost, commission, notional, proceeds, basis, gain...) with two decimals; fractions
    (pct, return, rate) as percentages; account ids masked; times in New York. Pass
    ``money=`` / ``percent=`` lists to choose the columns yourself."""
    return Table(frame, money=money, percent=percent, caption=caption)


def _plain(frame: pd.DataFrame, printer, cycle) -> None:
    printer.text(repr(Table(frame)))


def _html(frame: pd.DataFrame) -> str | None:
    if len(frame) > 500:
        return None  # IPython falls back to pandas' own (truncated) HTML
    return Table(frame)._repr_html_()


def install() -> bool:
    """Show every DataFrame in the running IPython as ``table()`` does (money with two
    decimals, masked accounts, New York times; the numbers stay floats). Returns whether an
    IPython shell was there to install into."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    if shell is None:
        return False
    formatters = shell.display_formatter.formatters
    formatters["text/plain"].for_type(pd.DataFrame, _plain)
    formatters["text/html"].for_type(pd.DataFrame, _html)
    return True
