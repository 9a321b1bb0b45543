"""Carrier ingestion: delivery reports from gateways become ``carrier.status`` events.

``adapters`` holds one pure parser per gateway format (no I/O, no clock: the receive time
comes in with the carrier context), ``captured`` reads the "captured request" text files
used for imports and samples. The HTTP server, authentication and quarantine sit on top of
``adapters.parse_report``.
"""
