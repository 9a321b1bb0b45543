"""The demo's finance inputs: a month of exchange rates and one carrier invoice.

They go in through the functions ``smsrecon fx import`` and ``smsrecon reconcile
import-invoice`` / ``close-invoice`` call, so the demo's database holds what a finance team's
would after those commands: margins in the reporting currency, and an invoice whose lines
open disputes with money at stake. Both files in ``data/`` are made-up demo data: the rates
are fixed, plausible values (source ``demo-fixed``), not any bank's.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from pipeline.config import Settings
from pipeline.db.engine import Database
from pipeline.fx.importer import RatesImported, append_rates
from pipeline.fx.ratefile import parse_rate_file
from pipeline.prices.record import record_prices
from pipeline.reconcile.importer import InvoiceSummary, close_invoice, import_invoice, plan_import

DATA = Path(__file__).resolve().parent / "data"
RATES_FILE = DATA / "fx_rates.csv"

#: The carrier invoice for January, as `reconcile import-invoice FILE --carrier mts
#: --period 2026-01-01..2026-02-01 --total 8.80` would read it. Its lines are built to
#: disagree: 3e8f2b1c billed as the rate card says (matched), 3e8f2b1d billed above the rate
#: card (cost_mismatch) and again the next day (duplicate_charge), the stated total 0.35
#: above the lines (invoice_total_mismatch), and once closed, 3e8f2b1e never billed
#: (missing_invoice_line).
INVOICE_FILE = DATA / "mts-invoice-2026-01.csv"
INVOICE_CARRIER = "mts"
INVOICE_ID = "MTS-2026-01"
INVOICE_PERIOD = (datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 2, 1, tzinfo=UTC))
INVOICE_TOTAL = Decimal("8.80")


@dataclass(frozen=True, slots=True)
class FinanceLoaded:
    rates: RatesImported
    #: None when this database holds the file already (the demo run again on one --url).
    invoice: InvoiceSummary | None
    version: int
    closed: bool


def load_finance(database: Database, settings: Settings) -> FinanceLoaded:
    """Import the demo's rates, then its invoice, then close the invoice (each as its
    command does, price tables recorded first)."""
    record_prices(database, settings)
    rates = parse_rate_file(RATES_FILE.read_text(encoding="utf-8"))
    with database.write() as conn:
        imported = append_rates(conn, rates)
    plan = plan_import(
        database,
        settings,
        INVOICE_FILE,
        carrier=INVOICE_CARRIER,
        fmt="csv",
        invoice_id=INVOICE_ID,
        period=INVOICE_PERIOD,
        total=INVOICE_TOTAL,
    )
    summary = None if plan.already is not None else import_invoice(database, settings, plan)
    closed = close_invoice(database, INVOICE_ID)
    return FinanceLoaded(imported, summary, plan.version, closed)
