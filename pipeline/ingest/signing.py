"""The ``hmac`` request signature: the one string a sender signs, and the headers it sends.

A signature over the body alone proves nothing about the rest of the request: a GET carries
its facts in the query, and a signed body could be replayed with another ``?message_id=``.
So the signed string covers everything that changes a request's meaning (method, path,
query, body) plus a timestamp, which the server holds to a replay window. Inside the window
a replay can only repeat the identical request, whose events dedup stores once.

The string to sign, five lines joined by ``\\n`` (no trailing newline)::

    <timestamp: Unix seconds, ASCII digits, as sent in X-Smsrecon-Timestamp>
    <METHOD, upper case>
    <path, percent-encoded, "/" kept>
    <canonical query: name=value pairs percent-encoded, sorted, joined by "&">
    <hex SHA-256 of the raw body (of no bytes for a GET)>

Percent-encoding is RFC 3986's: every UTF-8 byte except ``A-Z a-z 0-9 - _ . ~`` becomes
``%XX`` in upper-case hex (so a space is ``%20``, never ``+``). The query is taken as
decoded name/value pairs (``+`` in the URL is a space), so the way a client chose to encode
its URL does not matter. Pure and dependency-free: a carrier or our own send path can
implement it from docs/ingest.md, which has a worked example that a test keeps true.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from urllib.parse import quote

TIMESTAMP_HEADER = "x-smsrecon-timestamp"
SIGNATURE_HEADER = "x-smsrecon-signature"
SCHEME = "sha256"
#: Unreserved characters (RFC 3986) besides letters and digits: never percent-encoded.
_UNRESERVED = "-_.~"


def _encode(text: str, safe: str = _UNRESERVED) -> str:
    """RFC 3986 percent-encoding of ``text``'s UTF-8 bytes.

    A value the server decoded from bytes that were not UTF-8 holds surrogate escapes; they
    are encoded back to the original bytes, so such a request can still be verified.
    """
    try:
        data = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        data = text.encode("utf-8", "surrogatepass")
    return quote(data, safe=safe)


def canonical_query(query: Sequence[tuple[str, str]]) -> str:
    """``name=value`` pairs, each side percent-encoded, sorted by name then value."""
    pairs = sorted((_encode(name), _encode(value)) for name, value in query)
    return "&".join(f"{name}={value}" for name, value in pairs)


def string_to_sign(
    timestamp: str, method: str, path: str, query: Sequence[tuple[str, str]], body: bytes
) -> str:
    """The exact text whose HMAC-SHA256 is the signature (see the module docstring)."""
    return "\n".join(
        (
            timestamp,
            method.upper(),
            _encode(path, safe="/" + _UNRESERVED),
            canonical_query(query),
            hashlib.sha256(body).hexdigest(),
        )
    )


def signature(secret: str, text: str) -> str:
    """Hex HMAC-SHA256 of ``text`` keyed with ``secret`` (both UTF-8)."""
    return hmac.new(secret.encode("utf-8"), text.encode("utf-8"), hashlib.sha256).hexdigest()


def signed_headers(
    secret: str,
    *,
    method: str,
    path: str,
    query: Sequence[tuple[str, str]] = (),
    body: bytes = b"",
    timestamp: int,
) -> dict[str, str]:
    """The two headers a sender adds to a request signed at ``timestamp`` (Unix seconds)."""
    stamp = str(int(timestamp))
    digest = signature(secret, string_to_sign(stamp, method, path, query, body))
    return {"X-Smsrecon-Timestamp": stamp, "X-Smsrecon-Signature": f"{SCHEME}={digest}"}
