"""IBKR's CSV statements: the Activity Statement (any language IBKR writes it in) and the
Transaction History, read into the normalised trades frame (see `trades`).

Activity Statement `Trades` rows:
- `DataDiscriminator` `Order` rows are orders, `Trade` rows their executions, `ClosedLot`
  rows the lots IBKR closed for the row above. A statement with `Order` rows books the
  orders (the `Trade` rows repeat them); one without books the `Trade` rows. Never both.
- `Code`: C closing, O opening, Ca cancelled (the row and the trade it cancels are dropped),
  Co corrected (the replacement of a cancelled trade; see `corrections`), A assigned,
  Ep expired, Ex exercised. A row with no C/O code that realizes P/L is closing.
- `Corporate Actions` rows "X(ISIN) Split a for b" become split rows; others are rejected
  with the reason (their lots need adjusting by hand).
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

from ibkr_nb.tax.corrections import RECORD_COLUMNS, apply_corrections
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
    per_unique,
    to_number,
)

# IBKR's localised names -> the English ones.
SECTION_NAMES = {
    "Сделки": "Trades",
    "Информация о счете": "Account Information",
    "Информация о счёте": "Account Information",
    "Отчет": "Statement",
    "Корпоративные действия": "Corporate Actions",
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
    "Описание": "Description",
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


ACTIONS = {"Ex": "exercise", "A": "assignment", "Ep": "expiry"}


def stage_result(
    rows: pd.DataFrame | list[dict],
    realized: pd.DataFrame | list[dict],
    lots: pd.DataFrame | list[dict],
    source: str,
    tz: str,
    base: dict[str, str],
    refused: list[tuple[dict, str]] = (),
    corrections: list[dict] = (),
) -> ImportResult:
    """Finalise statement rows into an ImportResult; rows in categories that are not booked
    and the `refused` (row, reason) pairs go to rejects with their reason; `corrections`
    are the records of `apply_corrections`."""
    stage = (
        rows.reindex(columns=STAGE_COLUMNS)  # the same frame, without a copy
        if isinstance(rows, pd.DataFrame)
        else pd.DataFrame(rows, columns=STAGE_COLUMNS)
    )
    not_booked = stage["asset_category"].isin(list(NOT_BOOKED)).to_numpy()
    result = finalise(stage[~not_booked] if not_booked.any() else stage, source, tz)
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
    corrected = pd.DataFrame(corrections, columns=RECORD_COLUMNS)
    corrected.insert(0, "source", source)
    corrected["datetime"] = parse_datetimes(corrected["datetime"].astype("str"), tz)
    out = ImportResult(
        trades=result.trades,
        rejects=rejects,
        source=source,
        corrections=corrected,
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


def number(value: str | None) -> float:
    """A number from text such as "1,000" or "-1.25"; NaN for anything else (or None)."""
    try:
        return float((value or "").replace(",", ""))
    except ValueError:
        return float("nan")


_TRADES_NAMES = {name for name, english in SECTION_NAMES.items() if english == "Trades"} | {
    "Trades"
}


def _fields(line: str) -> list[str]:
    return next(csv.reader([line]), [])


def _trades_blocks(text: str):
    """Scan a statement once: the Trades `Data` lines per header, the account, the base
    currency, the currencies of `Total` rows and the `Corporate Actions` rows (as dicts)."""
    blocks: list[tuple[list[str], list[int], list[str]]] = []
    account, base, totals = "", "", set()
    actions: list[tuple[int, str, dict]] = []
    action_header: list[str] = []
    lines = text.split("\n")
    if "\r" in text:
        lines = [line.rstrip("\r") for line in lines]
    # The bulk of a statement, runs of English Trades Data lines, is taken as it is; only
    # the other lines (indices in `other`) are looked at one by one.
    other = [i for i, line in enumerate(lines) if not line.startswith("Trades,Data,")]

    def take(start: int, end: int) -> None:  # lines [start, end) to the current block
        if blocks:
            blocks[-1][1].extend(range(start + 1, end + 1))  # line numbers count from 1
            blocks[-1][2].extend(lines[start:end])

    run = (0, 0)  # the Trades Data lines after the line looked at last
    ends = [*other[1:], len(lines)] if other else []
    for i, end in zip(other, ends, strict=True):
        take(*run)
        run = (i + 1, end)
        line_no, line = i + 1, lines[i]
        if not line:
            continue
        rec = _fields(line) if line.startswith('"') else line.split(",", 2)
        if len(rec) < 2:
            continue
        section = SECTION_NAMES.get(rec[0], rec[0])
        if section == "Account Information" and rec[1] == "Data":
            full = _fields(line)
            name = COLUMN_NAMES.get(full[2], full[2]) if len(full) >= 4 else ""
            if name == "Account":
                account = full[3].split(" ")[0]
            elif name == "Base Currency":
                base = full[3].strip().upper()
        if section == "Corporate Actions":
            full = [COLUMN_NAMES.get(h.strip(), h.strip()) for h in _fields(line)]
            if rec[1] == "Header":
                action_header = full
            elif rec[1] == "Data" and action_header:
                actions.append((line_no, line, dict(zip(action_header, full, strict=False))))
        if rec[0] not in _TRADES_NAMES:
            continue
        if rec[1] == "Header":
            header = [COLUMN_NAMES.get(h.strip(), h.strip()) for h in _fields(line)]
            blocks.append((header, [], []))
        elif rec[1] == "Total" and blocks:
            values = dict(zip(blocks[-1][0], _fields(line), strict=False))
            totals.add(values.get("Currency", "").strip().upper())
        elif rec[1] == "Data" and blocks:
            blocks[-1][1].append(line_no)
            blocks[-1][2].append(line)
    take(*run)
    return blocks, account, base, totals, actions


_SPLIT_TEXT = re.compile(
    r"^\s*([^(]+?)\s*\(.*?\bSPLIT\s+(\d+(?:\.\d+)?)\s+FOR\s+(\d+(?:\.\d+)?)", re.IGNORECASE
)


def _corporate_actions(
    actions: list[tuple[int, str, dict]], account: str
) -> tuple[list[dict], list[tuple[dict, str]]]:
    """Split rows from the `Corporate Actions` section ("AAPL(US...) Split 4 for 1 (...)"),
    one per account, symbol and date; other actions go to rejects with their reason."""
    rows: dict[str, dict] = {}
    refused: list[tuple[dict, str]] = []
    for line_no, line, a in actions:
        description = a.get("Description", "")
        acc = a.get("Account", "") or account
        when = a.get("Date/Time", "") or a.get("Report Date", "")
        base = {"account": acc, "datetime": when, "line": line_no, "raw": line}
        m = _SPLIT_TEXT.match(description)
        if m and float(m[3]) > 0:
            symbol = m[1]
            trade_id = f"split:{acc}:{symbol}:{when[:10]}"
            rows.setdefault(
                trade_id,
                {
                    **base,
                    "trade_id": trade_id,
                    "symbol": symbol,
                    "kind": "split",
                    "ratio": float(m[2]) / float(m[3]),
                    "commission": 0.0,
                    "currency": a.get("Currency", "USD"),
                },
            )
        elif description and a.get("DataDiscriminator", "") not in ("Total", "SubTotal"):
            refused.append(
                (
                    {**base, "symbol": description.split("(")[0].strip()},
                    f"corporate action '{description[:60]}' is not booked; adjust the lots by hand",
                )
            )
    return list(rows.values()), refused


def _read_block(header: list[str], lines: list[str]) -> pd.DataFrame:
    """One header's Data lines as a frame of strings (quoted fields and "1,000" handled)."""
    names = [*header, *(f"_extra{i}" for i in range(8))]
    return pd.read_csv(
        io.StringIO("\n".join(lines)),
        header=None,
        names=names,
        dtype=str,
        keep_default_na=False,
        na_filter=False,  # every cell is text, "" included: no missing-value scan
        index_col=False,
        skipinitialspace=True,
    )


def _column(frame: pd.DataFrame, name: str, default: str = "") -> pd.Series:
    if name in frame:
        return frame[name]
    return pd.Series(default, index=frame.index, dtype="str")


def has_code(code: pd.Series, value: str) -> np.ndarray:
    """Rows whose IBKR code list ("C;P", "A;C", ...) holds `value` (worked out once per
    distinct code list)."""
    found = per_unique(
        code,
        lambda v: (";" + v.str.replace(",", ";", regex=False) + ";").str.contains(
            f";{value};", regex=False
        ),
    )
    return found.to_numpy(dtype=bool)


def from_activity_csv(text: str, source: str = "activity", tz: str = DEFAULT_TZ) -> ImportResult:
    """Trades from an IBKR Activity Statement CSV (see the module docstring)."""
    blocks, default_account, base_currency, total_currencies, actions = _trades_blocks(text)
    if not blocks:
        raise TradeFileError(
            f"{source}: the Activity Statement has no Trades section; include Trades when exporting it."
        )
    frames = []
    for header, line_nos, lines in blocks:
        if lines:
            block = _read_block(header, lines)
            block["line"], block["raw"] = line_nos, lines
            frames.append(block)
    f = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["line", "raw"])
    disc = _column(f, "DataDiscriminator", "Order")
    account = _column(f, "Account")
    account = account.where(account != "", default_account)
    category_name = _column(f, "Asset Category", "Stocks")
    category = per_unique(category_name, lambda v: v.map(CATEGORIES).fillna(v))
    symbol, when = _column(f, "Symbol"), _column(f, "Date/Time")
    quantity_text = per_unique(
        _column(f, "Quantity"), lambda v: v.str.replace(",", "", regex=False)
    )
    price_text = _column(f, "T. Price")
    quantity, price = to_number(quantity_text), to_number(price_text)
    pnl = to_number(_column(f, "Realized P/L"))
    comm_text = _column(f, "Comm/Fee")
    comm = to_number(comm_text.where(comm_text != "", "0"))
    currency = per_unique(_column(f, "Currency", "USD"), lambda v: v.str.upper())
    code = _column(f, "Code")
    has = {c: has_code(code, c) for c in ("C", "O", "Ca", "Co", "Ex", "A", "Ep")}
    realizes = (pnl.fillna(0) != 0).to_numpy()
    open_close = np.select(
        [has["C"] & has["O"], has["C"], has["O"], realizes], ["CO", "C", "O", "C"], ""
    )
    action = np.select([has["Ex"], has["A"], has["Ep"]], list(ACTIONS.values()), "")
    gross = (quantity * price).abs()
    proceeds = to_number(_column(f, "Proceeds")).abs()
    multiplier = (proceeds / gross).where((gross > 0) & (proceeds > 0))
    multiplier = multiplier.where(~(multiplier >= 1), multiplier.round())
    known = multiplier.groupby(symbol).transform("first")
    default = pd.Series(np.where(category == "OPT", 100.0, 1.0), index=f.index)
    multiplier = multiplier.fillna(known).fillna(default)
    content = account.str.cat([symbol, when, quantity_text, price_text, disc], sep="|")
    trade_id = content.copy()
    repeated = content.duplicated(keep=False).to_numpy()
    if repeated.any():  # the second of two identical rows is "...#2", and so on
        again = content[repeated]
        seen = again.groupby(again).cumcount() + 1
        trade_id[repeated] = again.where(seen == 1, again + "#" + seen.astype(str))
    level = "Order" if (disc == "Order").any() else "Trade"
    at_level = (disc == level).to_numpy()
    owner = trade_id.where(at_level).ffill().fillna("")
    is_lot = (disc == "ClosedLot").to_numpy()
    lots = pd.DataFrame(
        {
            "trade_id": owner[is_lot],
            "account": account[is_lot],
            "symbol": symbol[is_lot],
            "date_acquired": when[is_lot],
            "quantity": quantity_text[is_lot],
            "cost_basis": _column(f, "Basis")[is_lot],
            "realized_pnl": _column(f, "Realized P/L")[is_lot],
        }
    )
    stage = pd.DataFrame(
        {
            "trade_id": trade_id,
            "account": account,
            "symbol": symbol,
            "datetime": when,
            "quantity": quantity,
            "price": price,
            "commission": -comm,
            "currency": currency,
            "fx_rate": np.where(currency == "USD", 1.0, np.nan),
            "asset_category": category,
            "multiplier": multiplier,
            "open_close": open_close,
            "fx_source": "",
            "action": action,
            "line": f["line"],
            "raw": f["raw"],
            "realized_pnl": pnl,
            "cancel": has["Ca"],
            "correction": has["Co"],
            "orig_id": "",
            "orig_price": np.nan,
        }
    )
    rows, corrected, refused = apply_corrections(stage[at_level].reset_index(drop=True))
    closing = per_unique(rows["open_close"], lambda v: v.str.contains("C", regex=False))
    realized = pd.DataFrame(
        {
            "trade_id": rows["trade_id"][closing],
            "account": rows["account"][closing],
            "symbol": rows["symbol"][closing],
            "datetime": rows["datetime"][closing],
            "realized_pnl": rows["realized_pnl"][closing],
            "currency": rows["currency"][closing],
            "fx_rate_to_base": np.nan,
        }
    )
    if not base_currency:
        unused = total_currencies - set(rows["currency"].unique()) - {""}
        base_currency = unused.pop() if len(unused) == 1 else ""
    accounts = set(rows["account"].unique()) | {default_account}
    base = {acc: base_currency for acc in accounts if base_currency}
    splits, not_booked = _corporate_actions(actions, default_account)
    if splits:
        rows = pd.concat([rows, pd.DataFrame(splits)], ignore_index=True)
    return stage_result(rows, realized, lots, source, tz, base, [*refused, *not_booked], corrected)


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
        comm = number(a.get("Commission") or "0")
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
