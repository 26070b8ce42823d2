"""load.yml: hey through the ingress (the collection's hey module); the HPA rises above its minimum, only 2xx."""

from __future__ import annotations

import json

from ..runner import REPO, Runner, Stage

SCALED_OUT = "HPA rose above its minimum under load"
ONLY_2XX = "hey saw only 2xx and no errors under load"


def load(runner: Runner) -> None:
    runner.playbook("load.yml", "load.log")
    result = json.loads((REPO / ".build" / "load-report.json").read_text())
    runner.report.facts["load"] = result
    hpa, hey = result["hpa"], result["hey"]
    runner.report.check(
        SCALED_OUT,
        int(hpa["peak_replicas"]) > int(hpa["min_replicas"]),
        {"min": hpa["min_replicas"], "peak": hpa["peak_replicas"], "first_scale_out_s": hpa["first_scale_out_s"]},
    )
    runner.report.check(
        ONLY_2XX,
        hey["non_2xx"] == 0 and hey["error_count"] == 0,
        {"status_codes": hey["status_codes"], "errors": hey["errors"]},
    )


STAGE = Stage("load", load, title="load.yml", checks=(SCALED_OUT, ONLY_2XX), needs=("cluster_checks",))
