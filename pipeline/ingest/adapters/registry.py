"""Which adapter parses which format: one explicit map from format name to parser.

A new carrier format is a module with ``parse(request, carrier) -> Parsed`` and one line
here. All adapters are imported with this module (they are small and pure), so a report
pays one dict look-up, and a misspelt module fails at import, not at the first report.
"""

from __future__ import annotations

from collections.abc import Callable

from pipeline.ingest.adapters import generic, infobip, jasmin, kannel, smpp, twilio, vonage
from pipeline.ingest.adapters.base import CarrierContext, Parsed, RawRequest

Parser = Callable[[RawRequest, CarrierContext], Parsed]

#: Format name (``carriers.<name>.format``) -> its parser.
ADAPTERS: dict[str, Parser] = {
    "kannel": kannel.parse,
    "jasmin": jasmin.parse,
    "smpp": smpp.parse,
    "infobip": infobip.parse,
    "vonage": vonage.parse,
    "twilio": twilio.parse,
    "generic": generic.parse,
}

FORMATS: tuple[str, ...] = tuple(ADAPTERS)


def parse_report(fmt: str, request: RawRequest, carrier: CarrierContext) -> Parsed:
    """Parse ``request`` with the adapter for ``fmt`` (one of FORMATS).

    Raises ParseError for a report that cannot be understood, and ValueError for an unknown
    format (a configuration problem, not bad input).
    """
    parser = ADAPTERS.get(fmt)
    if parser is None:
        raise ValueError(f"unknown carrier format {fmt!r} (one of {', '.join(FORMATS)})")
    return parser(request, carrier)
