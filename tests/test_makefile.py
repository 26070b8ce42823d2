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
    assert "tests/e2e/e2e.py" in dry_run("test", CI="true")
    assert "tests/e2e/e2e.py" in dry_run("test", E2E="1")


def test_a_false_ci_value_is_no_ci() -> None:
    for value in ("false", "0", "no", "off", ""):
        assert "tests/e2e/e2e.py" not in dry_run("test", CI=value), value
    assert "tests/e2e/e2e.py" not in dry_run("test", CI="true", E2E="0")


def test_airgap_switch_layers_the_airgap_inventory() -> None:
    assert "-i inventory/default -i inventory/airgap" in dry_run("up", AIRGAP="1")
    assert "inventory/airgap" not in dry_run("up")


def test_every_cluster_target_takes_the_inventory() -> None:
    for target in ("up", "load", "rollout", "drift-demo", "grafana-password", "down", "render"):
        assert "-i clusters/shop " in dry_run(target, INVENTORY="clusters/shop"), target
        assert "-i inventory/default " in dry_run(target), target


def test_cluster_targets_reach_what_make_up_stood_up() -> None:
    # `make up` records its inventory and AIRGAP; the cluster targets reuse them unless told otherwise.
    settings = REPO / ".build" / "up-settings.mk"
    kept = settings.read_text() if settings.exists() else None
    settings.parent.mkdir(exist_ok=True)
    try:
        settings.write_text("UP_INVENTORY := clusters/shop\nUP_AIRGAP := 1\n")
        down = dry_run("down")
        assert "-i clusters/shop -i inventory/airgap" in down
        # The image factory's engine and kind find the cluster.
        assert "DOCKER_CONFIG=" in down
        assert "/bin/kind-" in down
        assert "-i inventory/default " in dry_run("load", INVENTORY="inventory/default", AIRGAP="0")
        # make render and make up take only what they are given.
        assert "-i inventory/default " in dry_run("render")
        assert "inventory/airgap" not in dry_run("up")
    finally:
        if kept is None:
            settings.unlink()
        else:
            settings.write_text(kept)
