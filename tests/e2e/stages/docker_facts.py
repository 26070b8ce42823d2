"""Which Docker engine the run used, and how it is reached: the user's path is a current engine through a
context."""

from __future__ import annotations

import json

from ..runner import Runner, Stage

ENGINE = "Docker Engine 29 with the containerd image store, on a non-default socket reached through a docker context"


def docker_facts(runner: Runner) -> None:
    """Which engine the run used, and how it is reached: the user's path is a current engine through a context."""
    info = json.loads(runner.run("docker", "info", "--format", "{{json .}}").stdout)
    context = runner.run("docker", "context", "show").stdout.strip()
    host = json.loads(runner.run("docker", "context", "inspect", context).stdout)[0]["Endpoints"]["docker"]["Host"]
    facts = {
        "server_version": info["ServerVersion"],
        "containerd_image_store": ["driver-type", "io.containerd.snapshotter.v1"] in (info.get("DriverStatus") or []),
        "host": host,
        "context": context,
        "client_version": json.loads(runner.run("docker", "version", "--format", "{{json .Client}}").stdout)["Version"],
        "buildx": runner.run("docker", "buildx", "version").stdout.strip(),
    }
    runner.report.facts["docker"] = facts
    runner.report.check(
        ENGINE,
        facts["server_version"].startswith("29.")
        and facts["containerd_image_store"]
        and facts["host"] != "unix:///var/run/docker.sock"
        and context != "default",
        facts,
    )


# Untimed, as it always was: the engine is started by the build stage (or was, with --skip-build).
STAGE = Stage("docker_facts", docker_facts, checks=(ENGINE,), needs=("build",), uses_cluster=False)
