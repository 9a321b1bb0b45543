"""Whether the ingest server may listen where it was asked to, given the routes' auth.

A route without auth is fine on loopback (only this machine can call it) and a forgery
channel anywhere else: whoever reaches the port could post a "delivered" for any message.
So ``serve`` and ``run`` refuse a non-loopback address while the send path or any carrier
has no auth, unless ``ingest.allow_unauthenticated`` says the network in front is trusted;
then they start with a warning, every time, so the choice stays visible in the logs.
"""

from __future__ import annotations

import ipaddress

from pipeline.config import ConfigError, Settings

_LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


def is_loopback(host: str) -> bool:
    """True only for an address (or the name ``localhost``) that is loopback.

    Any other name may resolve to a public address, and ``0.0.0.0``/``::`` mean every
    interface: all are treated as exposed.
    """
    name = host.strip().strip("[]").lower()
    if name in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(name.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def unauthenticated_routes(settings: Settings) -> list[str]:
    """The configured routes anyone who reaches the server may call, by their config key."""
    open_routes = []
    if settings.ingest.auth.type == "none":
        open_routes.append("ingest.auth (the send path)")
    open_routes.extend(
        f"carriers.{name}.auth"
        for name, carrier in sorted(settings.carriers.items())
        if carrier.auth.type == "none"
    )
    return open_routes


def exposure_warning(settings: Settings, host: str) -> str | None:
    """None when listening on ``host`` is safe; the warning to log when it is allowed anyway.

    Raises ConfigError (one line, exit 2 in the commands) when it is neither.
    """
    if is_loopback(host):
        return None
    open_routes = unauthenticated_routes(settings)
    if not open_routes:
        return None
    listed = ", ".join(open_routes)
    if not settings.ingest.allow_unauthenticated:
        raise ConfigError(
            f"refusing to listen on {host}: no auth on {listed}; configure auth "
            "(docs/ingest.md) or set ingest.allow_unauthenticated: true"
        )
    return (
        f"listening on {host} with no auth on {listed} (ingest.allow_unauthenticated is "
        "true): anyone who reaches this address can post events"
    )
