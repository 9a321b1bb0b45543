"""Settings: precedence, environment overrides, and one clear line for every mistake."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.config import ConfigError, load_settings, resolve_config_path
from pipeline.config import parse_duration as duration


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_apply_without_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings(None, environ={})
    assert settings.database.url == "sqlite:///./var/smsrecon.db"
    assert settings.dispatcher.batch_size == 100
    assert settings.source_file is None


def test_flag_beats_environment_beats_file(tmp_path: Path) -> None:
    path = write(tmp_path, "database:\n  url: sqlite:///file.db\ndispatcher:\n  concurrency: 3\n")
    env = {"SMSRECON_DATABASE_URL": "sqlite:///env.db", "SMSRECON_DISPATCHER__CONCURRENCY": "7"}
    assert load_settings(path, environ={}).database.url == "sqlite:///file.db"
    from_env = load_settings(path, environ=env)
    assert from_env.database.url == "sqlite:///env.db"
    assert from_env.dispatcher.concurrency == 7
    flagged = load_settings(path, {"database.url": "sqlite:///flag.db"}, environ=env)
    assert flagged.database.url == "sqlite:///flag.db"


def test_nested_environment_values_may_be_json(tmp_path: Path) -> None:
    env = {"SMSRECON_ALTEGIO__ALLOWED_HOSTS": '["a.example", "b.example"]'}
    settings = load_settings(None, environ=env)
    assert settings.altegio.allowed_hosts == ["a.example", "b.example"]


def test_config_path_comes_from_flag_then_environment_then_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert resolve_config_path(None, {}) is None
    write(tmp_path, "{}")
    assert resolve_config_path(None, {}) == Path("config.yaml")
    assert resolve_config_path(None, {"SMSRECON_CONFIG": "/etc/x.yaml"}) == Path("/etc/x.yaml")
    assert resolve_config_path("given.yaml", {"SMSRECON_CONFIG": "/etc/x.yaml"}) == Path(
        "given.yaml"
    )


def test_unknown_key_names_the_key_and_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "dispatcher:\n  concurency: 3\n")
    with pytest.raises(ConfigError) as exc:
        load_settings(path, environ={})
    assert str(exc.value) == f"{path}: dispatcher.concurency: unknown key"


def test_wrong_type_names_the_key_and_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "dispatcher:\n  concurrency: many\n")
    with pytest.raises(ConfigError, match=r"config\.yaml: dispatcher\.concurrency: .*integer"):
        load_settings(path, environ={})


def test_wrong_type_from_environment_names_the_variable(tmp_path: Path) -> None:
    env = {"SMSRECON_DISPATCHER__BATCH_SIZE": "lots"}
    with pytest.raises(ConfigError, match="environment SMSRECON_DISPATCHER__BATCH_SIZE"):
        load_settings(None, environ=env)


def test_invalid_yaml_is_one_line_with_the_line_number(tmp_path: Path) -> None:
    path = write(tmp_path, "database:\n  url: [unclosed\n")
    with pytest.raises(ConfigError, match=r"not valid YAML \(line \d+\)"):
        load_settings(path, environ={})


def test_missing_secret_names_the_key_and_never_a_value(tmp_path: Path) -> None:
    path = write(tmp_path, "altegio:\n  partners:\n    default:\n      token_env: MY_TOKEN\n")
    settings = load_settings(path, environ={})
    key = "altegio.partners.default.token_env"
    with pytest.raises(ConfigError) as exc:
        settings.secret("MY_TOKEN_SURELY_UNSET_1234", key)
    assert str(path) in str(exc.value) and key in str(exc.value)


def test_durations_accept_numbers_and_units() -> None:
    assert duration(5) == 5
    assert duration("500ms") == 0.5
    assert duration("10m") == 600
    assert duration("24h") == 86_400
    with pytest.raises(ValueError):
        duration("soon")


def test_the_shipped_config_file_is_valid() -> None:
    shipped = Path(__file__).resolve().parent.parent / "config.yaml"
    settings = load_settings(shipped, environ={})
    assert settings.scheduler.project_interval == 5
