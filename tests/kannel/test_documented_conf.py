"""docs/kannel.md stays true without Kannel installed: its kannel.conf is the one the
end-to-end test runs (with ports, passwords and paths of its own), its dlr-url template is
the test's, and its simulator command line parses."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from pipeline.smsc.command import _outcomes, simulator
from pipeline.smsc.simulator import SmscSimulator
from tests.kannel.gateway import (
    KANNEL_DOC,
    KannelPorts,
    documented_conf_text,
    kannel_conf,
    parse_conf,
)
from tests.kannel.test_kannel_end_to_end import DLR_URL

LOOPBACK = '"127.0.0.1"'


def documented() -> dict[str, dict[str, str]]:
    groups = parse_conf(documented_conf_text())
    names = [name for name, _ in groups]
    assert names == ["core", "smsc", "smsbox", "sendsms-user"], names
    return {name: dict(items) for name, items in groups}


def test_the_documented_conf_listens_on_loopback_only_and_describes_the_simulator() -> None:
    conf = documented()
    core, smsc, smsbox, user = conf["core"], conf["smsc"], conf["smsbox"], conf["sendsms-user"]
    for group, key in [(core, "admin-interface"), (core, "smsbox-interface"),
                       (core, "admin-allow-ip"), (core, "box-allow-ip"),
                       (smsbox, "sendsms-interface"), (user, "user-allow-ip")]:  # fmt: skip
        assert group[key] == LOOPBACK, key
    assert core["admin-deny-ip"] == core["box-deny-ip"] == '"*.*.*.*"'
    # The simulator: SMPP over one transceiver bind, hex ids in submit_sm_resp only.
    assert (smsc["smsc"], smsc["transceiver-mode"], smsc["msg-id-type"]) == ("smpp", "true", "0x01")
    assert smsc["smsc-username"] == f'"{SmscSimulator().system_id}"'
    assert smsbox["bearerbox-port"] == core["smsbox-port"]
    # Debug logging writes the token into Kannel's logs; retries cover smsrecon restarts.
    assert core["log-level"] == smsbox["log-level"] == "1"
    assert int(smsbox["http-request-retry"]) > 0 and "http-queue-delay" in smsbox


def test_the_test_gateway_runs_the_documented_conf_with_its_own_ports_and_secrets(
    tmp_path: Path,
) -> None:
    ports = KannelPorts(20001, 20002, 20003)
    text = kannel_conf(tmp_path, ports, 20004, "adm-pw", "esme", "user", "user-pw")
    ran = {name: dict(items) for name, items in parse_conf(text)}
    doc = documented()
    assert {name: set(items) for name, items in ran.items()} == {
        name: set(items) for name, items in doc.items()
    }
    replaced = {
        ("core", "admin-port"), ("core", "admin-password"), ("core", "smsbox-port"),
        ("core", "log-file"), ("core", "log-level"), ("core", "access-log"),
        ("smsc", "port"), ("smsc", "smsc-username"),
        ("smsbox", "bearerbox-port"), ("smsbox", "sendsms-port"), ("smsbox", "log-file"),
        ("smsbox", "log-level"), ("smsbox", "http-request-retry"),
        ("sendsms-user", "username"), ("sendsms-user", "password"),
    }  # fmt: skip
    for name, items in doc.items():
        for key, value in items.items():
            if (name, key) not in replaced:
                assert ran[name][key] == value, (name, key)
    assert ran["smsc"]["port"] == "20004" and ran["core"]["admin-password"] == '"adm-pw"'
    assert ran["core"]["log-file"] == f'"{tmp_path / "bearerbox.log"}"'


def test_the_documented_dlr_url_template_is_the_one_the_test_sends() -> None:
    text = KANNEL_DOC.read_text(encoding="utf-8")
    template = (
        "http://HOST:PORT/v1/dlr/<carrier>?message_id=<OUR ID>&type=%d&answer=%A&smsc=%i"
        "&smsc_id=%F&ts=%T&to=%p&from=%P&token=<TOKEN>"
    )
    assert template in text
    assert DLR_URL.format(
        port="PORT", carrier="<carrier>", message_id="<OUR ID>", token="<TOKEN>"
    ) == template.replace("HOST", "127.0.0.1")


def test_the_documented_simulator_command_line_parses() -> None:
    text = KANNEL_DOC.read_text(encoding="utf-8").replace("\\\n", " ")
    [line] = [ln for ln in text.splitlines() if "-m pipeline.smsc --" in ln]
    argv = shlex.split(line[line.index("-m pipeline.smsc") + len("-m pipeline.smsc") :])
    with simulator.make_context("python -m pipeline.smsc", argv) as ctx:
        params = ctx.params
    assert params["port"] == 2775
    assert len(_outcomes(params["outcome_specs"])) == 3  # each outcome is valid too
    assert re.search(r"--outcome \d+=refuse:0x0B", line)
