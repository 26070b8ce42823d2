"""promtool unit tests of every alert, against the rules the monitoring role renders."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from infra import MANIFESTS

HERE = Path(__file__).resolve().parent


def promtool() -> str:
    path = os.environ.get("PROMTOOL") or shutil.which("promtool")
    if not path or not Path(path).exists():
        pytest.fail("promtool not found: `make tools` builds it (PROMTOOL), or apt-get install prometheus")
    return path


def rendered_rules() -> str:
    config_maps = yaml.safe_load_all((MANIFESTS / "monitoring" / "11-prometheus-config.yaml").read_text())
    rules = next(d for d in config_maps if d["metadata"]["name"] == "prometheus-rules")
    return rules["data"]["sentiment-service.yml"]


def test_every_alert_has_unit_tests_firing_and_quiet() -> None:
    alerts = {r["alert"] for g in yaml.safe_load(rendered_rules())["groups"] for r in g["rules"] if "alert" in r}
    tests = yaml.safe_load((HERE / "prometheus" / "sentiment-service.test.yml").read_text())["tests"]
    firing, quiet = set(), set()
    for case in tests:
        for check in case["alert_rule_test"]:
            (firing if check["exp_alerts"] else quiet).add(check["alertname"])
    assert alerts == firing, f"alerts without a firing test: {alerts - firing}"
    assert alerts == quiet, f"alerts without a quiet test: {alerts - quiet}"


def test_alert_rules_pass_promtool_unit_tests(tmp_path: Path) -> None:
    (tmp_path / "sentiment-service.yml").write_text(rendered_rules())
    shutil.copy(HERE / "prometheus" / "sentiment-service.test.yml", tmp_path)
    for verb, target in (("check", "sentiment-service.yml"), ("test", "sentiment-service.test.yml")):
        result = subprocess.run(
            [promtool(), verb, "rules", target], cwd=tmp_path, capture_output=True, text=True, check=False
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert "SUCCESS" in result.stdout
