"""teardown.yml deletes the run's cluster, as `make down` does (skipped with --keep)."""

from __future__ import annotations

from ..runner import Runner, Stage

DELETED = "teardown.yml deletes the cluster"


def teardown(runner: Runner) -> None:
    recap = runner.playbook("teardown.yml", "teardown.log")
    gone = runner.cluster not in runner.run("kind", "get", "clusters").stdout.split()
    runner.report.check(DELETED, recap["failed"] == 0 and gone, recap)


STAGE = Stage("teardown", teardown, title="teardown.yml", checks=(DELETED,), needs=("site",))
