"""drift.yml: in-distribution traffic keeps PSI below 0.1; shifted traffic sets SentimentModelDrift pending."""

from __future__ import annotations

import json

from ..runner import REPO, Runner, Stage

DRIFT = "drift stays stable (PSI < 0.1) on held-out reviews; shifted traffic sets SentimentModelDrift pending"


def drift(runner: Runner) -> None:
    runner.playbook("drift.yml", "drift.log", "-e", "drift_wait_for_firing=0")
    result = json.loads((REPO / ".build" / "drift-report.json").read_text())
    runner.report.facts["drift"] = result
    # PSI below 0.1 is "stable" by the statistic's own convention; the alert's threshold is the monitoring
    # role's, and drift.yml waited for the alert itself, so its state is the proof the threshold was crossed.
    runner.report.check(
        DRIFT,
        max(result["psi_in_distribution"].values()) < 0.1
        and max(result["psi_shifted"].values()) > max(result["psi_in_distribution"].values())
        and bool({"pending", "firing"} & set(result["alert_states"])),
        result,
    )


STAGE = Stage("drift", drift, title="drift.yml", checks=(DRIFT,), needs=("cluster_checks",))
