"""TWS API message ids and field layouts, as data.

Both directions are described the same way: a layout is a tuple of ``(name, type)`` fields,
``When`` blocks that appear only under a condition (server version, order type, ...), and
``Repeat`` blocks written as a count followed by the items. Field names are ib_async's
attribute names (``lmtPrice``, ``orderRef``), so a decoded request reads like an ``Order`` and
an encoded reply can be checked against ib_async's own ``Decoder``.

Layouts follow TWS API 10.30 (server versions 157..178) as ib_async and IBKR's client read them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .protocol import UNSET_DOUBLE, FieldError, FieldReader, encode_field, frame


@dataclass(frozen=True)
class When:
    """Fields present only when ``test(values, server_version)`` holds."""

    test: Callable[[Mapping[str, Any], int], bool]
    fields: tuple


@dataclass(frozen=True)
class Repeat:
    """A count, then that many items; each item is a dict stored under ``name``."""

    name: str
    fields: tuple


@dataclass(frozen=True)
class Choice:
    """An int field whose value picks the layout of the fields after it."""

    name: str
    cases: Mapping[int, tuple]


def since(version: int) -> Callable[[Mapping[str, Any], int], bool]:
    return lambda _values, server_version: server_version >= version


def before(version: int) -> Callable[[Mapping[str, Any], int], bool]:
    return lambda _values, server_version: server_version < version


def present(name: str) -> Callable[[Mapping[str, Any], int], bool]:
    return lambda values, _version: bool(values.get(name))


def equals(name: str, *options: str) -> Callable[[Mapping[str, Any], int], bool]:
    return lambda values, _version: values.get(name) in options


# -- building blocks ---------------------------------------------------------------------------

CONTRACT_FIELDS = (
    ("conId", int),
    ("symbol", str),
    ("secType", str),
    ("lastTradeDateOrContractMonth", str),
    ("strike", float),
    ("right", str),
    ("multiplier", str),
    ("exchange", str),
    ("primaryExchange", str),
    ("currency", str),
    ("localSymbol", str),
    ("tradingClass", str),
)
CONTRACT_NO_PRIMARY = tuple(f for f in CONTRACT_FIELDS if f[0] != "primaryExchange")
PORTFOLIO_CONTRACT = tuple(f for f in CONTRACT_FIELDS if f[0] != "exchange")
BAG_LEGS = When(
    equals("secType", "BAG"),
    (Repeat("comboLegs", (("conId", int), ("ratio", int), ("action", str), ("exchange", str))),),
)
DELTA_NEUTRAL = (
    ("deltaNeutralContractPresent", bool),
    When(
        present("deltaNeutralContractPresent"),
        (("dncConId", int), ("dncDelta", float), ("dncPrice", float)),
    ),
)
TAG_VALUES = ("tag", str), ("value", str)


def _scale_increment_set(values, _version) -> bool:
    increment = values.get("scalePriceIncrement")
    return increment is not None and 0 < increment < UNSET_DOUBLE


SCALE_EXTRA = (
    ("scalePriceAdjustValue", float),
    ("scalePriceAdjustInterval", int),
    ("scaleProfitOffset", float),
    ("scaleAutoReset", bool),
    ("scaleInitPosition", int),
    ("scaleInitFillQty", int),
    ("scaleRandomPercent", bool),
)
PEG_BENCH = When(
    equals("orderType", "PEG BENCH", "PEGBENCH"),
    (
        ("referenceContractId", int),
        ("isPeggedChangeAmountDecrease", bool),
        ("peggedChangeAmount", float),
        ("referenceChangeAmount", float),
        ("referenceExchangeId", str),
    ),
)
DN_ORDER_TYPE = present("deltaNeutralOrderType")
# What an order is: side, size, type, prices, time in force and tags, in every order layout.
ORDER_TERMS = (
    ("action", str),
    ("totalQuantity", float),
    ("orderType", str),
    ("lmtPrice", float),
    ("auxPrice", float),
    ("tif", str),
    ("ocaGroup", str),
    ("account", str),
    ("openClose", str),
    ("origin", int),
    ("orderRef", str),
)
# Volatility-order, delta-neutral and trailing fields, in placeOrder and openOrder alike.
VOLATILITY_AND_TRAIL = (
    ("volatility", float),
    ("volatilityType", int),
    ("deltaNeutralOrderType", str),
    ("deltaNeutralAuxPrice", float),
    When(
        DN_ORDER_TYPE,
        (
            ("deltaNeutralConId", int),
            ("deltaNeutralSettlingFirm", str),
            ("deltaNeutralClearingAccount", str),
            ("deltaNeutralClearingIntent", str),
            ("deltaNeutralOpenClose", str),
            ("deltaNeutralShortSale", bool),
            ("deltaNeutralShortSaleSlot", int),
            ("deltaNeutralDesignatedLocation", str),
        ),
    ),
    ("continuousUpdate", bool),
    ("referencePriceType", int),
    ("trailStopPrice", float),
    ("trailingPercent", float),
)


# Order conditions, by condType (ib_async's PriceCondition ... PercentChangeCondition).
CONDITIONS = {
    1: (("conjunction", str), ("isMore", bool), ("price", float), ("conId", int),
        ("exch", str), ("triggerMethod", int)),
    3: (("conjunction", str), ("isMore", bool), ("time", str)),
    4: (("conjunction", str), ("isMore", bool), ("percent", int)),
    5: (("conjunction", str), ("secType", str), ("exch", str), ("symbol", str)),
    6: (("conjunction", str), ("isMore", bool), ("volume", int), ("conId", int), ("exch", str)),
    7: (("conjunction", str), ("isMore", bool), ("changePercent", float), ("conId", int),
        ("exch", str)),
}  # fmt: skip

# -- requests: client -> server ----------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    msg_id: int
    name: str
    layout: tuple


PLACE_ORDER = (
    ("orderId", int),
    *CONTRACT_FIELDS,
    ("secIdType", str),
    ("secId", str),
    *ORDER_TERMS,
    ("transmit", bool),
    ("parentId", int),
    ("blockOrder", bool),
    ("sweepToFill", bool),
    ("displaySize", int),
    ("triggerMethod", int),
    ("outsideRth", bool),
    ("hidden", bool),
    When(
        equals("secType", "BAG"),
        (
            Repeat(
                "comboLegs",
                (
                    ("conId", int),
                    ("ratio", int),
                    ("action", str),
                    ("exchange", str),
                    ("openClose", int),
                    ("shortSaleSlot", int),
                    ("designatedLocation", str),
                    ("exemptCode", int),
                ),
            ),
            Repeat("orderComboLegs", (("price", float),)),
            Repeat("smartComboRoutingParams", TAG_VALUES),
        ),
    ),
    ("sharesAllocation", str),
    ("discretionaryAmt", float),
    ("goodAfterTime", str),
    ("goodTillDate", str),
    ("faGroup", str),
    ("faMethod", str),
    ("faPercentage", str),
    When(before(177), (("faProfile", str),)),
    ("modelCode", str),
    ("shortSaleSlot", int),
    ("designatedLocation", str),
    ("exemptCode", int),
    ("ocaType", int),
    ("rule80A", str),
    ("settlingFirm", str),
    ("allOrNone", bool),
    ("minQty", int),
    ("percentOffset", float),
    ("eTradeOnly", bool),
    ("firmQuoteOnly", bool),
    ("nbboPriceCap", float),
    ("auctionStrategy", int),
    ("startingPrice", float),
    ("stockRefPrice", float),
    ("delta", float),
    ("stockRangeLower", float),
    ("stockRangeUpper", float),
    ("overridePercentageConstraints", bool),
    *VOLATILITY_AND_TRAIL,
    ("scaleInitLevelSize", int),
    ("scaleSubsLevelSize", int),
    ("scalePriceIncrement", float),
    When(_scale_increment_set, SCALE_EXTRA),
    ("scaleTable", str),
    ("activeStartTime", str),
    ("activeStopTime", str),
    ("hedgeType", str),
    When(present("hedgeType"), (("hedgeParam", str),)),
    ("optOutSmartRouting", bool),
    ("clearingAccount", str),
    ("clearingIntent", str),
    ("notHeld", bool),
    *DELTA_NEUTRAL,
    ("algoStrategy", str),
    When(present("algoStrategy"), (Repeat("algoParams", TAG_VALUES),)),
    ("algoId", str),
    ("whatIf", bool),
    ("orderMiscOptions", str),
    ("solicited", bool),
    ("randomizeSize", bool),
    ("randomizePrice", bool),
    PEG_BENCH,
    Repeat("conditions", (Choice("condType", CONDITIONS),)),
    When(present("conditions"), (("conditionsIgnoreRth", bool), ("conditionsCancelOrder", bool))),
    ("adjustedOrderType", str),
    ("triggerPrice", float),
    ("lmtPriceOffset", float),
    ("adjustedStopPrice", float),
    ("adjustedStopLimitPrice", float),
    ("adjustedTrailingAmount", float),
    ("adjustableTrailingUnit", int),
    ("extOperator", str),
    ("softDollarTierName", str),
    ("softDollarTierValue", str),
    ("cashQty", float),
    ("mifid2DecisionMaker", str),
    ("mifid2DecisionAlgo", str),
    ("mifid2ExecutionTrader", str),
    ("mifid2ExecutionAlgo", str),
    ("dontUseAutoPriceForHedge", bool),
    ("isOmsContainer", bool),
    ("discretionaryUpToLimitPrice", bool),
    ("usePriceMgmtAlgo", str),
    When(since(158), (("duration", int),)),
    When(since(160), (("postToAts", int),)),
    When(since(162), (("autoCancelParent", bool),)),
    When(since(166), (("advancedErrorOverride", str),)),
    When(since(169), (("manualOrderTime", str),)),
)

REQUESTS: dict[int, Request] = {
    r.msg_id: r
    for r in (
        Request(
            1,
            "reqMktData",
            (
                ("version", int),
                ("reqId", int),
                *CONTRACT_FIELDS,
                BAG_LEGS,
                *DELTA_NEUTRAL,
                ("genericTickList", str),
                ("snapshot", bool),
                ("regulatorySnapshot", bool),
                ("mktDataOptions", str),
            ),
        ),
        Request(2, "cancelMktData", (("version", int), ("reqId", int))),
        Request(3, "placeOrder", PLACE_ORDER),
        Request(
            4,
            "cancelOrder",
            (
                ("version", int),
                ("orderId", int),
                When(since(169), (("manualOrderCancelTime", str),)),
            ),
        ),
        Request(5, "reqOpenOrders", (("version", int),)),
        Request(
            21,
            "exerciseOptions",
            (
                ("version", int),
                ("reqId", int),
                *CONTRACT_NO_PRIMARY,
                ("exerciseAction", int),
                ("exerciseQuantity", int),
                ("account", str),
                ("override", int),
            ),
        ),
        Request(6, "reqAccountUpdates", (("version", int), ("subscribe", bool), ("acctCode", str))),
        Request(
            7,
            "reqExecutions",
            (
                ("version", int),
                ("reqId", int),
                ("clientId", int),
                ("acctCode", str),
                ("time", str),
                ("symbol", str),
                ("secType", str),
                ("exchange", str),
                ("side", str),
            ),
        ),
        Request(8, "reqIds", (("version", int), ("numIds", int))),
        Request(
            9,
            "reqContractDetails",
            (
                ("version", int),
                ("reqId", int),
                *CONTRACT_FIELDS,
                ("includeExpired", bool),
                ("secIdType", str),
                ("secId", str),
                When(since(176), (("issuerId", str),)),
            ),
        ),
        Request(15, "reqAutoOpenOrders", (("version", int), ("autoBind", bool))),
        Request(16, "reqAllOpenOrders", (("version", int),)),
        Request(17, "reqManagedAccts", (("version", int),)),
        Request(
            20,
            "reqHistoricalData",
            (
                ("reqId", int),
                *CONTRACT_FIELDS,
                ("includeExpired", bool),
                ("endDateTime", str),
                ("barSizeSetting", str),
                ("durationStr", str),
                ("useRTH", bool),
                ("whatToShow", str),
                ("formatDate", int),
                BAG_LEGS,
                ("keepUpToDate", bool),
                ("chartOptions", str),
            ),
        ),
        Request(25, "cancelHistoricalData", (("version", int), ("reqId", int))),
        Request(49, "reqCurrentTime", (("version", int),)),
        Request(58, "reqGlobalCancel", (("version", int),)),
        Request(59, "reqMarketDataType", (("version", int), ("marketDataType", int))),
        Request(61, "reqPositions", (("version", int),)),
        Request(
            62,
            "reqAccountSummary",
            (("version", int), ("reqId", int), ("groupName", str), ("tags", str)),
        ),
        Request(63, "cancelAccountSummary", (("version", int), ("reqId", int))),
        Request(64, "cancelPositions", (("version", int),)),
        Request(
            71, "startApi", (("version", int), ("clientId", int), ("optionalCapabilities", str))
        ),
        Request(
            74,
            "reqPositionsMulti",
            (("version", int), ("reqId", int), ("account", str), ("modelCode", str)),
        ),
        Request(75, "cancelPositionsMulti", (("version", int), ("reqId", int))),
        Request(
            76,
            "reqAccountUpdatesMulti",
            (
                ("version", int),
                ("reqId", int),
                ("account", str),
                ("modelCode", str),
                ("ledgerAndNLV", bool),
            ),
        ),
        Request(77, "cancelAccountUpdatesMulti", (("version", int), ("reqId", int))),
        Request(81, "reqMatchingSymbols", (("reqId", int), ("pattern", str))),
        Request(
            87,
            "reqHeadTimeStamp",
            (
                ("reqId", int),
                *CONTRACT_FIELDS,
                ("includeExpired", bool),
                ("useRTH", bool),
                ("whatToShow", str),
                ("formatDate", int),
            ),
        ),
        Request(90, "cancelHeadTimeStamp", (("reqId", int),)),
        Request(99, "reqCompletedOrders", (("apiOnly", bool),)),
        # -- market depth, streams and ticks --
        Request(
            10,
            "reqMktDepth",
            (
                ("version", int),
                ("reqId", int),
                *CONTRACT_FIELDS,
                ("numRows", int),
                ("isSmartDepth", bool),
                ("mktDepthOptions", str),
            ),
        ),
        Request(11, "cancelMktDepth", (("version", int), ("reqId", int), ("isSmartDepth", bool))),
        Request(12, "reqNewsBulletins", (("version", int), ("allMsgs", bool))),
        Request(13, "cancelNewsBulletins", (("version", int),)),
        Request(
            50,
            "reqRealTimeBars",
            (
                ("version", int),
                ("reqId", int),
                *CONTRACT_FIELDS,
                ("barSize", int),
                ("whatToShow", str),
                ("useRTH", bool),
                ("realTimeBarsOptions", str),
            ),
        ),
        Request(51, "cancelRealTimeBars", (("version", int), ("reqId", int))),
        Request(82, "reqMktDepthExchanges", ()),
        Request(83, "reqSmartComponents", (("reqId", int), ("bboExchange", str))),
        Request(
            88,
            "reqHistogramData",
            (
                ("reqId", int),
                *CONTRACT_FIELDS,
                ("includeExpired", bool),
                ("useRTH", bool),
                ("timePeriod", str),
            ),
        ),
        Request(89, "cancelHistogramData", (("reqId", int),)),
        Request(
            96,
            "reqHistoricalTicks",
            (
                ("reqId", int),
                *CONTRACT_FIELDS,
                ("includeExpired", bool),
                ("startDateTime", str),
                ("endDateTime", str),
                ("numberOfTicks", int),
                ("whatToShow", str),
                ("useRth", bool),
                ("ignoreSize", bool),
                ("miscOptions", str),
            ),
        ),
        Request(
            97,
            "reqTickByTickData",
            (
                ("reqId", int),
                *CONTRACT_FIELDS,
                ("tickType", str),
                ("numberOfTicks", int),
                ("ignoreSize", bool),
            ),
        ),
        Request(98, "cancelTickByTickData", (("reqId", int),)),
        # -- options --
        Request(
            78,
            "reqSecDefOptParams",
            (
                ("reqId", int),
                ("underlyingSymbol", str),
                ("futFopExchange", str),
                ("underlyingSecType", str),
                ("underlyingConId", int),
            ),
        ),
        Request(
            54,
            "calculateImpliedVolatility",
            (
                ("version", int),
                ("reqId", int),
                *CONTRACT_FIELDS,
                ("optionPrice", float),
                ("underPrice", float),
                ("optionsCount", int),
                ("options", str),
            ),
        ),
        Request(
            55,
            "calculateOptionPrice",
            (
                ("version", int),
                ("reqId", int),
                *CONTRACT_FIELDS,
                ("volatility", float),
                ("underPrice", float),
                ("optionsCount", int),
                ("options", str),
            ),
        ),
        Request(56, "cancelCalculateImpliedVolatility", (("version", int), ("reqId", int))),
        Request(57, "cancelCalculateOptionPrice", (("version", int), ("reqId", int))),
        # -- reference data: scanners, news, fundamentals, rules --
        Request(
            22,
            "reqScannerSubscription",
            (
                ("reqId", int),
                ("numberOfRows", int),
                ("instrument", str),
                ("locationCode", str),
                ("scanCode", str),
                ("abovePrice", float),
                ("belowPrice", float),
                ("aboveVolume", int),
                ("marketCapAbove", float),
                ("marketCapBelow", float),
                ("moodyRatingAbove", str),
                ("moodyRatingBelow", str),
                ("spRatingAbove", str),
                ("spRatingBelow", str),
                ("maturityDateAbove", str),
                ("maturityDateBelow", str),
                ("couponRateAbove", float),
                ("couponRateBelow", float),
                ("excludeConvertible", bool),
                ("averageOptionVolumeAbove", int),
                ("scannerSettingPairs", str),
                ("stockTypeFilter", str),
                ("filterOptions", str),
                ("subscriptionOptions", str),
            ),
        ),
        Request(23, "cancelScannerSubscription", (("version", int), ("reqId", int))),
        Request(24, "reqScannerParameters", (("version", int),)),
        Request(
            52,
            "reqFundamentalData",
            (
                ("version", int),
                ("reqId", int),
                ("conId", int),
                ("symbol", str),
                ("secType", str),
                ("exchange", str),
                ("primaryExchange", str),
                ("currency", str),
                ("localSymbol", str),
                ("reportType", str),
                ("optionsCount", int),
                ("options", str),
            ),
        ),
        Request(53, "cancelFundamentalData", (("version", int), ("reqId", int))),
        Request(
            84,
            "reqNewsArticle",
            (("reqId", int), ("providerCode", str), ("articleId", str), ("options", str)),
        ),
        Request(85, "reqNewsProviders", ()),
        Request(
            86,
            "reqHistoricalNews",
            (
                ("reqId", int),
                ("conId", int),
                ("providerCodes", str),
                ("startDateTime", str),
                ("endDateTime", str),
                ("totalResults", int),
                ("options", str),
            ),
        ),
        Request(91, "reqMarketRule", (("marketRuleId", int),)),
        Request(79, "reqSoftDollarTiers", (("reqId", int),)),
        Request(80, "reqFamilyCodes", ()),
        Request(104, "reqUserInfo", (("reqId", int),)),
        # -- P&L --
        Request(92, "reqPnL", (("reqId", int), ("account", str), ("modelCode", str))),
        Request(93, "cancelPnL", (("reqId", int),)),
        Request(
            94,
            "reqPnLSingle",
            (("reqId", int), ("account", str), ("modelCode", str), ("conId", int)),
        ),
        Request(95, "cancelPnLSingle", (("reqId", int),)),
    )
}


def _read(layout: tuple, reader: FieldReader, values: dict, version: int) -> None:
    for item in layout:
        if isinstance(item, When):
            if item.test(values, version):
                _read(item.fields, reader, values, version)
        elif isinstance(item, Choice):
            case = reader.int(item.name)
            if case not in item.cases:
                raise FieldError(f"field {item.name!r} has no layout for {case!r}")
            values[item.name] = case
            _read(item.cases[case], reader, values, version)
        elif isinstance(item, Repeat):
            count = reader.int(item.name + " count")
            if count is None or count < 0 or count > 10_000:
                raise FieldError(f"field {item.name!r} count {count!r} is out of range")
            items = []
            for _ in range(count):
                entry: dict = {}
                _read(item.fields, reader, entry, version)
                items.append(entry)
            values[item.name] = items
        else:
            name, kind = item
            if kind is int:
                values[name] = reader.int(name)
            elif kind is float:
                values[name] = reader.float(name)
            elif kind is bool:
                values[name] = reader.bool(name)
            else:
                values[name] = reader.str(name)


def decode_request(fields: list[str], version: int) -> tuple[Request, dict]:
    """Decode one client request into its layout and a dict of named values.

    Raises KeyError for an unknown message id and FieldError for a field of the wrong type.
    """
    reader = FieldReader(fields)
    msg_id = reader.int("message id")
    request = REQUESTS[msg_id]
    values: dict = {}
    _read(request.layout, reader, values, version)
    return request, values


# -- replies: server -> client -----------------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    msg_id: int
    version: int | None  # the message's own version field, absent in newer layouts
    layout: tuple


ORDER_STATE_FIELDS = (
    ("status", str),
    ("initMarginBefore", str),
    ("maintMarginBefore", str),
    ("equityWithLoanBefore", str),
    ("initMarginChange", str),
    ("maintMarginChange", str),
    ("equityWithLoanChange", str),
    ("initMarginAfter", str),
    ("maintMarginAfter", str),
    ("equityWithLoanAfter", str),
    ("commission", float),
    ("minCommission", float),
    ("maxCommission", float),
    ("commissionCurrency", str),
    ("warningText", str),
)
PEG_BEST_MID = When(
    since(170),
    (
        ("minTradeQty", int),
        ("minCompeteSize", int),
        ("competeAgainstBestOffset", float),
        ("midOffsetAtWhole", float),
        ("midOffsetAtHalf", float),
    ),
)
ORDER_COMBO_AND_SCALE = (
    ("comboLegsDescrip", str),
    Repeat("comboLegs", ()),
    Repeat("orderComboLegs", ()),
    Repeat("smartComboRoutingParams", TAG_VALUES),
    ("scaleInitLevelSize", int),
    ("scaleSubsLevelSize", int),
    ("scalePriceIncrement", float),
    When(_scale_increment_set, SCALE_EXTRA),
    ("hedgeType", str),
    When(present("hedgeType"), (("hedgeParam", str),)),
)

# Advisor allocation, model, time-in-force date and short-sale fields, as openOrder and
# completedOrder both report them.
ALLOCATION_AND_RULES = (
    ("faGroup", str),
    ("faMethod", str),
    ("faPercentage", str),
    When(before(177), (("faProfile", str),)),
    ("modelCode", str),
    ("goodTillDate", str),
    ("rule80A", str),
    ("percentOffset", float),
    ("settlingFirm", str),
    ("shortSaleSlot", int),
    ("designatedLocation", str),
    ("exemptCode", int),
)

OPEN_ORDER = (
    ("orderId", int),
    *CONTRACT_NO_PRIMARY,
    *ORDER_TERMS,
    ("clientId", int),
    ("permId", int),
    ("outsideRth", bool),
    ("hidden", bool),
    ("discretionaryAmt", float),
    ("goodAfterTime", str),
    ("sharesAllocation", str),
    *ALLOCATION_AND_RULES,
    ("auctionStrategy", int),
    ("startingPrice", float),
    ("stockRefPrice", float),
    ("delta", float),
    ("stockRangeLower", float),
    ("stockRangeUpper", float),
    ("displaySize", int),
    ("blockOrder", bool),
    ("sweepToFill", bool),
    ("allOrNone", bool),
    ("minQty", int),
    ("ocaType", int),
    ("eTradeOnly", bool),
    ("firmQuoteOnly", bool),
    ("nbboPriceCap", float),
    ("parentId", int),
    ("triggerMethod", int),
    *VOLATILITY_AND_TRAIL,
    ("basisPoints", float),
    ("basisPointsType", int),
    *ORDER_COMBO_AND_SCALE,
    ("optOutSmartRouting", bool),
    ("clearingAccount", str),
    ("clearingIntent", str),
    ("notHeld", bool),
    ("deltaNeutralContractPresent", bool),
    ("algoStrategy", str),
    When(present("algoStrategy"), (Repeat("algoParams", TAG_VALUES),)),
    ("solicited", bool),
    ("whatIf", bool),
    *ORDER_STATE_FIELDS,
    ("randomizeSize", bool),
    ("randomizePrice", bool),
    PEG_BENCH,
    ("conditionsCount", int, 0),
    ("adjustedOrderType", str),
    ("triggerPrice", float),
    ("trailStopPrice", float),
    ("lmtPriceOffset", float),
    ("adjustedStopPrice", float),
    ("adjustedStopLimitPrice", float),
    ("adjustedTrailingAmount", float),
    ("adjustableTrailingUnit", int),
    ("softDollarTierName", str),
    ("softDollarTierValue", str),
    ("softDollarTierDisplayName", str),
    ("cashQty", float),
    ("dontUseAutoPriceForHedge", bool),
    ("isOmsContainer", bool),
    ("discretionaryUpToLimitPrice", bool),
    ("usePriceMgmtAlgo", bool),
    When(since(158), (("duration", int),)),
    When(since(160), (("postToAts", int),)),
    When(since(162), (("autoCancelParent", bool),)),
    PEG_BEST_MID,
)

COMPLETED_ORDER = (
    *CONTRACT_NO_PRIMARY,
    *ORDER_TERMS,
    ("permId", int),
    ("outsideRth", bool),
    ("hidden", bool),
    ("discretionaryAmt", float),
    ("goodAfterTime", str),
    *ALLOCATION_AND_RULES,
    ("startingPrice", float),
    ("stockRefPrice", float),
    ("delta", float),
    ("stockRangeLower", float),
    ("stockRangeUpper", float),
    ("displaySize", int),
    ("sweepToFill", bool),
    ("allOrNone", bool),
    ("minQty", int),
    ("ocaType", int),
    ("triggerMethod", int),
    ("volatility", float),
    ("volatilityType", int),
    ("deltaNeutralOrderType", str),
    ("deltaNeutralAuxPrice", float),
    When(
        DN_ORDER_TYPE,
        (
            ("deltaNeutralConId", int),
            ("deltaNeutralShortSale", bool),
            ("deltaNeutralShortSaleSlot", int),
            ("deltaNeutralDesignatedLocation", str),
        ),
    ),
    ("continuousUpdate", bool),
    ("referencePriceType", int),
    ("trailStopPrice", float),
    ("trailingPercent", float),
    *ORDER_COMBO_AND_SCALE,
    ("clearingAccount", str),
    ("clearingIntent", str),
    ("notHeld", bool),
    ("deltaNeutralContractPresent", bool),
    ("algoStrategy", str),
    When(present("algoStrategy"), (Repeat("algoParams", TAG_VALUES),)),
    ("solicited", bool),
    ("status", str),
    ("randomizeSize", bool),
    ("randomizePrice", bool),
    PEG_BENCH,
    ("conditionsCount", int, 0),
    ("trailStopPrice", float),
    ("lmtPriceOffset", float),
    ("cashQty", float),
    ("dontUseAutoPriceForHedge", bool),
    ("isOmsContainer", bool),
    ("autoCancelDate", str),
    ("filledQuantity", float),
    ("refFuturesConId", int),
    ("autoCancelParent", bool),
    ("shareholder", str),
    ("imbalanceOnly", bool),
    ("routeMarketableToBbo", bool),
    ("parentPermId", int),
    ("completedTime", str),
    ("completedStatus", str),
    PEG_BEST_MID,
)

TICK_BY_TICK_TRADE = (
    ("time", int),
    ("price", float),
    ("size", float),
    ("mask", int, 0),
    ("exchange", str),
    ("specialConditions", str),
)

REPLIES: dict[str, Reply] = {
    "tickPrice": Reply(
        1,
        6,
        (("reqId", int), ("tickType", int), ("price", float), ("size", float), ("attrMask", int)),
    ),
    "tickSize": Reply(2, 6, (("reqId", int), ("tickType", int), ("size", float))),
    "orderStatus": Reply(
        3,
        None,
        (
            ("orderId", int),
            ("status", str),
            ("filled", float),
            ("remaining", float),
            ("avgFillPrice", float),
            ("permId", int),
            ("parentId", int),
            ("lastFillPrice", float),
            ("clientId", int),
            ("whyHeld", str),
            ("mktCapPrice", float),
        ),
    ),
    "error": Reply(
        4,
        2,
        (
            ("reqId", int),
            ("errorCode", int),
            ("errorString", str),
            When(since(166), (("advancedOrderRejectJson", str),)),
        ),
    ),
    "openOrder": Reply(5, None, OPEN_ORDER),
    "updateAccountValue": Reply(
        6, 2, (("key", str), ("val", str), ("currency", str), ("accountName", str))
    ),
    "updatePortfolio": Reply(
        7,
        8,
        (
            *PORTFOLIO_CONTRACT,
            ("position", float),
            ("marketPrice", float),
            ("marketValue", float),
            ("averageCost", float),
            ("unrealizedPNL", float),
            ("realizedPNL", float),
            ("accountName", str),
        ),
    ),
    "updateAccountTime": Reply(8, 1, (("timeStamp", str),)),
    "nextValidId": Reply(9, 1, (("orderId", int),)),
    "contractDetails": Reply(
        10,
        None,
        (
            When(before(164), (("messageVersion", int, 8),)),
            ("reqId", int),
            ("symbol", str),
            ("secType", str),
            ("lastTradeDateOrContractMonth", str),
            ("strike", float),
            ("right", str),
            ("exchange", str),
            ("currency", str),
            ("localSymbol", str),
            ("marketName", str),
            ("tradingClass", str),
            ("conId", int),
            ("minTick", float),
            When(before(164), (("mdSizeMultiplier", int, 1),)),
            ("multiplier", str),
            ("orderTypes", str),
            ("validExchanges", str),
            ("priceMagnifier", int),
            ("underConId", int),
            ("longName", str),
            ("primaryExchange", str),
            ("contractMonth", str),
            ("industry", str),
            ("category", str),
            ("subcategory", str),
            ("timeZoneId", str),
            ("tradingHours", str),
            ("liquidHours", str),
            ("evRule", str),
            ("evMultiplier", float),
            Repeat("secIdList", TAG_VALUES),
            ("aggGroup", int),
            ("underSymbol", str),
            ("underSecType", str),
            ("marketRuleIds", str),
            ("realExpirationDate", str),
            ("stockType", str),
            When(lambda _values, version: version == 163, (("suggestedSizeIncrement", float),)),
            When(
                since(164),
                (("minSize", float), ("sizeIncrement", float), ("suggestedSizeIncrement", float)),
            ),
        ),
    ),
    "execDetails": Reply(
        11,
        None,
        (
            ("reqId", int),
            ("orderId", int),
            *CONTRACT_NO_PRIMARY,
            ("execId", str),
            ("time", str),
            ("acctNumber", str),
            ("execExchange", str),
            ("side", str),
            ("shares", float),
            ("price", float),
            ("permId", int),
            ("clientId", int),
            ("liquidation", int),
            ("cumQty", float),
            ("avgPrice", float),
            ("orderRef", str),
            ("evRule", str),
            ("evMultiplier", float),
            ("modelCode", str),
            ("lastLiquidity", int),
            When(since(178), (("pendingPriceRevision", bool),)),
        ),
    ),
    "managedAccounts": Reply(15, 1, (("accountsList", str),)),
    "historicalData": Reply(
        17,
        None,
        (
            ("reqId", int),
            ("startDateStr", str),
            ("endDateStr", str),
            Repeat(
                "bars",
                (
                    ("date", str),
                    ("open", float),
                    ("high", float),
                    ("low", float),
                    ("close", float),
                    ("volume", float),
                    ("wap", float),
                    ("barCount", int),
                ),
            ),
        ),
    ),
    "tickGeneric": Reply(45, 6, (("reqId", int), ("tickType", int), ("value", float))),
    "tickString": Reply(46, 6, (("reqId", int), ("tickType", int), ("value", str))),
    "currentTime": Reply(49, 1, (("time", int),)),
    "contractDetailsEnd": Reply(52, 1, (("reqId", int),)),
    "openOrderEnd": Reply(53, 1, ()),
    "accountDownloadEnd": Reply(54, 1, (("accountName", str),)),
    "execDetailsEnd": Reply(55, 1, (("reqId", int),)),
    "tickSnapshotEnd": Reply(57, 1, (("reqId", int),)),
    "marketDataType": Reply(58, 1, (("reqId", int), ("marketDataType", int))),
    "commissionReport": Reply(
        59,
        1,
        (
            ("execId", str),
            ("commission", float),
            ("currency", str),
            ("realizedPNL", float),
            ("yield_", float),
            ("yieldRedemptionDate", int),
        ),
    ),
    "position": Reply(
        61, 3, (("account", str), *CONTRACT_NO_PRIMARY, ("position", float), ("avgCost", float))
    ),
    "positionEnd": Reply(62, 1, ()),
    "accountSummary": Reply(
        63,
        1,
        (("reqId", int), ("account", str), ("tag", str), ("value", str), ("currency", str)),
    ),
    "accountSummaryEnd": Reply(64, 1, (("reqId", int),)),
    "positionMulti": Reply(
        71,
        1,
        (
            ("reqId", int),
            ("account", str),
            *CONTRACT_NO_PRIMARY,
            ("position", float),
            ("avgCost", float),
            ("modelCode", str),
        ),
    ),
    "positionMultiEnd": Reply(72, 1, (("reqId", int),)),
    "accountUpdateMulti": Reply(
        73,
        1,
        (
            ("reqId", int),
            ("account", str),
            ("modelCode", str),
            ("key", str),
            ("value", str),
            ("currency", str),
        ),
    ),
    "accountUpdateMultiEnd": Reply(74, 1, (("reqId", int),)),
    "symbolSamples": Reply(
        79,
        None,
        (
            ("reqId", int),
            Repeat(
                "descriptions",
                (
                    ("conId", int),
                    ("symbol", str),
                    ("secType", str),
                    ("primaryExchange", str),
                    ("currency", str),
                    Repeat("derivativeSecTypes", (("value", str),)),
                    When(since(176), (("description", str), ("issuerId", str))),
                ),
            ),
        ),
    ),
    "tickReqParams": Reply(
        81,
        None,
        (("reqId", int), ("minTick", float), ("bboExchange", str), ("snapshotPermissions", int)),
    ),
    "headTimestamp": Reply(88, None, (("reqId", int), ("headTimestamp", str))),
    "completedOrder": Reply(101, None, COMPLETED_ORDER),
    "completedOrdersEnd": Reply(102, None, ()),
    # -- options --
    "tickOptionComputation": Reply(
        21,
        None,
        (
            ("reqId", int),
            ("tickType", int),
            ("tickAttrib", int),
            ("impliedVol", float),
            ("delta", float),
            ("optPrice", float),
            ("pvDividend", float),
            ("gamma", float),
            ("vega", float),
            ("theta", float),
            ("undPrice", float),
        ),
    ),
    "securityDefinitionOptionParameter": Reply(
        75,
        None,
        (
            ("reqId", int),
            ("exchange", str),
            ("underlyingConId", int),
            ("tradingClass", str),
            ("multiplier", str),
            Repeat("expirations", (("value", str),)),
            Repeat("strikes", (("value", float),)),
        ),
    ),
    "securityDefinitionOptionParameterEnd": Reply(76, None, (("reqId", int),)),
    # -- depth, streams and ticks --
    "updateMktDepth": Reply(
        12,
        1,
        (
            ("reqId", int),
            ("position", int),
            ("operation", int),
            ("side", int),
            ("price", float),
            ("size", float),
        ),
    ),
    "updateMktDepthL2": Reply(
        13,
        1,
        (
            ("reqId", int),
            ("position", int),
            ("marketMaker", str),
            ("operation", int),
            ("side", int),
            ("price", float),
            ("size", float),
            ("isSmartDepth", bool),
        ),
    ),
    "mktDepthExchanges": Reply(
        80,
        None,
        (
            Repeat(
                "descriptions",
                (
                    ("exchange", str),
                    ("secType", str),
                    ("listingExch", str),
                    ("serviceDataType", str),
                    ("aggGroup", int),
                ),
            ),
        ),
    ),
    "smartComponents": Reply(
        82,
        None,
        (
            ("reqId", int),
            Repeat("components", (("bitNumber", int), ("exchange", str), ("exchangeLetter", str))),
        ),
    ),
    "realtimeBar": Reply(
        50,
        3,
        (
            ("reqId", int),
            ("time", int),
            ("open", float),
            ("high", float),
            ("low", float),
            ("close", float),
            ("volume", float),
            ("wap", float),
            ("count", int),
        ),
    ),
    "historicalDataUpdate": Reply(
        90,
        None,
        (
            ("reqId", int),
            ("barCount", int),
            ("date", str),
            ("open", float),
            ("close", float),
            ("high", float),
            ("low", float),
            ("wap", float),
            ("volume", float),
        ),
    ),
    "historicalTicks": Reply(
        96,
        None,
        (
            ("reqId", int),
            Repeat("ticks", (("time", int), ("unused", int, 0), ("price", float), ("size", float))),
            ("done", bool),
        ),
    ),
    "historicalTicksBidAsk": Reply(
        97,
        None,
        (
            ("reqId", int),
            Repeat(
                "ticks",
                (
                    ("time", int),
                    ("mask", int, 0),
                    ("priceBid", float),
                    ("priceAsk", float),
                    ("sizeBid", float),
                    ("sizeAsk", float),
                ),
            ),
            ("done", bool),
        ),
    ),
    "historicalTicksLast": Reply(
        98,
        None,
        (
            ("reqId", int),
            Repeat(
                "ticks",
                (
                    ("time", int),
                    ("mask", int, 0),
                    ("price", float),
                    ("size", float),
                    ("exchange", str),
                    ("specialConditions", str),
                ),
            ),
            ("done", bool),
        ),
    ),
    "tickByTick": Reply(
        99,
        None,
        (
            ("reqId", int),
            Choice(
                "tickType",
                {
                    1: TICK_BY_TICK_TRADE,
                    2: TICK_BY_TICK_TRADE,
                    3: (
                        ("time", int),
                        ("bidPrice", float),
                        ("askPrice", float),
                        ("bidSize", float),
                        ("askSize", float),
                        ("mask", int, 0),
                    ),
                    4: (("time", int), ("midPoint", float)),
                },
            ),
        ),
    ),
    "histogramData": Reply(
        89, None, (("reqId", int), Repeat("items", (("price", float), ("count", int))))
    ),
    # -- reference data --
    "scannerParameters": Reply(19, 1, (("xml", str),)),
    "scannerData": Reply(
        20,
        3,
        (
            ("reqId", int),
            Repeat(
                "rows",
                (
                    ("rank", int),
                    *(
                        f
                        for f in CONTRACT_NO_PRIMARY
                        if f[0] not in ("multiplier", "localSymbol", "tradingClass")
                    ),
                    ("localSymbol", str),
                    ("marketName", str),
                    ("tradingClass", str),
                    ("distance", str),
                    ("benchmark", str),
                    ("projection", str),
                    ("legsStr", str),
                ),
            ),
        ),
    ),
    "fundamentalData": Reply(51, 1, (("reqId", int), ("data", str))),
    "newsProviders": Reply(85, None, (Repeat("providers", (("code", str), ("name", str))),)),
    "tickNews": Reply(
        84,
        None,
        (
            ("reqId", int),
            ("timeStamp", int),
            ("providerCode", str),
            ("articleId", str),
            ("headline", str),
            ("extraData", str),
        ),
    ),
    "newsArticle": Reply(83, None, (("reqId", int), ("articleType", int), ("articleText", str))),
    "historicalNews": Reply(
        86,
        None,
        (
            ("reqId", int),
            ("time", str),
            ("providerCode", str),
            ("articleId", str),
            ("headline", str),
        ),
    ),
    "historicalNewsEnd": Reply(87, None, (("reqId", int), ("hasMore", bool))),
    "marketRule": Reply(
        93,
        None,
        (("marketRuleId", int), Repeat("increments", (("lowEdge", float), ("increment", float)))),
    ),
    "softDollarTiers": Reply(
        77,
        None,
        (("reqId", int), Repeat("tiers", (("name", str), ("val", str), ("displayName", str)))),
    ),
    "familyCodes": Reply(
        78, None, (Repeat("codes", (("accountID", str), ("familyCodeStr", str))),)
    ),
    "userInfo": Reply(107, None, (("reqId", int), ("whiteBrandingId", str))),
    # -- P&L --
    "pnl": Reply(
        94,
        None,
        (("reqId", int), ("dailyPnL", float), ("unrealizedPnL", float), ("realizedPnL", float)),
    ),
    "pnlSingle": Reply(
        95,
        None,
        (
            ("reqId", int),
            ("pos", float),
            ("dailyPnL", float),
            ("unrealizedPnL", float),
            ("realizedPnL", float),
            ("value", float),
        ),
    ),
}


# -- requests the paper gateway does not serve --------------------------------------------------


@dataclass(frozen=True)
class Unsupported:
    """How a request the gateway does not serve is answered, so the client's call returns.

    ``id_field``: index of the request id among the message's fields (the message id is field
    0), None when the request has none. Answered with error ``code``/``text`` carrying the
    id; ``code`` 0 means there is nothing to answer (a cancel, a setting, a subscription that
    simply never delivers anything here).
    """

    name: str
    id_field: int | None
    code: int = 0
    text: str = ""


_NO_WSH = "News feed is not allowed: the paper gateway has no Wall Street Horizon data."
_NO_FA = "Error validating request.-'bY' : cause - FA data operations ignored for non FA customers."
_NO_GROUPS = "Error validating request: display groups are not available from the paper gateway."

UNSUPPORTED: dict[int, Unsupported] = {
    14: Unsupported("setServerLogLevel", None),
    18: Unsupported("requestFA", None, 321, _NO_FA),
    19: Unsupported("replaceFA", 4, 321, _NO_FA),
    65: Unsupported("verifyRequest", None),
    66: Unsupported("verifyMessage", None),
    67: Unsupported("queryDisplayGroups", 2, 321, _NO_GROUPS),
    68: Unsupported("subscribeToGroupEvents", 2, 321, _NO_GROUPS),
    69: Unsupported("updateDisplayGroup", 2),
    70: Unsupported("unsubscribeFromGroupEvents", 2),
    72: Unsupported("verifyAndAuthRequest", None),
    73: Unsupported("verifyAndAuthMessage", None),
    100: Unsupported("reqWshMetaData", 1, 10276, _NO_WSH),
    101: Unsupported("cancelWshMetaData", 1),
    102: Unsupported("reqWshEventData", 1, 10276, _NO_WSH),
    103: Unsupported("cancelWshEventData", 1),
}  # fmt: skip


def request_id(fields: list[str]) -> int:
    """The request or order id of a message that could not be decoded, -1 when it has none
    or it cannot be read. Only the fields before the id are trusted."""
    try:
        msg_id = int(fields[0])
    except (IndexError, ValueError):
        return -1
    position = None
    request = REQUESTS.get(msg_id)
    if request is not None:
        for i, item in enumerate(request.layout):
            if not isinstance(item, tuple):
                break
            if item[0] in ("reqId", "orderId"):
                position = i + 1
                break
    elif msg_id in UNSUPPORTED:
        position = UNSUPPORTED[msg_id].id_field
    try:
        return int(fields[position]) if position is not None else -1
    except (IndexError, ValueError):
        return -1


def _write(layout: tuple, values: Mapping[str, Any], version: int, out: list) -> None:
    for item in layout:
        if isinstance(item, When):
            if item.test(values, version):
                _write(item.fields, values, version, out)
        elif isinstance(item, Choice):
            out.append(values[item.name])
            _write(item.cases[values[item.name]], values, version, out)
        elif isinstance(item, Repeat):
            entries = values.get(item.name) or ()
            out.append(len(entries))
            for entry in entries:
                _write(item.fields, entry, version, out)
        else:
            value = values.get(item[0])
            if value is None and item[1] is bool:
                value = False  # TWS always writes flags as 0/1; ib_async reads some with int()
            elif value is None and len(item) > 2:
                value = item[2]
            out.append(value)


def encode_fields(name: str, values: Mapping[str, Any], version: int) -> list[str]:
    """The text fields of reply ``name`` (message id and version first)."""
    reply = REPLIES[name]
    out: list = [reply.msg_id]
    if reply.version is not None:
        out.append(reply.version)
    _write(reply.layout, values, version, out)
    return [encode_field(v) for v in out]


def encode_reply(name: str, values: Mapping[str, Any], version: int) -> bytes:
    """One framed reply, ready for the socket."""
    text = "\0".join(encode_fields(name, values, version)) + "\0"
    return frame(text.encode("utf-8", errors="replace"))
