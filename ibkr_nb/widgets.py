"""ipywidgets for notebooks: order ticket, decision review, connection badge, tax picker.

Every widget is a thin face on a plain function that scripts and nbval call without clicks:

- ``OrderTicket``   -> ``preview_ticket`` (what-if and every gate's verdict) and
  ``submit_ticket`` (``Session.place_order`` with the preview's ``order_ref``).
- ``DecisionReview`` -> ``review_plan`` (approved rows stay planned) and ``place_approved``
  (``Session.execute``: the same gates and idempotency as any plan).
- ``ConnectionBadge`` -> ``connection_status``.
- ``TaxPicker``      -> ``tax_report`` (a year and a lot-matching method).

Handlers run on the thread that made the widget, where the session lives (JupyterLab sends
clicks to a kernel subshell thread; ``kernel.MainThread``), and importing this module lets a
kernel take widget messages and queued cells while a session waits for IBKR
(``kernel.allow_nested_messages``). Handlers never print: what a click produces is shown as tables inside the widget (and kept on
it, e.g. ``ticket.result``), so it cannot land under another cell (ipykernel 7).
"""

from __future__ import annotations

import dataclasses
import html
import json
from dataclasses import dataclass

import ipywidgets as W
import pandas as pd
import plotly.io as pio
from IPython.display import display

from ibkr_nb.display import exchange_time, mask_account, money, table
from ibkr_nb.errors import OrderRejected, SessionError
from ibkr_nb.execution import check_manual_order
from ibkr_nb.gates import session_denial
from ibkr_nb.kernel import MainThread, allow_nested_messages
from ibkr_nb.ledger import Ledger
from ibkr_nb.plots import fig_realized_by_month, fig_wash_sale_effect
from ibkr_nb.tax import METHODS, LotResult, form_8949, match_lots, schedule_d_totals

allow_nested_messages()

SIDES = ("BUY", "SELL")
TICKET_ORDER_TYPES = ("LMT", "MKT", "STP", "STP LMT")
TIFS = ("DAY", "GTC", "IOC")
GATE_COLUMNS = ["gate", "verdict", "detail"]
PICKER_METHODS = tuple(m for m in METHODS if m != "specific")  # needs a lot selection
NOT_CHECKED = "not checked: an earlier gate refused the order"


def _html(*tables) -> str:
    return "".join(t._repr_html_() for t in tables)


def _message(text: str, ok: bool) -> str:
    color = "#2ca02c" if ok else "#d62728"
    return f'<p style="color:{color};font-weight:bold">{html.escape(mask_account(text))}</p>'


# -- order ticket --------------------------------------------------------------------------


@dataclass(frozen=True)
class TicketPreview:
    """A previewed ticket: the order as it would be sent, the what-if, every gate's verdict.

    ``quantity`` signed (+ buy, - sell); ``summary`` one row: ``notional`` and ``commission``
    (account currency), ``pct_nav`` (fraction of NetLiquidation), margin changes; ``gates``:
    ``gate``, ``verdict`` (pass / deny / not checked), ``detail``.
    """

    symbol: str
    quantity: float
    order_type: str
    limit_price: float | None
    stop_price: float | None
    tif: str
    order_ref: str
    summary: pd.DataFrame
    gates: pd.DataFrame

    @property
    def passed(self) -> bool:
        return bool((self.gates["verdict"] == "pass").all())

    def _repr_html_(self) -> str:
        return _html(table(self.summary, percent=["pct_nav"]), table(self.gates)) + _message(
            "Preview passed: Submit sends this order."
            if self.passed
            else "Preview refused: nothing can be sent; see the gates above.",
            self.passed,
        )

    def __repr__(self) -> str:
        verdict = "passed" if self.passed else "refused"
        return f"{table(self.summary, percent=['pct_nav'])!r}\n{table(self.gates)!r}\npreview {verdict}"


def _prices(order_type: str, limit_price, stop_price) -> tuple[float | None, float | None]:
    """The prices an order type uses (others are dropped)."""
    limit = limit_price if order_type in ("LMT", "STP LMT") else None
    stop = stop_price if order_type in ("STP", "STP LMT") else None
    return limit, stop


def preview_ticket(
    session,
    symbol: str,
    side: str,
    quantity: float,
    order_type: str = "LMT",
    limit_price: float | None = None,
    stop_price: float | None = None,
    tif: str = "DAY",
    order_ref: str | None = None,
) -> TicketPreview:
    """What the ticket would send and whether every gate lets it through; nothing is sent.

    ``quantity`` is a number of shares (> 0); ``side`` BUY or SELL gives its sign. Gates, in
    order: session (kill switch, read-only, port and account, live keys), order values,
    risk limits (``risk.check_orders``), IBKR's what-if (commission and margin must come back)
    and idempotency (``order_ref`` not sent before).
    """
    side = str(side).upper()
    order_type = str(order_type).upper()
    limit, stop = _prices(order_type, limit_price, stop_price)
    signed = float(quantity) * (-1.0 if side == "SELL" else 1.0)
    gates: list[tuple[str, str, str]] = []
    denial = session_denial(session.trading_context(), "order")
    gates.append(
        ("session", "deny", denial[1])
        if denial
        else ("session", "pass", "paper account on a paper port; no kill switch; not read-only")
    )
    summary = {
        "symbol": str(symbol).strip().upper(),
        "quantity": signed,
        "order_type": order_type,
        "limit_price": float("nan") if limit is None else float(limit),
        "stop_price": float("nan") if stop is None else float(stop),
        "notional": float("nan"),
        "pct_nav": float("nan"),
        "commission": float("nan"),
        "init_margin_change": float("nan"),
        "maint_margin_change": float("nan"),
    }
    spec = None
    try:
        if side not in SIDES:
            raise OrderRejected("SIDE", f"SIDE: {side!r} is not BUY or SELL")
        spec = session.order_spec(
            symbol, signed, limit, order_type=order_type, stop_price=stop, tif=tif,
            order_ref=order_ref,
        )  # fmt: skip
        contract = session.contract(spec.symbol)
        gates.append(("order values", "pass", f"{abs(signed):,.0f} shares of {contract.symbol}"))
    except (OrderRejected, SessionError) as exc:
        spec = None
        gates.append(("order values", "deny", str(exc)))
    if spec is None:
        gates += [
            (g, "not checked", NOT_CHECKED) for g in ("risk limits", "what-if", "idempotency")
        ]
        ref = order_ref or ""
    else:
        ref = spec.order_ref
        gates += _order_gates(session, spec, contract, summary)
    return TicketPreview(
        symbol=summary["symbol"],
        quantity=signed,
        order_type=order_type,
        limit_price=limit,
        stop_price=stop,
        tif=tif,
        order_ref=ref,
        summary=pd.DataFrame([summary]),
        gates=pd.DataFrame(gates, columns=GATE_COLUMNS),
    )


def _order_gates(session, spec, contract, summary: dict) -> list[tuple[str, str, str]]:
    """Risk limits, what-if and idempotency for a valid order; fills ``summary`` in."""
    gates = []
    check = check_manual_order(session, spec, contract)
    summary["notional"], summary["pct_nav"] = float(check["notional"]), float(check["pct_nav"])
    gates.append(
        ("risk limits", "deny", check["reason"])
        if check["rule"]
        else (
            "risk limits",
            "pass",
            f"notional {money(check['notional'])} = {check['pct_nav']:.2%} of NAV, within "
            "every limit",
        )
    )
    try:
        what_if = session.preview_order(
            contract, spec.quantity, spec.limit_price, order_type=spec.order_type,
            stop_price=spec.stop_price, tif=spec.tif, order_ref=spec.order_ref,
        ).iloc[0]  # fmt: skip
        for key in ("commission", "init_margin_change", "maint_margin_change"):
            summary[key] = float(what_if[key])
        gates.append(
            (
                "what-if",
                "pass",
                f"commission {money(what_if['commission'])}, initial margin change "
                f"{money(what_if['init_margin_change'])}",
            )
        )
    except OrderRejected as exc:
        gates.append(("what-if", "deny", str(exc)))
    known = session.ledger.known_refs([spec.order_ref])
    gates.append(
        ("idempotency", "deny", f"order_ref {spec.order_ref} was sent before; not sent again")
        if len(known)
        else ("idempotency", "pass", f"order_ref {spec.order_ref} not sent before")
    )
    return gates


def submit_ticket(session, preview: TicketPreview, *, wait: float = 5.0) -> pd.DataFrame:
    """Send a previewed ticket through ``Session.place_order`` (every gate again, and the
    preview's ``order_ref`` as the idempotency key); refuses a preview that did not pass."""
    if not preview.passed:
        raise OrderRejected(
            "PREVIEW",
            "PREVIEW: the last preview did not pass, so nothing is sent. Fix the ticket and "
            "preview it again.",
        )
    return session.place_order(
        preview.symbol,
        preview.quantity,
        preview.limit_price,
        order_type=preview.order_type,
        stop_price=preview.stop_price,
        tif=preview.tif,
        order_ref=preview.order_ref,
        wait=wait,
    )


class OrderTicket(W.VBox):
    """Symbol, side, quantity, type, prices and TIF; Preview shows the what-if and every
    gate's verdict; Submit is enabled only after a passing preview and disabled again as
    soon as a field changes (or once the order is sent)."""

    def __init__(
        self,
        session,
        symbol: str = "AAPL",
        side: str = "BUY",
        quantity: int = 10,
        order_type: str = "LMT",
        limit_price: float = 0.0,
        stop_price: float = 0.0,
        tif: str = "DAY",
    ):
        self.session = session
        self.symbol = W.Text(value=symbol, description="Symbol")
        self.side = W.ToggleButtons(options=SIDES, value=side.upper(), description="Side")
        self.quantity = W.IntText(value=quantity, description="Quantity")
        self.order_type = W.Dropdown(
            options=TICKET_ORDER_TYPES, value=order_type, description="Type"
        )
        self.limit_price = W.FloatText(value=limit_price, description="Limit")
        self.stop_price = W.FloatText(value=stop_price, description="Stop")
        self.tif = W.Dropdown(options=TIFS, value=tif, description="TIF")
        self.preview_button = W.Button(description="Preview", button_style="info")
        self.submit_button = W.Button(description="Submit", button_style="danger", disabled=True)
        self.output = W.HTML(value="<p>Fill in the ticket, then Preview.</p>")
        self.preview: TicketPreview | None = None
        self.result: pd.DataFrame | None = None
        fields = [self.symbol, self.side, self.quantity, self.order_type, self.limit_price,
                  self.stop_price, self.tif]  # fmt: skip
        main = MainThread()
        for field in fields:
            field.observe(main.wrap(self._changed), names="value")
        self.preview_button.on_click(main.wrap(self._on_preview))
        self.submit_button.on_click(main.wrap(self._on_submit))
        for widget, name in ((self.preview_button, "preview"), (self.submit_button, "submit")):
            widget.add_class(f"ibkr-nb-{name}")
        super().__init__(
            children=[*fields, W.HBox([self.preview_button, self.submit_button]), self.output]
        )
        self.add_class("ibkr-nb-ticket")

    def __repr__(self) -> str:
        state = "ready to submit" if not self.submit_button.disabled else "preview needed"
        return (
            f"<OrderTicket {self.side.value} {self.quantity.value} {self.symbol.value} "
            f"{self.order_type.value}: {state}>"
        )

    def _changed(self, change=None) -> None:
        self.preview = None
        self.submit_button.disabled = True
        self.output.value = "<p>The ticket changed: Preview it again.</p>"

    def _on_preview(self, button=None) -> None:
        self.preview = preview_ticket(
            self.session, self.symbol.value, self.side.value, self.quantity.value,
            self.order_type.value, self.limit_price.value, self.stop_price.value, self.tif.value,
        )  # fmt: skip
        self.submit_button.disabled = not self.preview.passed
        self.output.value = self.preview._repr_html_()

    def _on_submit(self, button=None) -> None:
        if self.preview is None:
            return
        self.submit_button.disabled = True  # once: a second click must not send again
        try:
            self.result = submit_ticket(self.session, self.preview)
        except (OrderRejected, SessionError) as exc:
            self.output.value = _message(str(exc), False)
            return
        shown = ["order_ref", "symbol", "action", "quantity", "order_type", "limit_price",
                 "status", "filled", "avg_fill_price"]  # fmt: skip
        self.output.value = _html(table(self.result[shown])) + _message(
            f"Sent as order_ref {self.preview.order_ref}.", True
        )


# -- decision review -------------------------------------------------------------------------


def review_plan(plan: pd.DataFrame, approved) -> pd.DataFrame:
    """The plan with every planned row whose ``order_ref`` is not in ``approved`` turned into
    a ``rejected`` row (reason ``REVIEW``); other rows unchanged. Pure."""
    approved = set(approved)
    out = plan.copy()
    refused = (out["status"] == "planned") & ~out["order_ref"].isin(approved)
    out.loc[refused, "status"] = "rejected"
    out.loc[refused, "reason"] = "REVIEW: not approved in the review"
    return out


def place_approved(session, plan: pd.DataFrame, approved, *, dry_run: bool = False, **kwargs):
    """``Session.execute`` of the reviewed plan: only approved rows can be sent, through the
    same gates and idempotency as any plan (an order_ref sent before is a ``duplicate``)."""
    return session.execute(review_plan(plan, approved), dry_run=dry_run, **kwargs)


def _plan_label(row) -> str:
    price = f" limit {money(row.limit_price)}" if pd.notna(row.limit_price) else ""
    legs = f", stop {money(row.stop_loss)}" if pd.notna(row.stop_loss) else ""
    return (
        f"{row.action} {abs(row.quantity):,.0f} {row.symbol}{price}{legs} "
        f"({money(row.notional)}, {row.pct_nav:.2%} of NAV, confidence {row.confidence:g})"
    )


class DecisionReview(W.VBox):
    """One approve / reject toggle per planned row, then "Place approved"."""

    def __init__(self, session, plan: pd.DataFrame, *, dry_run: bool = False):
        self.session = session
        self.plan = plan
        self.dry_run = dry_run
        planned = plan[plan["status"] == "planned"]
        self.choices: dict[str, W.ToggleButtons] = {}
        rows = []
        for row in planned.itertuples(index=False):
            toggle = W.ToggleButtons(options=("approve", "reject"), value=None)
            toggle.add_class("ibkr-nb-choice")
            self.choices[row.order_ref] = toggle
            rows.append(W.HBox([toggle, W.HTML(html.escape(_plan_label(row)))]))
        self.place_button = W.Button(description="Place approved", button_style="danger")
        self.place_button.on_click(MainThread().wrap(self._on_place))
        self.output = W.HTML(value=_html(table(plan[plan["status"] != "planned"][
            ["decision_id", "symbol", "status", "reason"]], caption="not planned")))  # fmt: skip
        self.result: pd.DataFrame | None = None
        super().__init__(children=[*rows, self.place_button, self.output])

    def __repr__(self) -> str:
        return f"<DecisionReview {len(self.choices)} planned orders, {len(self.approved)} approved>"

    @property
    def approved(self) -> list[str]:
        return [ref for ref, toggle in self.choices.items() if toggle.value == "approve"]

    def _on_place(self, button=None) -> None:
        self.place_button.disabled = True
        try:
            self.result = place_approved(
                self.session, self.plan, self.approved, dry_run=self.dry_run
            )
        except SessionError as exc:
            self.output.value = _message(str(exc), False)
        else:
            self.output.value = _html(table(self.result))
        finally:
            self.place_button.disabled = False


# -- connection badge ------------------------------------------------------------------------


def connection_status(session) -> pd.DataFrame:
    """One row: ``connected``, ``account``, ``kind`` (paper / LIVE), ``server_time`` (the
    gateway's clock in the exchange time zone; NaT when disconnected)."""
    connected = bool(session.connected)
    server = exchange_time(session.request("reqCurrentTime")) if connected else None
    return pd.DataFrame(
        [{
            "connected": connected,
            "account": session.account,
            "kind": "paper" if session.is_paper else "LIVE",
            "server_time": server if server is not None else pd.NaT,
        }]
    )  # fmt: skip


class ConnectionBadge(W.HBox):
    """A dot and a line: connected or not, account (masked), paper / LIVE, server time."""

    def __init__(self, session):
        self.session = session
        self.label = W.HTML()
        self.refresh_button = W.Button(description="Refresh", layout=W.Layout(width="auto"))
        self.refresh_button.on_click(MainThread().wrap(self.refresh))
        super().__init__(children=[self.label, self.refresh_button])
        self.refresh()

    def text(self) -> str:
        row = connection_status(self.session).iloc[0]
        if not row["connected"]:
            return "disconnected"
        when = row["server_time"].strftime("%Y-%m-%d %H:%M:%S %Z")
        return f"connected · {mask_account(row['account'])} · {row['kind']} · server time {when}"

    def refresh(self, button=None) -> None:
        text = self.text()
        color = "#2ca02c" if text.startswith("connected") else "#d62728"
        live = "LIVE" in text
        self.label.value = (
            f'<span style="color:{color}">&#9679;</span> '
            f'<span style="font-weight:{"bold" if live else "normal"}">{html.escape(text)}</span>'
        )

    def __repr__(self) -> str:
        return f"<ConnectionBadge {self.text()}>"


# -- tax year and method ---------------------------------------------------------------------


@dataclass(frozen=True)
class TaxReport:
    """Tables and charts for one tax year and lot-matching method (money in USD)."""

    year: int
    method: str
    by_term: pd.DataFrame
    wash_sales: pd.DataFrame
    form_8949: pd.DataFrame
    schedule_d: pd.DataFrame
    open_lots: pd.DataFrame
    result: LotResult

    def figures(self) -> list:
        return [fig_realized_by_month(self.result), fig_wash_sale_effect(self.result)]


def lot_result(source, method: str = "fifo") -> LotResult:
    """Lots by ``method`` from a ``Ledger`` (its fills) or a trades frame (``load_trades``)."""
    if isinstance(source, Ledger):
        return source.lots(method)
    return match_lots(source, method=method)


def tax_years(source) -> list[int]:
    """Years with a sale in ``source`` (a Ledger or a trades frame), latest first."""
    sold = pd.to_datetime(lot_result(source).realized["date_sold"])
    return sorted(sold.dt.year.unique().tolist(), reverse=True)


def tax_report(source, year: int, method: str = "fifo") -> TaxReport:
    """Realized gains by term, wash sales, Form 8949 and Schedule D of ``year`` by ``method``
    (one of ``ibkr_nb.tax.METHODS``), and the lots still open."""
    result = lot_result(source, method)
    realized = result.realized
    in_year = realized[pd.to_datetime(realized["date_sold"]).dt.year == year]
    year_result = dataclasses.replace(result, realized=in_year.reset_index(drop=True))
    by_term = (
        in_year.groupby("term", as_index=False)[
            ["proceeds", "cost_basis", "adjustment_amount", "gain_loss"]
        ]
        .sum()
        .round(2)
    )
    wash = in_year[in_year["adjustment_code"] == "W"][
        ["symbol", "quantity", "date_acquired", "date_sold", "adjustment_amount", "gain_loss"]
    ].reset_index(drop=True)
    form = form_8949(result, year)
    return TaxReport(
        year=year,
        method=method,
        by_term=by_term,
        wash_sales=wash,
        form_8949=form,
        schedule_d=schedule_d_totals(form),
        open_lots=result.open_lots[
            ["account", "symbol", "quantity", "date_acquired", "cost_basis"]
        ].reset_index(drop=True),
        result=year_result,
    )


class TaxPicker(W.VBox):
    """A tax year and a method; changing either redraws the tables and charts below."""

    def __init__(self, source, year: int | None = None, method: str = "fifo"):
        self.source = source
        years = tax_years(source)
        self.year = W.Dropdown(options=years, value=year or years[0], description="Tax year")
        self.method = W.Dropdown(options=PICKER_METHODS, value=method, description="Method")
        self.tables = W.HTML()
        self.charts = W.Output()
        self.report: TaxReport | None = None
        main = MainThread()
        self.year.observe(main.wrap(self.redraw), names="value")
        self.method.observe(main.wrap(self.redraw), names="value")
        super().__init__(children=[W.HBox([self.year, self.method]), self.tables, self.charts])
        self.redraw()

    def redraw(self, change=None) -> None:
        self.report = tax_report(self.source, self.year.value, self.method.value)
        r = self.report
        self.tables.value = _html(
            table(r.by_term, caption=f"{r.year} realized by term ({r.method})"),
            table(r.schedule_d, caption="Schedule D"),
            table(r.wash_sales, caption="Wash sales"),
        )
        self.charts.outputs = tuple(_figure_output(fig) for fig in r.figures())

    def __repr__(self) -> str:
        return f"<TaxPicker {self.year.value} {self.method.value}>"


def _figure_output(fig) -> dict:
    """A plotly figure as an Output widget's display_data (the plotly mimetype)."""
    return {
        "output_type": "display_data",
        "data": {"application/vnd.plotly.v1+json": json.loads(pio.to_json(fig))},
        "metadata": {},
    }


def show(*items) -> None:
    """Display frames as notebook tables (``display.table``) and anything else as is."""
    for item in items:
        display(table(item) if isinstance(item, pd.DataFrame) else item)
