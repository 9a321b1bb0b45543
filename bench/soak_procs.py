"""The soak's processes: the Altegio sandbox and ``smsrecon run``, and what /proc says of them.

Both are real subprocesses started the way an operator starts them (``python -m pipeline``),
so what is sampled is the memory and the descriptors of the very process that serves
ingest and runs the scheduled projector and dispatcher.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    """A port free now, so ``run`` can come back on the same address after its restart
    (the traffic's keep-alive connections break, new ones find it again)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def pipeline_command(config: Path, database_url: str, *args: str) -> list[str]:
    head = [sys.executable, "-m", "pipeline", "--config", str(config)]
    return [*head, "--database-url", database_url, *args]


class Sandbox:
    """``smsrecon sandbox`` with faults, in its own process."""

    def __init__(self, token: str, faults: str, hang_ms: int, seed: int) -> None:
        command = [sys.executable, "-m", "pipeline", "sandbox", "--port", "0", "--token", token]
        command += ["--faults", faults, "--hang-ms", str(hang_ms), "--seed", str(seed)]
        self.process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=ROOT
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        match = re.search(r"listening on (http://\S+)", line)
        if not match:
            self.process.kill()
            raise SystemExit(f"the sandbox did not start: {line.strip()!r}")
        self.url = match.group(1)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@dataclass
class Lifetime:
    """One ``run`` process from start to exit."""

    number: int
    pid: int
    started: float  # monotonic
    ready: float  # monotonic, when the banner was printed
    stopped: float | None = None
    returncode: int | None = None
    clean: bool | None = None
    stderr_tail: list[str] = field(default_factory=list)


class RunProcess:
    """``smsrecon run`` on a fixed port; stopped with SIGTERM and started again on demand."""

    def __init__(self, config: Path, database_url: str, port: int, env: dict[str, str]) -> None:
        self.command = pipeline_command(config, database_url, "run", "--port", str(port))
        self.env = env
        self.process: subprocess.Popen[str] | None = None
        self.lifetimes: list[Lifetime] = []
        self._stdout: list[str] = []
        self._stderr: list[str] = []
        self._readers: list[threading.Thread] = []
        #: What the stopped processes wrote on stderr (their logs).
        self.earlier_stderr: list[str] = []

    @property
    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid

    def start(self, timeout: float = 120.0) -> Lifetime:
        started = time.monotonic()
        self._stdout, self._stderr = [], []
        self.process = subprocess.Popen(
            self.command,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=self.env,
            cwd=ROOT,
        )
        banner = threading.Event()
        self._readers = [
            _pump(self.process.stdout, self._stdout, banner),
            _pump(self.process.stderr, self._stderr, None),
        ]
        if not banner.wait(timeout) or not self._stdout[0].startswith("smsrecon running"):
            self.process.kill()
            self.process.wait()
            self.process = None
            tail = "".join(self._stderr[-5:]).strip()
            raise SystemExit(f"smsrecon run did not start: {tail}")
        lifetime = Lifetime(len(self.lifetimes) + 1, self.process.pid, started, time.monotonic())
        self.lifetimes.append(lifetime)
        return lifetime

    def stop(self, timeout: float = 120.0) -> Lifetime:
        """SIGTERM, then wait for the exit; clean means exit 0 and "stopped cleanly"."""
        assert self.process is not None
        lifetime = self.lifetimes[-1]
        self.process.send_signal(signal.SIGTERM)
        try:
            lifetime.returncode = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            lifetime.returncode = self.process.wait()
        # The reader threads end at EOF, right after the exit.
        for reader in self._readers:
            reader.join(timeout=10)
        lifetime.stopped = time.monotonic()
        lifetime.clean = lifetime.returncode == 0 and any(
            "stopped cleanly" in line for line in self._stdout
        )
        lifetime.stderr_tail = [line.rstrip() for line in self._stderr[-5:]]
        self.earlier_stderr.extend(self._stderr)
        self.process = None
        return lifetime

    def stderr_lines(self) -> list[str]:
        """The current process's stderr so far."""
        return list(self._stderr)


def _pump(stream, into: list[str], first_line: threading.Event | None) -> threading.Thread:  # type: ignore[no-untyped-def]
    """Read a pipe to its end in a thread: a full pipe would block the server's logging."""

    def pump() -> None:
        for line in stream:
            into.append(line)
            if first_line is not None:
                first_line.set()
        if first_line is not None:
            first_line.set()

    thread = threading.Thread(target=pump, daemon=True)
    thread.start()
    return thread


@dataclass(frozen=True)
class DatabaseTarget:
    """How to tell the database's descriptors: a SQLite file (and its -wal, -shm), or TCP
    connections to a PostgreSQL port."""

    path: str | None = None
    port: int | None = None


@dataclass(frozen=True)
class ProcSample:
    rss_kib: int
    fds: int
    #: Of ``fds``, the connections accepted on the ingest port: how many the client keeps
    #: open is the client's choice.
    ingest_connections: int
    #: Of ``fds``, the database's: its connection pool fills on demand up to its size.
    database: int
    threads: int
    cpu_ticks: int

    @property
    def own_fds(self) -> int:
        """The descriptors neither the client nor the pool size decides: "flat" is judged
        on these."""
        return self.fds - self.ingest_connections - self.database


def read_proc(pid: int, ingest_port: int, database: DatabaseTarget) -> ProcSample | None:
    """VmRSS, open descriptors, threads and CPU time of ``pid``; None once it has gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        links = []
        for name in os.listdir(f"/proc/{pid}/fd"):
            try:
                links.append(os.readlink(f"/proc/{pid}/fd/{name}"))
            except FileNotFoundError:  # closed between the listing and the read
                continue
        stat = Path(f"/proc/{pid}/stat").read_text()
        accepted, to_database = _socket_inodes(pid, ingest_port, database.port)
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    sockets = [link[8:-1] for link in links if link.startswith("socket:[")]
    connections = sum(1 for inode in sockets if inode in accepted)
    if database.path is not None:
        db_fds = sum(1 for link in links if link.startswith(database.path))
    else:
        db_fds = sum(1 for inode in sockets if inode in to_database)
    fields = dict(
        line.split(":", 1) for line in status.splitlines() if ":" in line
    )  # "VmRSS:\t  51234 kB"
    rss = int(fields.get("VmRSS", "0 kB").split()[0])
    threads = int(fields.get("Threads", "0").strip())
    # Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    after = stat.rsplit(")", 1)[1].split()
    ticks = int(after[11]) + int(after[12])
    return ProcSample(rss, len(links), connections, db_fds, threads, ticks)


LISTEN = "0A"


def _socket_inodes(pid: int, ingest_port: int, db_port: int | None) -> tuple[set[str], set[str]]:
    """Inodes of the TCP connections accepted on ``ingest_port`` (not the listener), and of
    those to ``db_port``."""
    accepted: set[str] = set()
    to_database: set[str] = set()
    for table in ("tcp", "tcp6"):
        try:
            lines = Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]
        except FileNotFoundError:
            continue
        for line in lines:
            cols = line.split()
            local_port = int(cols[1].rsplit(":", 1)[1], 16)
            remote_port = int(cols[2].rsplit(":", 1)[1], 16)
            if local_port == ingest_port and cols[3] != LISTEN:
                accepted.add(cols[9])
            elif db_port is not None and remote_port == db_port:
                to_database.add(cols[9])
    return accepted, to_database
