"""site.yml's first run with the airgap inventory: it creates the run's kind cluster and deploys the platform."""

from __future__ import annotations

from ..runner import Runner, Stage


def site(runner: Runner) -> None:
    runner.report.facts["first_run_recap"] = runner.playbook("site.yml", "site-first-run.log")


STAGE = Stage("site", site, title="site.yml (first run)", needs=("build", "docker_facts"))
