"""The gateway's Flex statement: the seeded portfolio and fills, read back by the tax importer."""

from __future__ import annotations

from datetime import timedelta
from xml.etree import ElementTree

import pytest
from ib_async import MarketOrder, Stock
from support import CLOCK, connect_ib, wait_until

from ibkr_nb.cli import main
from ibkr_nb.tax import from_flex_xml, match_lots


def test_seeded_history_books_into_long_and_short_term_lots_with_losses(gateway):
    imported = from_flex_xml(gateway.flex_statement())
    assert imported.rejects.empty
    result = match_lots(imported.trades)
    lots = result.open_lots
    held = {row.symbol: row.quantity for row in gateway.broker.positions()}
    assert lots.groupby("symbol").quantity.sum().to_dict() == pytest.approx(held)
    acquired = lots.date_acquired.astype("datetime64[s]")
    one_year_ago = (CLOCK - timedelta(days=366)).replace(tzinfo=None)
    assert (acquired < one_year_ago).any() and (acquired > one_year_ago).any()
    prices = {row.symbol: row.market_price for row in gateway.broker.positions()}
    per_share = lots.cost_basis / lots.quantity
    assert (per_share > lots.symbol.map(prices)).any()  # some lots are under water
    assert not result.realized.empty  # the seeded MSFT sale


def test_fills_appear_with_open_close_indicators(gateway):
    ib = connect_ib(gateway)
    ko = ib.qualifyContracts(Stock("KO", "SMART", "USD"))[0]
    trade = ib.placeOrder(ko, MarketOrder("SELL", 1300))  # 1,220 held: closes, then opens short
    wait_until(ib, trade.isDone, timeout=10)
    ib.disconnect()
    xml = gateway.flex_statement()
    fills = [
        el.get("openCloseIndicator")
        for el in ElementTree.fromstring(xml).iter("Trade")
        if el.get("symbol") == "KO" and el.get("buySell") == "SELL"
    ]
    # closing fills first; the one through zero is "C;O"; any after it open the short
    assert fills[0] in ("C", "C;O") and fills[-1] in ("O", "C;O")
    assert fills == sorted(fills, key=["C", "C;O", "O"].index)
    trades = from_flex_xml(xml).trades
    assert trades[trades.symbol == "KO"].quantity.sum() == pytest.approx(-80)


def test_cli_writes_the_statement(tmp_path, capsys):
    out = tmp_path / "paper.xml"
    argv = ["gateway", "--memory", "--seed", "7", "--clock", "2026-11-24T15:30:00Z",
            "--write-flex", str(out), "--log-level", "WARNING"]  # fmt: skip
    assert main(argv) == 0
    assert "<FlexQueryResponse" in out.read_text()
    assert str(out) in capsys.readouterr().out
