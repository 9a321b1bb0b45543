"""A real ``smsrecon dashboard`` process over a seeded database, on each engine, and a real
headless Chromium driven by Selenium to look at it.

The seed is the hand-worked October of tests/reporting/october.py, plus one message from a
partner and through a carrier whose names are markup (``HOSTILE_PARTNER``,
``HOSTILE_CARRIER``), projected by the projector with the settings the dashboard runs with
(so its message page re-folds exactly what the projection holds).

Without Chromium (Debian's ``chromium`` and ``chromium-driver``) the browser tests are
skipped, loudly; under ``CI`` they fail instead (.ci/run installs both).
"""

from __future__ import annotations

import os
import queue
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from pipeline.config import load_settings
from pipeline.db.engine import Database
from pipeline.eventlog import append
from pipeline.projector.runner import run_project
from tests.conftest import BACKENDS, create_pg_database, drop_pg_database
from tests.finance.money_events import acked
from tests.projector.events import accepted, report, submitted
from tests.reporting.october import minute, october_log

ROOT = Path(__file__).resolve().parent.parent.parent
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
HOSTILE_PARTNER = "<script>window.__pwned=1</script>acme&co"
HOSTILE_CARRIER = '"><img src=x onerror="window.__pwned=2">'

CONFIG = """
billing:
  tariffs:
    - {prefix: "+7", price_per_part: "2.27", currency: RUB}
    - {prefix: "+374", price_per_part: "3.00", currency: RUB}
carriers:
  mts:
    format: generic
    tolerance: {abs: "0.01"}
    rates: [{prefix: "+7", price_per_part: "0.50", currency: RUB}]
  beeline:
    format: generic
    tolerance: {abs: "0.01"}
    rates: [{prefix: "+374", price_per_part: "0.80", currency: RUB}]
finance:
  reporting_currency: EUR
dashboard:
  cache_seconds: 0
"""
#: The month the seed's figures are worked out for.
OCTOBER = "period=month&date=2026-10-01"


def hostile_log() -> list[Any]:
    start = minute("2026-10-01 13:00")
    return [
        accepted("h1", start, partner=HOSTILE_PARTNER, phone="+79161230000"),
        submitted("h1", "c-h1", start + 0.1, carrier=HOSTILE_CARRIER),
        # A cost above the price: a negative margin (2.27 − 5.00 RUB) for the margin page.
        report(
            "c-h1",
            1,
            start + 0.2,
            carrier=HOSTILE_CARRIER,
            cost="5.00",
            currency="RUB",
            cost_scope="message",
        ),
        acked("h1", "2.27"),
    ]


def write_config(directory: Path, extra: str = "") -> Path:
    path = directory / "config.yaml"
    path.write_text(CONFIG + extra, encoding="utf-8")
    return path


def seed(url: str, config: Path) -> None:
    settings = load_settings(config, {"database.url": url}, environ={})
    database = Database.from_url(url)
    try:
        append(database, [*october_log(), *hostile_log()])
        run_project(database, settings)
    finally:
        database.dispose()


@dataclass
class Served:
    """A running ``smsrecon dashboard`` and the database it reads."""

    url: str
    database_url: str
    config: Path
    process: subprocess.Popen[str]

    def page(self, path: str = "", query: str = "") -> str:
        return f"{self.url}/dashboard/{path}" + (f"?{query}" if query else "")

    def rows(self, sql: str, **params: Any) -> list[Any]:
        database = Database.from_url(self.database_url)
        try:
            with database.read() as conn:
                return list(conn.execute(text(sql), params))
        finally:
            database.dispose()


def start_dashboard(
    config: Path, database_url: str, *args: str, env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[str], str]:
    """``smsrecon dashboard --port 0`` in a process of its own; (process, its base URL)."""
    command = [sys.executable, "-m", "pipeline", "--config", str(config),
               "--database-url", database_url, "dashboard", "--port", "0", *args]  # fmt: skip
    process = subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, **(env or {})},
    )  # fmt: skip
    assert process.stdout is not None
    lines: queue.Queue[str | None] = queue.Queue()

    def drain() -> None:  # read everything, so a full pipe never blocks the server
        for line in process.stdout:  # type: ignore[union-attr]
            lines.put(line)
        lines.put(None)

    threading.Thread(target=drain, daemon=True).start()
    seen = []
    while (line := lines.get(timeout=120)) is not None:
        seen.append(line)
        found = re.search(r"on (http://\S+)/dashboard/", line)
        if found:
            return process, found.group(1)
    process.wait()
    raise StartFailed(process.returncode, "".join(seen))


class StartFailed(Exception):
    def __init__(self, code: int, output: str) -> None:
        super().__init__(f"exit {code}: {output}")
        self.code, self.output = code, output


def stop(process: subprocess.Popen[str]) -> None:
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture(scope="module", params=BACKENDS)
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    """The seeded October, served, once per engine for the whole module."""
    directory = tmp_path_factory.mktemp(f"dashboard-{request.param}")
    config = write_config(directory)
    admin = None
    if request.param == "sqlite":
        path = directory / "smsrecon.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        url = f"sqlite:///{path}"
    else:
        admin = request.getfixturevalue("pg_admin_url")
        url = create_pg_database(admin, template=request.getfixturevalue("pg_template"))
    seed(url, config)
    process, base = start_dashboard(config, url)
    yield Served(base, url, config, process)
    stop(process)
    if admin is not None:
        drop_pg_database(admin, url)


def require_chromium() -> None:
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if not missing:
        return
    reason = f"{', '.join(missing)} not installed: apt-get install chromium chromium-driver"
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; the browser tests must run under CI (.ci/run installs them)")
    pytest.skip(f"BROWSER NOT TESTED: {reason}")


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Headless Chromium with no network of its own: no sync, no updates, no QUIC."""
    require_chromium()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="smsrecon-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                 "--window-size=1400,1000", f"--user-data-dir={profile}"):  # fmt: skip
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(120)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
