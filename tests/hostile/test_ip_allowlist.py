"""The ``ip`` auth type and ``allow_ips``: only the TCP peer's address counts, alone or on
top of another check; a refused request is stored nowhere."""

from __future__ import annotations

import ipaddress

import pytest

from pipeline.config import ConfigError, load_settings
from pipeline.db.engine import Database
from pipeline.ingest import signing
from pipeline.ingest.auth import peer_allowed
from tests.hostile.auth_helpers import NOW, kannel_report, server_at
from tests.ingest.server_fixtures import event_count, make_settings, quarantine_rows

SECRET = "kannel-gw-secret-7c21"
ENV = "SMSRECON_TEST_IP_SECRET"
MESSAGE = {"id": "m1", "phone": "+79161234567", "text": "Hello"}


@pytest.fixture(autouse=True)
def _secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV, SECRET)


def _kannel(auth: dict[str, object]) -> dict[str, object]:
    return {"kannel": {"format": "kannel", "auth": auth}}


async def test_a_peer_outside_the_allow_list_is_401_and_nothing_is_stored(db: Database) -> None:
    settings = make_settings(_kannel({"type": "ip", "allow_ips": ["10.0.0.0/8", "fd00::/8"]}))
    async with server_at(settings, db) as client:
        good_report = await client.get("/v1/dlr/kannel", params=kannel_report("M1"))
        bad_report = await client.get("/v1/dlr/kannel", params=[("type", "99")])
        metrics = await (await client.get("/metrics")).text()
        assert (await good_report.json())["detail"] == {"reason": "address not allowed"}
    assert (good_report.status, bad_report.status) == (401, 401)
    assert 'smsrecon_ingest_auth_failures_total{carrier="kannel"} 2.0' in metrics
    assert event_count(db) == 0 and quarantine_rows(db) == []


async def test_a_peer_inside_the_allow_list_is_served(db: Database) -> None:
    settings = make_settings(_kannel({"type": "ip", "allow_ips": ["10.0.0.0/8", "127.0.0.1"]}))
    async with server_at(settings, db) as client:
        response = await client.get("/v1/dlr/kannel", params=kannel_report("M1"))
        assert response.status == 200, await response.text()
    assert event_count(db) == 1


async def test_x_forwarded_for_never_stands_in_for_the_peer(db: Database) -> None:
    settings = make_settings(_kannel({"type": "ip", "allow_ips": ["10.0.0.0/8"]}))
    spoofed = {"X-Forwarded-For": "10.1.2.3", "X-Real-IP": "10.1.2.3", "Forwarded": "for=10.1.2.3"}
    async with server_at(settings, db) as client:
        response = await client.get("/v1/dlr/kannel", params=kannel_report("M1"), headers=spoofed)
    assert response.status == 401
    assert event_count(db) == 0


@pytest.mark.parametrize(
    ("allow", "signed", "expected"),
    [
        (["127.0.0.0/8"], True, 200),  # both pass
        (["127.0.0.0/8"], False, 401),  # right address, no signature
        (["10.0.0.0/8"], True, 401),  # right signature, wrong address
    ],
)
async def test_allow_ips_combines_with_a_signature_and_both_must_pass(
    db: Database, allow: list[str], signed: bool, expected: int
) -> None:
    settings = make_settings(_kannel({"type": "hmac", "secret_env": ENV, "allow_ips": allow}))
    query = kannel_report("M1")
    headers = (
        signing.signed_headers(
            SECRET, method="GET", path="/v1/dlr/kannel", query=query, timestamp=NOW
        )
        if signed
        else {}
    )
    async with server_at(settings, db) as client:
        response = await client.get("/v1/dlr/kannel", params=query, headers=headers)
    assert response.status == expected
    assert event_count(db) == (1 if expected == 200 else 0)


async def test_the_send_path_can_be_held_to_an_allow_list(db: Database) -> None:
    outside = make_settings(auth={"type": "ip", "allow_ips": ["192.0.2.0/24"]})
    async with server_at(outside, db) as client:
        refused = await client.post("/v1/messages", json=MESSAGE)
        metrics = await (await client.get("/metrics")).text()
    inside = make_settings(
        auth={"type": "token", "secret_env": ENV, "allow_ips": ["::1", "127.0.0.1/32"]}
    )
    async with server_at(inside, db) as client:
        accepted = await client.post(
            "/v1/messages", json=MESSAGE, headers={"X-Smsrecon-Token": SECRET}
        )
    assert (refused.status, accepted.status) == (401, 200)
    assert 'smsrecon_ingest_auth_failures_total{carrier="/send-path"} 1.0' in metrics
    assert event_count(db) == 1 and quarantine_rows(db) == []


@pytest.mark.parametrize(
    ("peer", "cidrs", "allowed"),
    [
        ("10.20.30.40", ["10.0.0.0/8"], True),
        ("11.0.0.1", ["10.0.0.0/8"], False),
        ("2001:db8::5", ["2001:db8::/32"], True),
        ("2001:db9::5", ["2001:db8::/32"], False),
        ("::1", ["::1/128"], True),
        ("::1", ["127.0.0.0/8"], False),
        ("::ffff:10.1.2.3", ["10.0.0.0/8"], True),  # IPv4 on a dual-stack socket
        ("fe80::1%eth0", ["fe80::/10"], True),  # a scoped link-local peer
        ("10.1.2.3", ["2001:db8::/32", "10.1.0.0/16"], True),
        (None, ["0.0.0.0/0"], False),  # a Unix socket: no address, never allowed
        ("not-an-address", ["0.0.0.0/0"], False),
    ],
)
def test_peer_matching_covers_ipv4_ipv6_and_mapped_addresses(
    peer: str | None, cidrs: list[str], allowed: bool
) -> None:
    networks = [ipaddress.ip_network(c) for c in cidrs]
    assert peer_allowed(peer, networks) is allowed


@pytest.mark.parametrize(
    ("auth", "message"),
    [
        ({"type": "ip"}, "type ip needs allow_ips"),
        ({"type": "ip", "allow_ips": []}, "type ip needs allow_ips"),
        ({"type": "none", "allow_ips": ["10.0.0.0/8"]}, "use type ip"),
        ({"type": "ip", "allow_ips": ["10.0.0.1/8"]}, "not a CIDR"),
        ({"type": "ip", "allow_ips": ["10.0.0.0/33"]}, "not a CIDR"),
        ({"type": "ip", "allow_ips": ["mts.example"]}, "not a CIDR"),
    ],
)
def test_an_allow_list_that_cannot_work_is_a_config_error(
    auth: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        load_settings(
            None, {"carriers.kannel.format": "kannel", "carriers.kannel.auth": auth}, environ={}
        )
    assert "carriers.kannel.auth" in str(caught.value)
    assert "mts.example" not in str(caught.value)
