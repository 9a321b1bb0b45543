"""Whether this process takes traffic: not before its parts are up, not once it is stopping.

Separate from health: a process that is starting or draining is not unwell, and a
load balancer should simply send its requests elsewhere; a process that is up while the
database is read-only is unwell, and restarting it would not help.
"""

from __future__ import annotations

import threading


class Readiness:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiting: list[str] = []
        self._stopping = False

    def expect(self, part: str) -> None:
        """Not ready until ``part`` (e.g. "writer", "scheduler") says it has started."""
        with self._lock:
            if part not in self._waiting:
                self._waiting.append(part)

    def started(self, part: str) -> None:
        with self._lock:
            if part in self._waiting:
                self._waiting.remove(part)

    def stopping(self) -> None:
        """From now on not ready: the process is shutting down (SIGTERM, or the app's
        on_shutdown), before it drains the requests it has."""
        with self._lock:
            self._stopping = True

    def reasons(self) -> list[dict[str, str]]:
        with self._lock:
            if self._stopping:
                return [{"code": "shutting_down", "message": "the process is shutting down"}]
            return [
                {"code": "starting", "message": f"{part} has not started yet", "part": part}
                for part in self._waiting
            ]
