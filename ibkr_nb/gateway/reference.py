"""Reference-data requests of the paper gateway: option chains and option calculations,
scanners, news, fundamentals, market rules and the small account-setup queries.

:class:`ReferenceRequests` is mixed into ``PaperGateway`` (it uses its market, clock,
``account_id``, ``_instrument`` and ``_today``). Every request is answered: with data, or with
the error TWS gives for it and the request's id.
"""

from __future__ import annotations

from .instruments import (
    LISTED,
    MARKET_RULES,
    OPTIONABLE,
    UNIVERSE,
    Instrument,
    instrument_by_con_id,
    listed_expiries,
    listed_strikes,
    option_class,
)
from .market import DIVIDEND_YIELD, years_to_expiry
from .pricing import RATE, black_scholes, implied_vol
from .replies import contract_values, parse_end_datetime
from .research import FUNDAMENTAL_REPORTS, NEWS_PROVIDERS, article, fundamental_report, headlines
from .scanner import ScanError, scan, scanner_parameters_xml
from .streams import OPTION_FIELDS

OPTION_EXCHANGES = ("SMART", "CBOE")
SMART_COMPONENTS = (
    (1, "ARCA", "P"),
    (2, "NASDAQ", "Q"),
    (3, "NYSE", "N"),
    (4, "BATS", "Z"),
    (5, "IEX", "V"),
    (6, "EDGX", "K"),
)


class ReferenceRequests:
    """Request handlers for reference data (see the module docstring)."""

    # -- options -------------------------------------------------------------------------

    def _on_reqSecDefOptParams(self, client, v) -> None:
        """One row per exchange and trading class; nothing but the end for futures options
        or an underlying without listed options."""
        req_id = v["reqId"]
        under = instrument_by_con_id(v["underlyingConId"]) if v["underlyingConId"] else None
        under = under or LISTED.get((v["underlyingSymbol"] or "").upper())
        if under is not None and under.symbol in OPTIONABLE and not v["futFopExchange"]:
            expiries = listed_expiries(self._today())
            strikes = [{"value": k} for k in listed_strikes(under.symbol)]
            classes: dict[str, list[dict]] = {}
            for day in expiries:
                classes.setdefault(option_class(under.symbol, day), []).append(
                    {"value": day.strftime("%Y%m%d")}
                )
            for exchange in OPTION_EXCHANGES:
                for trading_class, days in classes.items():
                    client.send(
                        "securityDefinitionOptionParameter",
                        reqId=req_id,
                        exchange=exchange,
                        underlyingConId=under.con_id,
                        tradingClass=trading_class,
                        multiplier="100",
                        expirations=days,
                        strikes=strikes,
                    )
        client.send("securityDefinitionOptionParameterEnd", reqId=req_id)

    def _option_request(self, client, v) -> Instrument | None:
        found = self._instrument(client, v["reqId"], v)
        if found is not None and found.sec_type != "OPT":
            client.error(
                v["reqId"],
                321,
                "Error validating request.-'bO' : cause - option calculations need an option "
                f"contract, got {found.sec_type} {found.tws_symbol}",
            )
            return None
        return found

    def _send_computation(self, client, req_id, inst, spot, vol) -> None:
        ts = self.clock.timestamp()
        q = DIVIDEND_YIELD.get(inst.underlying, 0.0)
        g = black_scholes(
            inst.right, spot, inst.strike, years_to_expiry(inst.expiry, ts), vol, RATE, q
        )
        values = (vol, g.delta, g.price, g.pv_dividend, g.gamma, g.vega, g.theta, spot)
        client.send(
            "tickOptionComputation",
            reqId=req_id,
            tickType=13,
            tickAttrib=1,
            **dict(zip(OPTION_FIELDS, values, strict=True)),
        )

    def _spot(self, inst: Instrument, given: float | None) -> float:
        if given and given > 0:
            return given
        quote = self.market.quote(inst.underlying)
        return (quote.bid + quote.ask) / 2.0

    def _on_calculateImpliedVolatility(self, client, v) -> None:
        inst = self._option_request(client, v)
        if inst is None:
            return
        spot = self._spot(inst, v["underPrice"])
        years = years_to_expiry(inst.expiry, self.clock.timestamp())
        q = DIVIDEND_YIELD.get(inst.underlying, 0.0)
        vol = implied_vol(inst.right, v["optionPrice"] or 0.0, spot, inst.strike, years, RATE, q)
        if vol != vol:  # NaN: the price is outside the no-arbitrage bounds
            client.error(
                v["reqId"],
                321,
                f"Error validating request.-'bO' : cause - no volatility gives the option price "
                f"{v['optionPrice']} with the underlying at {spot}",
            )
            return
        self._send_computation(client, v["reqId"], inst, spot, vol)

    def _on_calculateOptionPrice(self, client, v) -> None:
        inst = self._option_request(client, v)
        if inst is None:
            return
        if not v["volatility"] or v["volatility"] <= 0:
            client.error(
                v["reqId"], 321, "Error validating request.-'bO' : cause - volatility must be > 0"
            )
            return
        self._send_computation(
            client, v["reqId"], inst, self._spot(inst, v["underPrice"]), v["volatility"]
        )

    def _on_cancelCalculateImpliedVolatility(self, client, v) -> None:
        """Calculations are answered at once; nothing to cancel."""

    def _on_cancelCalculateOptionPrice(self, client, v) -> None:
        """Calculations are answered at once; nothing to cancel."""

    # -- scanners --------------------------------------------------------------------------

    def _on_reqScannerParameters(self, client, v) -> None:
        client.send("scannerParameters", xml=scanner_parameters_xml())

    def _on_reqScannerSubscription(self, client, v) -> None:
        req_id = v["reqId"]
        quotes = [self.market.quote(symbol) for symbol in UNIVERSE]
        exchanges = {s: i.primary_exchange for s, i in UNIVERSE.items()}
        try:
            picked = scan(quotes, exchanges, v)
        except ScanError as exc:
            client.error(req_id, 162, f"Historical Market Data Service error message:{exc}")
            return
        rows = []
        for rank, quote in enumerate(picked):
            contract = contract_values(UNIVERSE[quote.symbol])
            rows.append(
                {
                    **contract,
                    "rank": rank,
                    "marketName": contract["tradingClass"],
                    "distance": "",
                    "benchmark": "",
                    "projection": "",
                    "legsStr": "",
                }
            )
        client.send("scannerData", reqId=req_id, rows=rows)

    def _on_cancelScannerSubscription(self, client, v) -> None:
        """Scans are answered once; nothing stays subscribed."""

    # -- research --------------------------------------------------------------------------

    def _on_reqFundamentalData(self, client, v) -> None:
        req_id = v["reqId"]
        found = self._instrument(client, req_id, v)
        if found is None:
            return
        if found.sec_type != "STK" or v["reportType"] not in FUNDAMENTAL_REPORTS:
            client.error(
                req_id,
                430,
                "We are sorry, but fundamentals data for the security specified is not "
                f"available. (report {v['reportType']!r}; the paper gateway has "
                f"{', '.join(FUNDAMENTAL_REPORTS)} for stocks)",
            )
            return
        text = fundamental_report(found, v["reportType"], self.market.last_price(found.symbol))
        client.send("fundamentalData", reqId=req_id, data=text)

    def _on_cancelFundamentalData(self, client, v) -> None:
        """Reports are sent at once; nothing to cancel."""

    def _on_reqNewsProviders(self, client, v) -> None:
        client.send(
            "newsProviders",
            providers=[{"code": c, "name": n} for c, n in NEWS_PROVIDERS.items()],
        )

    def _on_reqHistoricalNews(self, client, v) -> None:
        req_id = v["reqId"]
        found = instrument_by_con_id(v["conId"])
        if found is None:
            client.error(req_id, 200, "No security definition has been found for the request")
            return
        now = self.clock.now()
        try:
            end = min(parse_end_datetime(v["endDateTime"] or "", now), now)
            start = parse_end_datetime(v["startDateTime"], now) if v["startDateTime"] else None
        except ValueError as exc:
            client.error(req_id, 321, f"Error validating request: {exc}")
            return
        providers = [p for p in (v["providerCodes"] or "").split("+") if p]
        for row in headlines(found, providers, end, start, v["totalResults"] or 10):
            client.send("historicalNews", reqId=req_id, **row)
        client.send("historicalNewsEnd", reqId=req_id, hasMore=False)

    def _on_reqNewsArticle(self, client, v) -> None:
        text = article(v["providerCode"], v["articleId"], instrument_by_con_id)
        if text is None:
            client.error(
                v["reqId"],
                10172,
                f"Failed to request news article: no article {v['articleId']!r} "
                f"from {v['providerCode']!r}",
            )
            return
        client.send("newsArticle", reqId=v["reqId"], articleType=0, articleText=text)

    def _on_reqNewsBulletins(self, client, v) -> None:
        """The paper gateway has no exchange bulletins to send."""

    def _on_cancelNewsBulletins(self, client, v) -> None:
        """Nothing is subscribed."""

    # -- rules and account setup ---------------------------------------------------------

    def _on_reqMarketRule(self, client, v) -> None:
        rule = MARKET_RULES.get(v["marketRuleId"])
        if rule is None:
            client.error(
                -1,
                321,
                f"Error validating request: unknown market rule {v['marketRuleId']}; "
                f"known: {', '.join(map(str, MARKET_RULES))}",
            )
            return
        increments = [{"lowEdge": low, "increment": step} for low, step in rule]
        client.send("marketRule", marketRuleId=v["marketRuleId"], increments=increments)

    def _on_reqSmartComponents(self, client, v) -> None:
        keys = ("bitNumber", "exchange", "exchangeLetter")
        components = [dict(zip(keys, row, strict=True)) for row in SMART_COMPONENTS]
        client.send("smartComponents", reqId=v["reqId"], components=components)

    def _on_reqSoftDollarTiers(self, client, v) -> None:
        client.send("softDollarTiers", reqId=v["reqId"], tiers=[])

    def _on_reqFamilyCodes(self, client, v) -> None:
        client.send("familyCodes", codes=[{"accountID": self.account_id, "familyCodeStr": ""}])

    def _on_reqUserInfo(self, client, v) -> None:
        client.send("userInfo", reqId=v["reqId"], whiteBrandingId="")
