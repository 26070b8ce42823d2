"""A cluster site.yml did not create, set up as its admin would (containerd mirrors to the site's registry),
then the platform deployed to it with kind_cluster_enabled false and the model image pushed to the registry
instead of loaded into nodes; with Flagger on from the first run, as a user who sets platform_canary_enabled
before `make up` has it (the main cluster switches it on later)."""

from __future__ import annotations

import json
import re
import secrets

from ..runner import (
    BUILD,
    LISTEN_ADDRESS,
    REGISTRY,
    REGISTRY_CONTAINER,
    Runner,
    Stage,
    canary_state,
    free_port,
    image_check_names,
    image_checks,
    not_ready_pods,
    record_cluster,
)

DEPLOYED = (
    "existing cluster: site.yml with kind_cluster_enabled false and Flagger on from the start deploys and "
    "verifies it (metric; a prediction through Flagger's HTTPRoute)"
)
PODS_READY = "existing cluster: every pod Ready"
# The line the profile_tasks callback (runner.py) writes under each task's banner: when it started, its time.
TIMESTAMP = r"(?:\w+day \d{2} \w+ \d{4} .*\*+ ?\n)?"


def banner(task: str) -> str:
    """The regex of a kind_cluster task's banner line in a playbook's log, up to its newline."""
    return rf"TASK \[sentiment\.platform\.kind_cluster : {re.escape(task)}\] \**\n"


# image_checks' label for this cluster.
CLUSTER = "existing cluster"


def existing_cluster(runner: Runner) -> None:
    """A cluster site.yml did not create, set up as its admin would (containerd mirrors to the site's
    registry), then the platform deployed to it with kind_cluster_enabled false and the model image pushed
    to the registry instead of loaded into nodes; with Flagger on from the first run, as a user who sets
    platform_canary_enabled before `make up` has it (the main cluster switches it on later)."""
    name = f"sentiment-existing-{secrets.token_hex(3)}"
    port = free_port()
    record_cluster(name)
    node_image = runner.inventory("kind_cluster_node_image")["kind_cluster_node_image"]
    node = {"image": node_image}
    config = {
        "kind": "Cluster",
        "apiVersion": "kind.x-k8s.io/v1alpha4",
        "name": name,
        "networking": {"apiServerAddress": LISTEN_ADDRESS},
        "containerdConfigPatches": [
            '[plugins."io.containerd.grpc.v1.cri".registry]\n  config_path = "/etc/containerd/certs.d"'
        ],
        "nodes": [
            {
                **node,
                "role": "control-plane",
                "labels": {"ingress-ready": "true"},
                "extraPortMappings": [{"containerPort": 30080, "hostPort": port, "listenAddress": LISTEN_ADDRESS}],
            },
            {**node, "role": "worker"},
        ],
    }
    config_path = BUILD / "existing-kind-config.yaml"
    config_path.write_text(json.dumps(config, indent=2) + "\n")
    runner.run(
        "kind",
        "create",
        "cluster",
        "--name",
        name,
        "--config",
        str(config_path),
        "--wait",
        "300s",
        log="existing-kind-create.log",
    )
    endpoint = f"http://{REGISTRY_CONTAINER}:5000"
    for node_name in runner.run("kind", "get", "nodes", "--name", name).stdout.split():
        for registry in ("docker.io", "quay.io", "registry.k8s.io", "ghcr.io", REGISTRY):
            runner.run(
                "docker",
                "exec",
                "-i",
                node_name,
                "sh",
                "-c",
                'mkdir -p "$1" && cat > "$1/hosts.toml"',
                "sh",
                f"/etc/containerd/certs.d/{registry}",
                stdin=f'[host."{endpoint}"]\n  capabilities = ["pull", "resolve"]\n',
            )
    networks = runner.run(
        "docker", "inspect", "--format", "{{json .NetworkSettings.Networks}}", REGISTRY_CONTAINER
    ).stdout
    if "kind" not in json.loads(networks):
        runner.run("docker", "network", "connect", "kind", REGISTRY_CONTAINER)

    runner.cluster = name
    runner.run_vars = BUILD / "run-vars-existing.yml"
    runner.run_vars.write_text(
        json.dumps(
            {
                "kind_cluster_enabled": False,
                "kind_cluster_name": name,
                "platform_public_port": port,
                "sentiment_app_image_registry": REGISTRY,
                "platform_canary_enabled": True,
            },
            indent=2,
        )
        + "\n"
    )
    recap = runner.playbook("site.yml", "site-existing-cluster.log")
    log = (BUILD / "site-existing-cluster.log").read_text()
    # kind_cluster must have skipped its create task: the cluster was there already.
    created = re.search(rf"{banner('Create the cluster')}(?!{TIMESTAMP}skipping)", log)
    # ... and checked the cluster it found instead (existing.yml: a Ready node through the kubeconfig).
    checked = re.search(
        rf"{banner('Check that the existing cluster has a Ready node')}{TIMESTAMP}ok:",
        log,
    )
    phase = canary_state(runner)["status"].get("phase")
    runner.report.facts["existing_cluster"] = {"name": name, "recap": recap, "canary_phase": phase}
    runner.report.check(
        DEPLOYED,
        recap["failed"] == 0 and not created and checked is not None and phase in ("Initialized", "Succeeded"),
        {**recap, "canary_phase": phase},
    )
    not_ready = not_ready_pods(runner.kubectl_json("get", "pods", "--all-namespaces")["items"])
    runner.report.check(PODS_READY, not not_ready, not_ready or "all Ready")
    image_checks(runner, CLUSTER, model_from_registry=True, canary=True)


# Standalone: a cluster of its own, so it needs only the images and the engine, not the run's first cluster.
STAGE = Stage(
    "existing_cluster",
    existing_cluster,
    title="existing cluster (kind_cluster_enabled false, Flagger from the start)",
    checks=(DEPLOYED, PODS_READY, *image_check_names(CLUSTER, model_from_registry=True)),
    needs=("build", "docker_facts"),
)
