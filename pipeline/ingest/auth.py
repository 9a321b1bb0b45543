"""Per-carrier authentication of DLR webhooks, and scrubbing secrets from what we keep.

Pure: the caller resolves the secret (``settings.secret``) and hands in the raw request.
Every comparison is constant-time (``hmac.compare_digest``) so a forger learns nothing from
how long a wrong guess took. A failure says which check failed, never what was expected or
what was sent.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Callable
from dataclasses import replace
from urllib.parse import parse_qsl

from pipeline.ingest.adapters.base import RawRequest

AUTH_TYPES = ("none", "token", "basic", "hmac", "twilio")
TOKEN_PARAM = "token"
TOKEN_HEADER = "x-smsrecon-token"
SIGNATURE_HEADER = "x-smsrecon-signature"
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


class AuthError(Exception):
    """Credentials missing or wrong. The text is safe to log and to answer with."""


def check(
    auth_type: str,
    request: RawRequest,
    secret: str | None,
    *,
    url: str = "",
    twilio_signature: Callable[[str, list[tuple[str, str]], str], str] | None = None,
) -> None:
    """Raise AuthError unless ``request`` carries valid credentials for ``auth_type``.

    ``url`` is the full URL the gateway called (Twilio signs it); ``twilio_signature`` is
    the adapter's signer, passed in so this module needs no adapter import at load time.
    """
    if auth_type == "none":
        return
    if not secret:
        raise AuthError("no secret configured")
    if auth_type == "token":
        _check_token(request, secret)
    elif auth_type == "basic":
        _check_basic(request, secret)
    elif auth_type == "hmac":
        _check_hmac(request, secret)
    elif auth_type == "twilio":
        _check_twilio(request, secret, url, twilio_signature)
    else:
        raise ValueError(f"unknown auth type {auth_type!r} (one of {', '.join(AUTH_TYPES)})")


def _equal(given: str | bytes, expected: str | bytes) -> bool:
    given_b = given.encode("utf-8") if isinstance(given, str) else given
    expected_b = expected.encode("utf-8") if isinstance(expected, str) else expected
    return hmac.compare_digest(given_b, expected_b)


def _check_token(request: RawRequest, secret: str) -> None:
    candidates = [value for name, value in request.query if name == TOKEN_PARAM]
    if TOKEN_HEADER in request.headers:
        candidates.append(request.headers[TOKEN_HEADER])
    if not candidates:
        raise AuthError(
            f"missing token (query parameter {TOKEN_PARAM!r} or header X-Smsrecon-Token)"
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
    except (binascii.Error, UnicodeDecodeError):
        raise AuthError("malformed HTTP Basic credentials") from None
    _user, sep, password = decoded.partition(":")
    if not sep or not _equal(password, secret):
        raise AuthError("wrong HTTP Basic credentials")


def hmac_signature(body: bytes, secret: str) -> str:
    """The ``X-Smsrecon-Signature`` value a sender puts on ``body``."""
    digest = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def _check_hmac(request: RawRequest, secret: str) -> None:
    given = request.headers.get(SIGNATURE_HEADER)
    if not given:
        raise AuthError("missing X-Smsrecon-Signature")
    scheme, sep, hexdigest = given.strip().partition("=")
    if scheme.lower() != "sha256" or not sep:
        raise AuthError("X-Smsrecon-Signature must be sha256=<hex>")
    expected = hmac_signature(request.body, secret).partition("=")[2]
    if not _equal(hexdigest.lower(), expected):
        raise AuthError("wrong X-Smsrecon-Signature")


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
