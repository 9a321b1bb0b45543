"""Where a status goes, whether we may call it, and how a URL is shown without its secret.

Callback URLs come from outside (Altegio passes ``delivery_callback_url`` with every message,
and anyone who can inject a message can pick it), so before any request the URL is checked
against an allow-list of hosts and ports and must be exactly Altegio's callback path: the
dispatcher must never become a way to reach internal services (SSRF), nor hand the partner's
Bearer token to any other path. And Altegio's callback URL carries the partner token as its
last path segment, so a URL is masked before it reaches a log line, an error or a report.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import quote, unquote, urlsplit

import idna
from yarl import URL

from pipeline.logsafe import MASK

CALLBACK_PATH = "/smsprovider/status/callback/"

#: Characters that have no business in a callback URL and that parsers disagree about
#: (backslashes, whitespace, control characters): refusing them outright leaves no room for a
#: difference between the URL we check and the URL the HTTP client connects to.
_SUSPICIOUS = re.compile(r"[\\\s\x00-\x1f\x7f]")

#: A path segment as RFC 3986 writes it (pchar: unreserved, percent-encoded, sub-delims, ":",
#: "@"), at least one character long.
_PCHARS = r"(?:[A-Za-z0-9\-._~!$&'()*+,;=:@]|%[0-9A-Fa-f]{2})+"
_CALLBACK_RAW_PATH = re.compile(rf"/smsprovider/status/callback/({_PCHARS})")
#: What a decoded segment must not hold: a slash or backslash (another path once decoded), a
#: percent sign (decoded twice by some proxies: %252e%252e), whitespace or control characters.
_SEGMENT_FORBIDDEN = re.compile(r"[/\\%\s\x00-\x1f\x7f]")
#: Characters no host entry holds: a scheme, path, userinfo, query or fragment.
_HOST_CHARS = re.compile(r"[/\\@?#\s]")


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


@dataclass(frozen=True, slots=True)
class HostEntry:
    """One ``allowed_hosts`` / ``insecure_hosts`` entry: a canonical host and, if the entry
    names one, the only port it may be called on."""

    host: str
    port: int | None


def parse_host_entry(entry: str) -> HostEntry:
    """``host``, ``host:port``, ``[v6]``, ``[v6]:port`` or a bare IPv6 address -> HostEntry.

    ValueError (without echoing the entry) for anything else: a scheme, a path, userinfo, an
    empty host or a port outside 1-65535.
    """
    text = entry.strip()
    port_text: str | None = None
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise ValueError("an IPv6 entry is written [address] or [address]:port")
        port_text = rest[1:] if rest else None
    elif text.count(":") == 1:
        host, port_text = text.split(":")
    else:
        host = text  # a host name, or a bare IPv6 address (several colons, no port)
    if not host or _HOST_CHARS.search(host) or host.endswith("."):
        raise ValueError("an entry is a host name or address, optionally with :port")
    canonical = _canonical_host(host)
    if canonical is None:
        raise ValueError("an entry's host is not a valid host name")
    if port_text is None:
        return HostEntry(canonical, None)
    if not port_text.isascii() or not port_text.isdigit() or not 0 < int(port_text) <= 65535:
        raise ValueError("an entry's port must be a number from 1 to 65535")
    return HostEntry(canonical, int(port_text))


def check_host_entries(entries: list[str]) -> list[str]:
    """Config validation: every entry parses (see ``parse_host_entry``)."""
    for number, entry in enumerate(entries, start=1):
        try:
            parse_host_entry(entry)
        except ValueError as exc:
            raise ValueError(f"entry {number}: {exc}") from None
    return entries


def _entries(entries: Sequence[str]) -> list[HostEntry]:
    """The entries that parse (settings have been validated; a bad one matches nothing)."""
    parsed = []
    for entry in entries:
        try:
            parsed.append(parse_host_entry(entry))
        except ValueError:
            continue
    return parsed


def _matches(entries: Sequence[str], host: str, port: int, *, default_port: int | None) -> bool:
    """Whether ``host:port`` is one of ``entries``: an entry without a port takes
    ``default_port`` only, or any port when ``default_port`` is None."""
    for entry in _entries(entries):
        if entry.host != host:
            continue
        wanted = entry.port if entry.port is not None else default_port
        if wanted is None or wanted == port:
            return True
    return False


def check_url(
    url: str, *, allowed_hosts: Sequence[str], insecure_hosts: Sequence[str]
) -> str | None:
    """None when the dispatcher may call ``url``; otherwise the reason it may not.

    A callback URL is one of two things, and nothing else:
    - ``https`` to an ``allowed_hosts`` entry on the default port 443, or on the port the
      entry names (``app.alteg.io:8443``);
    - plain ``http`` to an ``insecure_hosts`` entry on any port, or on the port the entry
      names (loopback sandboxes for tests and the demo).
    Either way the path is exactly ``/smsprovider/status/callback/<one segment>``: no dot
    segments (raw or percent-encoded), no encoded slash or backslash in the segment, no empty
    segment, nothing after it, no query, no fragment (see ``_path_problem``).

    How it is read, strictest reading first:
    - the URL is parsed by the same parser the HTTP client uses (yarl), and the path is also
      checked as written, before yarl normalises dot segments away; URLs with backslashes,
      whitespace or control characters are refused, so what is checked is what is called;
    - no userinfo at all (``https://app.alteg.io@evil.com/`` names the host ``evil.com``, and a
      legitimate callback never carries credentials in its authority);
    - the host must equal an entry's host exactly (case-insensitive, after IDNA encoding): no
      suffix or prefix matching, and a trailing dot (``app.alteg.io.``) is refused rather than
      treated as the same name.
    The returned reason never contains the URL's path or query (where the token lives).
    """
    if not url or not url.strip():
        return "empty callback URL"
    if _SUSPICIOUS.search(url):
        return "callback URL contains whitespace, a backslash or a control character"
    try:
        parsed = URL(url)
        port = parsed.port
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
    if not raw_host or port is None:
        return "callback URL has no host"
    if raw_host.endswith("."):
        return f"host {raw_host!r} ends with a dot"
    host = _canonical_host(raw_host)
    if host is None:
        return f"host {raw_host!r} is not a valid host name"
    if scheme == "http":
        if not _matches(insecure_hosts, host, port, default_port=None):
            return (
                f"plain http to {host!r} port {port} is not allowed (not in altegio.insecure_hosts)"
            )
    elif not _matches(allowed_hosts, host, port, default_port=443):
        if any(e.host == host for e in _entries(allowed_hosts)):
            return f"https to {host!r} on port {port} is not allowed (altegio.allowed_hosts)"
        return f"host {host!r} is not in altegio.allowed_hosts"
    return _path_problem(url, parsed)


def _path_problem(url: str, parsed: URL) -> str | None:
    """Why the URL's path is not exactly the callback path with one segment, or None.

    The path is read as written (``urlsplit`` does not resolve dot segments, unlike yarl),
    then the segment is percent-decoded and checked again, so that no server or proxy that
    decodes or resolves differently can turn it into another path; last, yarl's reading (what
    aiohttp sends) must agree. Reasons never quote the path.
    """
    if "?" in url:
        return "callback URL has a query (the callback path takes none)"
    if "#" in url:
        return "callback URL has a fragment"
    match = _CALLBACK_RAW_PATH.fullmatch(urlsplit(url).path)
    if match is None:
        return "callback URL path is not /smsprovider/status/callback/<token>"
    try:
        segment = unquote(match.group(1), errors="strict")
    except UnicodeDecodeError:
        return "callback URL's last segment is not UTF-8 once decoded"
    if segment in (".", "..") or _SEGMENT_FORBIDDEN.search(segment):
        return (
            "callback URL's last segment is a dot segment or encodes a slash, a backslash, "
            "a percent sign or a control character"
        )
    if parsed.path != CALLBACK_PATH + segment or parsed.raw_query_string or parsed.fragment:
        return "callback URL path is read differently by the HTTP client"
    return None


def callback_token(url: str) -> str:
    """The (percent-decoded) last segment of a URL that passed ``check_url``: the partner
    token Altegio put there."""
    match = _CALLBACK_RAW_PATH.fullmatch(urlsplit(url).path)
    if match is None:
        raise ValueError("not a callback URL")
    return unquote(match.group(1), errors="strict")


def check_token_segment(url: str, token: str) -> str | None:
    """None when the URL's last segment is the partner's token; else why not (naming neither).

    Altegio's URL carries the partner token as its last segment, and Altegio answers 401 when
    the Bearer token differs from it: a message naming someone else's segment would open the
    partner's circuit for every message, so it is refused before any request.
    """
    try:
        segment = callback_token(url)
    except (ValueError, UnicodeDecodeError):
        return "callback URL path is not /smsprovider/status/callback/<token>"
    if not hmac.compare_digest(segment.encode(), token.encode()):
        return "callback URL's last segment is not the partner's token"
    return None


def mask_token(text: str, token: str) -> str:
    """``text`` with every occurrence of ``token`` (raw or percent-encoded) replaced by ***."""
    if not token:
        return text
    masked = text.replace(token, MASK)
    encoded = quote(token, safe="")
    if encoded != token:
        masked = masked.replace(encoded, MASK)
    return masked
