"""Faults under hey load, failed requests counted per fault: a model pod deleted, the Prometheus pod deleted,
a worker frozen past the node-monitor grace period."""

from __future__ import annotations

import time

from ..runner import Runner, Stage, failed, finish_hey, hpa_state, kubectl, model_pods, start_hey, watch_hpa

POD_DELETED = "fault, model pod deleted under load: no failed request"
PROMETHEUS_DELETED = (
    "fault, Prometheus deleted under load: the HPA holds its replicas and has its metric back within 2 minutes"
)
NODE_FROZEN = "fault, worker node frozen past the grace period: at most 1% of requests fail"


def fault_pod_deleted(runner: Runner) -> dict:
    """A model pod deleted under load: its endpoints go first (preStop), Traefik retries what it did not answer."""
    hey = start_hey(runner, 40, 8, "A pod goes away mid-traffic.", log="fault-pod-deleted-hey.log")
    time.sleep(10)
    victim = model_pods(runner)[0]["metadata"]["name"]
    kubectl(runner, "delete", "pod", "-n", runner.names["sentiment_app_namespace"], victim, "--wait=false")
    result = finish_hey(hey)
    return {
        "fault": "model pod deleted",
        "pod": victim,
        "requests": result["responses"] + result["error_count"],
        "failed": failed(result),
        "status_codes": result["status_codes"],
        "errors": result["errors"],
    }


def metric_back(samples: list[dict]) -> float | None:
    """Seconds after the deletion at which the HPA read its custom metric again (after the first 5 s, when
    it may still hold the last value)."""
    return next((s["t"] for s in samples if s["metrics_ok"] and s["t"] > 5), None)


def fault_prometheus_deleted(runner: Runner) -> dict:
    """Prometheus deleted under load: the HPA loses its custom metric for a while and must neither scale to
    its minimum nor flap, and must have its metric back within two minutes."""
    hey = start_hey(runner, 150, 16, "Scaling on a metric that goes away.", log="fault-prometheus-deleted-hey.log")
    time.sleep(30)  # let the HPA scale out above its minimum on this load (replicas only rise from here)
    before = hpa_state(runner)
    kubectl(
        runner,
        "delete",
        "pod",
        "-n",
        runner.names["monitoring_namespace"],
        "-l",
        "app.kubernetes.io/name=prometheus",
        "--wait=false",
    )
    deleted_at = time.monotonic()
    # Watched for a minute (the HPA syncs every 15 s: four chances to scale down or flap), or until the metric
    # is back, up to the two minutes the check allows.
    samples = watch_hpa(runner, 120, until=lambda seen: seen[-1]["t"] >= 60 and metric_back(seen) is not None)
    result = finish_hey(hey, stop=True)
    back = metric_back(samples)
    replicas = [s["current"] for s in samples]
    return {
        "fault": "Prometheus pod deleted",
        "before": before,
        "hpa": samples,
        "lowest_replicas": min(replicas),
        "metric_back_after_s": back,
        "requests": result["responses"] + result["error_count"],
        "failed": failed(result),
        "status_codes": result["status_codes"],
        "seconds_watched": round(time.monotonic() - deleted_at),
    }


def fault_node_frozen(runner: Runner) -> dict:
    """A worker hung (docker pause) past the node-monitor grace period, then back: its pods stop answering
    without a word; Traefik times out and retries elsewhere until the node is NotReady and its endpoints go."""
    pods = model_pods(runner)
    prometheus_nodes = {
        p["spec"].get("nodeName")
        for p in runner.kubectl_json("get", "pods", "-n", runner.names["monitoring_namespace"])["items"]
    }
    nodes = [p["spec"]["nodeName"] for p in pods if not p["spec"]["nodeName"].endswith("control-plane")]
    candidates = [n for n in nodes if n not in prometheus_nodes] or nodes
    victim = max(set(candidates), key=candidates.count)
    # 10 s before the freeze, 60 s frozen, 40 s after it: Traefik's retries and the endpoints' return.
    hey = start_hey(runner, 110, 8, "A node stops answering.", log="fault-node-frozen-hey.log")
    time.sleep(10)
    runner.run("docker", "pause", victim)
    try:
        time.sleep(60)  # past the node-monitor grace period (40 s): the node turns NotReady
    finally:
        runner.run("docker", "unpause", victim)
    result = finish_hey(hey)
    requests = result["responses"] + result["error_count"]
    return {
        "fault": "worker node frozen 60 s",
        "node": victim,
        "model_pods_on_it": nodes.count(victim),
        "requests": requests,
        "failed": failed(result),
        "failed_share": failed(result) / max(requests, 1),
        "status_codes": result["status_codes"],
        "errors": result["errors"],
    }


def faults(runner: Runner) -> None:
    report = runner.report
    pod = fault_pod_deleted(runner)
    report.check(POD_DELETED, pod["requests"] > 0 and pod["failed"] == 0, pod)
    prometheus = fault_prometheus_deleted(runner)
    report.check(
        PROMETHEUS_DELETED,
        prometheus["lowest_replicas"] >= prometheus["before"]["current"]
        and prometheus["metric_back_after_s"] is not None
        and prometheus["metric_back_after_s"] <= 120
        and prometheus["failed"] == 0,
        {k: v for k, v in prometheus.items() if k != "hpa"},
    )
    node = fault_node_frozen(runner)
    report.check(NODE_FROZEN, node["requests"] > 0 and node["failed_share"] <= 0.01, node)
    report.facts["faults"] = [pod, prometheus, node]
    kubectl(runner, "wait", "--for=condition=Ready", "nodes", "--all", "--timeout=300s")


STAGE = Stage(
    "faults",
    faults,
    title="faults under load",
    checks=(POD_DELETED, PROMETHEUS_DELETED, NODE_FROZEN),
    needs=("cluster_checks",),
)
