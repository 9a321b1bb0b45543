"""Who may look at the dashboard, and where it may listen.

The checks are ingest's (``pipeline.ingest.auth``: constant-time, a failure never says
what was expected). A browser cannot add a Bearer header to a link, so ``token`` also takes
``?token=`` once: the answer sets a cookie holding an HMAC of the secret (never the secret)
and redirects to the same page without the token, so it stays out of the address bar, the
history and every link on the page.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from urllib.parse import urlencode

from aiohttp import web

from pipeline.config import ConfigError, Settings
from pipeline.ingest import auth
from pipeline.ingest.adapters.base import RawRequest
from pipeline.ingest.exposure import is_loopback

COOKIE = "smsrecon_dashboard"
KEY = "dashboard.auth"


@dataclass(frozen=True)
class Gate:
    policy: auth.Policy

    @property
    def cookie_value(self) -> str:
        secret = (self.policy.secret or "").encode("utf-8")
        return hmac.new(secret, b"smsrecon dashboard session", hashlib.sha256).hexdigest()


def gate_for(settings: Settings) -> Gate:
    """The dashboard's policy, its secret read now (a missing one fails at start-up)."""
    conf = settings.dashboard.auth
    secret = None
    if conf.type in ("token", "basic"):
        if not conf.secret_env:
            raise ConfigError(
                f"{settings.source_file or 'defaults'}: {KEY}.secret_env: "
                f"required for auth type {conf.type}"
            )
        secret = settings.secret(conf.secret_env, f"{KEY}.secret_env")
    _register_partner_tokens(settings)
    return Gate(auth.Policy(type=conf.type, secret=secret,
                            networks=auth.parse_networks(conf.allow_ips)))  # fmt: skip


def _register_partner_tokens(settings: Settings) -> None:
    """Partner tokens this process can see are masked on every page (and log line), even
    where they appear outside a callback URL."""
    import os

    from pipeline.logsafe import register_secret

    for partner in settings.altegio.partners.values():
        value = os.environ.get(partner.token_env)
        if value:
            register_secret(value)


def check_exposure(settings: Settings, host: str) -> None:
    """ConfigError (exit 2) for a dashboard without auth on any address but loopback: its
    pages show every partner's money."""
    if settings.dashboard.auth.type == "none" and not is_loopback(host):
        raise ConfigError(
            f"refusing to serve the dashboard on {host}: dashboard.auth is type none; "
            "configure dashboard.auth (token or basic, docs/dashboard.md) or listen on "
            "127.0.0.1"
        )


def _raw(request: web.Request) -> RawRequest:
    return RawRequest(
        method=request.method,
        path=request.path,
        query=list(request.query.items()),
        headers={name.lower(): value for name, value in request.headers.items()},
        body=b"",
    )


def admit(gate: Gate, request: web.Request) -> web.StreamResponse | None:
    """None when the request may see the page; else the answer (401, 403 or a redirect)."""
    policy = gate.policy
    if policy.networks and not auth.peer_allowed(request.remote, policy.networks):
        return web.Response(status=403, text="address not allowed\n")
    if policy.type in ("none", "ip"):
        return None
    if policy.type == "token":
        cookie = request.cookies.get(COOKIE, "")
        if cookie and hmac.compare_digest(cookie.encode(), gate.cookie_value.encode()):
            return None
    try:
        auth.check(policy, _raw(request), peer=request.remote, now=0.0)
    except auth.AuthError:
        headers = {}
        if policy.type == "basic":
            headers["WWW-Authenticate"] = 'Basic realm="smsrecon dashboard", charset="UTF-8"'
        hint = "HTTP Basic" if policy.type == "basic" else "?token=… once, or a Bearer token"
        return web.Response(status=401, text=f"sign in: {hint}\n", headers=headers)
    if policy.type == "token" and auth.TOKEN_PARAM in request.query:
        rest = [(k, v) for k, v in request.query.items() if k != auth.TOKEN_PARAM]
        target = request.path + (f"?{urlencode(rest)}" if rest else "")
        response = web.HTTPSeeOther(target)
        response.set_cookie(COOKIE, gate.cookie_value, httponly=True, samesite="Strict",
                            path="/")  # fmt: skip
        return response
    return None
