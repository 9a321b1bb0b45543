"""Typed settings for every part of smsrecon.

Precedence is command-line flag > environment > config file > defaults. We merge those
sources ourselves (rather than through pydantic-settings) so that an error can name where
the bad value came from: the key *and* the file, or the environment variable that set it.
Secrets are never values in the file, only the names of environment variables.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from pipeline.dispatch.urls import check_host_entries
from pipeline.domain import tariffs as tariff_checks
from pipeline.domain.status import KNOWN_STATUSES

ENV_PREFIX = "SMSRECON_"
ENV_CONFIG = "SMSRECON_CONFIG"
#: Shorthand environment variables that map onto a nested key.
ENV_ALIASES = {"SMSRECON_DATABASE_URL": ("database", "url")}
#: Environment variables with the prefix that are not settings.
ENV_NOT_SETTINGS = {ENV_CONFIG, "SMSRECON_TEST_DATABASE_URL"}


class ConfigError(Exception):
    """A configuration problem, already phrased as one line for the user."""


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def parse_duration(value: Any) -> Any:
    """``5``, ``"5s"``, ``"500ms"``, ``"10m"``, ``"24h"``, ``"1d"`` -> seconds (float)."""
    if isinstance(value, str):
        match = _DURATION.match(value)
        if not match:
            raise ValueError("a duration such as 30, '30s', '500ms', '10m', '24h' or '1d'")
        return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    return value


#: Seconds, written as a number or with a unit.
Duration = Annotated[float, BeforeValidator(parse_duration), Field(ge=0)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DatabaseSettings(_Section):
    url: str = "sqlite:///./var/smsrecon.db"
    #: SQLite: how long a writer waits for the lock before failing (milliseconds).
    sqlite_busy_timeout_ms: int = Field(default=30_000, ge=0)
    #: PostgreSQL connection pool size per process.
    pool_size: int = Field(default=5, ge=1)


class LoggingSettings(_Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    format: Literal["text", "json"] = "text"


#: What an environment variable's name may look like (POSIX, any case).
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
#: Shortest secret accepted: a shorter one is guessable, and masking it in logs would
#: hide that many characters inside every word.
MIN_SECRET_LENGTH = 8


def _check_env_name(value: str) -> str:
    # Never echo the value: whoever puts a secret where its variable's name belongs must
    # not see it printed in the error.
    if not _ENV_NAME.fullmatch(value):
        raise ValueError(
            "the value is not a valid environment variable name (letters, digits and _, "
            "not starting with a digit); name the variable that holds the secret, never "
            "write the secret itself"
        )
    return value


#: The name of an environment variable that holds a secret (keys ending in ``_env``).
EnvName = Annotated[str, AfterValidator(_check_env_name)]


def _check_cidr(value: str) -> str:
    import ipaddress

    try:
        ipaddress.ip_network(value, strict=True)
    except ValueError:
        raise ValueError(
            "not a CIDR such as 10.0.0.0/8 or 2001:db8::/32 (with no host bits set)"
        ) from None
    return value


Cidr = Annotated[str, AfterValidator(_check_cidr)]


class _RouteAuth(_Section):
    """Shared by every route's auth block: a secret's variable and a peer allow-list."""

    type: str = "none"
    secret_env: EnvName | None = None
    #: Peer addresses (CIDRs) allowed; with type ip the only check, else on top of it.
    allow_ips: list[Cidr] = []

    @model_validator(mode="after")
    def _allow_list_fits_the_type(self) -> _RouteAuth:
        if self.type == "ip" and not self.allow_ips:
            raise ValueError("type ip needs allow_ips (a list of CIDRs)")
        if self.type == "none" and self.allow_ips:
            raise ValueError("allow_ips with type none: use type ip")
        return self


class CarrierAuth(_RouteAuth):
    type: Literal["none", "ip", "token", "basic", "hmac", "twilio"] = "none"


class InvoiceColumns(_Section):
    """Our invoice field -> the file's column (or JSON key) name; unset fields keep ours."""

    invoice_id: str = "invoice_id"
    carrier_message_id: str = "carrier_message_id"
    message_id: str = "message_id"
    billed_at: str = "billed_at"
    destination: str = "destination"
    parts: str = "parts"
    cost: str = "cost"
    currency: str = "currency"
    total: str = "total"


class InvoiceSettings(_Section):
    """How a carrier's invoice files are laid out (``reconcile import-invoice``)."""

    columns: InvoiceColumns = InvoiceColumns()
    delimiter: str = Field(default=",", min_length=1, max_length=1)
    decimal_separator: Literal[".", ","] = "."
    #: ``strptime`` format of billed_at; unset = ISO 8601.
    date_format: str | None = None
    #: Zone of billed_at times written without one.
    timezone: str = "UTC"
    #: Currency of lines that name none; unset = each line names its own.
    currency: str | None = Field(default=None, pattern=r"^[A-Z]{3}$")


def _tolerance_amount(value: Any) -> Decimal:
    """A tolerance bound: a quoted decimal, 0 or more (a YAML float is refused, as prices)."""
    if isinstance(value, float):
        raise ValueError("write the tolerance quoted, e.g. '0.01' (a YAML float is inexact)")
    if isinstance(value, bool) or not isinstance(value, (str, int, Decimal)):
        raise ValueError("a decimal written quoted, e.g. '0.01'")
    try:
        amount = Decimal(str(value).strip())
    except ArithmeticError:
        raise ValueError(f"not a decimal: {str(value)[:20]!r}") from None
    if not amount.is_finite() or amount < 0 or amount.adjusted() > 12:
        raise ValueError("must be a decimal from 0 up to below 10^13")
    return amount


ToleranceAmount = Annotated[Decimal, BeforeValidator(_tolerance_amount)]


class CarrierTolerance(_Section):
    """How far two carrier costs may differ and still agree (pipeline.domain.tolerance):
    ``|a - b| <= max(abs, rel * max(|a|, |b|))``. The default, 0 and 0, is exact."""

    abs: ToleranceAmount = Decimal(0)
    rel: ToleranceAmount = Decimal(0)


class CarrierRate(_Section):
    """One ``carriers.<name>.rates`` entry: what the carrier charges per part, chosen as a
    ``billing.tariffs`` entry is (longest prefix, validity on ``accepted_at``)."""

    prefix: Annotated[str, BeforeValidator(tariff_checks.check_prefix)]
    price_per_part: Annotated[Decimal, BeforeValidator(tariff_checks.check_price)]
    currency: Annotated[str, BeforeValidator(tariff_checks.check_currency)]
    valid_from: Annotated[datetime | None, BeforeValidator(tariff_checks.check_time)] = None
    valid_to: Annotated[datetime | None, BeforeValidator(tariff_checks.check_time)] = None

    # A rate card is the carrier's, whoever sold the message: no partner, channel or
    # dispatch-type qualifier (these read as unset for the TariffSettings protocol).
    @property
    def partner(self) -> None:
        return None

    @property
    def channel(self) -> None:
        return None

    @property
    def dispatch_type(self) -> None:
        return None

    @model_validator(mode="after")
    def _window_not_empty(self) -> CarrierRate:
        if self.valid_from and self.valid_to and not self.valid_from < self.valid_to:
            raise ValueError("valid_to must be after valid_from")
        return self


class CarrierSettings(_Section):
    format: Literal["kannel", "jasmin", "smpp", "infobip", "vonage", "twilio", "generic"]
    auth: CarrierAuth = CarrierAuth()
    #: Zone for carrier times that carry none (SMPP/Kannel dates).
    timezone: str = "UTC"
    #: Layout of this carrier's invoice files (docs/reconciliation.md).
    invoice: InvoiceSettings = InvoiceSettings()
    #: How far invoiced, reported and expected costs may differ and still agree.
    tolerance: CarrierTolerance = CarrierTolerance()
    #: The buy-side rate card, in configured order (the order breaks the last tie).
    rates: list[CarrierRate] = []
    #: submitted: every submitted message is charged; delivered: only delivered ones.
    charge_on: Literal["submitted", "delivered"] = "submitted"


class SendPathAuth(_RouteAuth):
    """Credentials the provider's own send path presents on /v1/messages, /v1/submissions
    and /v1/refusals (Twilio's scheme is a carrier's, not ours)."""

    type: Literal["none", "ip", "token", "basic", "hmac"] = "none"


class MetricsAuth(_RouteAuth):
    """What a scraper presents on /metrics (Prometheus can send a Bearer token or Basic)."""

    type: Literal["none", "ip", "token", "basic"] = "none"


def _positive_amount(value: Any) -> Decimal:
    """A quoted decimal above zero (as tariff prices: a YAML float is refused)."""
    if isinstance(value, float):
        raise ValueError("write the amount quoted, e.g. '100000' (a YAML float is inexact)")
    try:
        amount = Decimal(str(value))
    except ArithmeticError:
        raise ValueError(f"not a decimal amount: {str(value)[:20]!r}") from None
    if not amount.is_finite() or amount <= 0 or amount.adjusted() > 12:
        raise ValueError("must be a decimal above 0 and below 10^13")
    return amount


class IngestSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    max_body_bytes: int = Field(default=1_048_576, ge=1)
    #: Group commit: an idle writer commits at once and batches form while a commit runs;
    #: above 0, it first lingers this many milliseconds for more events...
    commit_interval_ms: int = Field(default=0, ge=0)
    #: ...and no transaction takes more than this many events (one request's are never split).
    commit_max_events: int = Field(default=500, ge=1)
    auth: SendPathAuth = SendPathAuth()
    #: How far an hmac request's timestamp may be from our clock (either way).
    signature_window: Duration = 300.0
    #: Serve a route without auth on a non-loopback address (else serve and run refuse).
    allow_unauthenticated: bool = False
    metrics_auth: MetricsAuth = MetricsAuth()
    #: Times of a report or record outside these years are refused (400, quarantined).
    min_year: int = Field(default=2000, ge=1900, le=9998)
    max_year: int = Field(default=2100, ge=1901, le=9998)
    #: A price or cost above this (in any currency) is refused as implausible.
    max_amount: Annotated[Decimal, BeforeValidator(_positive_amount)] = Decimal("100000")
    #: A quarantined request larger than this (body, query and headers) is not kept.
    quarantine_max_entry_bytes: int = Field(default=65_536, ge=1024)
    #: At most this many open quarantine entries; beyond it refusals are answered, not kept.
    quarantine_max_open_entries: int = Field(default=10_000, ge=1)

    @model_validator(mode="after")
    def _years_in_order(self) -> IngestSettings:
        if self.min_year > self.max_year:
            raise ValueError("min_year must not be after max_year")
        return self


class ProjectorSettings(_Section):
    batch_size: int = Field(default=5_000, ge=1)
    #: Event time after which an uncorrelated report becomes an unknown_message mismatch.
    correlation_grace: Duration = 600.0
    #: Event time after which a message accepted and not final is a ``stale`` mismatch.
    stale_after: Duration = 259_200.0


class Tariff(_Section):
    """One ``billing.tariffs`` entry; the checks are those of pipeline.domain.tariffs.

    ``price_per_part`` is written quoted ('0.0333'): an unquoted YAML 0.1 is a binary float,
    refused rather than rounded. Times are RFC 3339 with a zone and become UTC.
    """

    partner: str | None = None
    channel: Literal["sms", "whatsapp"] | None = None
    dispatch_type: Literal["service", "adds"] | None = None
    prefix: Annotated[str, BeforeValidator(tariff_checks.check_prefix)]
    price_per_part: Annotated[Decimal, BeforeValidator(tariff_checks.check_price)]
    currency: Annotated[str, BeforeValidator(tariff_checks.check_currency)]
    valid_from: Annotated[datetime | None, BeforeValidator(tariff_checks.check_time)] = None
    valid_to: Annotated[datetime | None, BeforeValidator(tariff_checks.check_time)] = None

    @model_validator(mode="after")
    def _window_not_empty(self) -> Tariff:
        if self.valid_from and self.valid_to and not self.valid_from < self.valid_to:
            raise ValueError("valid_to must be after valid_from")
        return self


#: The Altegio status codes (contract: 1, 2, 4, 8, 16, 52).
ALTEGIO_STATUSES = KNOWN_STATUSES


def _altegio_statuses(value: list[int]) -> list[int]:
    unknown = sorted(set(value) - ALTEGIO_STATUSES)
    if unknown:
        raise ValueError(f"{unknown} not Altegio status codes (1, 2, 4, 8, 16, 52)")
    return value


class BillingSettings(_Section):
    #: The one rounding of a message total to the currency's minor unit.
    rounding: Literal["half_up", "half_even", "down", "up"] = "half_up"
    #: Statuses billed 0 (16 rejected by the operator, 52 not enough funds).
    non_chargeable_statuses: Annotated[list[int], AfterValidator(_altegio_statuses)] = [16, 52]
    #: In configured order: the order breaks the last tie of tariff selection.
    tariffs: list[Tariff] = []


class FinanceSettings(_Section):
    #: The currency margins are reported in (ISO 4217), converted at the day's fx.rate.
    reporting_currency: Annotated[str, BeforeValidator(tariff_checks.check_currency)] = "EUR"


class SchedulerSettings(_Section):
    project_interval: Duration = 5.0
    dispatch_interval: Duration = 2.0
    misfire_grace_time: Duration = 30.0


class DispatcherSettings(_Section):
    batch_size: int = Field(default=100, ge=1)
    concurrency: int = Field(default=4, ge=1)
    per_host_concurrency: int = Field(default=4, ge=1)
    timeout: Duration = 10.0
    lease: Duration = 60.0
    backoff_base: Duration = 5.0
    backoff_cap: Duration = 3600.0
    max_age: Duration = 86_400.0
    auth_cooldown: Duration = 600.0
    send_intermediate: bool = True
    body_shape: Literal["array", "object"] = "array"


class HealthSettings(_Section):
    """What ``/healthz`` holds the pipeline to (see docs/operations.md)."""

    #: Positions in the log after the projector's checkpoint before /healthz says 503.
    max_lag_events: int = Field(default=100_000, ge=1)
    #: Age of the oldest event the projector has not folded yet, before /healthz says 503.
    max_lag_seconds: Duration = 300.0
    #: Age of the oldest delivery still waiting to reach Altegio, before /healthz says 503.
    max_dispatch_age: Duration = 3600.0
    #: SQLite: free bytes under the database's directory below which the disk counts as full.
    min_free_bytes: int = Field(default=536_870_912, ge=0)
    #: How long the write probe waits for a lock before the database counts as locked
    #: (above the longest write transaction, e.g. a projector batch on SQLite).
    probe_timeout: Duration = 5.0
    #: How long one health answer is reused (one computation at a time, off the event loop).
    cache_seconds: Duration = 1.0


class GrowthSettings(_Section):
    """Monthly partitions of the log on PostgreSQL (docs/operations.md)."""

    #: Partitions kept ready beyond the current month.
    partitions_ahead: int = Field(default=3, ge=0, le=120)
    #: How often ``smsrecon run`` checks that they exist.
    partition_check_interval: Duration = Field(default=3600.0, ge=60)


class PartnerSettings(_Section):
    token_env: EnvName


#: ``host`` or ``host:port`` entries (``[v6]:port`` for IPv6), checked when settings load.
HostEntries = Annotated[list[str], AfterValidator(check_host_entries)]


class AltegioSettings(_Section):
    base_url: str = "https://app.alteg.io"
    #: https only, on port 443 unless the entry names another (``app.alteg.io:8443``).
    allowed_hosts: HostEntries = ["app.alteg.io"]
    #: plain http, on any port unless the entry names one (loopback sandboxes only).
    insecure_hosts: HostEntries = []
    partners: dict[str, PartnerSettings] = {}


class DashboardAuth(_RouteAuth):
    """What a browser presents on /dashboard: a token (``?token=`` once, then a cookie, or
    ``Authorization: Bearer``), HTTP Basic (any user name, the secret as password), or only
    an address in ``allow_ips`` (type ip)."""

    type: Literal["none", "ip", "token", "basic"] = "none"


class DashboardSettings(_Section):
    """The read-only finance dashboard (docs/dashboard.md)."""

    #: Where ``smsrecon dashboard`` listens (``smsrecon run`` serves it on ingest's port).
    host: str = "127.0.0.1"
    port: int = Field(default=8090, ge=0, le=65535)
    #: Without auth the dashboard refuses any address but loopback.
    auth: DashboardAuth = DashboardAuth()
    #: Serve /dashboard from ``smsrecon run`` too.
    with_run: bool = True
    #: Seconds a page's figures are reused while the projection has not moved (0: never).
    cache_seconds: Duration = 30.0


class Settings(_Section):
    database: DatabaseSettings = DatabaseSettings()
    logging: LoggingSettings = LoggingSettings()
    ingest: IngestSettings = IngestSettings()
    carriers: dict[str, CarrierSettings] = {}
    projector: ProjectorSettings = ProjectorSettings()
    billing: BillingSettings = BillingSettings()
    finance: FinanceSettings = FinanceSettings()
    scheduler: SchedulerSettings = SchedulerSettings()
    dispatcher: DispatcherSettings = DispatcherSettings()
    altegio: AltegioSettings = AltegioSettings()
    dashboard: DashboardSettings = DashboardSettings()
    health: HealthSettings = HealthSettings()
    growth: GrowthSettings = GrowthSettings()

    #: Where the file part came from (None: defaults only). Not a setting.
    source_file: str | None = Field(default=None, exclude=True)

    def secret(self, env_name: str, key: str) -> str:
        """The value of a secret named by ``key`` (e.g. ``altegio.partners.x.token_env``).

        Raised as a ConfigError naming the key and the file, never printing the value.
        """
        value = os.environ.get(env_name)
        where = self.source_file or "defaults"
        if not value:
            raise ConfigError(
                f"{where}: {key}: environment variable {env_name} is not set (it holds a secret)"
            )
        if len(value) < MIN_SECRET_LENGTH:
            raise ConfigError(
                f"{where}: {key}: the secret in environment variable {env_name} is shorter "
                f"than {MIN_SECRET_LENGTH} characters; use a longer one"
            )
        from pipeline.logsafe import register_secret

        register_secret(value)  # from now on masked in every log record of this process
        return value


def resolve_config_path(flag: str | None, environ: Mapping[str, str] | None = None) -> Path | None:
    """``--config`` flag, else ``$SMSRECON_CONFIG``, else ``./config.yaml`` if it exists."""
    environ = os.environ if environ is None else environ
    if flag:
        return Path(flag)
    if environ.get(ENV_CONFIG):
        return Path(environ[ENV_CONFIG])
    default = Path("config.yaml")
    return default if default.exists() else None


def _env_value(raw: str) -> Any:
    """Environment values are strings; JSON-looking ones (lists, objects) are parsed."""
    stripped = raw.strip()
    if stripped[:1] in "[{":
        try:
            return json.loads(stripped)
        except json.JSONDecodeError:
            return raw
    return raw


def _set_path(tree: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    node = tree
    for part in path[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    node[path[-1]] = value


def _env_overrides(environ: Mapping[str, str]) -> tuple[dict[str, Any], dict[tuple[str, ...], str]]:
    tree: dict[str, Any] = {}
    origin: dict[tuple[str, ...], str] = {}
    for name, raw in sorted(environ.items()):
        if not name.startswith(ENV_PREFIX) or name in ENV_NOT_SETTINGS:
            continue
        if name in ENV_ALIASES:
            path = ENV_ALIASES[name]
        else:
            rest = name[len(ENV_PREFIX) :]
            if "__" not in rest:
                continue  # not a setting (e.g. a secret named by *_env)
            path = tuple(part.lower() for part in rest.split("__"))
        _set_path(tree, path, _env_value(raw))
        origin[path] = name
    return tree, origin


def _merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _read_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the config file: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        problem = getattr(exc, "problem", exc)
        raise ConfigError(f"{path}: not valid YAML{where}: {problem}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of sections")
    return data


def load_settings(
    config_path: str | Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Build Settings from defaults < file < environment < ``overrides`` (dotted keys)."""
    environ = os.environ if environ is None else environ
    path = Path(config_path) if config_path else resolve_config_path(None, environ)
    tree = _read_file(path) if path else {}
    env_tree, env_origin = _env_overrides(environ)
    tree = _merge(tree, env_tree)
    flag_origin: dict[tuple[str, ...], str] = {}
    for dotted, value in (overrides or {}).items():
        if value is None:
            continue
        key = tuple(dotted.split("."))
        _set_path(tree, key, value)
        flag_origin[key] = "command-line flag"
    try:
        settings = Settings.model_validate(tree)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = tuple(str(p) for p in err["loc"])
        dotted = ".".join(loc)
        source = _origin(loc, flag_origin, env_origin, path)
        msg = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
        more = f" (and {len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
        raise ConfigError(f"{source}: {dotted}: {msg}{more}") from None
    return settings.model_copy(update={"source_file": str(path) if path else None})


def _origin(
    loc: tuple[str, ...],
    flags: Mapping[tuple[str, ...], str],
    env: Mapping[tuple[str, ...], str],
    path: Path | None,
) -> str:
    for i in range(len(loc), 0, -1):
        if loc[:i] in flags:
            return flags[loc[:i]]
        if loc[:i] in env:
            return f"environment {env[loc[:i]]}"
    return str(path) if path else "defaults"
