"""``smsrecon sandbox`` as a process: prints its URL, serves, stops cleanly on a signal."""

from __future__ import annotations

import json
import re
import selectors
import signal
import subprocess
import sys
import time
import urllib.request

import pytest

from tests.sandbox.helpers import HEADERS, TOKEN, item

STARTUP_TIMEOUT = 120.0  # bounds a broken start only: a loaded machine may take long


def _start(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "pipeline", "sandbox", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _first_line(process: subprocess.Popen[str]) -> str:
    """The first stdout line, waiting at most STARTUP_TIMEOUT for it."""
    assert process.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            if selector.select(timeout=0.2):
                return process.stdout.readline()
            if process.poll() is not None:
                break
    process.kill()
    _, err = process.communicate()
    raise AssertionError(f"sandbox did not start: {err}")


def _post(url: str, body: object) -> tuple[int, dict]:
    request = urllib.request.Request(
        f"{url}/smsprovider/status/callback/{TOKEN}",
        data=json.dumps(body).encode(),
        headers={**HEADERS, "Authorization": f"Bearer {TOKEN}"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return response.status, json.loads(response.read())


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_serves_on_a_free_port_and_stops_cleanly_on_a_signal(signum: int) -> None:
    process = _start("--port", "0", "--token", TOKEN, "--latency-ms", "1", "--verbose")
    try:
        line = _first_line(process)
        match = re.search(r"sandbox listening on (http://127\.0\.0\.1:(\d+))", line)
        assert match and int(match.group(2)) > 0, line
        url = match.group(1)
        assert _post(url, [item()]) == (200, {"success": True, "data": {"accepted": 1}, "meta": []})
        with urllib.request.urlopen(f"{url}/_sandbox/received", timeout=60) as response:
            assert json.loads(response.read())["count"] == 1
        process.send_signal(signum)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, err
    assert "sandbox stopped" in out
    assert "/smsprovider/status/callback/*** 200" in err
    assert TOKEN not in out + err
    assert "Traceback" not in err
    # The same UTC log line format as `smsrecon run` (pipeline.logs).
    for line in err.strip().splitlines():
        assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ (INFO|WARNING) \S+: ", line), line


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "at least one --token is needed"),
        (("--token", "t", "--faults", "500=0.7,503=0.7"), "more than 1"),
        (("--token", "t", "--faults", "teapot=0.1"), "fault kind 'teapot' is unknown"),
        (("--token", "t", "--faults", "500"), "expected KIND=RATE"),
        # A short token would be masked inside ordinary words in every log line.
        (("--token", "x"), "shorter than 8 characters"),
        (("--token", TOKEN, "--forbidden-token", "1234567"), "shorter than 8 characters"),
    ],
)
def test_bad_options_exit_2_with_one_line(args: tuple[str, ...], message: str) -> None:
    process = _start(*args)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 2
    assert message in err
    assert len(err.strip().splitlines()) == 1
