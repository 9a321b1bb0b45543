"""Commands run from cron never succeed silently: a check that did not run, or a secret
cron's environment lacks, is a non-zero exit code monitoring can see."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from pipeline.db.engine import Database
from pipeline.eventlog import append
from pipeline.projector.lock import projector_lock
from tests.projector.traffic import traffic

ROOT = Path(__file__).resolve().parents[2]
PARTNER_TOKEN = "partner-token-for-cron-tests"


def _smsrecon(
    url: str, *args: str, config: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.Popen[str]:
    environ = {**os.environ, "SMSRECON_CONFIG": str(config) if config else os.devnull}
    environ.update(env or {})
    return subprocess.Popen(
        [sys.executable, "-m", "pipeline", "--database-url", url, *args],
        cwd=ROOT, env=environ, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def _partner_config(tmp_path: Path, token_env: str) -> Path:
    config = tmp_path / "config.yaml"
    config.write_text(json.dumps({"altegio": {"partners": {"default": {"token_env": token_env}}}}))
    return config


def test_replay_while_another_projector_is_active_exits_4(db: Database, db_url: str) -> None:
    append(db, traffic(seed=3, messages=3))
    with projector_lock(db) as acquired:
        assert acquired
        verify = _smsrecon(db_url, "replay", "--verify")
        out, err = verify.communicate(timeout=120)
        assert verify.returncode == 4, err
        assert "another projector is active; nothing verified" in out
        rebuild = _smsrecon(db_url, "replay", "--rebuild")
        out, err = rebuild.communicate(timeout=120)
        assert rebuild.returncode == 4, err
        assert "nothing rebuilt" in out


def test_replay_wait_waits_for_the_projector_then_verifies(db: Database, db_url: str) -> None:
    append(db, traffic(seed=4, messages=3))
    lock = projector_lock(db)
    assert lock.__enter__()
    try:
        proc = _smsrecon(db_url, "replay", "--verify", "--wait")
        assert proc.stderr is not None
        # It says it waits before it blocks: read up to that line, then let it go.
        line = proc.stderr.readline()
        assert "another projector is active; waiting for it to finish" in line, line
    finally:
        lock.__exit__(None, None, None)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert "replay matches message_state" in out


def test_dispatch_with_a_partner_token_variable_unset_exits_2(db_url: str, tmp_path: Path) -> None:
    env_name = "SMSRECON_TEST_CRON_UNSET_TOKEN"
    assert env_name not in os.environ
    proc = _smsrecon(db_url, "dispatch", "--until-idle", config=_partner_config(tmp_path, env_name))
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 2, out + err
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert "altegio.partners.default.token_env" in last and f"{env_name} is not set" in last


def test_a_partner_token_shorter_than_8_characters_is_refused_at_start_up(
    db_url: str, tmp_path: Path
) -> None:
    env_name = "SMSRECON_TEST_CRON_SHORT_TOKEN"
    config = _partner_config(tmp_path, env_name)
    for command in (["dispatch"], ["run", "--port", "0"]):
        proc = _smsrecon(db_url, *command, config=config, env={env_name: "x"})
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 2, out + err
        assert "shorter than 8 characters" in err.strip().splitlines()[-1]
        assert "Traceback" not in err


def test_dispatch_with_its_token_set_and_nothing_to_send_exits_0(
    db_url: str, tmp_path: Path
) -> None:
    env_name = "SMSRECON_TEST_CRON_TOKEN"
    config = _partner_config(tmp_path, env_name)
    proc = _smsrecon(db_url, "dispatch", "--until-idle", config=config,
                     env={env_name: PARTNER_TOKEN})  # fmt: skip
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, out + err
    assert PARTNER_TOKEN not in out + err
