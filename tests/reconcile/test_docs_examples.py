"""The worked examples of docs/reconciliation.md, run as written on both engines.

Each ``###`` example under "Worked examples by carrier style" has a ``yaml config`` block
(config.yaml), a sample file (``text file=NAME``, written as is, or ``text sheet=NAME``, a
sheet turned into an .xlsx), a ``console`` block (each ``$ smsrecon …`` command and the lines
it prints) and a ``json events`` block (the resulting lines, then the header).
"""

from __future__ import annotations

import hashlib
import json
import re
import shlex
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from pipeline.cli.main import cli
from pipeline.db.engine import Database
from tests.ingest.server_fixtures import stored_events
from tests.reconcile.xlsx_files import replace_in_sheet, write_xlsx

DOC = Path(__file__).resolve().parents[2] / "docs" / "reconciliation.md"
_BLOCK = re.compile(r"^```(\w+)([^\n]*)\n(.*?)^```$", re.S | re.M)
_DATE_CELL = re.compile(r"\d{2}\.\d{2}\.\d{4} \d{2}:\d{2}")
_NUMBER_CELL = re.compile(r"-?\d+(\.\d+)?")


def examples() -> dict[str, list[tuple[str, str, str]]]:
    """Title -> the example's fenced blocks as (language, info, body)."""
    text = DOC.read_text()
    section = text.split("## Worked examples by carrier style", 1)[1]
    found = {}
    for part in section.split("\n### ")[1:]:
        title, _, body = part.partition("\n")
        found[title.strip()] = [
            (m.group(1), m.group(2).strip(), m.group(3)) for m in _BLOCK.finditer(body)
        ]
    return found


EXAMPLES = examples()


def test_the_doc_has_the_four_carrier_styles() -> None:
    assert len(EXAMPLES) == 4
    for title, blocks in EXAMPLES.items():
        kinds = [(lang, info.split("=")[0]) for lang, info, _ in blocks]
        assert ("yaml", "config") in kinds and ("console", "") in kinds, title
        assert ("json", "events") in kinds, title
        assert ("text", "file") in kinds or ("text", "sheet") in kinds, title


def sheet_cell(text: str) -> Any:
    """A cell as the doc writes it: "…" text, a bare number a number, a bare date a date."""
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] == '"':
        return text[1:-1]
    if _DATE_CELL.fullmatch(text):
        return datetime.strptime(text, "%d.%m.%Y %H:%M")
    if _NUMBER_CELL.fullmatch(text):
        return float(text)  # what a spreadsheet holds; the reader must get the decimal back
    return text


def write_sample(tmp_path: Path, info: str, body: str) -> Path:
    kind, _, name = info.partition("=")
    path = tmp_path / name
    if kind == "file":
        path.write_bytes(body.encode())
        return path
    rows = [[sheet_cell(c) for c in line.split("|")] for line in body.splitlines()]
    write_xlsx(path, rows, date_format="dd.mm.yyyy hh:mm")
    if "<v>0.035</v>" in (stored := _sheet_xml(path)):
        assert stored.count("<v>0.035</v>") == 1
        replace_in_sheet(path, "<v>0.035</v>", "<v>3.5000000000000003E-2</v>")
    return path


def _sheet_xml(path: Path) -> str:
    import zipfile

    with zipfile.ZipFile(path) as book:
        return book.read("xl/worksheets/sheet1.xml").decode()


def commands(body: str) -> list[tuple[list[str], list[str]]]:
    """Each ``$ smsrecon …`` command's arguments and the lines printed after it."""
    found: list[tuple[list[str], list[str]]] = []
    for line in body.splitlines():
        if line.startswith("$ "):
            words = shlex.split(line[2:])
            assert words[0] == "smsrecon", line
            found.append((words[1:], []))
        elif line.strip():
            found[-1][1].append(line)
    return found


def stored(db: Database) -> list[dict[str, Any]]:
    lines = [
        {"occurred_at": r.occurred_at.strftime("%Y-%m-%dT%H:%M:%SZ"), **r.payload}
        for r in stored_events(db, "carrier.invoiced")
    ]
    return lines + [r.payload for r in stored_events(db, "carrier.invoice")]


@pytest.mark.parametrize("title", list(EXAMPLES))
def test_a_worked_example_is_true(
    title: str, db: Database, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocks = EXAMPLES[title]
    config = next(body for lang, info, body in blocks if (lang, info) == ("yaml", "config"))
    (tmp_path / "config.yaml").write_text(config)
    sample = next(
        write_sample(tmp_path, info, body)
        for lang, info, body in blocks
        if lang == "text" and info.split("=")[0] in ("file", "sheet")
    )
    monkeypatch.chdir(tmp_path)
    console = next(body for lang, _info, body in blocks if lang == "console")
    for arguments, printed in commands(console):
        result = CliRunner().invoke(
            cli,
            ["--config", "config.yaml", "--database-url", db_url, *arguments],
            catch_exceptions=False,
        )
        assert result.exit_code == 0, result.output
        for line in printed:
            assert line in result.output.splitlines(), (line, result.output)
    events = next(body for lang, info, body in blocks if (lang, info) == ("json", "events"))
    expected = [json.loads(line) for line in events.splitlines() if line.strip()]
    assert expected[-1]["sha256"] == "…"
    expected[-1]["sha256"] = hashlib.sha256(sample.read_bytes()).hexdigest()
    assert stored(db) == expected
