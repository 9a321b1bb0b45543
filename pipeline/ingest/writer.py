"""Group commit of ingest: concurrent requests' events are appended together, in one
transaction.

A DLR webhook answers only after its events are durable, and a transaction per request
would make the database's commit the server's ceiling. So requests hand their events to one
``pipeline.groupcommit.GroupCommit`` (one queue, one flusher, a thread of its own), which
resolves each request with its own counts. Batches hold up to ``max_events`` events;
``interval_ms`` adds an optional linger before each commit.

One request's bad content must not fail the others that share its commit. When a batch
fails, its requests are retried one at a time, in arrival order, each in its own
transaction: a request whose content the database refuses gets ContentRejected (the server
answers 400 and quarantines it), the others are committed and answered as usual. When the
failure is the database's (``faults.classify_failure``), the rest of the batch gets
WriterUnavailable at once rather than a failing transaction each.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pipeline.db.engine import Database
from pipeline.eventlog import NewEvent, append
from pipeline.groupcommit import GroupCommit, Isolation
from pipeline.ingest.faults import classify_failure, failure_text

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Committed:
    """What happened to one submitter's events."""

    appended: int
    duplicates: int


class WriterUnavailable(Exception):
    """The events were NOT stored (database error, or the writer is stopping).

    The message is safe to answer with; the sender must send again.
    """


class ContentRejected(Exception):
    """The database refused this request's own content: sent again, it would fail again.

    ``error`` and ``detail`` are safe to answer and to quarantine with (no SQL, no
    parameters, no unencodable characters).
    """

    error = "the event log refused this request's content"

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.detail = [{"field": "events", "reason": reason}]


#: Called after each commit with (events in the batch, seconds the transaction took).
CommitObserver = Callable[[int, float], None]


class GroupCommitWriter:
    """Appends requests' events in groups; ``submit`` answers each with its own counts."""

    def __init__(
        self,
        db: Database,
        *,
        interval_ms: int = 0,
        max_events: int = 500,
        on_commit: CommitObserver | None = None,
        before_first: Callable[[], object] | None = None,
    ) -> None:
        self._db = db
        #: Run (in the flusher's thread) before the first append, until it succeeds: the
        #: server records the price tables in force there, so that a database down at
        #: start-up delays it to the first request instead of keeping the server down.
        self._before_first = before_first
        self._group: GroupCommit[Sequence[NewEvent], Committed] = GroupCommit(
            self._append,
            size=len,
            max_size=max_events,
            interval_ms=interval_ms,
            isolate=Isolation(
                own_fault=lambda exc: classify_failure(exc) != "database",
                rejection=_rejection,
                describe=lambda exc: failure_text(exc, 300),
            ),
            on_commit=on_commit,
            name="ingest-group-commit",
            unit="events",
            submitter="requests",
        )

    async def start(self) -> None:
        await self._group.start()

    async def stop(self) -> None:
        """Commit everything already submitted, then end the flusher.

        Failure policy: requests submitted before ``stop`` are committed (or failed) and
        answered; a request arriving after it gets WriterUnavailable (503, send again).
        """
        await self._group.stop()

    @property
    def queued_events(self) -> int:
        """Events submitted and not yet taken into a transaction."""
        return self._group.queued

    @property
    def committing_events(self) -> int:
        """Events in the transaction running now (0 when none is)."""
        return self._group.committing

    async def submit(self, events: Sequence[NewEvent]) -> Committed:
        """Wait until ``events`` are committed; raise WriterUnavailable if they were not."""
        if not events:
            return Committed(0, 0)
        if not self._group.accepting:
            raise WriterUnavailable("the server is shutting down; send again")
        # Failure policy: if the client goes away while we wait, the events are still
        # committed (the flusher owns them now); the sender, having no answer, resends,
        # and the dedup key stores them once.
        return await self._group.submit(events)

    def _append(self, batch: list[Sequence[NewEvent]]) -> list[Committed]:
        """One transaction for the batch (in the flusher's thread); each request's counts.

        If the process dies inside it, nothing of it is stored and no request of it has
        been answered 2xx; each sender resends.
        """
        if self._before_first is not None:
            self._before_first()  # a failure fails this batch like any database failure
            self._before_first = None
        result = append(self._db, [event for events in batch for event in events])
        # append() keeps the first of equal dedup keys, so within a batch the earliest
        # submitter's copy is "appended" and later ones are duplicates, as if in sequence.
        stored = {id(event) for _, event in result.appended}
        counts = []
        for events in batch:
            appended = 0
            for event in events:
                if id(event) in stored:
                    stored.discard(id(event))
                    appended += 1
            counts.append(Committed(appended, len(events) - appended))
        return counts


def _rejection(exc: Exception) -> Exception:
    """What a request whose events were not stored gets, by whose fault it was."""
    if classify_failure(exc) == "content":
        reason = failure_text(exc)
        log.warning("refused a request whose content the event log cannot store: %s", reason)
        return ContentRejected(reason)
    return WriterUnavailable("the event log is unavailable; send again")
