"""Named crash points on the projector's commit path, so crash safety is tested exactly.

A kill at a random moment only sometimes lands between two writes of a batch, and less
often the busier the machine is. With ``SMSRECON_CRASH_AT=<point>[:<n>]`` in its
environment, the process instead kills itself with SIGKILL the ``n``-th time (default: the
first) it reaches ``point``: no ``finally``, no rollback sent, no lock released by Python,
exactly as a real kill at that instant. The points, in the order a batch passes them:

* ``event_folded``: after each event is folded (mismatch rows it opened are written, the
  rest of the batch is not);
* ``batch_folded``: every event of the batch folded, nothing else written;
* ``state_rows_written``: the batch's message_state rows written, its correlations and
  held reports not;
* ``rows_written``: every projection row written, the checkpoint not;
* ``checkpoint_written``: the checkpoint written, the transaction not committed;
* ``batch_committed``: the batch committed, the next one not begun.

Unset, as everywhere outside the crash tests, ``reached`` returns at once. The variable is
read once, when the module is imported; an unknown point name is refused then.
"""

from __future__ import annotations

import os
import signal

ENV = "SMSRECON_CRASH_AT"
POINTS = (
    "event_folded",
    "batch_folded",
    "state_rows_written",
    "rows_written",
    "checkpoint_written",
    "batch_committed",
)


def _plan(spec: str | None) -> tuple[str, int] | None:
    if not spec:
        return None
    point, _, nth = spec.partition(":")
    if point not in POINTS or not (nth or "1").isdigit() or int(nth or 1) < 1:
        raise ValueError(f"{ENV}={spec!r}: expected <point>[:<n>], a point of {POINTS}")
    return point, int(nth or 1)


_PLAN = _plan(os.environ.get(ENV))
_count = 0


def reached(point: str) -> None:
    """Die here by SIGKILL if this is the planned crash point's planned passage."""
    global _count
    if _PLAN is None or point != _PLAN[0]:
        return
    _count += 1
    if _count == _PLAN[1]:
        os.kill(os.getpid(), signal.SIGKILL)
