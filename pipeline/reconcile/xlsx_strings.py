"""A workbook's shared-strings table, kept on disk so memory does not grow with it.

Cells name shared strings by index, in any order, so the whole table must be at hand while
the sheet is read. Excel writes every text cell there: an invoice of a million lines with
its own message ids holds millions of strings, hundreds of megabytes as Python text. Here
the text goes to an anonymous temporary file and memory keeps only where each string ends
(8 bytes a string); a cell's string is read back with one ``pread``.
"""

from __future__ import annotations

import os
import tempfile
from array import array

#: Stored for a string longer than the reader keeps: no UTF-8 text is this byte alone.
_TOO_LONG = b"\xff"
_FLUSH_BYTES = 1 << 20


class SharedStrings:
    """Append-only, then indexed; ``None`` stands for a string too long to keep."""

    def __init__(self) -> None:
        # Closed (and so removed) by close(), which the context manager calls.
        self._file = tempfile.TemporaryFile()  # noqa: SIM115
        self._ends = array("q")
        self._size = 0
        self._pending = bytearray()

    def append(self, value: str | None) -> None:
        data = _TOO_LONG if value is None else value.encode("utf-8")
        self._pending += data
        self._size += len(data)
        self._ends.append(self._size)
        if len(self._pending) >= _FLUSH_BYTES:
            self._flush()

    def _flush(self) -> None:
        self._file.write(self._pending)
        self._file.flush()
        self._pending.clear()

    def __len__(self) -> int:
        return len(self._ends)

    def __getitem__(self, index: int) -> str | None:
        if self._pending:
            self._flush()
        start = self._ends[index - 1] if index > 0 else 0
        data = os.pread(self._file.fileno(), self._ends[index] - start, start)
        return None if data == _TOO_LONG else data.decode("utf-8")

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> SharedStrings:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
