"""A rolling restart of the model under hey load: no request may fail."""

from __future__ import annotations

import time

from ..runner import Runner, Stage, finish_hey, kubectl, start_hey

NO_FAILURE = "no failed request during a rolling restart under load"


def rolling_restart(runner: Runner) -> None:
    hey = start_hey(runner, 60, 8, "Steady traffic while the pods roll.", log="rolling-restart-hey.log")
    time.sleep(5)
    deployment = ["-n", runner.names["sentiment_app_namespace"], f"deployment/{runner.names['sentiment_app_name']}"]
    kubectl(runner, "rollout", "restart", *deployment)
    kubectl(runner, "rollout", "status", *deployment, "--timeout=300s")
    result = finish_hey(hey)
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
