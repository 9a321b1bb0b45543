"""Running PostgreSQL's client programs (``pg_dump``) without showing the password.

libpq reads the password from ``PGPASSWORD``, so the URL handed to a program on its command
line (which ``ps`` shows to every user of the machine) carries none, and neither does any
text printed for the operator.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
from pathlib import Path

from sqlalchemy.engine import URL

from pipeline.db.backup import BackupError, BackupToolMissing


def find_tool(name: str) -> str:
    """``name`` on PATH, else the newest under /usr/lib/postgresql/*/bin (Debian's place)."""
    found = shutil.which(name)
    if found:
        return found
    for bindir in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        candidate = Path(bindir) / name
        if candidate.exists():
            return str(candidate)
    raise BackupToolMissing(f"{name} not found on PATH or under /usr/lib/postgresql/*/bin")


def libpq_url(url: URL) -> str:
    """``url`` as libpq takes it (no ``+psycopg``), without the password."""
    # Built afresh: ``URL.set`` reads ``password=None`` as "leave it as it is".
    plain = URL.create(
        "postgresql",
        username=url.username,
        host=url.host,
        port=url.port,
        database=url.database,
        query=url.query,
    )
    return plain.render_as_string(hide_password=False)


def libpq_env(url: URL) -> dict[str, str]:
    env = dict(os.environ)
    if url.password is not None:
        env["PGPASSWORD"] = str(url.password)
    return env


def dump(url: URL, path: Path, *, snapshot: str) -> None:
    """``pg_dump --format=custom`` of ``url`` to ``path``, as of the exported ``snapshot``."""
    command = [
        find_tool("pg_dump"),
        "--format=custom",
        f"--snapshot={snapshot}",
        f"--file={path}",
        libpq_url(url),
    ]
    result = subprocess.run(command, env=libpq_env(url), capture_output=True, text=True)
    if result.returncode != 0:
        lines = result.stderr.strip().splitlines()
        reason = lines[0] if lines else f"exit code {result.returncode}"
        password = url.password
        if password:  # libpq does not echo it, but be certain
            reason = reason.replace(str(password), "***")
        raise BackupError(f"pg_dump failed: {reason}")
