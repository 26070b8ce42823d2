"""The HPA scales in under light load (its maximum lowered to its minimum): no request is lost."""

from __future__ import annotations

import json
import time

from ..runner import Runner, Stage, failed, finish_hey, hpa_state, kubectl, model_pods, start_hey, watch_hpa

NO_LOSS = "scale-in under load loses no request"


def scale_in(runner: Runner) -> None:
    """The HPA scales in under light load (its maximum lowered to its minimum): no request is lost."""
    namespace, name = runner.names["sentiment_app_namespace"], runner.names["sentiment_app_name"]
    state = hpa_state(runner)
    if state["current"] <= 2:  # scale out first, so that there is something to scale in
        kubectl(runner, "scale", "deployment", "-n", namespace, name, "--replicas=4")
        kubectl(runner, "rollout", "status", "deployment", "-n", namespace, name, "--timeout=300s")
    hpa = runner.kubectl_json("get", "hpa", "-n", namespace, name)

    def set_max_replicas(count: int) -> None:
        patch = json.dumps({"spec": {"maxReplicas": count}})
        kubectl(runner, "patch", "hpa", "-n", namespace, name, "--type=merge", "-p", patch)

    before = len(model_pods(runner))
    hey = start_hey(runner, 120, 4, "Fewer pods, same answers.", log="scale-in-hey.log")
    time.sleep(5)
    set_max_replicas(hpa["spec"]["minReplicas"])
    # Until the surplus pods are gone (drained: preStop, then in-flight requests answered), up to 100 s; then
    # 10 s more of traffic on what is left.
    samples = watch_hpa(runner, 100, until=lambda _: len(model_pods(runner)) <= hpa["spec"]["minReplicas"])
    time.sleep(10)
    result = finish_hey(hey, stop=True)
    set_max_replicas(hpa["spec"]["maxReplicas"])
    after = len(model_pods(runner))
    facts = {
        "pods_before": before,
        "pods_after": after,
        "hpa": samples,
        "requests": result["responses"],
        "failed": failed(result),
        "status_codes": result["status_codes"],
    }
    runner.report.facts["scale_in"] = facts
    runner.report.check(
        NO_LOSS,
        after < before and result["responses"] > 0 and facts["failed"] == 0,
        {k: v for k, v in facts.items() if k != "hpa"},
    )


STAGE = Stage("scale_in", scale_in, title="scale-in under load", checks=(NO_LOSS,), needs=("cluster_checks",))
