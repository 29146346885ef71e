"""Wash sales, checked against IRS Publication 550 ("Wash Sales") and worked examples.

Pub. 550: "A wash sale occurs when you sell or trade stock or securities at a loss and within
30 days before or after the sale you: 1. Buy substantially identical stock or securities ...
If your loss was disallowed because of the wash sale rules, add the disallowed loss to the
cost of the new stock or securities ... Your holding period for the new stock or securities
includes the holding period of the stock or securities sold."
"""

import pytest

from ibkr_nb.tax.lots import match_lots


def test_pub550_example_basis_of_new_stock(t):
    # Pub. 550, Wash Sales, Example (also IRS VITA "Capital Gain or Loss Workout", Case Study 1):
    # "You buy 100 shares of X stock for $1,000. You sell these shares for $750 and within 30
    # days from the sale you buy 100 shares of the same stock for $800. ... you can't deduct
    # your loss of $250 on the sale. However, you add the disallowed loss of $250 to the cost of
    # the new stock, $800, to obtain your basis in the new stock, which is $1,050."
    trades = t.trades(
        """
        date        symbol quantity price
        2024-01-02  X      100      10.00
        2024-06-03  X      -100     7.50
        2024-06-20  X      100      8.00
        """
    )
    t.realized(
        trades,
        """
        proceeds cost_basis adjustment_code adjustment_amount gain_loss
        750.00   1000.00    W               250.00            0.00
        """,
    )
    # Held 153 days (2024-01-02 to 2024-06-03), so the new lot's holding period starts
    # 153 days before 2024-06-20.
    t.open_lots(
        trades,
        """
        quantity date_acquired holding_period_start cost_basis wash_sale_adjustment
        100      2024-06-20    2024-01-19           1050.00    250.00
        """,
    )


def test_pub550_more_or_less_stock_bought_than_sold_example_1(t):
    # Pub. 550, Wash Sales, "More or less stock bought than sold", Example 1: 100 shares of M
    # bought September 24, 2021 for $5,000; 50 bought December 21, 2021 for $2,750; 25 bought
    # December 28, 2021 for $1,125; the September shares sold January 4, 2022 for $4,000, a
    # $1,000 loss. 75 replacement shares: the loss on 75 shares ($750) is disallowed, $250 is
    # deductible. The 50 shares get two-thirds (50/75) of $750: basis $3,250 ($2,750 + $500);
    # the 25 shares get the rest: basis $1,375 ($1,125 + $250).
    trades = t.trades(
        """
        date        symbol quantity price
        2021-09-24  M      100      50.00
        2021-12-21  M      50       55.00
        2021-12-28  M      25       45.00
        2022-01-04  M      -100     40.00
        """
    )
    t.realized(
        trades,
        """
        proceeds cost_basis adjustment_code adjustment_amount gain_loss
        4000.00  5000.00    W               750.00            -250.00
        """,
    )
    # Held 102 days (2021-09-24 to 2022-01-04): tacked onto both replacement lots.
    t.open_lots(
        trades,
        """
        quantity date_acquired holding_period_start cost_basis wash_sale_adjustment
        50       2021-12-21    2021-09-10           3250.00    500.00
        25       2021-12-28    2021-09-17           1375.00    250.00
        """,
    )


def test_pub550_more_or_less_stock_bought_than_sold_example_2(t):
    # Pub. 550, same section, Example 2: 100 shares of M bought September 24, 2021, sold
    # February 3, 2022 at a $1,000 loss; 50 shares bought on each of the 4 days February 10
    # to 13, 2022. The whole $1,000 is disallowed: half ($500) to the 50 shares bought
    # February 10 and half to those bought February 11 ("Match the shares bought in the same
    # order that you bought them, beginning with the first shares bought").
    trades = t.trades(
        """
        date        symbol quantity price
        2021-09-24  M      100      20.00
        2022-02-03  M      -100     10.00
        2022-02-10  M      50       11.00
        2022-02-11  M      50       11.00
        2022-02-12  M      50       11.00
        2022-02-13  M      50       11.00
        """
    )
    t.realized(
        trades,
        "proceeds cost_basis adjustment_code adjustment_amount gain_loss\n1000.00 2000.00 W 1000.00 0.00",
    )
    # Held 132 days (2021-09-24 to 2022-02-03): tacked onto the two replacement lots only.
    t.open_lots(
        trades,
        """
        date_acquired holding_period_start cost_basis wash_sale_adjustment
        2022-02-10    2021-10-01           1050.00    500.00
        2022-02-11    2021-10-02           1050.00    500.00
        2022-02-12    2022-02-12           550.00     0.00
        2022-02-13    2022-02-13           550.00     0.00
        """,
    )


def test_fewer_shares_bought_than_sold(t):
    # Worked example (Kiplinger-style, quoted at https://redian.news/mitbbs/stock/33209381):
    # 100 XYZ bought Dec. 1, 2008 for $2,000; 50 bought March 1, 2009 for $1,200; 25 bought
    # March 10 for $650; the December shares sold March 27 for $1,300, a $700 loss. 75
    # replacement shares: 75% ($525) disallowed, $175 deductible; $350 added to the 50 shares
    # (basis $1,550) and $175 to the 25 shares (basis $825); both holding periods extended by
    # the Dec. 2, 2008 - March 27, 2009 holding period (116 days).
    trades = t.trades(
        """
        date        symbol quantity price
        2008-12-01  XYZ    100      20
        2009-03-01  XYZ    50       24
        2009-03-10  XYZ    25       26
        2009-03-27  XYZ    -100     13
        """
    )
    t.realized(
        trades,
        "proceeds cost_basis adjustment_code adjustment_amount gain_loss\n1300.00 2000.00 W 525.00 -175.00",
    )
    t.open_lots(
        trades,
        """
        quantity date_acquired holding_period_start cost_basis wash_sale_adjustment
        50       2009-03-01    2008-11-05           1550.00    350.00
        25       2009-03-10    2008-11-14           825.00     175.00
        """,
    )


def test_whole_loss_goes_to_the_first_replacement_shares(t):
    # Same article, Example 3: 100 bought March 1 for $2,400 and 50 March 10 for $1,300; the
    # whole $700 loss is disallowed and added to the first 100 replacement shares.
    trades = t.trades(
        """
        date        symbol quantity price
        2008-12-01  XYZ    100      20
        2009-03-01  XYZ    100      24
        2009-03-10  XYZ    50       26
        2009-03-27  XYZ    -100     13
        """
    )
    t.realized(trades, "adjustment_amount gain_loss\n700.00 0.00")
    t.open_lots(
        trades, "quantity cost_basis wash_sale_adjustment\n100 3100.00 700.00\n50 1300.00 0.00"
    )


def test_chains_carry_through(t):
    # Each loss moves into the next purchase, holding periods tacked on in turn:
    # B1 held 10 days -> B2 starts 2024-01-07; B2 (from 01-07) sold 02-11 after 35 days ->
    # B3 starts 35 days before 2024-02-21. In total: -1000 + 800 - 900 + 800 - 700 + 1200 = 200.
    trades = t.trades(
        """
        date        symbol quantity price trade_id
        2024-01-02  X      100      10    B1
        2024-01-12  X      -100     8     S1
        2024-01-17  X      100      9     B2
        2024-02-11  X      -100     8     S2
        2024-02-21  X      100      7     B3
        2024-09-03  X      -100     12    S3
        """
    )
    t.realized(
        trades,
        """
        lot_id trade_id holding_period_start proceeds cost_basis wash_sale_adjustment adjustment_amount gain_loss
        B1     S1       2024-01-02           800.00   1000.00    0.00                 200.00            0.00
        B2     S2       2024-01-07           800.00   1100.00    200.00               300.00            0.00
        B3     S3       2024-01-17           1200.00  1000.00    300.00               0.00              200.00
        """,
    )


def test_wash_sale_across_the_year_end(t):
    trades = t.trades(
        """
        date        symbol quantity price
        2023-11-01  X      100      50
        2023-12-20  X      -100     40
        2024-01-05  X      100      42
        2024-03-01  X      -100     55
        """
    )
    t.realized(
        trades,
        """
        date_sold  cost_basis adjustment_code adjustment_amount gain_loss
        2023-12-20 5000.00    W               1000.00           0.00
        2024-03-01 5200.00    -               0.00              300.00
        """,
    )


def test_replacement_bought_in_the_30_days_before_the_sale(t):
    # FIFO sells B1 at a $200 loss; B2, bought 12 days earlier and still held, replaces it.
    trades = t.trades(
        """
        date        symbol quantity price trade_id
        2024-01-02  X      100      10    B1
        2024-01-20  X      100      9     B2
        2024-02-01  X      -100     8     S1
        """
    )
    t.realized(trades, "lot_id adjustment_amount gain_loss\nB1 200.00 0.00")
    t.open_lots(trades, "lot_id holding_period_start cost_basis\nB2 2023-12-21 1100.00")


def test_shares_of_the_same_lot_are_not_their_own_replacement(t):
    trades = t.trades(
        """
        date        symbol quantity price
        2024-01-02  X      100      10
        2024-01-12  X      -50      8
        """
    )
    t.realized(trades, "adjustment_code gain_loss\n- -100.00")


def test_a_replacement_share_absorbs_one_shares_loss(t):
    # Two lots sold at a loss in one trade, 100 shares bought after: only the first lot's
    # loss is disallowed; B2 is sold in the same trade, so it replaces nothing.
    trades = t.trades(
        """
        date        symbol quantity price trade_id
        2024-01-02  X      100      10    B1
        2024-01-02  X      100      10    B2
        2024-03-01  X      -200     8     S1
        2024-03-05  X      100      8.50  B3
        """
    )
    t.realized(
        trades,
        "lot_id adjustment_code adjustment_amount gain_loss\nB1 W 200.00 0.00\nB2 - 0.00 -200.00",
    )
    t.open_lots(trades, "lot_id cost_basis wash_sale_adjustment\nB3 1050.00 200.00")


def test_short_sale_loss_is_washed_by_a_new_short_sale(t):
    # Pub. 550, Wash Sales, "Short sales": the rules apply to a loss on a short sale when
    # substantially identical stock is sold short within 30 days of closing it.
    # 25 short at 415.50, covered at 421 ($139.50 loss with $1 commissions); 10 shorted again
    # 13 days later: 10/25 of the loss ($55.80) is disallowed and added to that lot's cost.
    trades = t.trades(
        """
        date        symbol quantity price commission
        2024-03-04  MSFT   -25      415.5 1
        2024-03-28  MSFT   25       421   1
        2024-04-10  MSFT   -10      424   1
        2024-05-15  MSFT   10       410   1
        """
    )
    t.realized(
        trades,
        """
        position quantity proceeds cost_basis wash_sale_adjustment adjustment_code adjustment_amount gain_loss
        short    -25      10386.50 10526.00   0.00                 W               55.80             -83.70
        short    -10      4239.00  4156.80    55.80                -               0.00              82.20
        """,
    )


def test_purchase_in_another_account_of_the_set_washes_the_loss(t):
    trades = t.trades(
        """
        date        symbol quantity price account
        2024-01-02  X      100      10    TAXABLE
        2024-02-01  X      -100     9     TAXABLE
        2024-02-15  X      100      9.5   OTHER
        """
    )
    t.realized(trades, "account adjustment_amount gain_loss\nTAXABLE 100.00 0.00")
    t.open_lots(trades, "account cost_basis\nOTHER 1050.00")


def test_purchases_more_than_30_days_away_do_not_wash(t):
    trades = t.trades(
        """
        date        symbol quantity price
        2024-01-02  X      100      10
        2024-02-01  X      100      9
        2024-03-04  X      -100     8
        2024-04-04  X      100      8
        """
    )
    # Sale 2024-03-04: the 02-01 lot is 32 days before, the 04-04 lot 31 days after.
    t.realized(trades, "adjustment_code gain_loss\n- -200.00")


def test_no_wash_sales_option(t):
    trades = t.trades(
        """
        date        symbol quantity price
        2024-01-02  X      100      10.00
        2024-06-03  X      -100     7.50
        2024-06-20  X      100      8.00
        """
    )
    result = match_lots(trades, wash_sales=False)
    assert result.realized["adjustment_code"].tolist() == [""]
    assert result.realized["gain_loss"].round(2).tolist() == [-250.0]
    assert result.open_lots["cost_basis"].round(2).tolist() == [800.0]


def test_replacement_in_an_ira_disallows_the_loss_for_good(t):
    # Rev. Rul. 2008-5: stock sold at a loss in a taxable account and bought back within 30
    # days in the same person's IRA: the loss is disallowed and NOT added to the IRA shares'
    # basis (no holding period tacked either). The IRA's own sale is not on Form 8949.
    trades = t.trades(
        """
        date        symbol quantity price account
        2024-01-02  X      100      10.00  TAXABLE
        2024-03-01  X      -100     8.00   TAXABLE
        2024-03-10  X      100      8.50   ROTH
        2024-06-03  X      -100     9.00   ROTH
        """
    )
    t.realized(
        trades,
        """
        account adjustment_code adjustment_amount permanently_disallowed cost_basis gain_loss ira
        TAXABLE W               200.00            200.00                 1000.00    0.00      False
        ROTH    -               0.00              0.00                   850.00     50.00     True
        """,
        ira_accounts=["ROTH"],
    )
    from ibkr_nb.tax.reports import form_8949

    rows = form_8949(match_lots(trades, ira_accounts=["ROTH"]), 2024)
    assert rows["symbol"].tolist() == ["X"] and rows["adjustment_amount"].tolist() == [200.0]


def test_ira_column_works_like_the_account_list(t):
    trades = t.trades(
        """
        date        symbol quantity price account
        2024-01-02  X      100      10.00  TAXABLE
        2024-03-01  X      -100     8.00   TAXABLE
        2024-03-10  X      50       8.50   IRA
        """
    )
    by_list = match_lots(trades, ira_accounts=["IRA"])
    by_column = match_lots(trades.assign(ira=trades["account"] == "IRA"))
    for result in (by_list, by_column):
        row = result.realized.iloc[0]
        # half the shares replaced in the IRA: half the loss gone for good, half allowed
        assert row["adjustment_amount"] == pytest.approx(100.0)
        assert row["permanently_disallowed"] == pytest.approx(100.0)
        assert result.open_lots["cost_basis"].tolist() == [425.0]


def test_cross_account_wash_sale_moves_the_holding_period(t):
    trades = t.trades(
        """
        date        symbol quantity price account
        2023-01-03  X      10       100    JOINT
        2024-01-05  X      -10      90     JOINT
        2024-01-20  X      10       95     SOLO
        2024-02-01  X      -10      96     SOLO
        """
    )
    # the SOLO lot inherits JOINT's $100 loss and its 367-day holding period: long-term
    t.realized(
        trades,
        """
        account adjustment_amount cost_basis gain_loss term
        JOINT   100.00            1000.00    0.00      long
        SOLO    0.00              1050.00    -90.00    long
        """,
    )
