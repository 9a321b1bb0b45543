"""``smsrecon db backup``: an online, consistent copy of the database in one file.

What is the same on both engines lives here: an existing file is never overwritten unless
asked, and the copy is written under ``FILE.partial``, flushed to disk and only then renamed
to ``FILE``. Failure policy: if the process dies mid-copy, only ``FILE.partial`` is left
(the next backup overwrites it); a file under the final name is always a whole backup. How
the copy is taken is the backend's (``Backend.copy_database``): SQLite's online backup API,
or ``pg_dump`` in one exported snapshot.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from pipeline.db.engine import Database


class BackupError(RuntimeError):
    """The copy could not be taken; the message is safe to print (never a password)."""


class BackupToolMissing(BackupError):
    """A program the copy needs (``pg_dump``) is not installed."""


class BackupExists(BackupError):
    """The target file exists and overwriting was not asked for."""


@dataclass(frozen=True)
class BackupResult:
    path: Path
    size: int
    #: The highest log position in the copy (0 for an empty log).
    head: int
    #: How to put the copy back, for the operator (never with a password).
    restore: str

    def line(self) -> str:
        return f"backed up to {self.path}: {self.size} bytes, log head at position {self.head}"


def partial_path(target: Path) -> Path:
    return target.with_name(target.name + ".partial")


def back_up(db: Database, target: Path, *, force: bool = False) -> BackupResult:
    """Copy ``db`` to ``target`` while it stays in use; raises BackupError."""
    if target.exists() and not force:
        raise BackupExists(f"{target} exists; pass --force to overwrite it")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = partial_path(target)
    partial.unlink(missing_ok=True)  # a leftover of a backup that died
    try:
        head = db.backend.copy_database(db, partial)
        _flush(partial)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    os.replace(partial, target)
    _flush_directory(target.parent)
    return BackupResult(
        path=target,
        size=target.stat().st_size,
        head=head,
        restore=db.backend.restore_hint(db, target),
    )


def _flush(path: Path) -> None:
    # The rename must not reach the disk before the data it names does.
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def _flush_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
