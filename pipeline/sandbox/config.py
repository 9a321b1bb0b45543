"""What a sandbox is started with: known tokens, refusals to stage, faults, latency, shape."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

#: Fault kinds a spec may name. ``429`` alternates the two ``Retry-After`` forms (seconds,
#: then an HTTP-date); ``429s`` and ``429date`` always use one form.
FAULT_KINDS: tuple[str, ...] = ("500", "502", "503", "429", "429s", "429date", "hang", "reset")


class SandboxConfigError(ValueError):
    """A sandbox option that cannot work (said in one line, without any token)."""


def parse_fault_spec(spec: str | None) -> dict[str, float]:
    """``"500=0.05,429=0.05,hang=0.02"`` -> ``{"500": 0.05, "429": 0.05, "hang": 0.02}``.

    Rates are probabilities per request; their sum must not exceed 1. An empty spec means no
    faults.
    """
    rates: dict[str, float] = {}
    if spec is None or not spec.strip():
        return rates
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        kind, sep, value = part.partition("=")
        kind = kind.strip().lower()
        if not sep:
            raise SandboxConfigError(f"fault {part!r}: expected KIND=RATE")
        if kind not in FAULT_KINDS:
            raise SandboxConfigError(
                f"fault kind {kind!r} is unknown (one of {', '.join(FAULT_KINDS)})"
            )
        if kind in rates:
            raise SandboxConfigError(f"fault kind {kind!r} is given twice")
        try:
            rate = float(value)
        except ValueError:
            raise SandboxConfigError(
                f"fault {kind}: rate {value.strip()!r} is not a number"
            ) from None
        rates[kind] = rate
    return validate_fault_rates(rates)


def validate_fault_rates(rates: Mapping[str, float]) -> dict[str, float]:
    for kind, rate in rates.items():
        if kind not in FAULT_KINDS:
            raise SandboxConfigError(f"fault kind {kind!r} is unknown")
        if not math.isfinite(rate) or not 0.0 <= rate <= 1.0:
            raise SandboxConfigError(f"fault {kind}: rate must be between 0 and 1, got {rate}")
    total = sum(rates.values())
    if total > 1.0 + 1e-9:
        raise SandboxConfigError(f"fault rates add up to {total:g}, more than 1")
    return dict(rates)


@dataclass(frozen=True)
class SandboxConfig:
    """Everything a sandbox instance needs; tests build one directly.

    ``tokens`` are the partner tokens Altegio knows; ``forbidden_tokens`` are known tokens
    whose application lacks the permission (403, code 15); ``unknown_ids`` are message ids
    Altegio does not know (404, code 30). ``faults`` maps a kind of ``FAULT_KINDS`` to its
    rate, drawn per request from a ``random.Random(seed)`` in arrival order, so a run is
    reproducible. ``hang_ms`` bounds a hang (the answer after it is a 504, if anyone still
    listens); ``retry_after_s`` is what a 429 asks for.
    """

    tokens: tuple[str, ...]
    forbidden_tokens: tuple[str, ...] = ()
    unknown_ids: frozenset[str] = frozenset()
    faults: Mapping[str, float] = field(default_factory=dict)
    latency_ms: int = 0
    hang_ms: int = 30_000
    retry_after_s: int = 1
    seed: int = 0
    shape: Literal["array", "object"] = "array"

    def __post_init__(self) -> None:
        if isinstance(self.tokens, str):
            raise SandboxConfigError("tokens must be a sequence of tokens, not one string")
        object.__setattr__(self, "tokens", tuple(self.tokens))
        object.__setattr__(self, "forbidden_tokens", tuple(self.forbidden_tokens))
        object.__setattr__(self, "unknown_ids", frozenset(self.unknown_ids))
        if not self.tokens and not self.forbidden_tokens:
            raise SandboxConfigError("at least one --token is needed")
        if any(not t for t in (*self.tokens, *self.forbidden_tokens)):
            raise SandboxConfigError("a token must not be empty")
        if set(self.tokens) & set(self.forbidden_tokens):
            raise SandboxConfigError("a token cannot be both accepted and forbidden")
        faults = validate_fault_rates(self.faults)
        object.__setattr__(self, "faults", MappingProxyType(faults))
        if self.latency_ms < 0 or self.hang_ms < 0 or self.retry_after_s < 0:
            raise SandboxConfigError("latency, hang and Retry-After must be >= 0")
        if self.shape not in ("array", "object"):
            raise SandboxConfigError(f"shape must be 'array' or 'object', got {self.shape!r}")

    def token_label(self, token: str) -> str:
        """A name for a token that is safe to show: ``token#1`` for the first ``--token``."""
        for number, known in enumerate((*self.tokens, *self.forbidden_tokens), start=1):
            if known == token:
                return f"token#{number}"
        return "token#?"
