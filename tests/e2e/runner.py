"""What the e2e's stages share: the Report and its Checks, the Runner (commands, kubectl, playbooks, inventory
queries), the Stage a stage module declares, and helpers more than one stage uses (hey through the ingress,
the HPA, the model's pods, the image checks, cluster bookkeeping)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BUILD = REPO / ".build" / "e2e"
# The airgap inventory is what differs on a machine that reaches no registry (inventory/airgap says what and why).
INVENTORIES = ["-i", "inventory/default", "-i", "inventory/airgap"]
sys.path.insert(0, str(REPO / ".collections"))
sys.path.insert(0, str(REPO / "model-service" / "tests"))
# The one hey driver: the same command line, background run and parser as the collection's hey module.
from ansible_collections.sentiment.platform.plugins.module_utils import hey  # noqa: E402

# free_port: a loopback port (kind binds it when it creates the cluster); run.py and existing_cluster use it.
from svc import free_port  # noqa: E402, F401

LISTEN_ADDRESS = "127.0.0.1"
# What the checks read from the inventory.
INVENTORY_NAMES = (
    "kind_cluster_workers",
    "kind_cluster_gpu_workers",
    "kind_cluster_gpu_label",
    "kind_cluster_gpu_taint",
    "sentiment_app_namespace",
    "sentiment_app_name",
    "sentiment_app_host",
    "monitoring_namespace",
    "sentiment_app_model",
)
# The names of this clone's e2e clusters, each written before the cluster exists: what `--down` deletes.
CLUSTER_FILE = BUILD / "clusters"
# Extra vars every playbook of the run gets: its cluster name and host port.
RUN_VARS_FILE = BUILD / "run-vars.yml"
# The e2e's shorter clocks (scrape and analysis intervals, load duration), before the run vars.
TIMING_FILE = Path(__file__).resolve().parent / "timing.yml"
# The local registry the factory publishes to and the clusters pull from (kind's local-registry defaults).
REGISTRY = "localhost:5001"
REGISTRY_CONTAINER = "kind-registry"
MANIFEST_TYPES = ", ".join(
    [
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ]
)


def pins() -> dict[str, str]:
    """infrastructure/versions.yml: flat `key: value` lines."""
    found = {}
    for line in (REPO / "infrastructure" / "versions.yml").read_text().splitlines():
        match = re.match(r"^([a-z0-9_]+): *(.+)$", line)
        if match:
            found[match.group(1)] = match.group(2).strip()
    return found


@dataclass
class Check:
    name: str
    ok: bool
    detail: object = None


@dataclass
class Report:
    stages: dict[str, float] = field(default_factory=dict)
    checks: list[Check] = field(default_factory=list)
    facts: dict[str, object] = field(default_factory=dict)
    # One entry per candidate of the canary stage: candidate, outcome, reason, steps, requests, failed.
    rollouts: list[dict] = field(default_factory=list)

    def check(self, name: str, ok: bool, detail: object = None) -> bool:
        self.checks.append(Check(name, bool(ok), detail))
        print(f"[e2e] {'PASS' if ok else 'FAIL'} {name}: {detail}", flush=True)
        return bool(ok)


class Runner:
    def __init__(self, report: Report, cluster: str, host_port: int) -> None:
        self.report = report
        self.cluster = cluster
        self.host_port = host_port
        self.host_url = f"http://{LISTEN_ADDRESS}:{host_port}"
        self.names: dict[str, object] = {}
        cache = Path(os.environ.get("AIRGAP_CACHE_DIR", Path.home() / ".cache" / "sentiment-platform-airgap"))
        pinned = pins()
        tools = [
            cache / "bin" / f"kind-{pinned['kind_version']}",
            cache / "bin" / f"kubernetes-{pinned['kubernetes_version']}",
            REPO / ".venv" / "bin",
        ]
        BUILD.mkdir(parents=True, exist_ok=True)
        self.run_vars = RUN_VARS_FILE
        self.env = {
            **os.environ,
            "PATH": os.pathsep.join([*map(str, tools), os.environ["PATH"]]),
            # The factory's engine: the current context of this private docker config (airgap/lib.sh).
            "DOCKER_CONFIG": os.environ.get("AIRGAP_DOCKER_CONFIG", str(cache / "docker-config")),
            # A kubeconfig of its own: the e2e run never touches the user's ~/.kube/config.
            "KUBECONFIG": str(BUILD / "kubeconfig"),
            "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
            "ANSIBLE_FORCE_COLOR": "0",
            # Every playbook's log ends with its slowest tasks and each task's time: where a stage's minutes go.
            "ANSIBLE_CALLBACKS_ENABLED": "ansible.posix.profile_tasks",
            "PROFILE_TASKS_TASK_OUTPUT_LIMIT": "25",
            # Every command runs in the repository; the playbooks write their reports under $PWD/.build
            # (platform_build_dir), where the stages read them, wherever the runner was started from.
            "PWD": str(REPO),
        }

    def run(
        self, *command: str, log: str | None = None, check: bool = True, stdin: str | None = None
    ) -> subprocess.CompletedProcess:
        result = subprocess.run(
            command, cwd=REPO, env=self.env, capture_output=True, text=True, check=False, input=stdin
        )
        if log:
            (BUILD / log).write_text(result.stdout + result.stderr)
        if check and result.returncode != 0:
            tail = (result.stdout + result.stderr)[-4000:]
            raise RuntimeError(f"{' '.join(command)} failed ({result.returncode}):\n{tail}")
        return result

    def stage(self, name: str, function, *args):
        print(f"[e2e] stage {name} ...", flush=True)
        started = time.monotonic()
        try:
            return function(*args)
        finally:
            self.report.stages[name] = round(time.monotonic() - started, 1)
            print(f"[e2e] stage {name}: {self.report.stages[name]} s", flush=True)

    def kubectl_json(self, *args: str) -> dict:
        return json.loads(self.run("kubectl", f"--context=kind-{self.cluster}", *args, "-o", "json").stdout)

    def playbook(self, name: str, log: str, *extra: str, check: bool = True) -> dict[str, int]:
        """Run a playbook with the run's inventories, clocks and vars; its PLAY RECAP's counts (with check
        off, a failed play returns them too instead of raising)."""
        result = self.run(
            "ansible-playbook",
            *INVENTORIES,
            f"infrastructure/playbooks/{name}",
            "-e",
            f"@{TIMING_FILE}",
            "-e",
            f"@{self.run_vars}",
            *extra,
            log=log,
            check=check,
        )
        recap = re.search(r"localhost\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", result.stdout)
        if recap is None:
            raise RuntimeError(f"no PLAY RECAP in {log}")
        return dict(zip(["ok", "changed", "unreachable", "failed"], map(int, recap.groups()), strict=True))

    def inventory(self, *names: str) -> dict[str, object]:
        """Values of inventory variables as the playbooks of this run see them (e2e inventory and run vars
        included, and the collection's platform role, which holds the shared choices and facts the inventory
        no longer restates: the namespaces, names and the like), read by a playbook that loads that role as
        load.yml and drift.yml do."""
        mapping = ", ".join(f"'{name}': {name}" for name in names)
        query, answer = BUILD / "inventory-query.yml", BUILD / "inventory-answer.json"
        query.write_text(INVENTORY_QUERY.replace("MAPPING", mapping).replace("ANSWER", json.dumps(str(answer))))
        answer.unlink(missing_ok=True)
        self.run(
            "ansible-playbook",
            *INVENTORIES,
            str(query),
            "-e",
            f"@{TIMING_FILE}",
            "-e",
            f"@{RUN_VARS_FILE}",
            log="inventory-query.log",
        )
        return json.loads(answer.read_text())


# Runner.inventory's playbook: MAPPING is the names' dict, ANSWER the file the values go to (JSON).
INVENTORY_QUERY = """\
- name: The inventory's values, as the playbooks see them
  hosts: localhost
  gather_facts: false
  roles:
    - sentiment.platform.platform
  tasks:
    - name: Write them
      ansible.builtin.copy:
        dest: ANSWER
        mode: "0644"
        content: "{{ {MAPPING} | to_json }}"
"""


@dataclass(frozen=True)
class Stage:
    """One stage of the run, declared by its module under stages/ (run.py puts them in order)."""

    # Its name for --only (the module's name).
    key: str
    run: Callable[[Runner], None]
    # Its name in the report's `stages` (timed); None: untimed (docker facts, as before the split).
    title: str | None = None
    # The names of the checks it records, as they appear in e2e-report.json; {fields} are filled in from
    # the inventory at run time.
    checks: tuple[str, ...] = ()
    # Stages that must have run first when this one is picked with --only (run.py follows them).
    needs: tuple[str, ...] = ()
    # Whether it works on the run's cluster (its name, run vars and the inventory's names, set up by run.py
    # before the first such stage); build and docker facts do not.
    uses_cluster: bool = True


def record_cluster(name: str) -> None:
    names = CLUSTER_FILE.read_text().split() if CLUSTER_FILE.exists() else []
    CLUSTER_FILE.write_text("\n".join([*names, name]) + "\n")


def kubectl(runner: Runner, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return runner.run("kubectl", f"--context=kind-{runner.cluster}", *args, check=check)


def start_hey(
    runner: Runner, seconds: int, clients: int, text: str | list[str], *, log: str, rate: float = 0
) -> hey.Run:
    """hey through the ingress in the background, its output in .build/e2e/<log> (it exits 0 whatever
    happens: read its report); a list of texts goes as one batch request; rate caps each client's requests
    per second (0: as fast as answered)."""
    body = {"texts": text} if isinstance(text, list) else {"text": text}
    command = hey.command(
        f"{runner.host_url}/predict",
        duration=seconds,
        concurrency=clients,
        rate=rate,
        method="POST",
        content_type="application/json",
        host=runner.names["sentiment_app_host"],
        body=json.dumps(body),
    )
    return hey.start(command, BUILD / log, env=runner.env)


def finish_hey(run: hey.Run, stop: bool = False) -> dict:
    """hey's report once it ends; stop: end it now (on SIGINT hey stops and prints its report)."""
    return run.finish(interrupt=stop, timeout=600)


failed = hey.failed


def not_ready_pods(pods: list[dict]) -> list[str]:
    """Pods that should be Ready and are not: neither finished (a Job's) nor on their way out (the
    Deployment's pods Flagger scales to zero once its primary serves)."""
    return [
        f"{p['metadata']['namespace']}/{p['metadata']['name']}"
        for p in pods
        if p["status"].get("phase") != "Succeeded"
        and "deletionTimestamp" not in p["metadata"]
        and not any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions", []))
    ]


def registry_digest(reference: str) -> str | None:
    """The digest the local registry serves for an upstream reference published under its path."""
    path, tag = reference.split("/", 1)[1].rsplit(":", 1)
    request = urllib.request.Request(
        f"http://{REGISTRY}/v2/{path}/manifests/{tag}", method="HEAD", headers={"Accept": MANIFEST_TYPES}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.headers.get("Docker-Content-Digest")
    except OSError:
        return None


# The checks image_checks records, for a cluster called {stage}.
IMAGES_MIRRORED = (
    "{stage}: the platform's upstream image names pulled through the registry mirror from the local registry"
)
MODEL_FROM_REGISTRY = f"{{stage}}: the model image pulled from the local registry ({REGISTRY})"
MODEL_LOADED = "{stage}: the model image built with buildx and loaded by `kind load` from the containerd image store"


def image_check_names(stage: str, model_from_registry: bool) -> tuple[str, str]:
    model = MODEL_FROM_REGISTRY if model_from_registry else MODEL_LOADED
    return IMAGES_MIRRORED.format(stage=stage), model.format(stage=stage)


def image_checks(runner: Runner, stage: str, model_from_registry: bool, canary: bool = False) -> None:
    """What each pod ran. The platform's images, named by their upstream references, must be the very
    builds the local registry serves (only the mirror can give a node those digests under those names);
    the model's image comes from the local registry, or from `kind load` out of the containerd image store."""
    mirrored, model_check = image_check_names(stage, model_from_registry)
    images = {}
    for pod in runner.kubectl_json("get", "pods", "--all-namespaces")["items"]:
        for status in pod["status"].get("containerStatuses", []):
            key = f"{pod['metadata']['namespace']}/{pod['metadata']['name']}/{status['name']}"
            images[key] = {"image": status["image"], "image_id": status["imageID"]}
    runner.report.facts.setdefault("images", {})[stage] = images
    pinned = pins()
    platform = {}
    keys = ["traefik_image", "prometheus_image", "prometheus_adapter_image", "metrics_server_image"]
    for key in keys + (["flagger_image"] if canary else []):
        reference = pinned[key]
        platform[reference] = {
            "registry_digest": registry_digest(reference),
            "pods": sorted({v["image_id"] for v in images.values() if v["image"] == reference}),
        }
    runner.report.check(
        mirrored,
        all(
            r["registry_digest"] and r["pods"] and all(i.endswith(r["registry_digest"]) for i in r["pods"])
            for r in platform.values()
        ),
        platform,
    )
    model = {k: v for k, v in images.items() if k.startswith(f"{runner.names['sentiment_app_namespace']}/")}
    if model_from_registry:
        runner.report.check(
            model_check,
            bool(model) and all(v["image"].startswith(f"{REGISTRY}/") for v in model.values()),
            model,
        )
    else:
        runner.report.check(
            model_check,
            bool(model) and all(v["image"].startswith("docker.io/library/") and v["image_id"] for v in model.values()),
            model,
        )


def canary_state(runner: Runner) -> dict:
    return runner.kubectl_json(
        "get", "canary", "-n", runner.names["sentiment_app_namespace"], runner.names["sentiment_app_name"]
    )


def hpa_state(runner: Runner) -> dict:
    hpa = runner.kubectl_json(
        "get", "hpa", "-n", runner.names["sentiment_app_namespace"], runner.names["sentiment_app_name"]
    )
    status = hpa["status"]
    able = next((c for c in status.get("conditions", []) if c["type"] == "ScalingActive"), {})
    return {
        "current": status.get("currentReplicas", 0),
        "desired": status.get("desiredReplicas", 0),
        "metrics_ok": able.get("status") == "True",
    }


def watch_hpa(
    runner: Runner, seconds: float, interval: float = 5, until: Callable[[list[dict]], bool] | None = None
) -> list[dict]:
    """The HPA's state every ``interval`` seconds for ``seconds``, or until ``until(samples)`` holds."""
    samples, started = [], time.monotonic()
    while time.monotonic() - started < seconds:
        samples.append({"t": round(time.monotonic() - started, 1), **hpa_state(runner)})
        if until is not None and until(samples):
            break
        time.sleep(interval)
    return samples


def model_pods(runner: Runner) -> list[dict]:
    selector = f"app.kubernetes.io/name={runner.names['sentiment_app_name']}"
    namespace = runner.names["sentiment_app_namespace"]
    return runner.kubectl_json("get", "pods", "-n", namespace, "-l", selector)["items"]
