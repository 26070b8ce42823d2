"""A rolling restart of the model under hey load: no request may fail."""

from __future__ import annotations

import time

from ..runner import Runner, Stage, finish_hey, kubectl, model_pods, start_hey

NO_FAILURE = "no failed request during a rolling restart under load"


def rolling_restart(runner: Runner) -> None:
    """Traffic from 5 s before the restart until 10 s after the last old pod is gone (its drain included)."""
    hey = start_hey(runner, 300, 8, "Steady traffic while the pods roll.", log="rolling-restart-hey.log")
    time.sleep(5)
    namespace, name = runner.names["sentiment_app_namespace"], runner.names["sentiment_app_name"]
    old = {p["metadata"]["name"] for p in model_pods(runner)}
    kubectl(runner, "rollout", "restart", "-n", namespace, f"deployment/{name}")
    kubectl(runner, "rollout", "status", "-n", namespace, f"deployment/{name}", "--timeout=300s")
    deadline = time.monotonic() + 120
    while old & {p["metadata"]["name"] for p in model_pods(runner)} and time.monotonic() < deadline:
        time.sleep(2)
    time.sleep(10)
    result = finish_hey(hey, stop=True)
    # The HPA may have added pods under this load: the next stage finds them running.
    kubectl(runner, "rollout", "status", "-n", namespace, f"deployment/{name}", "--timeout=300s")
    runner.report.facts["rolling_restart"] = result
    runner.report.check(
        NO_FAILURE,
        result["responses"] > 0 and result["non_2xx"] == 0 and result["error_count"] == 0,
        {"responses": result["responses"], "status_codes": result["status_codes"], "errors": result["errors"]},
    )


STAGE = Stage(
    "rolling_restart",
    rolling_restart,
    title="rolling restart under load",
    checks=(NO_FAILURE,),
    needs=("cluster_checks",),
)
