"""The shipped dashboard and alert rules: well-formed, and naming only metrics that a live
/metrics really exports (on each engine)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from pipeline.config import Settings
from pipeline.db.engine import Database
from tests.ingest.server_fixtures import live_server
from tests.metrics.scrape import exported_names, scrape

OPS = Path(__file__).resolve().parent.parent.parent / "ops"
METRIC = re.compile(r"\bsmsrecon_[a-z0-9_]+")
SEVERITIES = {"critical", "warning", "info"}
DURATION = re.compile(r"^\d+[smhd]$")


def alert_rules() -> list[dict[str, Any]]:
    document = yaml.safe_load((OPS / "alerts.yml").read_text(encoding="utf-8"))
    return [rule for group in document["groups"] for rule in group["rules"]]


def dashboard_exprs() -> list[str]:
    dashboard = json.loads((OPS / "grafana-dashboard.json").read_text(encoding="utf-8"))
    return [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]


def test_alert_rules_are_well_formed() -> None:
    rules = alert_rules()
    assert rules
    names = [rule["alert"] for rule in rules]
    assert len(names) == len(set(names)), "alert names repeat"
    for rule in rules:
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule["alert"]
        assert isinstance(rule["expr"], str) and METRIC.search(rule["expr"]), rule["alert"]
        assert DURATION.match(str(rule["for"])), rule["alert"]
        assert rule["labels"]["severity"] in SEVERITIES, rule["alert"]
        assert rule["annotations"]["summary"].strip(), rule["alert"]


def test_the_dashboard_has_a_panel_for_every_stage() -> None:
    dashboard = json.loads((OPS / "grafana-dashboard.json").read_text(encoding="utf-8"))
    rows = {panel["title"] for panel in dashboard["panels"] if panel["type"] == "row"}
    stages = {"Health", "Ingest", "Projector", "Dispatch", "Mismatches and quarantine"}
    assert stages | {"Scheduler"} <= rows
    for panel in dashboard["panels"]:
        if panel["type"] != "row":
            assert panel["targets"] and all(t["expr"] for t in panel["targets"]), panel["title"]


async def test_every_metric_the_ops_files_name_is_exported(db: Database) -> None:
    async with live_server(Settings(), db) as client:
        exported = exported_names(await scrape(client))
    named = {
        (source, name)
        for source, exprs in (
            ("alerts.yml", [r["expr"] for r in alert_rules()]),
            ("grafana-dashboard.json", dashboard_exprs()),
        )
        for expr in exprs
        for name in METRIC.findall(expr)
    }
    assert named
    assert sorted((source, name) for source, name in named if name not in exported) == []
