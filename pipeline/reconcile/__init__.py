"""Carrier invoices: files of billed lines read into the event log (docs/reconciliation.md)."""
