"""Lot matching: each method's choice, shorts and flips, splits, holding periods.

Lot-method definitions: IBKR Tax Optimizer, "Lot-Matching Methods"
(https://www.ibkrguides.com/taxoptimizer/ibto/lotmatchingmethods.htm).
"""

import numpy as np
import pandas as pd
import pytest

from ibkr_nb.tax.lots import is_long_term, match_lots

# Four lots of X and one sale of 100 on 2023-12-01 at $25. Per share:
#   B1 2022-01-03 @10  long-term  gain +15
#   B2 2022-06-01 @30  long-term  loss  -5
#   B3 2023-09-01 @20  short-term gain  +5
#   B4 2023-10-02 @26  short-term loss  -1
HISTORY = """
date        symbol quantity price trade_id
2022-01-03  X      100      10    B1
2022-06-01  X      100      30    B2
2023-09-01  X      100      20    B3
2023-10-02  X      100      26    B4
2023-12-01  X      -100     {p}   S1
"""


@pytest.mark.parametrize(
    ("method", "price", "lot", "gain", "term"),
    [
        ("fifo", 25, "B1", "1500.00", "long"),  # earliest purchase
        ("lifo", 25, "B4", "-100.00", "short"),  # most recent purchase
        ("highest_cost", 25, "B2", "-500.00", "long"),  # largest loss
        ("highest_cost", 35, "B2", "500.00", "long"),  # no loss possible: smallest gain
        ("max_lt_gain", 25, "B1", "1500.00", "long"),  # 1. largest long-term gain
        ("max_lt_gain", 5, "B3", "-1500.00", "short"),  # all losses: 3. smallest short-term loss
        ("max_lt_loss", 25, "B2", "-500.00", "long"),  # 1. largest long-term loss
        ("max_lt_loss", 40, "B4", "1400.00", "short"),  # all gains: 3. smallest short-term gain
        ("max_st_gain", 25, "B3", "500.00", "short"),  # 1. largest short-term gain
        ("max_st_gain", 5, "B1", "-500.00", "long"),  # all losses: 3. smallest long-term loss
        ("max_st_loss", 25, "B4", "-100.00", "short"),  # 1. largest short-term loss
        ("max_st_loss", 40, "B2", "1000.00", "long"),  # all gains: 3. smallest long-term gain
    ],
)
def test_each_method_chooses_its_lot(t, method, price, lot, gain, term):
    trades = t.trades(HISTORY.format(p=price))
    t.realized(
        trades,
        f"""
        lot_id quantity gain_loss term
        {lot}  100      {gain}    {term}
        """,
        method=method,
        wash_sales=False,
    )


def test_specific_lot_takes_the_named_lots_then_warns_and_falls_back_to_fifo(t):
    trades = t.trades(HISTORY.format(p=25).replace("-100 ", "-150 "))
    result = match_lots(
        trades, method="specific", lot_selection={"S1": ["B3", "B9"]}, wash_sales=False
    )
    assert t.text(result.realized, ["lot_id", "quantity", "gain_loss"]).values.tolist() == [
        ["B3", "100", "500.00"],
        ["B1", "50", "750.00"],
    ]
    assert result.warnings["reason"].tolist() == [
        "lot B9 is not open at this trade; ignored",
        "named lots cover 100 of 150 shares; the rest matched FIFO",
    ]


def test_average_cost_uses_the_mean_basis_and_fifo_dates(t):
    # Average of 10, 30, 20, 26 = 21.50 per share; 100 sold at 25 -> gain 350.00.
    trades = t.trades(HISTORY.format(p=25))
    t.realized(
        trades,
        """
        lot_id date_acquired cost_basis gain_loss term
        B1     2022-01-03    2150.00    350.00    long
        """,
        method="average",
        wash_sales=False,
    )
    remaining = match_lots(trades, method="average", wash_sales=False).open_lots
    assert remaining["cost_basis"].round(2).tolist() == [2150.0, 2150.0, 2150.0]


def test_commissions_buy_adds_to_basis_sell_reduces_proceeds(t):
    trades = t.trades(
        """
        date        symbol quantity price  commission
        2024-01-02  AAPL   100      185.50 1.00
        2024-03-01  AAPL   -100     190.00 1.25
        """
    )
    t.realized(
        trades,
        """
        symbol quantity date_acquired date_sold  proceeds  cost_basis gain_loss term
        AAPL   100      2024-01-02    2024-03-01 18998.75  18551.00   447.75    short
        """,
    )


def test_short_sale_and_cover(t):
    trades = t.trades(
        """
        date        symbol quantity price commission
        2024-03-04  MSFT   -25      415.5 1
        2024-03-28  MSFT   25       400   1
        """
    )
    t.realized(
        trades,
        """
        position quantity date_acquired date_sold  proceeds cost_basis gain_loss term
        short    -25      2024-03-04    2024-03-28 10386.50 10001.00   385.50    short
        """,
    )


def test_a_trade_through_zero_is_split_into_close_and_open(t):
    # Sell 150 with $3 commission: $2 goes to closing the 100 long, $1 to opening 50 short.
    trades = t.trades(
        """
        date        symbol quantity price commission trade_id
        2024-01-02  X      100      10    0          B1
        2024-02-01  X      -150     12    3          F1
        2024-03-01  X      50       11    0          C1
        """
    )
    t.realized(
        trades,
        """
        lot_id trade_id position quantity proceeds cost_basis gain_loss
        B1     F1       long     100      1198.00  1000.00    198.00
        F1     C1       short    -50      599.00   550.00     49.00
        """,
    )
    assert match_lots(trades).open_lots.empty


def test_split_changes_quantity_and_per_share_basis_keeps_dates(t):
    # 10 NVDA at $850 + $1 = $8,501; 10-for-1 split; 50 of the 100 shares sold at $124 - $1.
    trades = t.trades(
        """
        date        symbol quantity price commission kind  ratio
        2024-05-01  NVDA   10       850   1          -     -
        2024-06-10  NVDA   -        -     -          split 10
        2024-07-01  NVDA   -50      124   1          -     -
        """
    )
    t.realized(
        trades,
        """
        quantity date_acquired date_sold  proceeds cost_basis gain_loss
        50       2024-05-01    2024-07-01 6199.00  4250.50    1948.50
        """,
    )
    t.open_lots(
        trades,
        """
        symbol quantity date_acquired cost_basis
        NVDA   50       2024-05-01    4250.50
        """,
    )


def test_reverse_split_and_sale_before_it_reports_shares_of_their_day(t):
    trades = t.trades(
        """
        date        symbol quantity price kind  ratio
        2024-01-02  Y      400      1     -     -
        2024-02-01  Y      -100     2     -     -
        2024-03-01  Y      -        -     split 0.25
        2024-04-01  Y      -50      6     -     -
        """
    )
    t.realized(
        trades,
        """
        quantity proceeds cost_basis gain_loss
        100      200.00   100.00     100.00
        50       300.00   200.00     100.00
        """,
    )
    t.open_lots(trades, "quantity cost_basis\n25 100.00")


def test_same_day_round_trip_loss_is_allowed_without_other_purchases(t):
    trades = t.trades(
        """
        date        time     symbol quantity price
        2024-05-06  09:30:00 X      100      10
        2024-05-06  10:00:00 X      -100     9
        """
    )
    t.realized(trades, "gain_loss adjustment_code\n-100.00 -")


@pytest.mark.parametrize(
    ("bought", "sold", "term"),
    [
        ("2023-01-15", "2024-01-15", "short"),  # exactly one year: not more than one year
        ("2023-01-15", "2024-01-16", "long"),
        ("2024-02-29", "2025-02-28", "short"),  # leap day: the anniversary is "2025-02-29"
        ("2024-02-29", "2025-03-01", "long"),
        ("2023-03-01", "2024-02-29", "short"),
        # held from 2023-03-01 through 2024-02-29 is exactly one year (issue 11): short-term
        ("2023-02-28", "2024-02-29", "short"),
        ("2023-02-28", "2024-03-01", "long"),
        ("2023-12-31", "2024-12-31", "short"),
        ("2023-12-31", "2025-01-01", "long"),
    ],
)
def test_long_term_means_more_than_one_year(t, bought, sold, term):
    trades = t.trades(
        f"""
        date     symbol quantity price
        {bought} X      10       10
        {sold}   X      -10      12
        """
    )
    t.realized(trades, f"date_acquired date_sold term\n{bought} {sold} {term}")
    assert is_long_term(np.array([bought], "datetime64[D]"), np.array([sold], "datetime64[D]"))[
        0
    ] == (term == "long")


def test_fractional_shares(t):
    trades = t.trades(
        """
        date        symbol quantity price  commission
        2024-08-01  VOO    2.5      480.10 0.35
        2024-09-03  VOO    -1.25    500.00 0.35
        2024-09-04  VOO    -0.3333  510.00 0
        """
    )
    t.realized(
        trades,
        """
        quantity proceeds cost_basis gain_loss
        1.25     624.65   600.30     24.35
        0.3333   169.98   160.06     9.92
        """,
        wash_sales=False,
    )
    t.open_lots(trades, "quantity cost_basis\n0.9167 440.24", wash_sales=False)


def test_a_fill_below_one_micro_share_is_ignored_with_a_warning(t):
    trades = t.trades(
        """
        date        symbol quantity    price trade_id
        2024-08-01  VOO    2           480   B1
        2024-08-02  VOO    0.0000001   481   B2
        2024-09-03  VOO    -1          500   S1
        """
    )
    result = match_lots(trades)
    assert result.warnings.values.tolist() == [
        ["B2", "quantity rounds to zero micro-shares; ignored"]
    ]
    t.realized(trades, "lot_id trade_id quantity gain_loss\nB1 S1 1 20.00")
    t.open_lots(trades, "lot_id quantity\nB1 1")


def test_lots_are_per_account_and_fx_converts_to_usd(t):
    trades = t.trades(
        """
        date        symbol quantity price account currency fx_rate
        2024-01-02  SAP    10       100   A1      EUR      1.10
        2024-01-03  SAP    10       150   A2      EUR      1.10
        2024-06-03  SAP    -10      160   A2      EUR      1.05
        """
    )
    t.realized(
        trades, "account lot_id proceeds cost_basis gain_loss\nA2 test:3 1680.00 1650.00 30.00"
    )
    t.open_lots(trades, "account quantity cost_basis\nA1 10 1100.00")


def test_bad_arguments_say_what_to_do(t):
    trades = t.trades(HISTORY.format(p=25))
    with pytest.raises(ValueError, match="unknown lot matching method 'hifo'"):
        match_lots(trades, method="hifo")
    with pytest.raises(ValueError, match="timezone-aware"):
        match_lots(trades.assign(datetime=trades["datetime"].dt.tz_localize(None)))
    with pytest.raises(ValueError, match="lacks column"):
        match_lots(trades.drop(columns="price"))


def test_empty_history_gives_empty_frames():
    from ibkr_nb.tax.importers import empty_trades

    result = match_lots(empty_trades())
    assert result.realized.empty and result.open_lots.empty
    assert isinstance(result.realized, pd.DataFrame)


@pytest.mark.parametrize("column", ["symbol", "account", "price", "quantity"])
def test_rows_missing_an_identifying_value_are_refused_by_name(t, column):
    trades = t.trades(
        """
        date        symbol quantity price trade_id
        2024-01-02  X      10       10    B1
        2024-01-03  X      -10      11    S1
        """
    )
    trades["account"] = "U1"
    trades[column] = trades[column].astype(object)
    trades.loc[1, column] = None
    with pytest.raises(ValueError, match=rf"1 trade\(s\) have no {column} \(S1\)"):
        match_lots(trades)
