"""site.yml again on the deployed cluster: it must change nothing."""

from __future__ import annotations

from ..runner import Runner, Stage

UNCHANGED = "second site.yml run changes nothing"


def idempotence(runner: Runner) -> None:
    recap = runner.playbook("site.yml", "site-second-run.log")
    runner.report.facts["second_run_recap"] = recap
    runner.report.check(UNCHANGED, recap["changed"] == 0 and recap["failed"] == 0, recap)


STAGE = Stage("idempotence", idempotence, title="site.yml (second run)", checks=(UNCHANGED,), needs=("cluster_checks",))
