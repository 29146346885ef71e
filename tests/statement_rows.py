"""IBKR statement rows written by hand for the tax tests: an Activity Statement `Trades`
header and one-account Flex XML with `<Trade>` rows."""

ACTIVITY_HEADER = (
    "Trades,Header,DataDiscriminator,Asset Category,Currency,Symbol,Date/Time,Exchange,"
    "Quantity,T. Price,Proceeds,Comm/Fee,Basis,Realized P/L,Code\n"
)


def flex(*rows: str, info: str = "", extra: str = "") -> str:
    """A one-account Flex statement with the given <Trade .../> (or other) rows."""
    return (
        '<FlexQueryResponse><FlexStatements count="1"><FlexStatement accountId="U1">'
        + info
        + "<Trades>"
        + "".join(rows)
        + "</Trades>"
        + extra
        + "</FlexStatement></FlexStatements></FlexQueryResponse>"
    )


def trade(trade_id, symbol, when, quantity, price, oc, pnl="0", **more) -> str:
    attrs = {
        "accountId": "U1",
        "currency": "USD",
        "fxRateToBase": "1",
        "assetCategory": "STK",
        "symbol": symbol,
        "tradeID": trade_id,
        "dateTime": when,
        "quantity": quantity,
        "tradePrice": price,
        "ibCommission": "-1",
        "openCloseIndicator": oc,
        "fifoPnlRealized": pnl,
        "levelOfDetail": "EXECUTION",
        **more,
    }
    return "<Trade " + " ".join(f'{k}="{v}"' for k, v in attrs.items()) + " />"
