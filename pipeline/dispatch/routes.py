"""Where each claimed message goes and with which token, decided before any request.

A message whose partner is not configured, whose token is missing from the environment,
whose callback URL fails the URL policy (an allowed host and port, exactly Altegio's callback
path) or does not end in the partner's own token, or whose state cannot be written in
Altegio's form never reaches the network: it gets a ``Refusal`` (a mismatch), not an exception.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.config import ConfigError, Settings
from pipeline.dispatch.model import ClaimedItem, Refusal, Routed
from pipeline.dispatch.payload import PayloadError, build_payload
from pipeline.dispatch.urls import (
    callback_url,
    check_token_segment,
    check_url,
    mask_token,
)
from pipeline.logsafe import mask_url, register_secret
from pipeline.mismatches.kinds import KIND_PARTNER_UNKNOWN, KIND_PAYLOAD_INVALID, KIND_URL_REJECTED


class PartnerTokens:
    """Partner tokens, read from the environment once per run and registered for masking."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._tokens: dict[str, str | ConfigError] = {}

    def token(self, partner: str) -> str:
        """The partner's token; ConfigError (without the value) when it cannot be had."""
        if partner not in self._tokens:
            self._tokens[partner] = self._read(partner)
        value = self._tokens[partner]
        if isinstance(value, ConfigError):
            raise value
        return value

    def require_all(self) -> None:
        """Read every configured partner's token now; ConfigError for the first missing or
        too short. Commands call it at start-up, so a token variable missing from cron's
        environment is exit 2 at once, not a quiet run that retries each message later."""
        for partner in sorted(self._settings.altegio.partners):
            self.token(partner)

    def _read(self, partner: str) -> str | ConfigError:
        config = self._settings.altegio.partners.get(partner)
        if config is None:
            where = self._settings.source_file or "defaults"
            return ConfigError(f"{where}: altegio.partners: partner {partner!r} is not configured")
        try:
            token = self._settings.secret(config.token_env, f"altegio.partners.{partner}.token_env")
        except ConfigError as exc:
            return exc
        register_secret(token)
        return token


@dataclass(frozen=True, slots=True)
class _Destination:
    """Where a (partner, callback URL) pair goes, or why it may not: decided once per run."""

    url: str
    token: str | None
    shown: str
    refusal: tuple[str, str] | None


class Router:
    """Routes claimed messages, deciding each (partner, callback URL) pair once per run.

    Thousands of messages share a handful of destinations; building, checking and masking
    the URL once per destination instead of once per message keeps that work off the
    event loop. The payload is still built and checked per message.
    """

    def __init__(self, settings: Settings, tokens: PartnerTokens) -> None:
        self._settings = settings
        self._tokens = tokens
        self._destinations: dict[tuple[str, str | None], _Destination] = {}

    def route(self, item: ClaimedItem) -> Routed | Refusal:
        key = (item.partner, item.delivery_callback_url)
        dest = self._destinations.get(key)
        if dest is None:
            dest = self._destinations[key] = self._decide(item)
        if dest.refusal is not None:
            kind, error = dest.refusal
            return Refusal(item, kind, error, dest.shown)
        assert dest.token is not None
        try:
            payload = build_payload(
                message_id=item.message_id,
                status=item.status,
                payment_sum=item.payment_sum,
                currency_iso=item.currency_iso,
                parts_amount=item.parts_amount,
            )
        except PayloadError as exc:
            return Refusal(item, KIND_PAYLOAD_INVALID, str(exc), dest.shown)
        return Routed(item, payload, dest.url, dest.token, dest.shown)

    def _decide(self, item: ClaimedItem) -> _Destination:
        try:
            token = self._tokens.token(item.partner)
        except ConfigError as exc:
            return _Destination("", None, "", (KIND_PARTNER_UNKNOWN, str(exc)))
        altegio = self._settings.altegio
        url = callback_url(
            item.delivery_callback_url, base_url=altegio.base_url, partner_token=token
        )
        shown = mask_token(mask_url(url), token)
        reason = check_url(
            url, allowed_hosts=altegio.allowed_hosts, insecure_hosts=altegio.insecure_hosts
        ) or check_token_segment(url, token)
        if reason is not None:
            return _Destination(url, None, shown, (KIND_URL_REJECTED, mask_token(reason, token)))
        return _Destination(url, token, shown, None)


def route(item: ClaimedItem, settings: Settings, tokens: PartnerTokens) -> Routed | Refusal:
    """Decide the request for one message, or why there is none."""
    return Router(settings, tokens).route(item)
