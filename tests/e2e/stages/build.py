"""Build every binary and image (cached) and publish them into the local registry (airgap/README.md)."""

from __future__ import annotations

from pathlib import Path

from ..runner import Runner, Stage


def build(runner: Runner) -> None:
    for script in (
        "airgap/host/start-engine.sh",
        "airgap/host/build-python-base.sh",
        "airgap/build-all.sh",
        "airgap/publish.sh",
        "airgap/host/prepare-host.sh",
    ):
        runner.run(script, log=Path(script).name + ".log")


STAGE = Stage("build", build, title="build binaries and images, publish them", uses_cluster=False)
