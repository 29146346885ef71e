"""IBKR's CSV statements: the Activity Statement (any language IBKR writes it in) and the
Transaction History, read into the normalised trades frame (see `trades`).

Activity Statement `Trades` rows:
- `DataDiscriminator` `Order` rows are orders, `Trade` rows their executions, `ClosedLot`
  rows the lots IBKR closed for the row above. A statement with `Order` rows books the
  orders (the `Trade` rows repeat them); one without books the `Trade` rows. Never both.
- `Code`: C closing, O opening, Ca cancelled (the row and the trade it cancels are dropped),
  A assigned, Ep expired, Ex exercised. A row with no C/O code that realizes P/L is closing.
- `Comm/Fee` is negative in the statement (negated here); the multiplier is `Proceeds` over
  quantity x price (100 for US equity options).
- The account comes from an `Account` column or the `Account Information` section; the base
  currency from `Account Information` or, failing that, the currency of a `Trades` `Total`
  row that no trade uses. The statement gives no USD rate per trade: non-USD trades keep
  `fx_rate` NaN (their figures are computed in their own currency).
Section, column and asset-category names are also read in Russian (IBKR's localised export).
"""

from __future__ import annotations

import csv
import io
import re
from collections import Counter

import numpy as np
import pandas as pd

from ibkr_nb.tax.history import with_prior_positions
from ibkr_nb.tax.trades import (
    CLOSED_LOT_COLUMNS,
    DEFAULT_TZ,
    EXTRA_COLUMNS,
    REALIZED_COLUMNS,
    REJECT_COLUMNS,
    TRADE_COLUMNS,
    ImportResult,
    TradeFileError,
    finalise,
    parse_datetimes,
    to_number,
)

# IBKR's localised names -> the English ones.
SECTION_NAMES = {
    "Сделки": "Trades",
    "Информация о счете": "Account Information",
    "Информация о счёте": "Account Information",
    "Отчет": "Statement",
}
COLUMN_NAMES = {
    "Класс актива": "Asset Category",
    "Валюта": "Currency",
    "Символ": "Symbol",
    "Дата/Время": "Date/Time",
    "Количество": "Quantity",
    "Цена транзакции": "T. Price",
    "Цена закрытия": "C. Price",
    "Выручка": "Proceeds",
    "Комиссия/плата": "Comm/Fee",
    "Базис": "Basis",
    "Реализованная П/У": "Realized P/L",
    "Рыноч. переоценка П/У": "MTM P/L",
    "Код": "Code",
    "Счет": "Account",
    "Счёт": "Account",
    "Биржа": "Exchange",
    "Название поля": "Field Name",
    "Значение поля": "Field Value",
    "Базовая валюта": "Base Currency",
}
CATEGORIES = {
    "Stocks": "STK",
    "Акции": "STK",
    "Equity and Index Options": "OPT",
    "Опционы на акции и индексы": "OPT",
    "Warrants": "WAR",
    "Варранты": "WAR",
    "Forex": "CASH",
    "Futures": "FUT",
    "Фьючерсы": "FUT",
    "Options On Futures": "FOP",
    "Bonds": "BOND",
    "Облигации": "BOND",
    "CFDs": "CFD",
}
STAGE_COLUMNS = [*TRADE_COLUMNS, *EXTRA_COLUMNS, "line", "raw"]
NOT_BOOKED = {
    "CASH": "a currency conversion is not a security lot (not booked)",
    "FUT": "futures are section 1256 contracts (marked to market), not lots: not booked",
    "FOP": "options on futures are section 1256 contracts, not lots: not booked",
}


def _codes(code: str) -> set[str]:
    return {c.strip() for c in re.split(r"[;,]", code) if c.strip()}


def open_close_from_codes(codes: set[str], realized: float) -> str:
    """ "C" closing, "O" opening, "CO" closing then opening the other side (through zero),
    "" unknown, from IBKR's trade codes (a row realizing P/L with neither is closing)."""
    if "C" in codes:
        return "CO" if "O" in codes else "C"
    if "O" in codes:
        return "O"
    return "C" if realized == realized and realized != 0 else ""


ACTIONS = {"Ex": "exercise", "A": "assignment", "Ep": "expiry"}


def action_from_codes(codes: set[str]) -> str:
    """ "exercise" / "assignment" / "expiry" from IBKR's codes Ex / A / Ep, else ""."""
    return next((ACTIONS[c] for c in ("Ex", "A", "Ep") if c in codes), "")


def multiplier_from(proceeds: float, quantity: float, price: float) -> float:
    """Currency units per unit of price x quantity, from the statement's own proceeds (NaN
    where a row cannot tell: price or proceeds zero, as on an exercise or expiry)."""
    gross = abs(quantity * price)
    if not (gross > 0 and proceeds == proceeds and proceeds != 0):
        return float("nan")
    m = abs(proceeds) / gross
    return float(round(m)) if m >= 1 else m


def stage_result(
    rows: list[dict],
    realized: list[dict],
    lots: list[dict],
    source: str,
    tz: str,
    base: dict[str, str],
    refused: list[tuple[dict, str]] = (),
) -> ImportResult:
    """Finalise statement rows into an ImportResult; rows in categories that are not booked
    and the `refused` (row, reason) pairs go to rejects with their reason."""
    stage = pd.DataFrame(rows, columns=STAGE_COLUMNS)
    not_booked = stage["asset_category"].isin(list(NOT_BOOKED)).to_numpy()
    result = finalise(stage[~not_booked], source, tz)
    refused = [
        *refused,
        *(
            (r, f"asset category {r['asset_category']}: {NOT_BOOKED[r['asset_category']]}")
            for r in stage[not_booked].to_dict("records")
        ),
    ]
    extra = pd.DataFrame(
        [
            {
                "source": source,
                "line": r["line"],
                "symbol": r["symbol"],
                "raw": r["raw"],
                "reason": why,
            }
            for r, why in refused
        ],
        columns=REJECT_COLUMNS,
    )
    rejects = (
        pd.concat([result.rejects, extra], ignore_index=True) if len(extra) else result.rejects
    )
    rejects = rejects.sort_values("line", kind="stable").reset_index(drop=True)
    realized_frame = pd.DataFrame(realized, columns=REALIZED_COLUMNS)
    realized_frame["datetime"] = parse_datetimes(realized_frame["datetime"], tz)
    for c in ("realized_pnl", "fx_rate_to_base"):
        realized_frame[c] = realized_frame[c].astype(float)
    out = ImportResult(
        trades=result.trades,
        rejects=rejects,
        source=source,
        ibkr_realized=realized_frame,
        ibkr_closed_lots=closed_lots_frame(lots, tz),
        base_currency=base,
    )
    return with_prior_positions(out, result.trades)


def closed_lots_frame(rows: list[dict], tz: str) -> pd.DataFrame:
    """Closed-lot rows with `date_acquired` as a naive date and numbers as floats."""
    frame = pd.DataFrame(rows, columns=CLOSED_LOT_COLUMNS)
    frame["date_acquired"] = (
        parse_datetimes(frame["date_acquired"], tz).dt.tz_localize(None).dt.normalize()
    )
    for c in ("quantity", "cost_basis", "realized_pnl"):
        frame[c] = to_number(frame[c])
    return frame


def _number(value: str | None) -> float:
    try:
        return float((value or "").replace(",", ""))
    except ValueError:
        return float("nan")


def fill_multipliers(rows: list[dict]) -> list[dict]:
    """Rows whose multiplier the row itself cannot tell take their symbol's from other rows,
    else 100 for an option (IBKR's US equity option) and 1 for anything else."""
    known = {r["symbol"]: r["multiplier"] for r in rows if r["multiplier"] == r["multiplier"]}
    for r in rows:
        if r["multiplier"] != r["multiplier"]:
            default = 100.0 if r["asset_category"] == "OPT" else 1.0
            r["multiplier"] = known.get(r["symbol"], default)
    return rows


def drop_cancelled(
    rows: list[dict], cancels: list[dict]
) -> tuple[list[dict], list[tuple[dict, str]]]:
    """Rows without the cancellations and the trades they cancel, and the cancellations
    whose trade is not among the rows (with a reason, for the rejects).

    A cancellation cancels the trade it names (`cancels`), else the latest earlier row of the
    same account, symbol, price and absolute quantity.
    """
    gone: set[int] = set()
    refused: list[tuple[dict, str]] = []
    for c in cancels:
        match = [
            i
            for i, r in enumerate(rows)
            if i not in gone
            and (
                r["trade_id"] == c["cancels"]
                if c["cancels"]
                else (
                    r["account"] == c["account"]
                    and r["symbol"] == c["symbol"]
                    and _number(r["price"]) == _number(c["price"])
                    and abs(_number(r["quantity"])) == abs(_number(c["quantity"]))
                )
            )
        ]
        if match:
            gone.add(match[-1])
        else:
            refused.append(
                (c, "cancels a trade that is not in this statement; import the statement with it")
            )
    return [r for i, r in enumerate(rows) if i not in gone], refused


def from_activity_csv(text: str, source: str = "activity", tz: str = DEFAULT_TZ) -> ImportResult:
    """Trades from an IBKR Activity Statement CSV (see the module docstring)."""
    header: list[str] | None = None
    default_account, base_currency = "", ""
    by_level: dict[str, list[dict]] = {"Order": [], "Trade": []}
    realized: dict[str, list[dict]] = {"Order": [], "Trade": []}
    lots: dict[str, list[dict]] = {"Order": [], "Trade": []}
    cancels: dict[str, list[dict]] = {"Order": [], "Trade": []}
    last_id = {"Order": "", "Trade": ""}
    seen: Counter[str] = Counter()
    total_currencies: set[str] = set()
    for line_no, rec in enumerate(csv.reader(io.StringIO(text)), start=1):
        if len(rec) < 2:
            continue
        section = SECTION_NAMES.get(rec[0], rec[0])
        if section == "Account Information" and rec[1] == "Data" and len(rec) >= 4:
            name = COLUMN_NAMES.get(rec[2], rec[2])
            if name == "Account":
                default_account = rec[3].split(" ")[0]
            elif name == "Base Currency":
                base_currency = rec[3].strip().upper()
        if section != "Trades":
            continue
        if rec[1] == "Header":
            header = [COLUMN_NAMES.get(h.strip(), h.strip()) for h in rec]
            continue
        if header is None:
            continue
        a = dict(zip(header[2:], rec[2:], strict=False))
        if rec[1] == "Total":
            total_currencies.add(a.get("Currency", "").strip().upper())
            continue
        if rec[1] != "Data":
            continue
        disc = a.get("DataDiscriminator", "Order")
        account = a.get("Account", "") or default_account
        category = CATEGORIES.get(a.get("Asset Category", "Stocks"), a.get("Asset Category", ""))
        if disc == "ClosedLot":
            for level in ("Order", "Trade"):
                lots[level].append(
                    {
                        "trade_id": last_id[level],
                        "account": account,
                        "symbol": a.get("Symbol", ""),
                        "date_acquired": a.get("Date/Time", ""),
                        "quantity": a.get("Quantity", ""),
                        "cost_basis": a.get("Basis", ""),
                        "realized_pnl": a.get("Realized P/L", ""),
                    }
                )
            continue
        if disc not in by_level:
            continue
        symbol = a.get("Symbol", "").strip()
        when = a.get("Date/Time", "").strip()
        quantity, price = _number(a.get("Quantity")), _number(a.get("T. Price"))
        content = f"{account}|{symbol}|{when}|{quantity:g}|{price:g}|{disc}"
        seen[content] += 1
        trade_id = content if seen[content] == 1 else f"{content}#{seen[content]}"
        last_id[disc] = trade_id
        pnl = _number(a.get("Realized P/L"))
        codes = _codes(a.get("Code", ""))
        currency = a.get("Currency", "USD").strip().upper()
        comm = _number(a.get("Comm/Fee") or "0")
        row = {
            "trade_id": trade_id,
            "account": account,
            "symbol": symbol,
            "datetime": when,
            "quantity": a.get("Quantity", "").replace(",", ""),
            "price": a.get("T. Price", ""),
            "commission": "" if np.isnan(comm) else str(-comm),
            "currency": currency,
            "fx_rate": "1" if currency == "USD" else "",
            "asset_category": category,
            "multiplier": multiplier_from(_number(a.get("Proceeds")), quantity, price),
            "open_close": open_close_from_codes(codes, pnl),
            "fx_source": "",
            "action": action_from_codes(codes),
            "line": line_no,
            "raw": ",".join(rec),
        }
        if "Ca" in codes:
            cancels[disc].append({**row, "cancels": ""})
            continue
        by_level[disc].append(row)
        if "C" in row["open_close"]:
            realized[disc].append(
                {
                    "trade_id": trade_id,
                    "account": account,
                    "symbol": symbol,
                    "datetime": when,
                    "realized_pnl": pnl,
                    "currency": currency,
                    "fx_rate_to_base": np.nan,
                }
            )
    if header is None:
        raise TradeFileError(
            f"{source}: the Activity Statement has no Trades section; include Trades when exporting it."
        )
    level = "Order" if by_level["Order"] else "Trade"
    if not base_currency:
        used = {r["currency"] for r in by_level[level]}
        unused = total_currencies - used - {""}
        base_currency = unused.pop() if len(unused) == 1 else ""
    rows, refused = drop_cancelled(fill_multipliers(by_level[level]), cancels[level])
    kept = {r["trade_id"] for r in rows}
    pnl = [r for r in realized[level] if r["trade_id"] in kept]
    accounts = {r["account"] for r in rows} | {default_account}
    base = {acc: base_currency for acc in accounts if base_currency}
    return stage_result(rows, pnl, lots[level], source, tz, base, refused)


def from_transaction_history(
    text: str, source: str = "transactions", tz: str = DEFAULT_TZ
) -> ImportResult:
    """Trades from IBKR's Transaction History CSV (`Buy` / `Sell` rows; other rows such as
    dividends, interest and deposits are not trades and are passed over).

    Amounts are in the account's base currency (`Summary` `Base Currency`); `Commission` is
    negative in the file. The file says nothing of opening or closing, so a sale is booked
    as it stands.
    """
    header: list[str] | None = None
    base_currency = ""
    rows: list[dict] = []
    seen: Counter[str] = Counter()
    for line_no, rec in enumerate(csv.reader(io.StringIO(text)), start=1):
        if len(rec) < 3:
            continue
        if rec[0] == "Summary" and rec[1] == "Data" and rec[2].strip() == "Base Currency":
            base_currency = rec[3].strip().upper()
        if rec[0] != "Transaction History":
            continue
        if rec[1] == "Header":
            header = [h.strip() for h in rec]
            continue
        if rec[1] != "Data" or header is None:
            continue
        a = dict(zip(header[2:], rec[2:], strict=False))
        if a.get("Transaction Type", "").strip() not in ("Buy", "Sell"):
            continue
        content = "|".join(
            a.get(c, "").strip() for c in ("Account", "Symbol", "Date", "Quantity", "Price")
        )
        seen[content] += 1
        comm = _number(a.get("Commission") or "0")
        currency = base_currency or "USD"
        rows.append(
            {
                "trade_id": content if seen[content] == 1 else f"{content}#{seen[content]}",
                "account": a.get("Account", ""),
                "symbol": a.get("Symbol", ""),
                "datetime": a.get("Date", ""),
                "quantity": a.get("Quantity", ""),
                "price": a.get("Price", ""),
                "commission": str(-comm) if comm == comm else "",
                "currency": currency,
                "fx_rate": "1" if currency == "USD" else "",
                "asset_category": "STK",
                "multiplier": 1.0,
                "open_close": "",
                "fx_source": "",
                "line": line_no,
                "raw": ",".join(rec),
            }
        )
    if header is None:
        raise TradeFileError(
            f"{source}: the Transaction History has no 'Transaction History' rows; export it again."
        )
    rows.sort(key=lambda r: r["datetime"])  # the file lists the newest first
    accounts = {r["account"] for r in rows}
    base = {acc: base_currency for acc in accounts if base_currency}
    return stage_result(rows, [], [], source, tz, base)


def statement_kind(text: str) -> str:
    """ "activity", "transactions" or "" from the first rows of a CSV statement."""
    statement = False
    for rec in csv.reader(io.StringIO(text[:20_000])):
        if len(rec) < 2:
            continue
        section = SECTION_NAMES.get(rec[0], rec[0])
        if section == "Transaction History" or (
            section == "Statement" and len(rec) >= 4 and rec[3].strip() == "Transaction History"
        ):
            return "transactions"
        if section in ("Trades", "Account Information"):
            return "activity"
        statement = statement or section == "Statement"
    return "activity" if statement else ""
