"""A real Kannel (bearerbox + smsbox) wired to an SMSC simulator, for end-to-end tests.

Kannel is configured from scratch in a temporary directory: every port is a free port on
127.0.0.1, nothing listens elsewhere, nothing is read from /etc/kannel and nothing is
written to /var/log/kannel, so a Kannel the system itself runs (Debian's package may start
one) neither disturbs nor is disturbed by it. Readiness is a condition, not a delay: the
gateway is ready when bearerbox's admin status shows the SMSC online and an smsbox
connected, within a bounded time.

Kannel runs as whoever starts it, root included: neither box switches user unless given
``-u``, so no user switch is needed in a container.
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import shutil
import signal
import socket
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import aiohttp

BEARERBOX = "bearerbox"
SMSBOX = "smsbox"
READY_TIMEOUT = 120.0
STOP_TIMEOUT = 5.0
POLL_INTERVAL = 0.05


class GatewayError(RuntimeError):
    """Kannel did not start or answer as expected; the text ends with its log tail."""


def kannel_binaries() -> dict[str, str] | None:
    """Paths of bearerbox and smsbox (Debian puts them in /usr/sbin), or None if missing."""
    search = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/usr/local/sbin"])
    found = {name: shutil.which(name, path=search) for name in (BEARERBOX, SMSBOX)}
    if not all(found.values()):
        return None
    return {name: path for name, path in found.items() if path}


def free_port() -> int:
    """A port nothing listens on right now (Kannel needs numbers in its config file)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class KannelPorts:
    admin: int
    smsbox: int
    sendsms: int


#: docs/kannel.md: its ``conf`` block is the kannel.conf this gateway runs.
KANNEL_DOC = Path(__file__).resolve().parents[2] / "docs" / "kannel.md"

#: A kannel.conf as groups in order: (group name, [(key, raw value), …]).
Conf = list[tuple[str, list[tuple[str, str]]]]


def documented_conf_text() -> str:
    """The first ```conf block of docs/kannel.md: the minimal annotated kannel.conf."""
    match = re.search(r"^```conf\n(.*?)^```", KANNEL_DOC.read_text(encoding="utf-8"), re.M | re.S)
    if match is None:
        raise GatewayError(f"{KANNEL_DOC} has no ```conf block")
    return match.group(1)


def parse_conf(text: str) -> Conf:
    """Kannel's syntax: ``group = NAME`` opens a group, ``key = value`` lines follow, a line
    starting with ``#`` is a comment (Kannel has no comments after a value)."""
    groups: Conf = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = (part.strip() for part in line.partition("="))
        if not sep or not key:
            raise GatewayError(f"kannel.conf line {number}: not 'key = value': {raw!r}")
        if key == "group":
            groups.append((value, []))
        elif not groups:
            raise GatewayError(f"kannel.conf line {number}: {key} before any group")
        else:
            groups[-1][1].append((key, value))
    return groups


def render_conf(groups: Conf) -> str:
    """Groups separated by an empty line, as Kannel requires."""
    return "\n".join(
        "\n".join([f"group = {name}", *(f"{k} = {v}" for k, v in items)]) + "\n"
        for name, items in groups
    )


def _quoted(value: object) -> str:
    return f'"{value}"'


def kannel_conf(
    workdir: Path,
    ports: KannelPorts,
    smsc_port: int,
    admin_password: str,
    smsc_system_id: str,
    sendsms_user: str,
    sendsms_password: str,
) -> str:
    """The documented kannel.conf with this run's free ports, random passwords and paths in
    ``workdir``; the test also logs at debug level (a failure shows Kannel's detail) and
    lets smsbox retry nothing (every callback's first answer is the one asserted).

    Every key replaced must be in the documented file, so the test runs what the docs say.
    """
    overrides = {
        "core": {
            "admin-port": str(ports.admin),
            "admin-password": _quoted(admin_password),
            "smsbox-port": str(ports.smsbox),
            "log-file": _quoted(workdir / "bearerbox.log"),
            "log-level": "0",
            "access-log": _quoted(workdir / "access.log"),
        },
        "smsc": {"port": str(smsc_port), "smsc-username": _quoted(smsc_system_id)},
        "smsbox": {
            "bearerbox-port": str(ports.smsbox),
            "sendsms-port": str(ports.sendsms),
            "log-file": _quoted(workdir / "smsbox.log"),
            "log-level": "0",
            "http-request-retry": "0",
        },
        "sendsms-user": {"username": _quoted(sendsms_user), "password": _quoted(sendsms_password)},
    }
    groups = parse_conf(documented_conf_text())
    for name, items in groups:
        wanted = overrides.pop(name, {})
        missing = set(wanted) - {key for key, _ in items}
        if missing:
            raise GatewayError(f"docs/kannel.md: group {name} lacks {sorted(missing)}")
        items[:] = [(key, wanted.get(key, value)) for key, value in items]
    if overrides:
        raise GatewayError(f"docs/kannel.md: kannel.conf lacks groups {sorted(overrides)}")
    return render_conf(groups)


class KannelGateway:
    """bearerbox and smsbox as child processes; use ``async with`` (stops them on exit)."""

    def __init__(
        self,
        workdir: Path,
        smsc_port: int,
        smsc_system_id: str = "smsrecon",
        mask: Sequence[str] = (),
    ) -> None:
        """``mask``: secrets that may appear in Kannel's logs (a dlr-url token), masked in
        every log tail this class shows."""
        binaries = kannel_binaries()
        if binaries is None:
            raise GatewayError("Kannel is not installed (bearerbox / smsbox not found)")
        self.binaries = binaries
        self.workdir = workdir
        self.ports = KannelPorts(free_port(), free_port(), free_port())
        self.admin_password = secrets.token_hex(8)
        self.sendsms_user = "tester"
        self.sendsms_password = secrets.token_hex(8)
        self.config = workdir / "kannel.conf"
        self.config.write_text(
            kannel_conf(
                workdir,
                self.ports,
                smsc_port,
                self.admin_password,
                smsc_system_id,
                self.sendsms_user,
                self.sendsms_password,
            ),
            encoding="utf-8",
        )
        groups = dict(parse_conf(self.config.read_text(encoding="utf-8")))
        self.smsc_id = dict(groups["smsc"])["smsc-id"].strip('"')
        self._mask = [secret for secret in mask if secret]
        self._processes: dict[str, asyncio.subprocess.Process] = {}

    @property
    def sendsms_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.sendsms}/cgi-bin/sendsms"

    async def __aenter__(self) -> KannelGateway:
        try:
            await self._spawn(BEARERBOX)
            await self._wait_until(self._admin_answers, "bearerbox's admin port to answer")
            await self._spawn(SMSBOX)
            await self._wait_until(self._ready, "the SMSC to be online and smsbox connected")
        except BaseException:
            await self.stop()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def _spawn(self, name: str) -> None:
        output = (self.workdir / f"{name}.out").open("wb")
        try:
            # -v 1: info on the console (the debug detail goes to the log files).
            self._processes[name] = await asyncio.create_subprocess_exec(
                self.binaries[name],
                "-v",
                "1",
                str(self.config),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=output,
                stderr=asyncio.subprocess.STDOUT,
                cwd=self.workdir,
                start_new_session=True,  # a Ctrl-C on the test run is ours to forward
            )
        finally:
            output.close()

    async def status(self) -> ET.Element:
        """bearerbox's /status.xml, parsed."""
        url = f"http://127.0.0.1:{self.ports.admin}/status.xml"
        timeout = aiohttp.ClientTimeout(total=2)
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.get(url, params={"password": self.admin_password}) as response,
        ):
            body = await response.text()
            if response.status != 200:
                raise GatewayError(f"admin status answered {response.status}")
        return ET.fromstring(body)

    async def _admin_answers(self) -> bool:
        try:
            await self.status()
        except (aiohttp.ClientError, TimeoutError, ET.ParseError):
            return False
        return True

    async def _ready(self) -> bool:
        try:
            root = await self.status()
        except (aiohttp.ClientError, TimeoutError, ET.ParseError):
            return False
        smsc_online = any(
            (smsc.findtext("status") or "").startswith("online")
            for smsc in root.iter("smsc")
            if smsc.findtext("id") == self.smsc_id
        )
        smsbox_connected = any(box.findtext("type") == "smsbox" for box in root.iter("box"))
        return smsc_online and smsbox_connected

    async def _wait_until(self, condition, what: str) -> None:  # type: ignore[no-untyped-def]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + READY_TIMEOUT
        while not await condition():
            for name, process in self._processes.items():
                if process.returncode is not None:
                    raise GatewayError(
                        f"{name} exited with {process.returncode} while waiting for {what}"
                        f"\n{self.log_tail()}"
                    )
            if loop.time() > deadline:
                raise GatewayError(
                    f"timed out after {READY_TIMEOUT:.0f}s waiting for {what}\n{self.log_tail()}"
                )
            await asyncio.sleep(POLL_INTERVAL)

    def log_tail(self, lines: int = 25) -> str:
        """The end of every Kannel log, for failure messages, secrets masked."""
        parts = []
        for name in ("bearerbox.out", "bearerbox.log", "smsbox.out", "smsbox.log"):
            path = self.workdir / name
            if path.exists():
                tail = path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:]
                parts.append(f"--- {name} ---\n" + "\n".join(tail))
        text = "\n".join(parts)
        for secret in self._mask:
            text = text.replace(secret, "***")
        return text

    async def stop(self) -> None:
        """smsbox first (it is bearerbox's client), each SIGTERM then SIGKILL after a bound."""
        for name in (SMSBOX, BEARERBOX):
            process = self._processes.pop(name, None)
            if process is None or process.returncode is not None:
                continue
            with suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), STOP_TIMEOUT)
            except TimeoutError:
                with suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
