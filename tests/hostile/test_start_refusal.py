"""``serve`` and ``run`` never expose a route without auth beyond loopback by accident:
they refuse (exit 2, one line, before the database or the port), or, when
``ingest.allow_unauthenticated`` says so, start with a warning every time."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.config import ConfigError, Settings
from pipeline.ingest.exposure import exposure_warning, is_loopback, unauthenticated_routes

SECRET = "gateway-secret-3a9d70"
ENV = "SMSRECON_TEST_EXPOSURE_SECRET"
GUARDED_CARRIER = {"format": "kannel", "auth": {"type": "token", "secret_env": ENV}}


def _config(tmp_path: Path, database_url: str, **sections: object) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(json.dumps({"database": {"url": database_url}, **sections}))
    return path


def _command(config: Path, command: str, *args: str) -> list[str]:
    return [sys.executable, "-m", "pipeline", "--config", str(config), command, *args]


def _env() -> dict[str, str]:
    return {**os.environ, ENV: SECRET, "PYTHONUNBUFFERED": "1"}


@pytest.mark.parametrize("command", ["serve", "run"])
@pytest.mark.parametrize(
    ("sections", "named"),
    [
        ({"carriers": {"kannel": {"format": "kannel"}}}, "carriers.kannel.auth"),
        (
            {
                "ingest": {"auth": {"type": "none"}},
                "carriers": {"mts": GUARDED_CARRIER},
            },
            "ingest.auth (the send path)",
        ),
    ],
)
def test_an_open_route_on_0000_exits_2_in_one_line_before_binding(
    tmp_path: Path, command: str, sections: dict[str, object], named: str
) -> None:
    # A database that does not exist yet: the refusal comes before it is even opened.
    database = tmp_path / "never-created.db"
    config = _config(tmp_path, f"sqlite:///{database}", **sections)
    result = subprocess.run(
        _command(config, command, "--host", "0.0.0.0", "--port", "0"),
        capture_output=True, text=True, timeout=60, env=_env(),
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("smsrecon: refusing to listen on 0.0.0.0: no auth on ")
    assert named in line and "ingest.allow_unauthenticated" in line
    assert "http://" not in result.stdout  # never listened
    assert not database.exists()


def test_the_configured_host_is_held_to_the_same_rule(tmp_path: Path) -> None:
    config = _config(tmp_path, f"sqlite:///{tmp_path / 'x.db'}", ingest={"host": "::"}, carriers={})
    result = subprocess.run(
        _command(config, "serve", "--port", "0"),
        capture_output=True, text=True, timeout=60, env=_env(),
    )  # fmt: skip
    assert result.returncode == 2
    assert "refusing to listen on ::" in result.stderr


@pytest.mark.parametrize("command", ["serve", "run"])
def test_allow_unauthenticated_starts_with_a_warning_every_time(
    db_url: str, tmp_path: Path, command: str
) -> None:
    config = _config(
        tmp_path,
        db_url,
        ingest={"allow_unauthenticated": True},
        carriers={"kannel": {"format": "kannel"}, "mts": GUARDED_CARRIER},
    )
    for _start in range(2):
        process = subprocess.Popen(
            _command(config, command, "--host", "0.0.0.0", "--port", "0"),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(),
        )  # fmt: skip
        try:
            assert process.stdout is not None
            line = process.stdout.readline()  # blocks until listening (or exit)
            assert "http://0.0.0.0:" in line, (line, process.poll())
            process.send_signal(signal.SIGTERM)
            _, err = process.communicate(timeout=60)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        assert process.returncode == 0, err
        warnings = [line for line in err.splitlines() if "WARNING" in line]
        assert len(warnings) == 1, err
        assert "listening on 0.0.0.0 with no auth on " in warnings[0]
        assert "carriers.kannel.auth" in warnings[0] and "carriers.mts" not in warnings[0]
        assert "ingest.auth (the send path)" in warnings[0]
        assert SECRET not in err


@pytest.mark.parametrize(
    "host", ["127.0.0.1", "127.8.9.10", "::1", "[::1]", "localhost", "LOCALHOST"]
)
def test_loopback_addresses_are_loopback(host: str) -> None:
    assert is_loopback(host)


@pytest.mark.parametrize(
    "host",
    [
        "0.0.0.0",
        "::",
        "10.0.0.5",
        "192.168.1.2",
        "2001:db8::1",
        "example.com",
        "",
        "127.0.0.1.nip.io",
    ],
)
def test_every_other_address_is_exposed(host: str) -> None:
    assert not is_loopback(host)


def _settings(**data: object) -> Settings:
    return Settings.model_validate(data)


def test_with_auth_on_every_route_any_address_is_fine() -> None:
    settings = _settings(
        ingest={"auth": {"type": "ip", "allow_ips": ["10.0.0.0/8"]}},
        carriers={
            "mts": GUARDED_CARRIER,
            "kannel": {"format": "kannel", "auth": {"type": "ip", "allow_ips": ["10.0.0.1"]}},
        },
    )
    assert unauthenticated_routes(settings) == []
    assert exposure_warning(settings, "0.0.0.0") is None


def test_loopback_needs_no_auth_and_gets_no_warning() -> None:
    settings = _settings(carriers={"kannel": {"format": "kannel"}})
    assert exposure_warning(settings, "127.0.0.1") is None
    with pytest.raises(ConfigError, match=r"refusing to listen on 10\.0\.0\.5"):
        exposure_warning(settings, "10.0.0.5")
