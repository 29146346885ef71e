"""Options and warrants under IRS Publication 550 ("Options"): exercise and assignment fold
the premium into the stock trade; expiry is a sale (or a cover) at zero. Each case is a
statement as IBKR writes it: the option's closing row at price 0 and the stock row, both
coded Ex or A (Ep for an expiry)."""

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from statement_rows import ACTIVITY_HEADER, flex, trade

from ibkr_nb.tax import form_8949, match_lots
from ibkr_nb.tax.importers import from_activity_csv, from_flex_xml
from ibkr_nb.tax.options import EXERCISE_ACTIONS, exercise_pairs

OPT = "Equity and Index Options"


def statement(*rows: str):
    lines = [
        f'Trades,Data,Order,{cat},USD,{sym},"{when}, 10:00:00",-,{qty},{price},{proceeds},{comm},0,0,{code}'
        for cat, sym, when, qty, price, proceeds, comm, code in (r.split("|") for r in rows)
    ]
    imported = from_activity_csv(ACTIVITY_HEADER + "\n".join(lines) + "\n")
    assert imported.rejects.empty and imported.unexplained.empty
    return imported.trades


def test_bought_call_exercised_adds_the_premium_to_the_stock_basis():
    # "If you exercise a call, add its cost to the basis of the stock you bought."
    trades = statement(
        f"{OPT}|XYZ 19JAN24 50 C|2024-01-02|1|2|-200|-1|O",
        f"{OPT}|XYZ 19JAN24 50 C|2024-01-19|-1|0|0|0|C;Ex",
        "Stocks|XYZ|2024-01-19|100|50|-5000|0|O;Ex",
        "Stocks|XYZ|2024-03-01|-100|60|6000|-1|C",
    )
    result = match_lots(trades)
    rows = form_8949(result, 2024)
    assert rows[["symbol", "cost_basis", "proceeds", "gain_loss"]].values.tolist() == [
        ["XYZ", 5201.0, 5999.0, 798.0]
    ]
    # the stock's holding period starts at the exercise, not at the option's purchase
    assert str(result.realized["date_acquired"].iloc[0].date()) == "2024-01-19"


def test_bought_put_exercised_reduces_the_amount_realized():
    # "If you exercise a put, reduce your amount realized on the sale of the stock by its cost."
    trades = statement(
        "Stocks|XYZ|2023-01-03|100|40|-4000|0|O",
        f"{OPT}|XYZ 19JAN24 50 P|2024-01-02|1|3|-300|0|O",
        f"{OPT}|XYZ 19JAN24 50 P|2024-01-19|-1|0|0|0|C;Ex",
        "Stocks|XYZ|2024-01-19|-100|50|5000|0|C;Ex",
    )
    rows = form_8949(match_lots(trades), 2024)
    assert rows[["symbol", "proceeds", "cost_basis", "gain_loss", "term"]].values.tolist() == [
        ["XYZ", 4700.0, 4000.0, 700.0, "long"]
    ]


def test_written_call_assigned_adds_the_premium_to_the_amount_realized():
    # "If a call you write is exercised, add the amount you received for it to the amount
    # realized on the sale of the stock."
    trades = statement(
        "Stocks|XYZ|2023-06-01|100|40|-4000|0|O",
        f"{OPT}|XYZ 19JAN24 50 C|2024-01-02|-1|2.5|250|0|O",
        f"{OPT}|XYZ 19JAN24 50 C|2024-01-19|1|0|0|0|C;A",
        "Stocks|XYZ|2024-01-19|-100|50|5000|0|C;A",
    )
    rows = form_8949(match_lots(trades), 2024)
    assert rows[["symbol", "proceeds", "cost_basis", "gain_loss"]].values.tolist() == [
        ["XYZ", 5250.0, 4000.0, 1250.0]
    ]


def test_written_put_assigned_reduces_the_basis_of_the_stock_bought():
    # "If a put you write is exercised, reduce your basis in the stock you buy by the amount
    # you received for the put."
    trades = statement(
        f"{OPT}|XYZ 19JAN24 50 P|2024-01-02|-1|3|300|0|O",
        f"{OPT}|XYZ 19JAN24 50 P|2024-01-19|1|0|0|0|C;A",
        "Stocks|XYZ|2024-01-19|100|50|-5000|0|O;A",
    )
    result = match_lots(trades)
    assert result.realized.empty
    assert result.open_lots[["symbol", "quantity", "cost_basis"]].values.tolist() == [
        ["XYZ", 100.0, 4700.0]
    ]


def test_written_put_expiring_is_a_short_term_gain_of_the_premium():
    trades = statement(
        f"{OPT}|XYZ 19JAN24 40 P|2024-01-02|-1|1|100|-1|O",
        f"{OPT}|XYZ 19JAN24 40 P|2024-01-19|1|0|0|0|C;Ep",
    )
    rows = form_8949(match_lots(trades), 2024)
    assert rows[["proceeds", "cost_basis", "gain_loss", "term"]].values.tolist() == [
        [99.0, 0.0, 99.0, "short"]
    ]


def test_part_of_a_position_exercised_keeps_the_rest_open():
    trades = statement(
        f"{OPT}|XYZ 19JAN24 50 C|2024-01-02|2|2|-400|-2|O",
        f"{OPT}|XYZ 19JAN24 50 C|2024-01-19|-1|0|0|0|C;Ex",
        "Stocks|XYZ|2024-01-19|100|50|-5000|0|O;Ex",
    )
    result = match_lots(trades)
    held = result.open_lots.set_index("symbol")
    assert held.loc["XYZ", "cost_basis"] == pytest.approx(5201.0)
    assert held.loc["XYZ 19JAN24 50 C", "quantity"] == 1.0
    assert held.loc["XYZ 19JAN24 50 C", "cost_basis"] == pytest.approx(201.0)


WAR = {"assetCategory": "WAR"}


def flex_trades(*rows: str) -> pd.DataFrame:
    imported = from_flex_xml(flex(*rows))
    assert imported.rejects.empty and imported.unexplained.empty
    return imported.trades


def test_warrants_bought_and_sold_are_their_own_8949_line_with_the_multiplier():
    trades = flex_trades(
        trade(
            "1", "XYZ 20JAN26 11.5 C", "20240102;100000", "5", "1.2", "O", multiplier="10", **WAR
        ),
        trade("2", "XYZ", "20240103;100000", "10", "30", "O"),
        trade("3", "XYZ 20JAN26 11.5 C", "20240302;100000", "-5", "2", "C", multiplier="10", **WAR),
        trade("4", "XYZ", "20240303;100000", "-10", "31", "C"),
    )
    rows = form_8949(match_lots(trades), 2024)
    # warrants: 5 x 2 x 10 - 1 = 99 for 5 x 1.2 x 10 + 1 = 61; the stock: 309 for 301
    assert rows[["symbol", "proceeds", "cost_basis", "gain_loss"]].values.tolist() == [
        ["XYZ 20JAN26 11.5 C", 99.0, 61.0, 38.0],
        ["XYZ", 309.0, 301.0, 8.0],
    ]


def test_warrants_in_an_activity_statement_take_the_multiplier_from_the_proceeds():
    trades = statement(
        "Warrants|XYZ WS|2024-01-02|20|0.5|-100|-1|O",
        "Warrants|XYZ WS|2024-02-02|-20|0.8|-160|-1|C",
    )
    assert trades["asset_category"].tolist() == ["WAR", "WAR"]
    assert trades["multiplier"].tolist() == [10.0, 10.0]
    rows = form_8949(match_lots(trades), 2024)
    assert rows[["proceeds", "cost_basis", "gain_loss"]].values.tolist() == [[159.0, 101.0, 58.0]]


def test_a_warrant_lapsing_worthless_is_a_loss_of_its_cost_on_the_expiry_date():
    trades = flex_trades(
        trade("1", "XYZW", "20230301;100000", "100", "0.5", "O", **WAR),
        trade(
            "2", "XYZW", "20240315;162000", "-100", "0", "C", notes="Ep", ibCommission="0", **WAR
        ),
    )
    rows = form_8949(match_lots(trades), 2024)
    assert rows[["proceeds", "cost_basis", "gain_loss", "term"]].values.tolist() == [
        [0.0, 51.0, -51.0, "long"]
    ]
    assert str(rows["date_sold"].iloc[0].date()) == "2024-03-15"


def test_a_warrant_exercised_adds_its_cost_to_the_basis_of_the_stock():
    # a warrant is a call: "If you exercise a call, add its cost to the basis of the stock"
    trades = statement(
        "Warrants|XYZ WS|2024-01-02|100|1.5|-150|-1|O",
        "Warrants|XYZ WS|2024-05-02|-100|0|0|0|C;Ex",
        "Stocks|XYZ|2024-05-02|100|11.5|-1150|0|O;Ex",
        "Stocks|XYZ|2024-07-02|-100|20|2000|-1|C",
    )
    result = match_lots(trades)
    rows = form_8949(result, 2024)
    assert rows[["symbol", "proceeds", "cost_basis", "gain_loss"]].values.tolist() == [
        ["XYZ", 1999.0, 1301.0, 698.0]
    ]
    assert str(result.realized["date_acquired"].iloc[0].date()) == "2024-05-02"


def test_a_warrant_whose_symbol_does_not_name_the_stock_is_paired_by_date_and_quantity():
    trades = flex_trades(
        trade("1", "XYZW", "20240102;100000", "50", "2", "O", **WAR),
        trade("2", "XYZW", "20240502;162000", "-50", "0", "C", notes="Ex", ibCommission="0", **WAR),
        trade("3", "XYZ", "20240502;162000", "50", "10", "O", notes="Ex", ibCommission="0"),
    )
    result = match_lots(trades)
    assert result.realized.empty  # the warrant's cost is not a loss: it is in the stock
    assert result.open_lots[["symbol", "quantity", "cost_basis"]].values.tolist() == [
        ["XYZ", 50.0, 601.0]
    ]


def reference_pairs(trades) -> list[tuple[int, int]]:
    """Exercise pairing written row by row: each exercised option, in row order, takes the
    first stock row not taken yet of its underlying, account, date and share count; then
    each warrant left over takes the first stock row left over of its account, date, share
    count and action."""
    pairs, used = [], set()
    rows = list(trades.itertuples())

    def pair(option_rows, same) -> None:
        for i in option_rows:
            option = rows[i]
            for j, stock in enumerate(rows):
                if (
                    j not in used
                    and stock.action in EXERCISE_ACTIONS
                    and stock.asset_category == "STK"
                    and same(option, stock)
                    and stock.account == option.account
                    and stock.datetime.date() == option.datetime.date()
                    and abs(abs(stock.quantity) - abs(option.quantity) * option.multiplier) < 1e-9
                ):
                    used.update((i, j))
                    pairs.append((i, j))
                    break

    exercised = [i for i, r in enumerate(rows) if r.action in EXERCISE_ACTIONS]
    options = [i for i in exercised if rows[i].asset_category in ("OPT", "WAR")]
    pair(options, lambda option, stock: stock.symbol == option.symbol.split()[0])
    warrants = [i for i in options if rows[i].asset_category == "WAR" and i not in used]
    pair(warrants, lambda option, stock: stock.action == option.action)
    return sorted(pairs)


DERIVATIVES = {"XYZ 19JAN24 50 C": "OPT", "ABC 19JAN24 9 P": "OPT", "XYZ WS": "WAR", "XYZW": "WAR"}
legs = st.lists(
    st.tuples(
        st.sampled_from(["XYZ 19JAN24 50 C", "XYZ WS", "XYZW", "XYZ", "ABC 19JAN24 9 P", "ABC"]),
        st.sampled_from(["U1", "U2"]),
        st.integers(1, 3),  # day of month
        st.integers(-3, 3).filter(bool),  # quantity (contracts or hundreds of shares)
        st.sampled_from(["exercise", "assignment", "", "expiry"]),
        st.sampled_from([100.0, 10.0]),  # option multiplier
    ),
    max_size=14,
)


@settings(max_examples=150, deadline=None)
@given(legs)
def test_exercise_pairs_agree_with_a_row_by_row_reference(rows):
    trades = pd.DataFrame(
        [
            {
                "symbol": symbol,
                "account": account,
                "datetime": pd.Timestamp(f"2024-01-{day:02d} 10:00", tz="America/New_York"),
                "quantity": float(q if symbol in DERIVATIVES else q * 100),
                "action": action,
                "asset_category": DERIVATIVES.get(symbol, "STK"),
                "multiplier": multiplier if symbol in DERIVATIVES else 1.0,
            }
            for symbol, account, day, q, action, multiplier in rows
        ],
        columns=[
            "symbol",
            "account",
            "datetime",
            "quantity",
            "action",
            "asset_category",
            "multiplier",
        ],
    )
    got = exercise_pairs(trades)
    assert list(zip(got["option_row"], got["stock_row"], strict=True)) == reference_pairs(trades)


def test_form_8949_counts_options_in_contracts_and_warrants_in_warrants():
    trades = statement(
        f"{OPT}|XYZ 19JAN24 50 C|2024-01-02|2|2|-400|-1|O",
        f"{OPT}|XYZ 19JAN24 50 C|2024-01-10|-2|3|600|-1|C",
        "Stocks|XYZ|2024-01-02|100|40|-4000|0|O",
        "Stocks|XYZ|2024-01-10|-100|41|4100|0|C",
    )
    warrants = from_flex_xml(
        flex(
            trade("1", "XYZW", "20240301;100000", "100", "0.5", "O", **WAR),
            trade("2", "XYZW", "20240401;100000", "-100", "0.7", "C", **WAR),
        )
    ).trades
    both = pd.concat([trades, warrants], ignore_index=True)
    rows = form_8949(match_lots(both), 2024)
    assert sorted(rows["description"]) == [
        "100 sh XYZ",
        "100 warrants XYZW",
        "2 contracts XYZ 19JAN24 50 C",
    ]
