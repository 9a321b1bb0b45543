"""Per-route authentication of incoming requests, and scrubbing secrets from what we keep.

Pure: the caller resolves the route's ``Policy`` once at start-up and hands in the raw
request, the peer address and the time. Every comparison is constant-time
(``hmac.compare_digest``) so a forger learns nothing from how long a wrong guess took. A
failure says which check failed, never what was expected or what was sent. Hostile header
bytes (non-UTF-8, non-ASCII Basic credentials) are a failed check, never an error.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import ipaddress
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from urllib.parse import parse_qsl

from pipeline.ingest import signing
from pipeline.ingest.adapters.base import RawRequest

AUTH_TYPES = ("none", "ip", "token", "basic", "hmac", "twilio")
#: Types that need a secret (``none`` and ``ip`` do not).
SECRET_TYPES = frozenset({"token", "basic", "hmac", "twilio"})
TOKEN_PARAM = "token"
TOKEN_HEADER = "x-smsrecon-token"
TIMESTAMP_HEADER = signing.TIMESTAMP_HEADER
SIGNATURE_HEADER = signing.SIGNATURE_HEADER
TWILIO_HEADER = "x-twilio-signature"
#: Headers that carry credentials: checked, then dropped before anything is stored.
SECRET_HEADERS = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "cookie",
        TOKEN_HEADER,
        SIGNATURE_HEADER,
        TWILIO_HEADER,
    }
)
#: Unix seconds: ASCII digits only (``str.isdigit`` would take Unicode digits), bounded.
_TIMESTAMP = re.compile(r"[0-9]{1,12}", re.ASCII)
_HEX_DIGEST = re.compile(r"[0-9a-fA-F]{64}", re.ASCII)

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class AuthError(Exception):
    """Credentials missing or wrong. The text is safe to log and to answer with."""


@dataclass(frozen=True)
class Policy:
    """How one route's callers prove themselves, resolved once at start-up.

    ``networks`` (an allow-list of the peer address) applies on top of ``type``: with
    ``type="ip"`` it is the only check, with another type both must pass.
    """

    type: str = "none"
    secret: str | None = None
    networks: tuple[Network, ...] = ()
    #: Seconds an hmac timestamp may be from the server's clock, either way.
    window: float = 300.0


def parse_networks(cidrs: Sequence[str]) -> tuple[Network, ...]:
    """CIDRs (IPv4 or IPv6; a bare address is a /32 or /128) as networks."""
    return tuple(ipaddress.ip_network(cidr, strict=True) for cidr in cidrs)


def peer_allowed(peer: str | None, networks: Sequence[Network]) -> bool:
    """Whether the peer address lies in one of ``networks``.

    An IPv4 client reaching a dual-stack socket shows as ``::ffff:a.b.c.d``; it is matched
    as the IPv4 address it is. An unknown or unparseable peer is never allowed.
    """
    if not peer:
        return False
    try:
        address = ipaddress.ip_address(peer.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address in network for network in networks)


def check(
    policy: Policy,
    request: RawRequest,
    *,
    peer: str | None,
    now: float,
    url: str = "",
    twilio_signature: Callable[[str, list[tuple[str, str]], str], str] | None = None,
) -> None:
    """Raise AuthError unless ``request`` from ``peer`` at ``now`` passes ``policy``.

    ``peer`` is the TCP peer's address (never a forwarded-for header: anyone can write
    one). ``url`` is the full URL the gateway called (Twilio signs it); ``twilio_signature``
    is the adapter's signer, passed in so this module needs no adapter import at load time.
    """
    if policy.networks and not peer_allowed(peer, policy.networks):
        raise AuthError("address not allowed")
    auth_type = policy.type
    if auth_type in ("none", "ip"):
        return
    secret = policy.secret
    if not secret:
        raise AuthError("no secret configured")
    if auth_type == "token":
        _check_token(request, secret)
    elif auth_type == "basic":
        _check_basic(request, secret)
    elif auth_type == "hmac":
        _check_hmac(request, secret, now=now, window=policy.window)
    elif auth_type == "twilio":
        _check_twilio(request, secret, url, twilio_signature)
    else:
        raise ValueError(f"unknown auth type {auth_type!r} (one of {', '.join(AUTH_TYPES)})")


def _equal(given: str | bytes, expected: str | bytes) -> bool:
    try:
        given_b = given.encode("utf-8") if isinstance(given, str) else given
    except UnicodeEncodeError:  # a header that was not UTF-8: cannot be the secret
        return False
    expected_b = expected.encode("utf-8") if isinstance(expected, str) else expected
    return hmac.compare_digest(given_b, expected_b)


def _check_token(request: RawRequest, secret: str) -> None:
    candidates = [value for name, value in request.query if name == TOKEN_PARAM]
    if TOKEN_HEADER in request.headers:
        candidates.append(request.headers[TOKEN_HEADER])
    scheme, _, credential = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and credential.strip():
        candidates.append(credential.strip())
    if not candidates:
        raise AuthError(
            f"missing token (query parameter {TOKEN_PARAM!r}, header X-Smsrecon-Token "
            "or Authorization: Bearer)"
        )
    # Every candidate is compared, so the time taken does not depend on which one matched.
    matches = [_equal(candidate, secret) for candidate in candidates]
    if not any(matches):
        raise AuthError("wrong token")


def _check_basic(request: RawRequest, secret: str) -> None:
    header = request.headers.get("authorization", "")
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic" or not encoded:
        raise AuthError("missing HTTP Basic credentials")
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError, UnicodeDecodeError):
        # ValueError: b64decode refuses a str with non-ASCII characters before decoding.
        raise AuthError("malformed HTTP Basic credentials") from None
    _user, sep, password = decoded.partition(":")
    if not sep or not _equal(password, secret):
        raise AuthError("wrong HTTP Basic credentials")


def _check_hmac(request: RawRequest, secret: str, *, now: float, window: float) -> None:
    stamp = request.headers.get(TIMESTAMP_HEADER, "").strip()
    given = request.headers.get(SIGNATURE_HEADER, "").strip()
    if not stamp:
        raise AuthError("missing X-Smsrecon-Timestamp")
    if not _TIMESTAMP.fullmatch(stamp):
        raise AuthError("X-Smsrecon-Timestamp must be Unix seconds")
    if not given:
        raise AuthError("missing X-Smsrecon-Signature")
    scheme, sep, hexdigest = given.partition("=")
    if scheme.lower() != signing.SCHEME or not sep or not _HEX_DIGEST.fullmatch(hexdigest):
        raise AuthError("X-Smsrecon-Signature must be sha256=<64 hex digits>")
    text = signing.string_to_sign(stamp, request.method, request.path, request.query, request.body)
    if not _equal(hexdigest.lower(), signing.signature(secret, text)):
        raise AuthError("wrong X-Smsrecon-Signature")
    # Checked after the signature, so only a holder of the secret learns about the window.
    if abs(now - int(stamp)) > window:
        raise AuthError("X-Smsrecon-Timestamp outside the replay window")


def _check_twilio(
    request: RawRequest,
    secret: str,
    url: str,
    signer: Callable[[str, list[tuple[str, str]], str], str] | None,
) -> None:
    given = request.headers.get(TWILIO_HEADER)
    if not given:
        raise AuthError("missing X-Twilio-Signature")
    if signer is None:
        raise ValueError("twilio auth needs the adapter's signer")
    # Twilio signs the full URL plus, for a form POST, every body parameter (sorted by the
    # signer); a GET callback's parameters are already in the URL.
    params: list[tuple[str, str]] = []
    if request.method.upper() == "POST":
        try:
            text = request.body.decode("utf-8")
        except UnicodeDecodeError:
            raise AuthError("X-Twilio-Signature cannot be checked: body is not UTF-8") from None
        params = parse_qsl(text, keep_blank_values=True)
    if not _equal(given.strip(), signer(url, params, secret)):
        raise AuthError("wrong X-Twilio-Signature")


def scrub(request: RawRequest) -> RawRequest:
    """The request without credentials: no ``token`` query parameter, no auth headers.

    Adapters see only this (so a token never reaches an event's ``raw``), and it is what
    quarantine stores.
    """
    if SECRET_HEADERS.isdisjoint(request.headers) and all(
        name != TOKEN_PARAM for name, _ in request.query
    ):
        return request  # the usual case: nothing to remove, no copy
    query = [(name, value) for name, value in request.query if name != TOKEN_PARAM]
    headers = {name: value for name, value in request.headers.items() if name not in SECRET_HEADERS}
    return replace(request, query=query, headers=headers)
