"""Where a status goes, whether we may call it, and how a URL is shown without its secret.

Callback URLs come from outside (Altegio passes ``delivery_callback_url`` with every message,
and anyone who can inject a message can pick it), so before any request the URL is checked
against an allow-list: the dispatcher must never become a way to reach internal services
(SSRF). And Altegio's callback URL carries the partner token as its last path segment, so a
URL is masked before it reaches a log line, an error or a report.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from urllib.parse import quote

import idna
from yarl import URL

CALLBACK_PATH = "/smsprovider/status/callback/"
MASK = "***"

#: Characters that have no business in a callback URL and that parsers disagree about
#: (backslashes, whitespace, control characters): refusing them outright leaves no room for a
#: difference between the URL we check and the URL the HTTP client connects to.
_SUSPICIOUS = re.compile(r"[\\\s\x00-\x1f\x7f]")

_CALLBACK_SEGMENT = re.compile(r"(/callback/)[^/?#\s\"'<>]+", re.IGNORECASE)
_BEARER = re.compile(r"(Bearer\s+)[^\s,;\"'<>]+", re.IGNORECASE)


def callback_url(message_url: str | None, *, base_url: str, partner_token: str) -> str:
    """The message's own ``delivery_callback_url``, else Altegio's documented default.

    The default is ``{base_url}/smsprovider/status/callback/{partner_token}``; the token is
    percent-encoded so that no token can change the shape of the path.
    """
    if message_url is not None and message_url.strip():
        return message_url.strip()
    if not partner_token:
        raise ValueError("a partner token is needed to build the default callback URL")
    return f"{base_url.rstrip('/')}{CALLBACK_PATH}{quote(partner_token, safe='')}"


def _canonical_host(host: str) -> str | None:
    """A host as an ASCII, lower-case A-label string (IPv6 without brackets); None if invalid.

    Unicode hosts go through IDNA 2008 with UTS #46 mapping, as the HTTP client does, so
    ``bücher.example`` and ``xn--bcher-kva.example`` are one host and a look-alike in another
    script is a different one.
    """
    host = host.strip().lower()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not host:
        return None
    if host.isascii():
        return host
    try:
        return idna.encode(host, uts46=True).decode("ascii").lower()
    except idna.IDNAError:
        return None


def _canonical_hosts(hosts: Sequence[str]) -> set[str]:
    return {h for h in (_canonical_host(x) for x in hosts) if h is not None}


def check_url(
    url: str, *, allowed_hosts: Sequence[str], insecure_hosts: Sequence[str]
) -> str | None:
    """None when the dispatcher may call ``url``; otherwise the reason it may not.

    The rules, strictest reading first:
    - the URL is parsed by the same parser the HTTP client uses (yarl), and URLs with
      backslashes, whitespace or control characters are refused, so what is checked is what
      would be called;
    - no userinfo at all (``https://app.alteg.io@evil.com/`` names the host ``evil.com``, and a
      legitimate callback never carries credentials in its authority);
    - the host must equal an allowed host exactly (case-insensitive, after IDNA encoding): no
      suffix or prefix matching, and a trailing dot (``app.alteg.io.``) is refused rather than
      treated as the same name;
    - ``https`` to a host in ``allowed_hosts`` or ``insecure_hosts``; plain ``http`` only to a
      host in ``insecure_hosts`` (loopback for tests and the demo); no other scheme;
    - any port: the host is what is trusted, and a test sandbox listens on a free port.
    The returned reason never contains the URL's path or query (where the token lives).
    """
    if not url or not url.strip():
        return "empty callback URL"
    if _SUSPICIOUS.search(url):
        return "callback URL contains whitespace, a backslash or a control character"
    try:
        parsed = URL(url)
    except (ValueError, TypeError) as exc:
        return f"callback URL does not parse ({type(exc).__name__})"
    scheme = (parsed.scheme or "").lower()
    if scheme and scheme not in ("https", "http"):
        return f"scheme {scheme!r} is not allowed (https only)"
    if not scheme or not parsed.is_absolute():
        return "callback URL is not absolute"
    if parsed.raw_user is not None or parsed.raw_password is not None:
        return "callback URL carries credentials before the host"
    raw_host = parsed.raw_host
    if not raw_host:
        return "callback URL has no host"
    if raw_host.endswith("."):
        return f"host {raw_host!r} ends with a dot"
    host = _canonical_host(raw_host)
    if host is None:
        return f"host {raw_host!r} is not a valid host name"
    insecure = _canonical_hosts(insecure_hosts)
    if scheme == "http":
        if host in insecure:
            return None
        return f"plain http to {host!r} is not allowed (not in altegio.insecure_hosts)"
    if host in _canonical_hosts(allowed_hosts) or host in insecure:
        return None
    return f"host {host!r} is not in altegio.allowed_hosts"


def mask_token(text: str, token: str) -> str:
    """``text`` with every occurrence of ``token`` (raw or percent-encoded) replaced by ***."""
    if not token:
        return text
    masked = text.replace(token, MASK)
    encoded = quote(token, safe="")
    if encoded != token:
        masked = masked.replace(encoded, MASK)
    return masked


def mask_url(url: str) -> str:
    """``url`` (or any text holding URLs) with the segment after ``/callback/`` and any
    ``Bearer`` credential replaced by ***, for logs, errors and reports.

    Works without knowing the token, so a URL from outside (which may carry a token we have
    never seen) is safe to show as well.
    """
    masked = _CALLBACK_SEGMENT.sub(lambda m: m.group(1) + MASK, url)
    return _BEARER.sub(lambda m: m.group(1) + MASK, masked)
