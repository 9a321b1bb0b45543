"""Every `smsrecon …` command the README and docs/ show exists, with the options it is shown
with: a renamed command or option fails here instead of at 3 a.m. in a runbook
(docs/operations.md alone shows over 80).

The commands are read from inline code and code blocks; each is resolved through the real
click command tree (subcommands and options), so the check follows the code. Positional
arguments (IDs, files, dates) are placeholders in the docs and are not checked.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import click
import pytest

from pipeline.cli.main import cli

ROOT = Path(__file__).resolve().parent.parent
DOCS = ["README.md", *sorted(f"docs/{p.name}" for p in (ROOT / "docs").glob("*.md"))]
#: Where a command ends on a line: a comment, a shell operator, a closing quote or bracket.
END = re.compile(r"\s#\s|\s#$|&&|\|\||\$\(|[|;>)']|\s2>")
START = re.compile(r"(?:(?<=^)|(?<=[\s`'(]))(?:\.venv/bin/)?smsrecon\s+(?=[a-z-])")


def code_texts(markdown: str) -> list[str]:
    """The lines of fenced code blocks, and every inline code span outside them."""
    texts: list[str] = []
    prose: list[str] = []
    in_block = False
    for line in markdown.splitlines():
        if line.lstrip().startswith("```"):
            in_block = not in_block
            continue
        (texts if in_block else prose).append(line)
    texts += re.findall(r"`([^`\n]+)`", "\n".join(prose))
    return texts


def commands_in(markdown: str) -> list[str]:
    """Each `smsrecon …` invocation, from the command name to where it ends."""
    found = []
    for text in code_texts(markdown):
        for match in START.finditer(text):
            rest = text[match.end() :]
            end = END.search(rest)
            found.append(rest[: end.start()] if end else rest)
    return found


def check(command_line: str) -> str | None:
    """None when every command and option exists; else what does not."""
    try:
        tokens = shlex.split(command_line)
    except ValueError:
        tokens = command_line.split()
    tokens = [t for t in tokens if t not in ("…", "...")]
    command: click.Command = cli
    ctx = click.Context(cli, info_name="smsrecon")
    path = ["smsrecon"]
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if token.startswith("-"):
            name = token.split("=", 1)[0]
            params = {opt for p in command.params for opt in (*p.opts, *p.secondary_opts)}
            if name not in params and name not in ("-h", "--help"):
                return f"{' '.join(path)}: no option {name}"
            takes_value = any(
                name in p.opts and isinstance(p, click.Option) and not p.is_flag
                for p in command.params
            )
            i += 2 if takes_value and "=" not in token else 1
            continue
        if isinstance(command, click.Group):
            if token.isupper() and command is not cli:
                return None  # a placeholder for the subcommand (`report NAME …`)
            sub = command.get_command(ctx, token)
            if sub is None:
                return f"{' '.join(path)}: no command {token}"
            command = sub
            path.append(token)
        i += 1
    return None  # a group named alone (`smsrecon report`) is prose about the group


@pytest.mark.parametrize("doc", DOCS)
def test_every_smsrecon_command_in_the_doc_exists_with_its_options(doc: str) -> None:
    commands = commands_in((ROOT / doc).read_text(encoding="utf-8"))
    problems = [f"{line!r}: {why}" for line in commands if (why := check(line))]
    assert problems == [], "\n".join(problems)


def test_the_checker_catches_a_wrong_command_and_a_wrong_option() -> None:
    assert check("replay --verify --wait") is None
    assert check("--config c.yaml mismatches ack 17 --note x") is None
    assert check("replay --verfy") == "smsrecon replay: no option --verfy"
    assert check("mismatches close 17") == "smsrecon mismatches: no command close"
    assert check("quarantine") is None and check("report NAME --from DATE") is None
    assert check("report billing --form 2026-01-01") == "smsrecon report billing: no option --form"
    found = commands_in("run `smsrecon project && smsrecon dispatch --until-idle` # x\n")
    assert found == ["project ", "dispatch --until-idle"]


def test_the_operations_doc_shows_many_commands() -> None:
    """A change to the extraction that finds nothing would pass vacuously."""
    assert len(commands_in((ROOT / "docs/operations.md").read_text(encoding="utf-8"))) > 40
