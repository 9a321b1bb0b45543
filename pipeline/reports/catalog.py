"""Every report by name, and the ones a period close pins."""

from __future__ import annotations

from pipeline.reports.daily import BILLING, CARRIER_COSTS, DELIVERY, MARGIN
from pipeline.reports.invoices import INVOICES
from pipeline.reports.itemised import MESSAGES, MISMATCHES
from pipeline.reports.model import Report

REPORTS: dict[str, Report] = {
    r.name: r for r in (BILLING, DELIVERY, CARRIER_COSTS, MARGIN, MISMATCHES, INVOICES, MESSAGES)
}
#: What ``period close`` saves: all of them (the messages run is what corrections compare).
STANDARD = tuple(REPORTS)
