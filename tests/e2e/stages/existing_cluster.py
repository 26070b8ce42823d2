"""A cluster site.yml did not create, set up as its admin would (containerd mirrors to the site's registry)
and shared as a real one is (neighbours.yaml: its own metrics-server, a default IngressClass of another
controller, a `monitoring` namespace with a Prometheus, another team's CPU HPA). site.yml first stops on the
objects it would take over and changes nothing; with the switches its message names, it deploys with
kind_cluster_enabled false, the model image pushed to the registry, Flagger on from the first run; the
neighbours keep working; teardown.yml then leaves the cluster as it found it."""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import time
from pathlib import Path

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
    kubectl,
    not_ready_pods,
    pins,
    record_cluster,
)

DEPLOYED = (
    "existing cluster: site.yml with kind_cluster_enabled false and Flagger on from the start deploys and "
    "verifies it (metric; a prediction through Flagger's HTTPRoute)"
)
PODS_READY = "existing cluster: every pod Ready"
REFUSED = (
    "existing cluster: site.yml without switches stops before changing anything, listing the objects it would "
    "take over (the namespace monitoring and their Prometheus in it) with their switch; the cluster is unchanged"
)
NEIGHBOURS_KEEP_WORKING = (
    "existing cluster: with the platform deployed, the other team's HPA still gets CPU metrics from the "
    "cluster's metrics-server (kept: the platform deploys none of its own there), whose APIService is untouched, "
    "and the cluster's default IngressClass is still the only default"
)
CRDS_STAY = "existing cluster: teardown.yml removes what the platform applied and keeps its CRDs"
LEFT_AS_FOUND = (
    "existing cluster: teardown.yml --tags crds leaves the cluster's objects exactly as they were before install"
)
# The neighbours (what another tool installed before the platform came) and the switches that make room.
NEIGHBOURS = Path(__file__).resolve().parent / "neighbours.yaml"
# The cluster's metrics-server is no conflict: site.yml sees it and keeps it (custom_metrics_metrics_server_enabled
# defaults to false there).
EXPECTED_CONFLICTS = ("Namespace/monitoring", "Deployment/monitoring/prometheus")
SWITCHES = {"monitoring_namespace": "sentiment-monitoring"}
# What the snapshot covers: every kind the platform writes or could disturb (events, leases, pods, endpoints
# and nodes change by themselves and are left out).
SNAPSHOT_KINDS = (
    "namespaces,apiservices,ingressclasses,clusterroles,clusterrolebindings,customresourcedefinitions,"
    "validatingwebhookconfigurations,mutatingwebhookconfigurations,deployments,daemonsets,statefulsets,services,"
    "horizontalpodautoscalers,networkpolicies,roles,rolebindings,serviceaccounts,configmaps,secrets"
)
# The neighbours' objects the platform must leave alone while it runs beside them.
THEIRS = (
    "APIService//v1beta1.metrics.k8s.io",
    "Namespace//monitoring",
    "Deployment/monitoring/",
    "HorizontalPodAutoscaler/shop/",
)
# The content that is the object (not its status), hashed.
CONTENT = ("spec", "data", "stringData", "rules", "roleRef", "subjects", "webhooks", "aggregationRule", "type")
# The line the profile_tasks callback (runner.py) writes under each task's banner: when it started, its time.
TIMESTAMP = r"(?:\w+day \d{2} \w+ \d{4} .*\*+ ?\n)?"


def banner(task: str) -> str:
    """The regex of a kind_cluster task's banner line in a playbook's log, up to its newline."""
    return rf"TASK \[sentiment\.platform\.kind_cluster : {re.escape(task)}\] \**\n"


# image_checks' label for this cluster.
CLUSTER = "existing cluster"


def snapshot(runner: Runner) -> dict[str, list]:
    """Every object of SNAPSHOT_KINDS as identity (uid), generation, labels, annotations and a hash of its
    content: equal snapshots mean nothing was created, deleted, relabelled or changed."""
    items = runner.kubectl_json("get", SNAPSHOT_KINDS, "--all-namespaces")["items"]
    result = {}
    for item in items:
        meta = item["metadata"]
        key = f"{item['kind']}/{meta.get('namespace', '')}/{meta['name']}"
        content = json.dumps({k: item.get(k) for k in CONTENT}, sort_keys=True)
        result[key] = [
            meta["uid"],
            meta.get("generation"),
            meta.get("labels", {}),
            meta.get("annotations", {}),
            hashlib.sha256(content.encode()).hexdigest()[:16],
        ]
    return result


def differences(before: dict, after: dict) -> dict[str, list[str]]:
    return {
        "added": sorted(set(after) - set(before)),
        "removed": sorted(set(before) - set(after)),
        "changed": sorted(k for k in set(before) & set(after) if before[k] != after[k]),
    }


def snapshot_settles_to(runner: Runner, before: dict, seconds: int = 90) -> dict[str, list[str]]:
    """The differences from `before` once they are gone, or as they stand after `seconds` (controllers
    catch up: aggregated ClusterRoles lose the rules of deleted ones a moment after)."""
    deadline = time.monotonic() + seconds
    while True:
        diff = differences(before, snapshot(runner))
        if not any(diff.values()) or time.monotonic() > deadline:
            return diff
        time.sleep(5)


def populate(runner: Runner) -> None:
    """Install the neighbours and wait until their deployments are available (the other team's HPA reads CPU
    through the cluster's metrics-server a little later: neighbour_hpa_metric)."""
    pinned = pins()
    manifest = (
        NEIGHBOURS.read_text()
        .replace("METRICS_SERVER_IMAGE", pinned["metrics_server_image"])
        .replace("PROMETHEUS_IMAGE", pinned["prometheus_image"])
    )
    runner.run("kubectl", f"--context=kind-{runner.cluster}", "apply", "-f", "-", stdin=manifest)
    for namespace, deployment in (("kube-system", "metrics-server"), ("monitoring", "prometheus"), ("shop", "web")):
        kubectl(runner, "rollout", "status", "-n", namespace, f"deployment/{deployment}", "--timeout=180s")


def neighbour_hpa_metric(runner: Runner, wait: int = 0) -> dict:
    """The other team's HPA: its CPU reading and ScalingActive condition (waiting up to `wait` seconds for
    a reading)."""
    deadline = time.monotonic() + wait
    while True:
        hpa = runner.kubectl_json("get", "hpa", "-n", "shop", "web")
        metrics = hpa["status"].get("currentMetrics") or []
        cpu = next((m["resource"]["current"] for m in metrics if m.get("type") == "Resource"), None)
        active = next((c["status"] for c in hpa["status"].get("conditions", []) if c["type"] == "ScalingActive"), None)
        state = {"cpu": cpu, "scaling_active": active}
        if (cpu is not None and active == "True") or time.monotonic() > deadline:
            return state
        time.sleep(5)


def default_ingress_classes(runner: Runner) -> list[str]:
    return sorted(
        c["metadata"]["name"]
        for c in runner.kubectl_json("get", "ingressclasses")["items"]
        if c["metadata"].get("annotations", {}).get("ingressclass.kubernetes.io/is-default-class") == "true"
    )


def write_run_vars(runner: Runner, run_vars: dict) -> None:
    runner.run_vars.write_text(json.dumps(run_vars, indent=2) + "\n")


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
    run_vars = {
        "kind_cluster_enabled": False,
        "kind_cluster_name": name,
        "platform_public_port": port,
        "sentiment_app_image_registry": REGISTRY,
        "platform_canary_enabled": True,
    }
    populate(runner)
    before = snapshot(runner)

    # Without switches: site.yml must stop on the neighbours' objects before it changes anything.
    write_run_vars(runner, run_vars)
    refused = runner.playbook("site.yml", "site-existing-cluster-refused.log", check=False)
    refused_log = (BUILD / "site-existing-cluster-refused.log").read_text()
    # Each listed with the switch that resolves it (their Prometheus goes with their namespace).
    listed = {
        ref: re.search(rf"- {re.escape(ref)} \(managed by [^']*?\): monitoring_namespace:", refused_log) is not None
        for ref in EXPECTED_CONFLICTS
    }
    listed["and no other"] = f"{len(EXPECTED_CONFLICTS)} object(s) it would write exist" in refused_log
    unchanged = differences(before, snapshot(runner))
    runner.report.facts["existing_cluster_refused"] = {"recap": refused, "listed": listed, "changes": unchanged}
    runner.report.check(
        REFUSED,
        refused["failed"] == 1
        and "site.yml changed nothing" in refused_log
        and all(listed.values())
        and not any(unchanged.values()),
        {"recap": refused, "listed": listed, "changes": unchanged},
    )
    # Their HPA works before the platform comes (metrics-server's first scrapes arrived during the refused run;
    # the snapshots hold no status, and its Deployment is at its minimum, so nothing of theirs changed meanwhile).
    runner.report.facts["existing_cluster_their_hpa_before"] = neighbour_hpa_metric(runner, wait=180)

    # With the switches the message names: the platform moves out of the neighbours' way.
    write_run_vars(runner, {**run_vars, **SWITCHES})
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

    neighbour = neighbour_hpa_metric(runner, wait=60)
    ours = runner.kubectl_json(
        "get", "deployments", "--all-namespaces", "-l", "app.kubernetes.io/managed-by=sentiment-platform"
    )
    neighbour["our_metrics_server"] = [
        d["metadata"]["name"] for d in ours["items"] if d["metadata"]["name"] == "metrics-server"
    ]
    defaults = default_ingress_classes(runner)
    during = snapshot(runner)
    theirs = [k for k in before if k.startswith(THEIRS)]
    untouched = {k: before[k] == during.get(k) for k in theirs}
    runner.report.check(
        NEIGHBOURS_KEEP_WORKING,
        neighbour["cpu"] is not None
        and neighbour["scaling_active"] == "True"
        and not neighbour["our_metrics_server"]
        and defaults == ["nginx"]
        and all(untouched.values()),
        {"their_hpa": neighbour, "default_classes": defaults, "untouched": untouched},
    )

    # make down: exactly what the platform applied goes; its CRDs stay unless asked for.
    removed = runner.playbook("teardown.yml", "teardown-existing-cluster.log")
    left = differences(before, snapshot(runner))
    # What stays: the CRDs, and the APIServices the API server itself registers for their groups.
    crds_left = [k for k in left["added"] if k.startswith("CustomResourceDefinition/")]
    groups = {k.split("/")[-1].split(".", 1)[1] for k in crds_left}
    served = [k for k in left["added"] if k.startswith("APIService//") and k.split("/")[-1].split(".", 1)[1] in groups]
    runner.report.check(
        CRDS_STAY,
        removed["failed"] == 0
        and bool(crds_left)
        and not left["removed"]
        and not left["changed"]
        and set(left["added"]) == set(crds_left + served),
        {"recap": removed, "differences": left},
    )
    crds_removed = runner.playbook("teardown.yml", "teardown-existing-cluster-crds.log", "--tags", "crds")
    final = snapshot_settles_to(runner, before)
    runner.report.check(
        LEFT_AS_FOUND, crds_removed["failed"] == 0 and not any(final.values()), {"recap": crds_removed, **final}
    )


# Standalone: a cluster of its own, so it needs only the images and the engine, not the run's first cluster.
STAGE = Stage(
    "existing_cluster",
    existing_cluster,
    title="existing cluster (kind_cluster_enabled false, Flagger from the start)",
    checks=(
        REFUSED,
        DEPLOYED,
        PODS_READY,
        *image_check_names(CLUSTER, model_from_registry=True),
        NEIGHBOURS_KEEP_WORKING,
        CRDS_STAY,
        LEFT_AS_FOUND,
    ),
    needs=("build", "docker_facts"),
)
