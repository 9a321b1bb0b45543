"""Captured HTTP requests in a text file, as the DLR samples are written, back to RawRequests.

The layout, one or more requests per file::

    # a comment line (anywhere between requests)
    POST /v1/dlr/jasmin HTTP/1.1
    Content-Type: application/x-www-form-urlencoded

    id=16fd2706-...&level=2&message_status=DELIVRD

A request line ``METHOD /path?query HTTP/1.x``, optional ``Name: value`` header lines, then,
for a request with a body, a blank line and the body up to the next request line or comment.
This lets an operator replay what a gateway sent (from a proxy log or a sample) through the
very adapter the live server uses. A plain JSON or CSV file is not a captured file;
``looks_captured`` tells the two apart without raising.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, unquote, urlsplit

from pipeline.ingest.adapters.base import ParseError, RawRequest

_REQUEST_LINE = re.compile(
    r"^(GET|POST|PUT|PATCH|DELETE|HEAD|OPTIONS)\s+(\S+)\s+HTTP/\d(?:\.\d)?\s*$"
)
_HEADER = re.compile(r"^([A-Za-z0-9!#$%&'*+.^_`|~-]+):\s*(.*?)\s*$")


def looks_captured(text: str) -> bool:
    """Whether the first line that is neither blank nor a comment is a request line."""
    for line in text.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            return bool(_REQUEST_LINE.match(stripped))
    return False


def read_captured_requests(text: str) -> list[RawRequest]:
    """Every request in a captured-requests text; ParseError("line N", reason) otherwise."""
    requests: list[RawRequest] = []
    current: _Draft | None = None
    state = "idle"  # idle -> headers -> body
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        request_line = _REQUEST_LINE.match(stripped)
        if request_line:
            if current is not None:
                requests.append(current.build())
            current = _Draft(number, request_line.group(1), request_line.group(2))
            state = "headers"
            continue
        if stripped.startswith("#") and (state != "body" or not current or not current.body):
            continue
        if state == "idle":
            if stripped:
                raise ParseError(
                    f"line {number}", "not a captured request (expected 'METHOD /path HTTP/1.1')"
                )
            continue
        assert current is not None
        if state == "headers":
            if not stripped:
                state = "body"
                continue
            header = _HEADER.match(stripped)
            if header is None:
                raise ParseError(f"line {number}", "not a header line ('Name: value')")
            current.headers[header.group(1).lower()] = header.group(2)
            continue
        if stripped.startswith("#"):
            # A comment after a body ends it; the next request line starts the next request.
            requests.append(current.build())
            current, state = None, "idle"
            continue
        current.body.append(line)
    if current is not None:
        requests.append(current.build())
    if not requests:
        raise ParseError("line 1", "no request found (expected 'METHOD /path HTTP/1.1')")
    return requests


class _Draft:
    """A request being read, line by line."""

    def __init__(self, line: int, method: str, target: str) -> None:
        self.line = line
        self.method = method
        self.target = target
        self.headers: dict[str, str] = {}
        self.body: list[str] = []

    def build(self) -> RawRequest:
        parts = urlsplit(self.target)
        if not parts.path.startswith("/"):
            raise ParseError(
                f"line {self.line}", f"the request target is not a path: {self.target[:60]!r}"
            )
        try:
            query = parse_qsl(parts.query, keep_blank_values=True, errors="strict")
        except (ValueError, UnicodeDecodeError):
            raise ParseError(f"line {self.line}", "the query string is not valid") from None
        body = "\n".join(self.body).strip("\r\n")
        return RawRequest(
            method=self.method,
            path=unquote(parts.path),
            query=query,
            headers=dict(self.headers),
            body=body.encode("utf-8"),
        )
