"""The e2e package's wiring, without a cluster: every stage module imports and declares its stage and checks,
the run order and --only's dependencies, the check names CI and the docs read, and `e2e.py --list`."""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

from . import runner, stages
from .run import GROUPS, RAN_TO_THE_END, STAGES, plan
from .runner import Stage

E2E = Path(__file__).resolve().parent
MODULES = sorted(info.name for info in pkgutil.iter_modules(stages.__path__))
FULL_RUN = [
    "build",
    "docker_facts",
    "site",
    "cluster_checks",
    "load",
    "drift",
    "idempotence",
    "rolling_restart",
    "network_policy",
    "faults",
    "scale_in",
    "rollouts",
    "teardown",
    "existing_cluster",
]
# The report's stage names (e2e-report.json's `stages`, summary.md's table): docker facts stays untimed.
TITLES = {
    "build": "build binaries and images, publish them",
    "docker_facts": None,
    "site": "site.yml (first run)",
    "cluster_checks": "cluster checks",
    "load": "load.yml",
    "drift": "drift.yml",
    "idempotence": "site.yml (second run)",
    "rolling_restart": "rolling restart under load",
    "network_policy": "NetworkPolicy",
    "faults": "faults under load",
    "scale_in": "scale-in under load",
    "rollouts": "canary rollouts under load",
    "teardown": "teardown.yml",
    "existing_cluster": "existing cluster (kind_cluster_enabled false, Flagger from the start)",
}
# Every check of a full run with the default inventory (3 workers, 1 GPU worker), as e2e-report.json names them:
# CI, README.md and docs/ read these names; a stage module that renames one fails here.
CHECKS = [
    "Docker Engine 29 with the containerd image store, on a non-default socket reached through a docker context",
    "1 control-plane and 3 workers, all Ready",
    "1 worker(s) labelled and tainted as simulated GPU nodes",
    "every pod Ready",
    "kind cluster: the platform's upstream image names pulled through the registry mirror from the local registry",
    "kind cluster: the model image built with buildx and loaded by `kind load` from the containerd image store",
    "sentiment_app verify: custom metric served for the pods, /predict answers through Traefik on the host port",
    "HPA rose above its minimum under load",
    "hey saw only 2xx and no errors under load",
    "drift stays stable (PSI < 0.1) on held-out reviews; shifted traffic sets SentimentModelDrift pending",
    "second site.yml run changes nothing",
    "no failed request during a rolling restart under load",
    "NetworkPolicy enforced: another namespace cannot reach the model directly, yet reaches Traefik",
    "fault, model pod deleted under load: no failed request",
    "fault, Prometheus deleted under load: the HPA holds its replicas and has its metric back within 2 minutes",
    "fault, worker node frozen past the grace period: at most 1% of requests fail",
    "scale-in under load loses no request",
    "site.yml with platform_canary_enabled: Flagger runs the model (primary, HTTPRoute, no Ingress); "
    "at most 1% of requests failed while Traefik restarted with its Gateway provider",
    "rollout batch-16: the model gets no traffic before it",
    "rollout batch-16: promoted, primary replaced, no failed request",
    "rollout inverted-labels: rolled_back, primary untouched, no failed request",
    "rollout slow-batching: rolled_back, primary untouched, no failed request",
    "rollout never-ready: rolled_back, primary untouched, no failed request",
    "teardown.yml deletes the cluster",
    "existing cluster: site.yml without switches stops before changing anything, listing the objects it would "
    "take over (the namespace monitoring and their Prometheus in it) with their switch; the cluster is unchanged",
    "existing cluster: site.yml with kind_cluster_enabled false and Flagger on from the start deploys and "
    "verifies it (metric; a prediction through Flagger's HTTPRoute)",
    "existing cluster: every pod Ready",
    "existing cluster: the platform's upstream image names pulled through the registry mirror from the local registry",
    "existing cluster: the model image pulled from the local registry (localhost:5001)",
    "existing cluster: with the platform deployed, the other team's HPA still gets CPU metrics from the "
    "cluster's metrics-server (kept: the platform deploys none of its own there), whose APIService is untouched, "
    "and the cluster's default IngressClass is still the only default",
    "existing cluster: teardown.yml removes what the platform applied and keeps its CRDs",
    "existing cluster: teardown.yml --tags crds leaves the cluster's objects exactly as they were before install",
]


@pytest.mark.parametrize("name", MODULES)
def test_each_stage_module_declares_its_stage_and_checks(name: str) -> None:
    module = importlib.import_module(f"{stages.__name__}.{name}")
    stage = module.STAGE
    assert isinstance(stage, Stage)
    assert stage.key == name
    assert callable(stage.run)
    assert stage.title == TITLES[name]
    assert all(isinstance(check, str) and check for check in stage.checks)
    # What a stage needs runs before it.
    assert all(FULL_RUN.index(need) < FULL_RUN.index(name) for need in stage.needs)


def test_the_run_order_holds_every_stage_module_once() -> None:
    assert sorted(stage.key for stage in STAGES) == MODULES
    assert [stage.key for stage in STAGES] == FULL_RUN


def test_the_checks_keep_the_names_the_report_had() -> None:
    declared = [check.format(workers=3, gpu_workers=1) for stage in STAGES for check in stage.checks]
    assert declared == CHECKS
    assert RAN_TO_THE_END == "e2e ran to the end"


def keys(stages_: list[Stage]) -> list[str]:
    return [stage.key for stage in stages_]


def test_a_full_run() -> None:
    assert keys(plan(None)) == FULL_RUN
    assert keys(plan(None, keep=True)) == [k for k in FULL_RUN if k != "teardown"]
    assert keys(plan(None, skip_build=True)) == FULL_RUN[1:]


def test_only_canary_runs_what_only_canary_ran() -> None:
    # Before the split: build, docker facts, site.yml, the cluster checks, the canary stage, teardown.yml
    # (not with --keep), the existing cluster.
    expected = ["build", "docker_facts", "site", "cluster_checks", "rollouts", "teardown", "existing_cluster"]
    assert GROUPS["canary"] == ("rollouts", "existing_cluster")
    assert keys(plan(["canary"])) == expected
    assert keys(plan(["canary"], keep=True)) == [k for k in expected if k != "teardown"]


def test_only_follows_what_a_stage_needs() -> None:
    # A stage on the first cluster gets it created and checked first, and torn down after.
    assert keys(plan(["load"])) == ["build", "docker_facts", "site", "cluster_checks", "load", "teardown"]
    assert keys(plan(["scale_in", "drift"], skip_build=True)) == [
        "docker_facts",
        "site",
        "cluster_checks",
        "drift",
        "scale_in",
        "teardown",
    ]
    # The existing cluster is one of its own: the images and the engine, no first cluster.
    assert keys(plan(["existing_cluster"])) == ["build", "docker_facts", "existing_cluster"]
    assert keys(plan(["build"])) == ["build"]
    with pytest.raises(ValueError, match="no stage 'canaries'"):
        plan(["canaries"])


def e2e(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(E2E / "e2e.py"), *args], capture_output=True, text=True, check=False, timeout=60
    )


def test_the_entry_point_lists_the_stages_in_order() -> None:
    result = e2e("--list")
    assert result.returncode == 0, result.stderr
    listed = [line.split(":", 1)[0] for line in result.stdout.splitlines() if line and not line[0].isspace()]
    assert listed[: len(FULL_RUN)] == FULL_RUN
    assert "    - every pod Ready" in result.stdout.splitlines()


def test_the_entry_point_resolves_only() -> None:
    result = e2e("--list", "--only-canary", "--keep")
    assert result.returncode == 0, result.stderr
    assert "existing_cluster: " in result.stdout
    assert "teardown: " not in result.stdout
    assert "load: " not in result.stdout
    result = e2e("--only", "nonsense")
    assert result.returncode == 2
    assert "no stage 'nonsense'" in result.stderr


@pytest.mark.slow
def test_the_runner_reads_names_as_the_playbooks_see_them(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Runner.inventory, for real (ansible-playbook, no cluster): the inventory's choices, the run vars, and the
    shared facts of the collection's platform role that the inventory no longer restates (the namespaces)."""
    monkeypatch.setattr(runner, "BUILD", tmp_path)
    monkeypatch.setattr(runner, "RUN_VARS_FILE", tmp_path / "run-vars.yml")
    (tmp_path / "run-vars.yml").write_text(
        '{"kind_cluster_name": "sentiment-e2e-test", "platform_public_port": 18080}\n'
    )
    names = runner.Runner(runner.Report(), "sentiment-e2e-test", 18080).inventory(
        *runner.INVENTORY_NAMES, "kind_cluster_node_image", "kind_cluster_name", "platform_ingress_url"
    )
    assert set(names) == {
        *runner.INVENTORY_NAMES,
        "kind_cluster_node_image",
        "kind_cluster_name",
        "platform_ingress_url",
    }
    assert all(value not in (None, "") for value in names.values()), names
    assert int(names["kind_cluster_workers"]) >= int(names["kind_cluster_gpu_workers"]) >= 1
    assert {"key", "value", "effect"} <= set(names["kind_cluster_gpu_taint"])
    assert names["kind_cluster_name"] == "sentiment-e2e-test"
    assert names["platform_ingress_url"].endswith(":18080")
