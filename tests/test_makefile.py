"""`make test` on a laptop leaves the host alone: the e2e run (host settings, a real cluster) is CI's."""

from __future__ import annotations

import os
import subprocess

from infra import REPO


def dry_run(target: str, **env: str) -> str:
    environment = {k: v for k, v in os.environ.items() if k not in ("CI", "E2E")} | env
    result = subprocess.run(
        ["make", "-n", target], cwd=REPO, env=environment, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_make_test_runs_no_e2e_without_ci() -> None:
    assert "tests/e2e/e2e.py" not in dry_run("test")


def test_make_test_runs_the_e2e_in_ci_or_when_asked() -> None:
    assert "tests/e2e/e2e.py" in dry_run("test", CI="1")
    assert "tests/e2e/e2e.py" in dry_run("test", E2E="1")


def test_airgap_switch_layers_the_airgap_inventory() -> None:
    assert "-i inventory/default -i inventory/airgap" in dry_run("up", AIRGAP="1")
    assert "inventory/airgap" not in dry_run("up")
