"""Every reply the gateway can send, encoded by our layouts and decoded by ib_async's own Decoder.

A field that lands in the wrong place shows up as a wrong attribute on ib_async's objects.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest
from ib_async.decoder import Decoder

from ibkr_nb.gateway import messages
from ibkr_nb.gateway.protocol import (
    SERVER_MAX_VERSION,
    FieldError,
    FieldReader,
    decode_fields,
    encode_message,
    split_frames,
)

VERSIONS = (157, 166, 176, SERVER_MAX_VERSION)


class Recorder:
    """Stands in for ib_async's Wrapper and records every call the Decoder makes."""

    defaultTimezone = UTC

    class ib:  # noqa: N801 - the attribute name ib_async's decoder reads
        TimezoneTWS = None

    def __init__(self):
        self.calls: list[tuple[str, tuple]] = []

    def __getattr__(self, name):
        def record(*args):
            self.calls.append((name, args))

        return record


def decode(name: str, values: dict, version: int) -> list[tuple[str, tuple]]:
    recorder = Recorder()
    fields = messages.encode_fields(name, values, version)
    # through the real framing, as on the socket
    buffer = bytearray(encode_message(fields))
    (payload,) = split_frames(buffer)
    Decoder(recorder, version).interpret(decode_fields(payload))
    return recorder.calls


CONTRACT = {
    "conId": 265598,
    "symbol": "AAPL",
    "secType": "STK",
    "exchange": "SMART",
    "primaryExchange": "NASDAQ",
    "currency": "USD",
    "localSymbol": "AAPL",
    "tradingClass": "NMS",
}

ORDER = {
    **CONTRACT,
    "orderId": 12,
    "action": "BUY",
    "totalQuantity": 150.0,
    "orderType": "STP LMT",
    "lmtPrice": 190.5,
    "auxPrice": 190.25,
    "tif": "GTC",
    "ocaGroup": "oca-1",
    "account": "DU1234567",
    "orderRef": "decision-42",
    "clientId": 3,
    "permId": 987654,
    "outsideRth": True,
    "displaySize": 100,
    "ocaType": 1,
    "parentId": 11,
    "trailStopPrice": 189.0,
    "trailingPercent": 1.5,
    "whatIf": True,
    "status": "PreSubmitted",
    "initMarginBefore": "1000.00",
    "initMarginChange": "14287.50",
    "maintMarginAfter": "8000.00",
    "equityWithLoanAfter": "999000.00",
    "commission": 1.0,
    "minCommission": 1.0,
    "maxCommission": 1.5,
    "commissionCurrency": "USD",
    "warningText": "",
    "algoStrategy": "Adaptive",
    "algoParams": [{"tag": "adaptivePriority", "value": "Normal"}],
    "hedgeType": "",
    "usePriceMgmtAlgo": True,
    "duration": 30,
    "autoCancelParent": True,
}


def _attributes(args) -> dict:
    """Every attribute of the dataclasses among a call's arguments (one level of nesting)."""
    found: dict = {}
    for arg in args:
        if dataclasses.is_dataclass(arg):
            for f in dataclasses.fields(arg):
                value = getattr(arg, f.name)
                if dataclasses.is_dataclass(value):
                    found.update(_attributes([value]))
                found.setdefault(f.name, value)
    return found


def _check_attributes(values: dict, args, aliases=None) -> None:
    attrs = _attributes(args)
    aliases = aliases or {}
    for name, expected in values.items():
        if isinstance(expected, list):
            continue
        attr = aliases.get(name, name)
        assert attr in attrs, f"{name} not decoded"
        assert attrs[attr] == expected, f"{name}: sent {expected!r}, decoded {attrs[attr]!r}"


@pytest.mark.parametrize("version", VERSIONS)
def test_open_order_round_trip(version):
    ((method, args),) = decode("openOrder", ORDER, version)
    assert method == "openOrder"
    assert args[0] == 12
    skip = {"exchange", "primaryExchange"}  # openOrder carries no primary exchange
    skip |= {"duration"} if version < 159 else set()
    skip |= {"autoCancelParent"} if version < 162 else set()
    _check_attributes({k: v for k, v in ORDER.items() if k not in skip}, args[1:])
    assert args[2].algoParams[0].tag == "adaptivePriority"


@pytest.mark.parametrize("version", VERSIONS)
def test_completed_order_round_trip(version):
    values = {k: v for k, v in ORDER.items() if k not in {"orderId", "clientId", "whatIf"}}
    values.update(
        completedTime="20261124 15:00:01 UTC",
        completedStatus="Filled",
        filledQuantity=150.0,
        status="Filled",
    )
    skip = {
        "primaryExchange",
        "initMarginBefore",
        "initMarginChange",
        "maintMarginAfter",
        "equityWithLoanAfter",
        "commission",
        "minCommission",
        "maxCommission",
        "commissionCurrency",
        "warningText",
        "parentId",
        "usePriceMgmtAlgo",
        "duration",
    }
    skip |= {"autoCancelParent"} if version < 162 else set()
    ((method, args),) = decode("completedOrder", values, version)
    assert method == "completedOrder"
    _check_attributes({k: v for k, v in values.items() if k not in skip}, args)


@pytest.mark.parametrize("version", VERSIONS)
def test_contract_details_round_trip(version):
    values = {
        **CONTRACT,
        "reqId": 5,
        "marketName": "NMS",
        "minTick": 0.01,
        "orderTypes": "LMT,MKT",
        "validExchanges": "SMART,NASDAQ",
        "priceMagnifier": 1,
        "longName": "APPLE INC",
        "industry": "Technology",
        "category": "Computers",
        "subcategory": "Computers",
        "timeZoneId": "US/Eastern",
        "tradingHours": "20261124:0930-20261124:1600",
        "liquidHours": "20261124:0930-20261124:1600",
        "secIdList": [{"tag": "ISIN", "value": "US0378331005"}],
        "aggGroup": 1,
        "marketRuleIds": "26,26",
        "stockType": "COMMON",
        "minSize": 1.0,
        "sizeIncrement": 1.0,
        "suggestedSizeIncrement": 100.0,
    }
    if version < 164:  # before size rules, TWS sent no minimum size or size increment
        del values["minSize"], values["sizeIncrement"], values["suggestedSizeIncrement"]
    ((method, args),) = decode("contractDetails", values, version)
    assert method == "contractDetails"
    assert args[0] == 5
    _check_attributes({k: v for k, v in values.items() if k != "reqId"}, args[1:])
    assert args[1].secIdList[0].value == "US0378331005"


@pytest.mark.parametrize("version", VERSIONS)
def test_exec_details_round_trip(version):
    values = {
        **CONTRACT,
        "reqId": -1,
        "orderId": 12,
        "execId": "0000e0d5.65a0b1c2.01.01",
        "time": "20261124 15:00:01 UTC",
        "acctNumber": "DU1234567",
        "execExchange": "ISLAND",
        "side": "BOT",
        "shares": 150.0,
        "price": 190.27,
        "permId": 987654,
        "clientId": 3,
        "cumQty": 150.0,
        "avgPrice": 190.27,
        "orderRef": "decision-42",
        "lastLiquidity": 2,
    }
    ((method, args),) = decode("execDetails", values, version)
    assert method == "execDetails"
    reqid, contract, execution = args
    assert reqid == -1
    assert execution.time.isoformat() == "2026-11-24T15:00:01+00:00"
    skip = {"reqId", "primaryExchange", "time", "exchange", "execExchange"}
    _check_attributes(
        {k: v for k, v in values.items() if k not in skip},
        [contract, execution],
    )
    assert contract.exchange == "SMART" and execution.exchange == "ISLAND"


def test_commission_report_round_trip():
    values = {
        "execId": "x.1",
        "commission": 1.25,
        "currency": "USD",
        "realizedPNL": -12.5,
        "yield_": 0.0,
        "yieldRedemptionDate": 0,
    }
    ((method, (report,)),) = decode("commissionReport", values, SERVER_MAX_VERSION)
    assert method == "commissionReport"
    assert (report.execId, report.commission, report.realizedPNL) == ("x.1", 1.25, -12.5)


def test_portfolio_position_and_multi_round_trip():
    portfolio = {
        **CONTRACT,
        "position": -30.0,
        "marketPrice": 101.5,
        "marketValue": -3045.0,
        "averageCost": 100.2,
        "unrealizedPNL": -39.0,
        "realizedPNL": 12.0,
        "accountName": "DU1",
    }
    ((method, args),) = decode("updatePortfolio", portfolio, SERVER_MAX_VERSION)
    assert method == "updatePortfolio"
    assert args[0].conId == 265598 and args[0].primaryExchange == "NASDAQ"
    assert args[1:] == (-30.0, 101.5, -3045.0, 100.2, -39.0, 12.0, "DU1")

    position = {**CONTRACT, "account": "DU1", "position": 25.0, "avgCost": 181.3}
    ((method, args),) = decode("position", position, SERVER_MAX_VERSION)
    assert method == "position"
    assert (args[0], args[1].symbol, args[1].exchange, args[2], args[3]) == (
        "DU1",
        "AAPL",
        "SMART",
        25.0,
        181.3,
    )

    multi = {**position, "reqId": 4, "modelCode": ""}
    ((method, args),) = decode("positionMulti", multi, SERVER_MAX_VERSION)
    assert method == "positionMulti"
    assert args[0] == 4 and args[3].conId == 265598 and args[4:] == (25.0, 181.3)


@pytest.mark.parametrize("version", VERSIONS)
def test_symbol_samples_round_trip(version):
    values = {
        "reqId": 9,
        "descriptions": [
            {
                **CONTRACT,
                "derivativeSecTypes": [{"value": "OPT"}, {"value": "WAR"}],
                "description": "APPLE INC",
                "issuerId": "",
            },
            {
                **CONTRACT,
                "conId": 8314,
                "symbol": "IBM",
                "primaryExchange": "NYSE",
                "derivativeSecTypes": [],
                "description": "IBM",
                "issuerId": "",
            },
        ],
    }
    ((method, (req_id, descriptions)),) = decode("symbolSamples", values, version)
    assert method == "symbolSamples" and req_id == 9
    assert [d.contract.symbol for d in descriptions] == ["AAPL", "IBM"]
    assert descriptions[0].derivativeSecTypes == ["OPT", "WAR"]
    assert descriptions[1].contract.primaryExchange == "NYSE"


def test_historical_data_round_trip():
    bars = [
        {
            "date": "20261123",
            "open": 1.0,
            "high": 2.0,
            "low": 0.5,
            "close": 1.5,
            "volume": 1000.0,
            "wap": 1.2,
            "barCount": 10,
        },
        {
            "date": "20261124",
            "open": 1.5,
            "high": 2.5,
            "low": 1.0,
            "close": 2.0,
            "volume": 900.0,
            "wap": 1.9,
            "barCount": 9,
        },
    ]
    calls = decode(
        "historicalData",
        {
            "reqId": 2,
            "startDateStr": "20261120 00:00:00",
            "endDateStr": "20261124 16:00:00",
            "bars": bars,
        },
        SERVER_MAX_VERSION,
    )
    assert [c[0] for c in calls] == ["historicalData", "historicalData", "historicalDataEnd"]
    assert calls[1][1][1].close == 2.0 and calls[1][1][1].barCount == 9
    assert calls[2][1] == (2, "20261120 00:00:00", "20261124 16:00:00")


def test_tick_price_and_size_round_trip():
    ((method, args),) = decode(
        "tickPrice",
        {"reqId": 1, "tickType": 1, "price": 190.25, "size": 300.0, "attrMask": 0},
        SERVER_MAX_VERSION,
    )
    assert (method, args) == ("priceSizeTick", (1, 1, 190.25, 300.0))


SIMPLE = {
    # reply name -> (values in layout order, wrapper method)
    "tickSize": ({"reqId": 1, "tickType": 8, "size": 12345.0}, "tickSize"),
    "orderStatus": (
        {
            "orderId": 7,
            "status": "Filled",
            "filled": 10.0,
            "remaining": 0.0,
            "avgFillPrice": 10.5,
            "permId": 99,
            "parentId": 0,
            "lastFillPrice": 10.5,
            "clientId": 1,
            "whyHeld": "",
            "mktCapPrice": 0.0,
        },
        "orderStatus",
    ),
    "error": (
        {
            "reqId": 7,
            "errorCode": 202,
            "errorString": "Order Canceled - reason:",
            "advancedOrderRejectJson": "",
        },
        "error",
    ),
    "updateAccountValue": (
        {"key": "NetLiquidation", "val": "1000.00", "currency": "USD", "accountName": "DU1"},
        "updateAccountValue",
    ),
    "updateAccountTime": ({"timeStamp": "15:01"}, "updateAccountTime"),
    "nextValidId": ({"orderId": 42}, "nextValidId"),
    "managedAccounts": ({"accountsList": "DU1234567"}, "managedAccounts"),
    "tickGeneric": ({"reqId": 3, "tickType": 49, "value": 0.0}, "tickGeneric"),
    "tickString": ({"reqId": 3, "tickType": 45, "value": "1764000000"}, "tickString"),
    "currentTime": ({"time": 1764000000}, "currentTime"),
    "contractDetailsEnd": ({"reqId": 5}, "contractDetailsEnd"),
    "openOrderEnd": ({}, "openOrderEnd"),
    "accountDownloadEnd": ({"accountName": "DU1"}, "accountDownloadEnd"),
    "execDetailsEnd": ({"reqId": 6}, "execDetailsEnd"),
    "tickSnapshotEnd": ({"reqId": 3}, "tickSnapshotEnd"),
    "marketDataType": ({"reqId": 3, "marketDataType": 3}, "marketDataType"),
    "positionEnd": ({}, "positionEnd"),
    "accountSummary": (
        {
            "reqId": 8,
            "account": "DU1",
            "tag": "NetLiquidation",
            "value": "1000.00",
            "currency": "USD",
        },
        "accountSummary",
    ),
    "accountSummaryEnd": ({"reqId": 8}, "accountSummaryEnd"),
    "positionMultiEnd": ({"reqId": 4}, "positionMultiEnd"),
    "accountUpdateMulti": (
        {
            "reqId": 4,
            "account": "DU1",
            "modelCode": "",
            "key": "Cash",
            "value": "1.00",
            "currency": "USD",
        },
        "accountUpdateMulti",
    ),
    "accountUpdateMultiEnd": ({"reqId": 4}, "accountUpdateMultiEnd"),
    "tickReqParams": (
        {"reqId": 3, "minTick": 0.01, "bboExchange": "9c0001", "snapshotPermissions": 3},
        "tickReqParams",
    ),
    "headTimestamp": ({"reqId": 3, "headTimestamp": "19801212-14:30:00"}, "headTimestamp"),
    "completedOrdersEnd": ({}, "completedOrdersEnd"),
    "updateMktDepth": (
        {"reqId": 3, "position": 1, "operation": 0, "side": 1, "price": 1.0825, "size": 2e6},
        "updateMktDepth",
    ),
    "updateMktDepthL2": (
        {
            "reqId": 3,
            "position": 0,
            "marketMaker": "ARCA",
            "operation": 1,
            "side": 0,
            "price": 190.01,
            "size": 300.0,
            "isSmartDepth": True,
        },
        "updateMktDepthL2",
    ),
    "scannerParameters": ({"xml": "<ScanParameterResponse/>"}, "scannerParameters"),
    "realtimeBar": (
        {
            "reqId": 4,
            "time": 1795000000,
            "open": 1.5,
            "high": 1.75,
            "low": 1.25,
            "close": 1.5,
            "volume": 300.0,
            "wap": 1.5,
            "count": 5,
        },
        "realtimeBar",
    ),
    "fundamentalData": ({"reqId": 6, "data": "<ReportSnapshot/>"}, "fundamentalData"),
    "securityDefinitionOptionParameterEnd": (
        {"reqId": 7},
        "securityDefinitionOptionParameterEnd",
    ),
    "newsArticle": ({"reqId": 8, "articleType": 0, "articleText": "text"}, "newsArticle"),
    "tickNews": (
        {
            "reqId": 8,
            "timeStamp": 1795525200000,
            "providerCode": "BRFG",
            "articleId": "BRFG$1",
            "headline": "Headline",
            "extraData": "",
        },
        "tickNews",
    ),
    "historicalNews": (
        {
            "reqId": 9,
            "time": "2026-11-24 15:00:00.0",
            "providerCode": "BRFG",
            "articleId": "BRFG$1",
            "headline": "Headline",
        },
        "historicalNews",
    ),
    "historicalNewsEnd": ({"reqId": 9, "hasMore": False}, "historicalNewsEnd"),
    "pnl": (
        {"reqId": 10, "dailyPnL": 12.5, "unrealizedPnL": -3.25, "realizedPnL": 4.0},
        "pnl",
    ),
    "pnlSingle": (
        {
            "reqId": 11,
            "pos": 100.0,
            "dailyPnL": 1.5,
            "unrealizedPnL": 2.5,
            "realizedPnL": 0.0,
            "value": 19000.0,
        },
        "pnlSingle",
    ),
    "userInfo": ({"reqId": 12, "whiteBrandingId": ""}, "userInfo"),
}


@pytest.mark.parametrize(
    "name, key", [("mktDepthExchanges", "descriptions"), ("newsProviders", "providers"),
                  ("familyCodes", "codes")],
)  # fmt: skip
def test_empty_list_replies_round_trip(name, key):
    assert decode(name, {key: []}, SERVER_MAX_VERSION) == [(name, ([],))]


def test_market_rule_round_trip():
    values = {"marketRuleId": 26, "increments": [{"lowEdge": 0.0, "increment": 0.01}]}
    ((method, (rule_id, increments)),) = decode("marketRule", values, SERVER_MAX_VERSION)
    assert (method, rule_id) == ("marketRule", 26)
    assert [(i.lowEdge, i.increment) for i in increments] == [(0.0, 0.01)]


@pytest.mark.parametrize("name", sorted(SIMPLE))
def test_simple_reply_round_trip(name):
    values, method = SIMPLE[name]
    calls = decode(name, values, SERVER_MAX_VERSION)
    assert calls == [(method, tuple(values.values()))]


def test_every_reply_is_covered():
    covered = (
        set(SIMPLE)
        | {
            "openOrder",
            "completedOrder",
            "contractDetails",
            "execDetails",
            "commissionReport",
            "updatePortfolio",
            "position",
            "positionMulti",
            "symbolSamples",
            "historicalData",
            "tickPrice",
        }
        | set(STRUCTURED)
    )
    assert covered == set(messages.REPLIES)


# Replies whose ib_async handler builds objects: (values, expected call, expected arguments).
STRUCTURED = {
    "tickOptionComputation": (
        {
            "reqId": 3,
            "tickType": 13,
            "tickAttrib": 1,
            "impliedVol": 0.2,
            "delta": 0.5,
            "optPrice": 12.5,
            "pvDividend": 0.1,
            "gamma": 0.01,
            "vega": 0.3,
            "theta": -0.05,
            "undPrice": 500.0,
        },
        "tickOptionComputation",
        (3, 13, 1, 0.2, 0.5, 12.5, 0.1, 0.01, 0.3, -0.05, 500.0),
    ),
    "securityDefinitionOptionParameter": (
        {
            "reqId": 4,
            "exchange": "SMART",
            "underlyingConId": 416904,
            "tradingClass": "SPX",
            "multiplier": "100",
            "expirations": [{"value": "20261218"}, {"value": "20270115"}],
            "strikes": [{"value": 5800.0}, {"value": 5805.0}],
        },
        "securityDefinitionOptionParameter",
        (4, "SMART", "416904", "SPX", "100", ["20261218", "20270115"], [5800.0, 5805.0]),
    ),
    "historicalDataUpdate": (
        {
            "reqId": 5,
            "barCount": 7,
            "date": "20261124 10:30:00 US/Eastern",
            "open": 1.0,
            "close": 2.0,
            "high": 3.0,
            "low": 0.5,
            "wap": 1.5,
            "volume": 100.0,
        },
        "historicalDataUpdate",
        None,
    ),
    "tickByTick": (
        {
            "reqId": 6,
            "tickType": 3,
            "time": 1795000000,
            "bidPrice": 1.1,
            "askPrice": 1.2,
            "bidSize": 100.0,
            "askSize": 200.0,
        },
        "tickByTickBidAsk",
        None,
    ),
    "historicalTicks": (
        {"reqId": 7, "ticks": [{"time": 1795000000, "price": 1.5, "size": 0.0}], "done": True},
        "historicalTicks",
        None,
    ),
    "historicalTicksBidAsk": (
        {
            "reqId": 7,
            "ticks": [
                {
                    "time": 1795000000,
                    "priceBid": 1.5,
                    "priceAsk": 1.6,
                    "sizeBid": 100.0,
                    "sizeAsk": 200.0,
                }
            ],
            "done": True,
        },
        "historicalTicksBidAsk",
        None,
    ),
    "historicalTicksLast": (
        {
            "reqId": 7,
            "ticks": [
                {
                    "time": 1795000000,
                    "price": 1.5,
                    "size": 100.0,
                    "exchange": "NASDAQ",
                    "specialConditions": "",
                }
            ],
            "done": True,
        },
        "historicalTicksLast",
        None,
    ),
    "mktDepthExchanges": (
        {
            "descriptions": [
                {
                    "exchange": "IDEALPRO",
                    "secType": "CASH",
                    "listingExch": "",
                    "serviceDataType": "Deep",
                    "aggGroup": 4,
                }
            ]
        },
        "mktDepthExchanges",
        None,
    ),
    "smartComponents": (
        {"reqId": 8, "components": [{"bitNumber": 1, "exchange": "ARCA", "exchangeLetter": "P"}]},
        "smartComponents",
        None,
    ),
    "histogramData": (
        {"reqId": 9, "items": [{"price": 190.0, "count": 12}]},
        "histogramData",
        None,
    ),
    "scannerData": (
        {
            "reqId": 10,
            "rows": [
                {
                    "rank": 0,
                    **{k: v for k, v in CONTRACT.items() if k != "primaryExchange"},
                    "marketName": "NMS",
                    "distance": "",
                    "benchmark": "",
                    "projection": "",
                    "legsStr": "",
                }
            ],
        },
        "scannerData",
        None,
    ),
    "newsProviders": (
        {"providers": [{"code": "BRFG", "name": "Briefing.com General Market Columns"}]},
        "newsProviders",
        None,
    ),
    "marketRule": (
        {"marketRuleId": 26, "increments": [{"lowEdge": 0.0, "increment": 0.01}]},
        "marketRule",
        None,
    ),
    "softDollarTiers": (
        {"reqId": 11, "tiers": [{"name": "n", "val": "v", "displayName": "d"}]},
        "softDollarTiers",
        None,
    ),
    "familyCodes": (
        {"codes": [{"accountID": "DU1", "familyCodeStr": ""}]},
        "familyCodes",
        None,
    ),
}


@pytest.mark.parametrize("name", sorted(STRUCTURED))
def test_structured_reply_round_trip(name):
    """ib_async's decoder reads every field of the reply where the layout put it."""
    values, method, expected = STRUCTURED[name]
    calls = decode(name, values, SERVER_MAX_VERSION)
    assert calls[0][0] == method
    args = calls[0][1]
    if expected is not None:
        assert args == expected
        return
    flat = repr(args)
    for key, value in values.items():
        items = value if isinstance(value, list) else [{key: value}]
        for item in items:
            for field, v in item.items():
                if field in ("reqId", "tickType", "unused", "mask", "done"):
                    continue
                if field == "time" and isinstance(v, int) and repr(v) not in flat:  # a datetime
                    v = datetime.fromtimestamp(v, UTC)
                assert (v if isinstance(v, str) else repr(v)) in flat, (name, field, v, flat)


# -- requests: what ib_async sends, decoded by our layouts --------------------------------------


def test_place_order_request_decodes_as_ib_async_encodes_it():
    """Capture ib_async's placeOrder bytes and decode them with our request layout."""
    from ib_async import Client, LimitOrder, Stock
    from ib_async.order import TagValue

    sent: list[str] = []
    client = Client(wrapper=None)
    client._serverVersion = SERVER_MAX_VERSION
    client.isConnected = lambda: True
    client.sendMsg = sent.append
    order = LimitOrder(
        "SELL",
        25,
        101.37,
        orderRef="ref-1",
        tif="GTC",
        outsideRth=True,
        algoStrategy="Adaptive",
        algoParams=[TagValue("adaptivePriority", "Urgent")],
    )
    client.placeOrder(17, Stock("IBM", "SMART", "USD"), order)
    fields = sent[0].split("\0")[:-1]
    request, values = messages.decode_request(fields, SERVER_MAX_VERSION)
    assert request.name == "placeOrder"
    assert values["orderId"] == 17 and values["symbol"] == "IBM"
    assert (values["action"], values["totalQuantity"], values["lmtPrice"]) == ("SELL", 25, 101.37)
    assert (values["orderType"], values["tif"], values["orderRef"]) == ("LMT", "GTC", "ref-1")
    assert values["outsideRth"] is True and values["transmit"] is True
    assert values["algoParams"] == [{"tag": "adaptivePriority", "value": "Urgent"}]
    assert values["auxPrice"] is None


def test_place_order_with_conditions_decodes_every_field_after_them():
    from ib_async import Client, LimitOrder, PriceCondition, Stock, TimeCondition

    sent: list[str] = []
    client = Client(wrapper=None)
    client._serverVersion = SERVER_MAX_VERSION
    client.isConnected = lambda: True
    client.sendMsg = sent.append
    order = LimitOrder("BUY", 5, 101.5, mifid2DecisionMaker="desk-7")
    order.conditions = [
        PriceCondition(price=99.5, conId=8314, exch="SMART", isMore=False),
        TimeCondition(time="20261124 15:45:00 US/Eastern").Or(),
    ]
    order.conditionsCancelOrder = True
    client.placeOrder(18, Stock("IBM", "SMART", "USD"), order)
    _, values = messages.decode_request(sent[0].split("\0")[:-1], SERVER_MAX_VERSION)
    first, second = values["conditions"]
    assert (first["condType"], first["price"], first["conId"], first["isMore"]) == (
        1,
        99.5,
        8314,
        False,
    )
    assert (second["condType"], second["time"], second["conjunction"]) == (
        3,
        "20261124 15:45:00 US/Eastern",
        "o",
    )
    assert values["conditionsCancelOrder"] is True
    assert values["mifid2DecisionMaker"] == "desk-7"  # the fields after the conditions line up


def test_bad_field_type_names_the_field():
    with pytest.raises(FieldError, match="reqId"):
        messages.decode_request(["62", "1", "not-a-number", "All", "NetLiquidation"], 178)


def test_unknown_message_id_is_key_error():
    with pytest.raises(KeyError):
        messages.decode_request(["999", "1"], 178)


def test_field_reader_types():
    reader = FieldReader(["", "12", "1.5", "1", "x"])
    assert reader.int("a") == 0
    assert reader.int("b") == 12
    assert reader.float("c") == 1.5
    assert reader.bool("d") is True
    with pytest.raises(FieldError, match="'e' must be a number"):
        reader.float("e")
