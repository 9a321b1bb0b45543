"""The partner token goes only to Altegio's callback path, never anywhere a message names.

A message's ``delivery_callback_url`` comes from outside, so a hostile sender picks it. It
may be called only when it is ``https`` to an ``altegio.allowed_hosts`` entry on the default
port (or the port the entry names), or plain ``http`` to an ``altegio.insecure_hosts`` entry
on any port (or the port the entry names), and its path is exactly
``/smsprovider/status/callback/<the partner's token>``. Everything else is a
``callback_url_rejected`` mismatch, and no connection is ever made: a real second listener
on 127.0.0.1 stands where the token would leak and must see nothing, on both engines.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from pipeline.config import ConfigError, Settings, load_settings
from pipeline.db.engine import Database
from pipeline.dispatch.dispatcher import Dispatcher
from pipeline.dispatch.urls import check_url
from pipeline.projector.tables import mismatches
from pipeline.sandbox.config import SandboxConfig
from pipeline.sandbox.runner import running_sandbox
from tests.dispatch.helpers import TOKEN, TOKEN_ENV, Clock, delivery, put_state, received
from tests.dispatch.listener import listening

CB = "/smsprovider/status/callback"

#: (case, URL template, allowed_hosts, insecure_hosts). ``{trap}`` is the listener that must
#: see nothing, ``{alt}`` the port of Altegio's stand-in, ``{tok}`` the partner's token.
ANY_PORT = ["127.0.0.1"]
ONLY_ALT = ["127.0.0.1:{alt}"]
CASES = [
    # The rows of the finding: another path, a query, dot segments, another port.
    ("internal_admin_with_query", "http://127.0.0.1:{trap}/internal/admin?x=1", [], ANY_PORT),
    ("dot_dot_admin", "http://127.0.0.1:{trap}/../admin", [], ANY_PORT),
    ("another_port_http", f"http://127.0.0.1:{{trap}}{CB}/{{tok}}", [], ONLY_ALT),
    ("another_port_https", f"https://127.0.0.1:{{trap}}{CB}/{{tok}}", ["127.0.0.1"], ONLY_ALT),
    (
        "https_on_a_port_the_entry_does_not_name",
        f"https://127.0.0.1:{{trap}}{CB}/{{tok}}",
        ONLY_ALT,
        ONLY_ALT,
    ),
    (
        "plain_http_to_an_https_only_host",
        f"http://127.0.0.1:{{trap}}{CB}/{{tok}}",
        ["127.0.0.1:{trap}"],
        ONLY_ALT,
    ),
    # Dot segments and encodings that a server or proxy might resolve.
    ("dot_dot_after_callback", f"http://127.0.0.1:{{trap}}{CB}/../../../internal", [], ANY_PORT),
    (
        "dot_segment_inside",
        "http://127.0.0.1:{trap}/smsprovider/./status/callback/{tok}",
        [],
        ANY_PORT,
    ),
    ("encoded_dot_dot", f"http://127.0.0.1:{{trap}}{CB}/%2e%2e", [], ANY_PORT),
    ("encoded_dot_dot_upper", f"http://127.0.0.1:{{trap}}{CB}/%2E%2E", [], ANY_PORT),
    ("encoded_dot_dot_then_admin", f"http://127.0.0.1:{{trap}}{CB}/%2e%2e%2fadmin", [], ANY_PORT),
    ("encoded_slash_in_segment", f"http://127.0.0.1:{{trap}}{CB}/{{tok}}%2Fadmin", [], ANY_PORT),
    ("double_encoded_dot_dot", f"http://127.0.0.1:{{trap}}{CB}/%252e%252e", [], ANY_PORT),
    ("backslash", f"http://127.0.0.1:{{trap}}{CB}/..\\admin", [], ANY_PORT),
    ("encoded_backslash", f"http://127.0.0.1:{{trap}}{CB}/..%5Cadmin", [], ANY_PORT),
    ("encoded_nul", f"http://127.0.0.1:{{trap}}{CB}/{{tok}}%00", [], ANY_PORT),
    ("empty_segment", f"http://127.0.0.1:{{trap}}{CB}/", [], ANY_PORT),
    ("no_segment", f"http://127.0.0.1:{{trap}}{CB}", [], ANY_PORT),
    ("trailing_segment", f"http://127.0.0.1:{{trap}}{CB}/{{tok}}/admin", [], ANY_PORT),
    ("trailing_slash", f"http://127.0.0.1:{{trap}}{CB}/{{tok}}/", [], ANY_PORT),
    ("prefixed_path", f"http://127.0.0.1:{{trap}}/api{CB}/{{tok}}", [], ANY_PORT),
    ("double_slash", f"http://127.0.0.1:{{trap}}/{CB}/{{tok}}", [], ANY_PORT),
    ("query", f"http://127.0.0.1:{{trap}}{CB}/{{tok}}?x=1", [], ANY_PORT),
    ("empty_query", f"http://127.0.0.1:{{trap}}{CB}/{{tok}}?", [], ANY_PORT),
    ("fragment", f"http://127.0.0.1:{{trap}}{CB}/{{tok}}#admin", [], ANY_PORT),
    ("userinfo", f"http://127.0.0.1:{{alt}}@127.0.0.1:{{trap}}{CB}/{{tok}}", [], ANY_PORT),
    ("another_partners_token", f"http://127.0.0.1:{{trap}}{CB}/someone-elses-token", [], ANY_PORT),
]


def _settings(base_url: str, allowed: list[str], insecure: list[str]) -> Settings:
    return Settings.model_validate(
        {
            "dispatcher": {"timeout": 5},
            "altegio": {
                "base_url": base_url,
                "allowed_hosts": allowed,
                "insecure_hosts": insecure,
                "partners": {"default": {"token_env": TOKEN_ENV}},
            },
        }
    )


def _open_url_rejections(db: Database) -> list[dict]:  # type: ignore[type-arg]
    with db.read() as conn:
        rows = conn.execute(
            select(mismatches).where(
                mismatches.c.kind == "callback_url_rejected", mismatches.c.status == "open"
            )
        ).all()
    return [row._asdict() for row in rows]


@pytest.mark.parametrize(
    ("case", "template", "allowed", "insecure"), CASES, ids=[c[0] for c in CASES]
)
async def test_a_hostile_callback_url_is_rejected_and_the_listener_there_sees_nothing(
    db: Database,
    monkeypatch: pytest.MonkeyPatch,
    case: str,
    template: str,
    allowed: list[str],
    insecure: list[str],
) -> None:
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    async with running_sandbox(SandboxConfig(tokens=(TOKEN,))) as altegio, listening() as trap:
        ports = {"trap": trap.port, "alt": int(altegio.rsplit(":", 1)[1]), "tok": TOKEN}
        settings = _settings(
            altegio,
            [h.format(**ports) for h in allowed],
            [h.format(**ports) for h in insecure],
        )
        put_state(db, "honest")  # Altegio's own callback URL: delivered, as a control
        put_state(db, "hostile", url=template.format(**ports))
        summary = await Dispatcher(db, settings, clock=Clock()).run()
        seen = await received(altegio)
    assert (trap.connections, trap.requests) == (0, []), "the token was sent off the path"
    assert (summary.requests, summary.acknowledged, summary.parked) == (1, 1, 1)
    assert [i["id"] for i in seen["items"]] == ["honest"]
    assert delivery(db, "hostile").state == "parked"
    [flag] = _open_url_rejections(db)
    assert flag["message_id"] == "hostile"
    assert TOKEN not in str(flag["detail"])


# -- the policy as a pure function -----------------------------------------------------------

ALTEGIO = ["app.alteg.io"]


@pytest.mark.parametrize(
    "url",
    [
        "https://app.alteg.io/internal/admin?x=1",
        "https://app.alteg.io/../admin",
        "https://app.alteg.io/smsprovider/status/callback/../admin",
        "https://app.alteg.io:8443/smsprovider/status/callback/tok",
        "https://app.alteg.io:80/smsprovider/status/callback/tok",
        "https://app.alteg.io@evil.example/smsprovider/status/callback/tok",
        "https://app.alteg.io/smsprovider/status/callback/tok?x=1",
        "https://app.alteg.io/smsprovider/status/callback/tok#x",
        "https://app.alteg.io/smsprovider/status/callback/%2e%2e",
        "https://app.alteg.io/smsprovider/status/callback/.",
        "https://app.alteg.io/smsprovider/status/callback/a%2fb",
        "https://app.alteg.io/smsprovider/status/callback/a\\b",
        "https://app.alteg.io/smsprovider/status/callback/",
        "https://app.alteg.io/smsprovider/status/callback/tok/x",
        "https://app.alteg.io/SMSPROVIDER/status/callback/tok",
        "https://app.alteg.io/smsprovider/status/callback/tok;x=1/..",
        "http://app.alteg.io/smsprovider/status/callback/tok",
        "https://app.alteg.io/smsprovider/status/callback/a%20b",
        "https://app.alteg.io/smsprovider/status/callback/%ff",
    ],
)
def test_check_url_refuses_anything_but_the_callback_path_on_the_default_port(url: str) -> None:
    assert check_url(url, allowed_hosts=ALTEGIO, insecure_hosts=[]) is not None


@pytest.mark.parametrize(
    "url",
    [
        "https://app.alteg.io/smsprovider/status/callback/tok",
        "https://app.alteg.io:443/smsprovider/status/callback/tok",
        "https://APP.alteg.io/smsprovider/status/callback/Tok-1_2.3~x",
        "https://app.alteg.io/smsprovider/status/callback/%41b:c@d",
    ],
)
def test_check_url_allows_the_callback_path_on_an_allowed_host(url: str) -> None:
    assert check_url(url, allowed_hosts=ALTEGIO, insecure_hosts=[]) is None


def test_an_allowed_host_entry_may_name_another_port_and_then_only_that_one() -> None:
    hosts = {"allowed_hosts": ["app.alteg.io:8443"], "insecure_hosts": []}
    assert check_url(f"https://app.alteg.io:8443{CB}/tok", **hosts) is None
    assert check_url(f"https://app.alteg.io{CB}/tok", **hosts) is not None
    assert check_url(f"https://app.alteg.io:9443{CB}/tok", **hosts) is not None


def test_an_insecure_host_takes_plain_http_on_any_port_but_https_only_from_allowed_hosts() -> None:
    hosts = {"allowed_hosts": [], "insecure_hosts": ["127.0.0.1", "[::1]:8080"]}
    assert check_url(f"http://127.0.0.1:1{CB}/tok", **hosts) is None
    assert check_url(f"http://127.0.0.1{CB}/tok", **hosts) is None
    assert check_url(f"http://[::1]:8080{CB}/tok", **hosts) is None
    assert check_url(f"http://[::1]:8081{CB}/tok", **hosts) is not None
    assert check_url(f"https://127.0.0.1:8443{CB}/tok", **hosts) is not None


def test_a_reason_names_neither_the_path_nor_the_token() -> None:
    for url in (
        f"https://app.alteg.io{CB}/{TOKEN}?x={TOKEN}",
        f"https://app.alteg.io{CB}/{TOKEN}/{TOKEN}",
        f"https://app.alteg.io{CB}/{TOKEN}%2f{TOKEN}",
        f"https://app.alteg.io:8443{CB}/{TOKEN}",
        f"https://app.alteg.io{CB}/{TOKEN}#{TOKEN}",
    ):
        reason = check_url(url, allowed_hosts=ALTEGIO, insecure_hosts=[])
        assert reason is not None and TOKEN not in reason and "x=" not in reason


@pytest.mark.parametrize(
    "entry",
    ["app.alteg.io:99999", "app.alteg.io:0", "app.alteg.io:", "https://app.alteg.io", "a/b", "x@y"],
)
def test_a_host_entry_that_is_not_host_or_host_port_is_a_config_error(
    entry: str, tmp_path: Path
) -> None:
    for key in ("allowed_hosts", "insecure_hosts"):
        config = tmp_path / f"{key}.yaml"
        config.write_text(f"altegio:\n  {key}: [{entry!r}]\n")
        with pytest.raises(ConfigError, match=f"altegio.{key}"):
            load_settings(config, environ={})
