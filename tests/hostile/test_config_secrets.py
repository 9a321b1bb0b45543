"""A config error never prints a value that is not a valid environment-variable name (a
secret written where its variable's name belongs), and a secret too short to be safe is
refused at start-up, naming the variable, never the value."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.config import ConfigError, load_settings
from pipeline.db.engine import Database
from pipeline.ingest.server import build_ingest_app

SECRET_AS_NAME = "s3cr3t-token-value"


@pytest.mark.parametrize(
    ("key", "overrides"),
    [
        (
            "altegio.partners.default.token_env",
            {"altegio.partners": {"default": {"token_env": SECRET_AS_NAME}}},
        ),
        (
            "carriers.mts.auth.secret_env",
            {
                "carriers.mts": {
                    "format": "kannel",
                    "auth": {"type": "token", "secret_env": SECRET_AS_NAME},
                }
            },
        ),
        ("ingest.auth.secret_env", {"ingest.auth": {"type": "hmac", "secret_env": SECRET_AS_NAME}}),
        (
            "ingest.metrics_auth.secret_env",
            {"ingest.metrics_auth": {"type": "token", "secret_env": SECRET_AS_NAME}},
        ),
    ],
)
def test_a_secret_written_as_a_variable_name_is_never_echoed(
    key: str, overrides: dict[str, object]
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(None, overrides, environ={})
    message = str(caught.value)
    assert f"{key}: " in message
    assert "not a valid environment variable name" in message
    assert SECRET_AS_NAME not in message
    assert "s3cr3t" not in message


@pytest.mark.parametrize(
    "value", ["Bearer abc.def", "9starts-with-digit", "pa ss", "x=y", "ü_secret", ""]
)
def test_any_invalid_name_is_refused_without_echo(value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(None, {"altegio.partners": {"p": {"token_env": value}}}, environ={})
    assert "altegio.partners.p.token_env" in str(caught.value)
    if value:
        assert value not in str(caught.value)


def test_a_secret_in_a_name_key_from_the_environment_is_not_echoed() -> None:
    environ = {"SMSRECON_INGEST__AUTH": json.dumps({"type": "token", "secret_env": SECRET_AS_NAME})}
    with pytest.raises(ConfigError) as caught:
        load_settings(None, environ=environ)
    assert "environment SMSRECON_INGEST__AUTH" in str(caught.value)
    assert SECRET_AS_NAME not in str(caught.value)


def test_the_command_line_prints_one_line_without_the_value(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(f"altegio:\n  partners:\n    default:\n      token_env: '{SECRET_AS_NAME}'\n")
    result = subprocess.run(
        [sys.executable, "-m", "pipeline", "--config", str(config), "events", "stats"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert "altegio.partners.default.token_env" in line
    assert SECRET_AS_NAME not in result.stderr + result.stdout


def test_valid_names_are_accepted() -> None:
    settings = load_settings(
        None,
        {
            "altegio.partners": {
                "default": {"token_env": "SMSRECON_PARTNER_TOKEN"},
                "b": {"token_env": "_lower_ok9"},
            }
        },
        environ={},
    )
    assert settings.altegio.partners["b"].token_env == "_lower_ok9"


SHORT = "Qz7!pw"


def test_a_short_carrier_secret_fails_at_startup_naming_the_variable(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SMSRECON_TEST_SHORT_SECRET", SHORT)
    settings = load_settings(
        None,
        {
            "carriers.mts": {
                "format": "kannel",
                "auth": {"type": "token", "secret_env": "SMSRECON_TEST_SHORT_SECRET"},
            }
        },
        environ={},
    )
    with pytest.raises(ConfigError) as caught:
        build_ingest_app(settings, db)
    message = str(caught.value)
    assert "carriers.mts.auth.secret_env" in message
    assert "SMSRECON_TEST_SHORT_SECRET" in message and "shorter than 8 characters" in message
    assert SHORT not in message


def test_a_short_partner_token_is_refused_and_an_8_character_one_accepted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = load_settings(None, environ={})
    monkeypatch.setenv("SMSRECON_TEST_SHORT_TOKEN", "1234567")
    with pytest.raises(ConfigError, match="SMSRECON_TEST_SHORT_TOKEN") as caught:
        settings.secret("SMSRECON_TEST_SHORT_TOKEN", "altegio.partners.default.token_env")
    assert "1234567" not in str(caught.value)
    monkeypatch.setenv("SMSRECON_TEST_SHORT_TOKEN", "12345678")
    assert settings.secret("SMSRECON_TEST_SHORT_TOKEN", "k") == "12345678"


def test_an_unparseable_database_url_is_one_line_without_the_url() -> None:
    url = "s3cretpw@not-a-url"
    result = subprocess.run(
        [sys.executable, "-m", "pipeline", "--database-url", url, "events", "stats"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("smsrecon: database.url: not a database URL")
    assert "s3cretpw" not in result.stderr + result.stdout
