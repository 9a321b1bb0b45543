"""What a metrics collector hears from the dispatcher (``pipeline.metrics.stages``).

A hook, not a dependency: the dispatcher calls an optional observer and knows nothing of
Prometheus. Both calls run on the dispatcher's event loop and must not block.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from pipeline.dispatch.model import Resolution


class DispatchObserver(Protocol):
    def request_done(self, seconds: float) -> None:
        """One request to Altegio ended (answered, refused or timed out)."""

    def settled(self, resolutions: Sequence[Resolution]) -> None:
        """What became of claimed messages; those with an ``outcome`` were sent."""
