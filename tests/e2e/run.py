"""`make e2e`: the product's own playbooks on a real 3-node kind cluster built offline, then proof.

It runs the user's path: a current Docker Engine (29, containerd image store) on a socket of its own,
reached through a docker context; the platform's images under their upstream names, pulled by the
nodes through registry mirrors from the local registry; the model image pushed there.

Stages (each timed; `--list` prints them with their checks): build every binary and image (cached) and
publish them into the local registry, site.yml with the airgap inventory, cluster and mirror assertions,
load.yml, drift.yml, site.yml again (must report changed=0), a rolling restart of the model under hey load
(must lose no request), NetworkPolicy, faults and scale-in under load, canary rollouts with Flagger (one
promoted, three rolled back, none losing a request), teardown.yml; then a second cluster that site.yml did
not create, deployed to with kind_cluster_enabled false and Flagger on from the start. Writes
e2e-report.json (repo root, not committed) and .build/e2e/summary.md, and prints the summary. Exit status 1
when any assertion fails.

Each run gets a cluster of its own (`sentiment-e2e-<random>`) on a free host port, so it never
touches a cluster `make up` created nor another e2e run sharing the Docker engine, and deletes it
at the end (`--keep` leaves it up for a look; `--down` deletes a kept one).

    python tests/e2e/e2e.py [--skip-build] [--keep] [--only STAGE[,STAGE...]] | --list | --down

`--only` runs the stages named (or a group: `canary`) and the stages they need, in run order; a stage on
the run's first cluster needs `cluster_checks` (and so `site`, `docker_facts`, `build`), and `teardown`
follows whenever `site` ran, unless `--keep`.

Names (namespaces, the GPU label and taint, hostnames) come from the inventory the playbooks use, and
the checks that the HPA's metric is served and the ingress answers are the sentiment_app role's own
(`site.yml --tags verify`), so the runner re-types neither.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
from dataclasses import asdict

from .runner import (
    BUILD,
    CLUSTER_FILE,
    INVENTORY_NAMES,
    REPO,
    RUN_VARS_FILE,
    Report,
    Runner,
    Stage,
    free_port,
    record_cluster,
)
from .stages import (
    build,
    cluster_checks,
    docker_facts,
    drift,
    existing_cluster,
    faults,
    idempotence,
    load,
    network_policy,
    rolling_restart,
    rollouts,
    scale_in,
    site,
    teardown,
)

# The run order. A full run runs every stage (teardown not with --keep, build not with --skip-build).
STAGES: tuple[Stage, ...] = tuple(
    module.STAGE
    for module in (
        build,
        docker_facts,
        site,
        cluster_checks,
        load,
        drift,
        idempotence,
        rolling_restart,
        network_policy,
        faults,
        scale_in,
        rollouts,
        teardown,
        existing_cluster,
    )
)
BY_KEY = {stage.key: stage for stage in STAGES}
# Names --only takes for several stages. canary: the stages with Flagger (what --only-canary ran).
GROUPS = {"canary": ("rollouts", "existing_cluster")}
# The last checks' name: a stage raised (the exception is its detail).
RAN_TO_THE_END = "e2e ran to the end"


def plan(only: list[str] | None, keep: bool = False, skip_build: bool = False) -> list[Stage]:
    """The stages to run, in run order: every stage, or those --only names and what they need (a stage's
    `needs`, followed to the end); teardown.yml after any run that created the first cluster (site), as
    `make down` does, unless keep; build unless skip_build (the images are there already)."""
    if only:
        wanted: set[str] = set()
        for name in only:
            if name in GROUPS:
                wanted.update(GROUPS[name])
            elif name in BY_KEY:
                wanted.add(name)
            else:
                choices = ", ".join([*BY_KEY, *GROUPS])
                raise ValueError(f"no stage {name!r}: choose from {choices}")
        todo = list(wanted)
        while todo:
            for need in BY_KEY[todo.pop()].needs:
                if need not in wanted:
                    wanted.add(need)
                    todo.append(need)
        if "site" in wanted:
            wanted.add("teardown")
    else:
        wanted = set(BY_KEY)
    if keep:
        wanted.discard("teardown")
    if skip_build:
        wanted.discard("build")
    return [stage for stage in STAGES if stage.key in wanted]


def listing(stages: list[Stage]) -> str:
    """--list: the stages in run order, what each needs, and the checks each records."""
    lines = []
    for stage in stages:
        needs = f"  (needs: {', '.join(stage.needs)})" if stage.needs else ""
        lines.append(f"{stage.key}: {stage.title or '(untimed)'}{needs}")
        lines += [f"    - {check}" for check in stage.checks]
    lines += [f"(any stage that raises fails the run's own check: {RAN_TO_THE_END})"]
    lines += ["", "groups: " + "; ".join(f"{name} = {', '.join(keys)}" for name, keys in GROUPS.items())]
    return "\n".join(lines) + "\n"


def delete_cluster(runner: Runner, name: str) -> None:
    if name in runner.run("kind", "get", "clusters").stdout.split():
        runner.run("kind", "delete", "cluster", "--name", name, log=f"kind-delete-{name}.log")
        print(f"[e2e] deleted cluster {name}", flush=True)


def delete_recorded_clusters(runner: Runner) -> None:
    """Delete the clusters this run or an earlier run of this clone left (kept, or killed before clean-up)."""
    if CLUSTER_FILE.exists():
        for name in CLUSTER_FILE.read_text().split():
            delete_cluster(runner, name)
        CLUSTER_FILE.unlink()


def start_run(runner: Runner) -> None:
    record_cluster(runner.cluster)
    # The port mapping and every URL follow platform_public_port (inventory wiring). The model image is
    # loaded into the nodes here (`kind load` from the containerd image store, the path of a laptop without
    # a local registry); the existing-cluster stage pushes it to the registry instead.
    run_vars = {
        "kind_cluster_name": runner.cluster,
        "platform_public_port": runner.host_port,
        "sentiment_app_image_registry": "",
    }
    if os.environ.get("E2E_MODEL"):  # `make e2e MODEL=minilm`: the run deploys that variant
        run_vars["sentiment_app_model"] = os.environ["E2E_MODEL"]
    RUN_VARS_FILE.write_text(json.dumps(run_vars, indent=2) + "\n")  # JSON is YAML
    runner.report.facts["cluster"] = {"name": runner.cluster, "url": runner.host_url}
    print(f"[e2e] cluster {runner.cluster}, ingress on {runner.host_url}", flush=True)


def prepare(runner: Runner) -> None:
    """Before the first stage on a cluster: clusters an earlier run left go, this run's cluster name and
    port are recorded and written as run vars, and the names the checks use are read from the inventory."""
    delete_recorded_clusters(runner)
    start_run(runner)
    runner.names = runner.inventory(*INVENTORY_NAMES)
    runner.report.facts["model"] = runner.names["sentiment_app_model"]


def diagnostics(runner: Runner) -> None:
    """What a failed run's cluster looked like, kept in .build/e2e/ after the cluster is gone."""
    parts = []
    for command in (
        ("kubectl", f"--context=kind-{runner.cluster}", "get", "nodes,pods,hpa,apiservices", "-A", "-o", "wide"),
        ("kubectl", f"--context=kind-{runner.cluster}", "get", "events", "-A", "--sort-by=.lastTimestamp"),
    ):
        result = runner.run(*command, check=False)
        parts.append(f"$ {' '.join(command)}\n{result.stdout}{result.stderr}")
    (BUILD / "diagnostics.txt").write_text("\n".join(parts))
    print(f"[e2e] cluster state saved to {(BUILD / 'diagnostics.txt').relative_to(REPO)}", flush=True)


def summary(report: Report) -> str:
    lines = ["# e2e summary", "", "| stage | seconds |", "|---|---|"]
    lines += [f"| {name} | {seconds} |" for name, seconds in report.stages.items()]
    lines += ["", "| check | result |", "|---|---|"]
    lines += [f"| {c.name} | {'PASS' if c.ok else 'FAIL'} |" for c in report.checks]
    load_facts = report.facts.get("load")
    if load_facts:
        samples = load_facts["hpa"]["samples"]
        lines += [
            "",
            "HPA timeline (s: current/desired/ready): "
            + "  ".join(f"{s['t']:.0f}:{s['current']}/{s['desired']}/{s['ready']}" for s in samples),
            f"hey: {load_facts['hey']['requests_per_second']:.0f} req/s, "
            f"p99 {load_facts['hey']['p99_seconds'] * 1000:.0f} ms, status codes {load_facts['hey']['status_codes']}",
        ]
    return "\n".join(lines) + "\n"


def arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-build", action="store_true", help="images are built already")
    parser.add_argument("--keep", action="store_true", help="leave the cluster up at the end (delete it with --down)")
    parser.add_argument("--down", action="store_true", help="only delete the cluster an earlier run of this clone left")
    parser.add_argument(
        "--only",
        action="append",
        metavar="STAGE[,STAGE]",
        help="a development loop: these stages (or the group canary) and the stages they need, in run order "
        f"(stages: {', '.join(BY_KEY)}); CI runs every stage",
    )
    parser.add_argument(
        "--only-canary",
        action="store_true",
        help="the same as --only canary: the stages with Flagger (site.yml, the cluster checks, the canary "
        "rollouts, teardown, the existing cluster)",
    )
    parser.add_argument("--list", action="store_true", help="print the stages (those --only picks) and their checks")
    args = parser.parse_args(argv)
    args.only = [name.strip() for value in args.only or [] for name in value.split(",") if name.strip()]
    if args.only_canary:
        args.only.append("canary")
    try:
        args.plan = plan(args.only, keep=args.keep, skip_build=args.skip_build)
    except ValueError as exc:
        parser.error(str(exc))
    return args


def main(argv: list[str] | None = None) -> int:
    args = arguments(argv)
    if args.list:
        print(listing(args.plan), end="")
        return 0
    report = Report()
    runner = Runner(report, cluster=f"sentiment-e2e-{secrets.token_hex(3)}", host_port=free_port())
    if args.down:
        delete_recorded_clusters(runner)
        return 0
    print(f"[e2e] stages: {', '.join(stage.key for stage in args.plan)}", flush=True)
    try:
        prepared = False
        for stage in args.plan:
            if stage.uses_cluster and not prepared:
                prepare(runner)
                prepared = True
            if stage.title is None:
                stage.run(runner)
            else:
                runner.stage(stage.title, stage.run, runner)
    except Exception as exc:  # noqa: BLE001 - recorded in the report, then the exit status says it
        report.check(RAN_TO_THE_END, False, str(exc)[-3000:])
    passed = bool(report.checks) and all(c.ok for c in report.checks)
    if CLUSTER_FILE.exists():
        if not passed:
            diagnostics(runner)
        if args.keep:
            kubeconfig = (BUILD / "kubeconfig").relative_to(REPO)
            kept = " ".join(CLUSTER_FILE.read_text().split())
            print(f"[e2e] kept clusters {kept} (KUBECONFIG={kubeconfig}); `make e2e-down` deletes them")
        else:
            runner.stage("delete the clusters", delete_recorded_clusters, runner)
    (REPO / "e2e-report.json").write_text(json.dumps(asdict(report), indent=2, default=str) + "\n")
    text = summary(report)
    (BUILD / "summary.md").write_text(text)
    print(text)
    return 0 if passed else 1
