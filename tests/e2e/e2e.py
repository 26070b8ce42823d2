"""`make e2e`: the product's own playbooks on a real 3-node kind cluster built offline, then proof.

It runs the user's path: a current Docker Engine (29, containerd image store) on a socket of its own,
reached through a docker context; the platform's images under their upstream names, pulled by the
nodes through registry mirrors from the local registry; the model image pushed there.

Stages (each timed): build every binary and image (cached) and publish them into the local registry,
site.yml with the airgap inventory, cluster and mirror assertions, load.yml, drift.yml, site.yml again
(must report changed=0), a rolling restart of the model under hey load (must lose no request),
NetworkPolicy, faults and scale-in under load, canary rollouts with Flagger (one promoted, three rolled
back, none losing a request), teardown.yml; then a second cluster that site.yml did not create, deployed
to with kind_cluster_enabled false and Flagger on from the start. Writes
e2e-report.json (repo root, not committed) and prints a readable summary. Exit status 1 when any
assertion fails.

Each run gets a cluster of its own (`sentiment-e2e-<random>`) on a free host port, so it never
touches a cluster `make up` created nor another e2e run sharing the Docker engine, and deletes it
at the end (`--keep` leaves it up for a look; `--down` deletes a kept one).

    python tests/e2e/e2e.py [--skip-build] [--keep] [--only-canary] | --down

Names (namespaces, the GPU label and taint, hostnames) come from the inventory the playbooks use, and
the checks that the HPA's metric is served and the ingress answers are the sentiment_app role's own
(`site.yml --tags verify`), so the runner re-types neither.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
E2E_DIR = REPO / "tests" / "e2e"
AIRGAP_DIR = REPO / "airgap"
BUILD = REPO / ".build" / "e2e"
# The airgap inventory is what differs on a machine that reaches no registry (inventory/airgap says what and why).
INVENTORIES = ["-i", "inventory/default", "-i", "inventory/airgap"]
sys.path.insert(0, str(REPO / ".collections"))
sys.path.insert(0, str(REPO / "model-service" / "tests"))
# The same parser load.yml uses.
from ansible_collections.sentiment.platform.plugins.filter.hey_report import hey_report  # noqa: E402
from svc import free_port  # noqa: E402  (a loopback port: kind binds it when it creates the cluster)

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
# The canary stage: Flagger switched on by a second site.yml run; the inventory's gates and steps.
CANARY_VARS = {"platform_canary_enabled": True}
# Candidates, in order, the verdict each must get and whose traffic it is judged on ("e2e": the runner's
# hey; "own": none flows, so rollout.yml sends its own, as `make rollout` does on a quiet cluster):
#   a new serving configuration of the same model: every gate holds -> promoted;
#   the model trained on inverted labels (confident, wrong, healthy card): only the golden set catches it;
#   a configuration that holds every batch for 100 ms: the latency-vs-primary gate catches it;
#   a configuration whose model directory is missing: its pods never become ready, and Flagger rolls it
#   back once the Canary's progress deadline passes, before any traffic reaches it.
CANDIDATES = (
    ("batch-16", "promoted", "own", {"sentiment_app_env": {"SENTIMENT_BATCH_MAX_SIZE": "16"}}),
    ("inverted-labels", "rolled_back", "e2e", {"sentiment_app_train_flags": "--invert-labels"}),
    (
        "slow-batching",
        "rolled_back",
        "e2e",
        {"sentiment_app_env": {"SENTIMENT_BATCH_MAX_WAIT_MS": "100", "SENTIMENT_BATCH_MAX_SIZE": "1024"}},
    ),
    ("never-ready", "rolled_back", "e2e", {"sentiment_app_env": {"SENTIMENT_MODEL_DIR": "/opt/no-model-here"}}),
)
# A rollout whose report has no traffic summary: nothing was sent, nothing can be counted.
NO_TRAFFIC = {"responses": 0, "error_count": 0, "non_2xx": 0, "status_codes": {}, "errors": {}}
# The names of this clone's e2e clusters, each written before the cluster exists: what `--down` deletes.
CLUSTER_FILE = BUILD / "clusters"
# Extra vars every playbook of the run gets: its cluster name and host port.
RUN_VARS_FILE = BUILD / "run-vars.yml"
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

    def playbook(self, name: str, log: str, *extra: str) -> dict[str, int]:
        result = self.run(
            "ansible-playbook",
            *INVENTORIES,
            f"infrastructure/playbooks/{name}",
            "-e",
            f"@{self.run_vars}",
            *extra,
            log=log,
        )
        recap = re.search(r"localhost\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", result.stdout)
        if recap is None:
            raise RuntimeError(f"no PLAY RECAP in {log}")
        return dict(zip(["ok", "changed", "unreachable", "failed"], map(int, recap.groups()), strict=True))

    def inventory(self, *names: str) -> dict[str, object]:
        """Values of inventory variables as the playbooks of this run see them (e2e inventory and run vars included)."""
        mapping = ", ".join(f"'{name}': {name}" for name in names)
        result = self.run(
            "ansible",
            "localhost",
            *INVENTORIES,
            "-e",
            f"@{RUN_VARS_FILE}",
            "-o",
            "-m",
            "ansible.builtin.debug",
            "-a",
            "msg={{ {" + mapping + "} | to_json }}",
        )
        body = json.loads(result.stdout.split("=>", 1)[1])
        message = body["msg"]
        return json.loads(message) if isinstance(message, str) else message


def build(runner: Runner) -> None:
    for script in (
        "airgap/host/start-engine.sh",
        "airgap/host/build-python-base.sh",
        "airgap/build-all.sh",
        "airgap/publish.sh",
        "airgap/host/prepare-host.sh",
    ):
        runner.run(script, log=Path(script).name + ".log")


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
        "Docker Engine 29 with the containerd image store, on a non-default socket reached through a docker context",
        facts["server_version"].startswith("29.")
        and facts["containerd_image_store"]
        and facts["host"] != "unix:///var/run/docker.sock"
        and context != "default",
        facts,
    )


def record_cluster(name: str) -> None:
    names = CLUSTER_FILE.read_text().split() if CLUSTER_FILE.exists() else []
    CLUSTER_FILE.write_text("\n".join([*names, name]) + "\n")


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


def cluster_checks(runner: Runner) -> None:
    report = runner.report
    names = runner.names
    nodes = runner.kubectl_json("get", "nodes")["items"]
    summary = []
    for node in nodes:
        labels = node["metadata"]["labels"]
        summary.append(
            {
                "name": node["metadata"]["name"],
                "role": "control-plane" if "node-role.kubernetes.io/control-plane" in labels else "worker",
                "ready": any(c["type"] == "Ready" and c["status"] == "True" for c in node["status"]["conditions"]),
                "labels": {
                    k: v for k, v in labels.items() if not k.startswith(("kubernetes.io/", "beta.kubernetes.io/"))
                },
                "taints": [f"{t['key']}={t.get('value', '')}:{t['effect']}" for t in node["spec"].get("taints", [])],
                "kubelet": node["status"]["nodeInfo"]["kubeletVersion"],
            }
        )
    report.facts["nodes"] = summary
    roles = [n["role"] for n in summary]
    workers = int(names["kind_cluster_workers"])
    report.check(
        f"1 control-plane and {workers} workers, all Ready",
        roles.count("control-plane") == 1 and roles.count("worker") == workers and all(n["ready"] for n in summary),
        summary,
    )
    label, taint = names["kind_cluster_gpu_label"], names["kind_cluster_gpu_taint"]
    gpu = [n for n in summary if n["labels"].get(label["key"]) == str(label["value"])]
    report.check(
        f"{names['kind_cluster_gpu_workers']} worker(s) labelled and tainted as simulated GPU nodes",
        len(gpu) == int(names["kind_cluster_gpu_workers"])
        and all(f"{taint['key']}={taint['value']}:{taint['effect']}" in n["taints"] for n in gpu),
        gpu,
    )

    pods = runner.kubectl_json("get", "pods", "--all-namespaces")["items"]
    not_ready = not_ready_pods(pods)
    report.facts["pods"] = sorted(f"{p['metadata']['namespace']}/{p['metadata']['name']}" for p in pods)
    report.check("every pod Ready", not not_ready, not_ready or f"{len(pods)} pods")
    report.facts["model_pods"] = {
        p["metadata"]["name"]: p["spec"].get("nodeName")
        for p in pods
        if p["metadata"]["namespace"] == names["sentiment_app_namespace"]
    }

    image_checks(runner, "kind cluster", model_from_registry=False)

    # The role's own checks: the HPA's custom metric is served for the pods, the ingress answers from the host.
    recap = runner.playbook("site.yml", "site-verify.log", "--tags", "verify")
    report.check(
        "sentiment_app verify: custom metric served for the pods, /predict answers through Traefik on the host port",
        recap["failed"] == 0 and recap["ok"] > 0,
        recap,
    )


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


def image_checks(runner: Runner, stage: str, model_from_registry: bool, canary: bool = False) -> None:
    """What each pod ran. The platform's images, named by their upstream references, must be the very
    builds the local registry serves (only the mirror can give a node those digests under those names);
    the model's image comes from the local registry, or from `kind load` out of the containerd image store."""
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
        f"{stage}: the platform's upstream image names pulled through the registry mirror from the local registry",
        all(
            r["registry_digest"] and r["pods"] and all(i.endswith(r["registry_digest"]) for i in r["pods"])
            for r in platform.values()
        ),
        platform,
    )
    model = {k: v for k, v in images.items() if k.startswith(f"{runner.names['sentiment_app_namespace']}/")}
    if model_from_registry:
        runner.report.check(
            f"{stage}: the model image pulled from the local registry ({REGISTRY})",
            bool(model) and all(v["image"].startswith(f"{REGISTRY}/") for v in model.values()),
            model,
        )
    else:
        runner.report.check(
            f"{stage}: the model image built with buildx and loaded by `kind load` from the containerd image store",
            bool(model) and all(v["image"].startswith("docker.io/library/") and v["image_id"] for v in model.values()),
            model,
        )


def existing_cluster(runner: Runner) -> None:
    """A cluster site.yml did not create, set up as its admin would (containerd mirrors to the site's
    registry), then the platform deployed to it with kind_cluster_enabled false and the model image pushed
    to the registry instead of loaded into nodes; with Flagger on from the first run, as a user who sets
    platform_canary_enabled before `make up` has it (the main cluster switches it on later)."""
    name = f"sentiment-existing-{secrets.token_hex(3)}"
    port = free_port()
    record_cluster(name)
    node_image = runner.inventory("kind_cluster_node_image")["kind_cluster_node_image"]
    node = {"image": node_image}
    config = {
        "kind": "Cluster",
        "apiVersion": "kind.x-k8s.io/v1alpha4",
        "name": name,
        "networking": {"apiServerAddress": LISTEN_ADDRESS},
        "containerdConfigPatches": [
            '[plugins."io.containerd.grpc.v1.cri".registry]\n  config_path = "/etc/containerd/certs.d"'
        ],
        "nodes": [
            {
                **node,
                "role": "control-plane",
                "labels": {"ingress-ready": "true"},
                "extraPortMappings": [{"containerPort": 30080, "hostPort": port, "listenAddress": LISTEN_ADDRESS}],
            },
            {**node, "role": "worker"},
        ],
    }
    config_path = BUILD / "existing-kind-config.yaml"
    config_path.write_text(json.dumps(config, indent=2) + "\n")
    runner.run(
        "kind",
        "create",
        "cluster",
        "--name",
        name,
        "--config",
        str(config_path),
        "--wait",
        "300s",
        log="existing-kind-create.log",
    )
    endpoint = f"http://{REGISTRY_CONTAINER}:5000"
    for node_name in runner.run("kind", "get", "nodes", "--name", name).stdout.split():
        for registry in ("docker.io", "quay.io", "registry.k8s.io", "ghcr.io", REGISTRY):
            runner.run(
                "docker",
                "exec",
                "-i",
                node_name,
                "sh",
                "-c",
                'mkdir -p "$1" && cat > "$1/hosts.toml"',
                "sh",
                f"/etc/containerd/certs.d/{registry}",
                stdin=f'[host."{endpoint}"]\n  capabilities = ["pull", "resolve"]\n',
            )
    networks = runner.run(
        "docker", "inspect", "--format", "{{json .NetworkSettings.Networks}}", REGISTRY_CONTAINER
    ).stdout
    if "kind" not in json.loads(networks):
        runner.run("docker", "network", "connect", "kind", REGISTRY_CONTAINER)

    runner.cluster = name
    runner.run_vars = BUILD / "run-vars-existing.yml"
    runner.run_vars.write_text(
        json.dumps(
            {
                "kind_cluster_enabled": False,
                "kind_cluster_name": name,
                "platform_public_port": port,
                "sentiment_app_image_registry": REGISTRY,
                "platform_canary_enabled": True,
            },
            indent=2,
        )
        + "\n"
    )
    recap = runner.playbook("site.yml", "site-existing-cluster.log")
    log = (BUILD / "site-existing-cluster.log").read_text()
    # kind_cluster must have skipped its create task: the cluster was there already.
    created = re.search(r"TASK \[sentiment\.platform\.kind_cluster : Create the cluster\] \**\n(?!skipping)", log)
    # ... and checked the cluster it found instead (existing.yml: a Ready node through the kubeconfig).
    checked = re.search(
        r"TASK \[sentiment\.platform\.kind_cluster : Check that the existing cluster has a Ready node\] \**\nok:", log
    )
    phase = canary_state(runner)["status"].get("phase")
    runner.report.facts["existing_cluster"] = {"name": name, "recap": recap, "canary_phase": phase}
    runner.report.check(
        "existing cluster: site.yml with kind_cluster_enabled false and Flagger on from the start deploys and "
        "verifies it (metric; a prediction through Flagger's HTTPRoute)",
        recap["failed"] == 0 and not created and checked is not None and phase in ("Initialized", "Succeeded"),
        {**recap, "canary_phase": phase},
    )
    not_ready = not_ready_pods(runner.kubectl_json("get", "pods", "--all-namespaces")["items"])
    runner.report.check("existing cluster: every pod Ready", not not_ready, not_ready or "all Ready")
    image_checks(runner, "existing cluster", model_from_registry=True, canary=True)


def teardown(runner: Runner) -> None:
    recap = runner.playbook("teardown.yml", "teardown.log")
    gone = runner.cluster not in runner.run("kind", "get", "clusters").stdout.split()
    runner.report.check("teardown.yml deletes the cluster", recap["failed"] == 0 and gone, recap)


def load(runner: Runner) -> None:
    runner.playbook("load.yml", "load.log")
    result = json.loads((REPO / ".build" / "load-report.json").read_text())
    runner.report.facts["load"] = result
    hpa, hey = result["hpa"], result["hey"]
    runner.report.check(
        "HPA rose above its minimum under load",
        int(hpa["peak_replicas"]) > int(hpa["min_replicas"]),
        {"min": hpa["min_replicas"], "peak": hpa["peak_replicas"], "first_scale_out_s": hpa["first_scale_out_s"]},
    )
    runner.report.check(
        "hey saw only 2xx and no errors under load",
        hey["non_2xx"] == 0 and hey["error_count"] == 0,
        {"status_codes": hey["status_codes"], "errors": hey["errors"]},
    )


def drift(runner: Runner) -> None:
    runner.playbook("drift.yml", "drift.log", "-e", "drift_wait_for_firing=0")
    result = json.loads((REPO / ".build" / "drift-report.json").read_text())
    runner.report.facts["drift"] = result
    # PSI below 0.1 is "stable" by the statistic's own convention; the alert's threshold is the monitoring
    # role's, and drift.yml waited for the alert itself, so its state is the proof the threshold was crossed.
    runner.report.check(
        "drift stays stable (PSI < 0.1) on held-out reviews; shifted traffic sets SentimentModelDrift pending",
        max(result["psi_in_distribution"].values()) < 0.1
        and max(result["psi_shifted"].values()) > max(result["psi_in_distribution"].values())
        and bool({"pending", "firing"} & set(result["alert_states"])),
        result,
    )


def idempotence(runner: Runner) -> None:
    recap = runner.playbook("site.yml", "site-second-run.log")
    runner.report.facts["second_run_recap"] = recap
    runner.report.check("second site.yml run changes nothing", recap["changed"] == 0 and recap["failed"] == 0, recap)


def start_hey(runner: Runner, seconds: int, clients: int, text: str | list[str], rate: float = 0) -> subprocess.Popen:
    """hey through the ingress in the background (it exits 0 whatever happens: read its report); a list of
    texts goes as one batch request; rate caps each client's requests per second (0: as fast as answered)."""
    body = {"texts": text} if isinstance(text, list) else {"text": text}
    command = ["hey", "-z", f"{seconds}s", "-c", str(clients), "-m", "POST", "-T", "application/json"]
    command += ["-q", str(rate)] if rate else []
    command += ["-host", runner.names["sentiment_app_host"], "-d", json.dumps(body)]
    return subprocess.Popen(
        [*command, f"{runner.host_url}/predict"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=runner.env,
    )


def finish_hey(hey: subprocess.Popen, log: str, stop: bool = False) -> dict:
    """hey's report once it ends; stop: end it now (on SIGINT hey stops and prints its report)."""
    if stop:
        hey.send_signal(signal.SIGINT)
    output, _ = hey.communicate(timeout=600)
    (BUILD / log).write_text(output)
    return hey_report(output)


def failed(result: dict) -> int:
    return int(result["non_2xx"]) + int(result["error_count"])


def kubectl(runner: Runner, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return runner.run("kubectl", f"--context=kind-{runner.cluster}", *args, check=check)


def rolling_restart(runner: Runner) -> None:
    hey = start_hey(runner, 60, 8, "Steady traffic while the pods roll.")
    time.sleep(5)
    deployment = ["-n", runner.names["sentiment_app_namespace"], f"deployment/{runner.names['sentiment_app_name']}"]
    kubectl(runner, "rollout", "restart", *deployment)
    kubectl(runner, "rollout", "status", *deployment, "--timeout=300s")
    result = finish_hey(hey, "rolling-restart-hey.log")
    runner.report.facts["rolling_restart"] = result
    runner.report.check(
        "no failed request during a rolling restart under load",
        result["responses"] > 0 and result["non_2xx"] == 0 and result["error_count"] == 0,
        {"responses": result["responses"], "status_codes": result["status_codes"], "errors": result["errors"]},
    )


def heldout_texts(count: int) -> list[str]:
    """Reviews of the model's held-out split: background traffic that looks like the training data."""
    lines = (REPO / "model-service" / "artifacts" / "heldout.jsonl").read_text().splitlines()
    return [json.loads(line)["text"] for line in lines[:count]]


def canary_state(runner: Runner) -> dict:
    return runner.kubectl_json(
        "get", "canary", "-n", runner.names["sentiment_app_namespace"], runner.names["sentiment_app_name"]
    )


def prometheus_value(runner: Runner, query: str) -> float:
    """One PromQL query through the API server's service proxy (as rollout.yml reads it): the sum of the
    result's values."""
    path = (
        f"/api/v1/namespaces/{runner.names['monitoring_namespace']}/services/prometheus:web/proxy/api/v1/query?"
        + urllib.parse.urlencode({"query": query})
    )
    result = json.loads(kubectl(runner, "get", "--raw", path).stdout)["data"]["result"]
    return sum(float(r["value"][1]) for r in result)


def wait_for_quiet(runner: Runner, timeout: float = 180) -> bool:
    """Wait until the model's /predict rate is below the 1 request/s under which rollout.yml sends traffic of
    its own (it counts the primary's pods only; this, every pod)."""
    query = (
        f'sum(rate(http_requests_total{{namespace="{runner.names["sentiment_app_namespace"]}", route="/predict"}}[1m]))'
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if prometheus_value(runner, query) < 1:
            return True
        time.sleep(5)
    return False


def rollouts(runner: Runner) -> None:
    """Switch Flagger on (second site.yml run with platform_canary_enabled), then ship each candidate with
    rollout.yml under load: the good one is promoted, the bad ones are rolled back, no request fails."""
    report, names = runner.report, runner.names
    namespace, name = names["sentiment_app_namespace"], names["sentiment_app_name"]
    canary_vars = BUILD / "run-vars-canary.yml"
    canary_vars.write_text(json.dumps(CANARY_VARS, indent=2) + "\n")
    hey = start_hey(runner, 900, 2, heldout_texts(64), rate=5)
    recap = runner.playbook("site.yml", "site-canary-on.log", "-e", f"@{canary_vars}")
    switched = finish_hey(hey, "canary-on-hey.log", stop=True)
    state = canary_state(runner)
    ingresses = runner.kubectl_json("get", "ingress", "-n", namespace)["items"]
    route = runner.kubectl_json("get", "httproute", "-n", namespace, name)
    report.facts["canary_switch"] = {"recap": recap, "hey": switched, "phase": state["status"].get("phase")}
    # Traefik restarts once to take on its Gateway provider: a one-time change of the ingress itself, held to
    # the bound of the other infrastructure faults (at most 1% of requests), not to a rollout's none.
    report.check(
        "site.yml with platform_canary_enabled: Flagger runs the model (primary, HTTPRoute, no Ingress); "
        "at most 1% of requests failed while Traefik restarted with its Gateway provider",
        recap["failed"] == 0
        and state["status"].get("phase") in ("Initialized", "Succeeded")
        and not [i for i in ingresses if i["metadata"]["name"] == name]
        and route["spec"]["hostnames"] == [names["sentiment_app_host"]]
        and switched["responses"] > 0
        and failed(switched) <= 0.01 * (switched["responses"] + switched["error_count"]),
        {
            "recap": recap,
            "phase": state["status"].get("phase"),
            "requests": switched["responses"] + switched["error_count"],
            "failed": failed(switched),
        },
    )
    for candidate, expected, traffic, variables in CANDIDATES:
        primary_before = runner.kubectl_json("get", "deployment", "-n", namespace, f"{name}-primary")
        if traffic == "e2e":
            hey = start_hey(runner, 900, 2, heldout_texts(64), rate=5)
            time.sleep(20)  # traffic is flowing: rollout.yml sends none of its own
        else:
            hey = None
            report.check(f"rollout {candidate}: the model gets no traffic before it", wait_for_quiet(runner))
        extra = {**variables, "rollout_candidate": candidate, "rollout_expect": expected}
        extra_file = BUILD / f"rollout-{candidate}.yml"
        extra_file.write_text(json.dumps(extra, indent=2) + "\n")
        try:
            runner.playbook("rollout.yml", f"rollout-{candidate}.log", "-e", f"@{canary_vars}", "-e", f"@{extra_file}")
        except RuntimeError as exc:
            print(f"[e2e] rollout.yml for {candidate}: {str(exc)[-600:]}", flush=True)
        path = REPO / ".build" / "rollouts" / f"{candidate}.json"
        rollout = json.loads(path.read_text()) if path.exists() else {"outcome": "no report", "reason": "", "steps": []}
        # rollout.yml's own hey summary when it sent the traffic ("external" when it saw ours flowing).
        own = rollout.get("traffic") if isinstance(rollout.get("traffic"), dict) else None
        result = finish_hey(hey, f"rollout-{candidate}-hey.log", stop=True) if hey else own or NO_TRAFFIC
        primary_after = runner.kubectl_json("get", "deployment", "-n", namespace, f"{name}-primary")
        # The primary's containers (image, env, resources): the pod template Flagger copies on promotion.
        primary_changed = (
            primary_before["spec"]["template"]["spec"]["containers"]
            != primary_after["spec"]["template"]["spec"]["containers"]
        )
        entry = {
            "candidate": candidate,
            "traffic": "rollout.yml" if traffic == "own" else "e2e",
            "outcome": rollout["outcome"],
            "reason": rollout["reason"],
            "steps": rollout["steps"],
            "requests": result["responses"] + result["error_count"],
            "failed": failed(result),
        }
        report.rollouts.append(entry)
        report.check(
            f"rollout {candidate}: {expected}, primary {'replaced' if expected == 'promoted' else 'untouched'}, "
            "no failed request",
            rollout["outcome"] == expected
            and (own is not None) == (traffic == "own")
            and primary_changed == (expected == "promoted")
            and entry["requests"] > 0
            and entry["failed"] == 0,
            {**entry, "status_codes": result["status_codes"], "errors": result["errors"]},
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


def watch_hpa(runner: Runner, seconds: float, interval: float = 5) -> list[dict]:
    samples, started = [], time.monotonic()
    while time.monotonic() - started < seconds:
        samples.append({"t": round(time.monotonic() - started, 1), **hpa_state(runner)})
        time.sleep(interval)
    return samples


def model_pods(runner: Runner) -> list[dict]:
    selector = f"app.kubernetes.io/name={runner.names['sentiment_app_name']}"
    namespace = runner.names["sentiment_app_namespace"]
    return runner.kubectl_json("get", "pods", "-n", namespace, "-l", selector)["items"]


def fault_pod_deleted(runner: Runner) -> dict:
    """A model pod deleted under load: its endpoints go first (preStop), Traefik retries what it did not answer."""
    hey = start_hey(runner, 40, 8, "A pod goes away mid-traffic.")
    time.sleep(10)
    victim = model_pods(runner)[0]["metadata"]["name"]
    kubectl(runner, "delete", "pod", "-n", runner.names["sentiment_app_namespace"], victim, "--wait=false")
    result = finish_hey(hey, "fault-pod-deleted-hey.log")
    return {
        "fault": "model pod deleted",
        "pod": victim,
        "requests": result["responses"] + result["error_count"],
        "failed": failed(result),
        "status_codes": result["status_codes"],
        "errors": result["errors"],
    }


def fault_prometheus_deleted(runner: Runner) -> dict:
    """Prometheus deleted under load: the HPA loses its custom metric for a while and must neither scale to
    its minimum nor flap, and must have its metric back within two minutes."""
    hey = start_hey(runner, 150, 16, "Scaling on a metric that goes away.")
    time.sleep(45)  # let the HPA settle above its minimum on this load
    before = hpa_state(runner)
    kubectl(
        runner,
        "delete",
        "pod",
        "-n",
        runner.names["monitoring_namespace"],
        "-l",
        "app.kubernetes.io/name=prometheus",
        "--wait=false",
    )
    deleted_at = time.monotonic()
    samples = watch_hpa(runner, 100)
    result = finish_hey(hey, "fault-prometheus-deleted-hey.log")
    back = next((s["t"] for s in samples if s["metrics_ok"] and s["t"] > 5), None)
    replicas = [s["current"] for s in samples]
    return {
        "fault": "Prometheus pod deleted",
        "before": before,
        "hpa": samples,
        "lowest_replicas": min(replicas),
        "metric_back_after_s": back,
        "requests": result["responses"] + result["error_count"],
        "failed": failed(result),
        "status_codes": result["status_codes"],
        "seconds_watched": round(time.monotonic() - deleted_at),
    }


def fault_node_frozen(runner: Runner) -> dict:
    """A worker hung (docker pause) past the node-monitor grace period, then back: its pods stop answering
    without a word; Traefik times out and retries elsewhere until the node is NotReady and its endpoints go."""
    pods = model_pods(runner)
    prometheus_nodes = {
        p["spec"].get("nodeName")
        for p in runner.kubectl_json("get", "pods", "-n", runner.names["monitoring_namespace"])["items"]
    }
    nodes = [p["spec"]["nodeName"] for p in pods if not p["spec"]["nodeName"].endswith("control-plane")]
    candidates = [n for n in nodes if n not in prometheus_nodes] or nodes
    victim = max(set(candidates), key=candidates.count)
    hey = start_hey(runner, 150, 8, "A node stops answering.")
    time.sleep(10)
    runner.run("docker", "pause", victim)
    try:
        time.sleep(60)  # past the node-monitor grace period (40 s): the node turns NotReady
    finally:
        runner.run("docker", "unpause", victim)
    result = finish_hey(hey, "fault-node-frozen-hey.log")
    requests = result["responses"] + result["error_count"]
    return {
        "fault": "worker node frozen 60 s",
        "node": victim,
        "model_pods_on_it": nodes.count(victim),
        "requests": requests,
        "failed": failed(result),
        "failed_share": failed(result) / max(requests, 1),
        "status_codes": result["status_codes"],
        "errors": result["errors"],
    }


def faults(runner: Runner) -> None:
    report = runner.report
    pod = fault_pod_deleted(runner)
    report.check(
        "fault, model pod deleted under load: no failed request", pod["requests"] > 0 and pod["failed"] == 0, pod
    )
    prometheus = fault_prometheus_deleted(runner)
    report.check(
        "fault, Prometheus deleted under load: the HPA holds its replicas and has its metric back within 2 minutes",
        prometheus["lowest_replicas"] >= prometheus["before"]["current"]
        and prometheus["metric_back_after_s"] is not None
        and prometheus["metric_back_after_s"] <= 120
        and prometheus["failed"] == 0,
        {k: v for k, v in prometheus.items() if k != "hpa"},
    )
    node = fault_node_frozen(runner)
    report.check(
        "fault, worker node frozen past the grace period: at most 1% of requests fail",
        node["requests"] > 0 and node["failed_share"] <= 0.01,
        node,
    )
    report.facts["faults"] = [pod, prometheus, node]
    kubectl(runner, "wait", "--for=condition=Ready", "nodes", "--all", "--timeout=300s")


def scale_in(runner: Runner) -> None:
    """The HPA scales in under light load (its maximum lowered to its minimum): no request is lost."""
    namespace, name = runner.names["sentiment_app_namespace"], runner.names["sentiment_app_name"]
    state = hpa_state(runner)
    if state["current"] <= 2:  # scale out first, so that there is something to scale in
        kubectl(runner, "scale", "deployment", "-n", namespace, name, "--replicas=4")
        kubectl(runner, "rollout", "status", "deployment", "-n", namespace, name, "--timeout=300s")
    hpa = runner.kubectl_json("get", "hpa", "-n", namespace, name)

    def set_max_replicas(count: int) -> None:
        patch = json.dumps({"spec": {"maxReplicas": count}})
        kubectl(runner, "patch", "hpa", "-n", namespace, name, "--type=merge", "-p", patch)

    before = len(model_pods(runner))
    hey = start_hey(runner, 120, 4, "Fewer pods, same answers.")
    time.sleep(5)
    set_max_replicas(hpa["spec"]["minReplicas"])
    samples = watch_hpa(runner, 100)
    result = finish_hey(hey, "scale-in-hey.log")
    set_max_replicas(hpa["spec"]["maxReplicas"])
    after = len(model_pods(runner))
    facts = {
        "pods_before": before,
        "pods_after": after,
        "hpa": samples,
        "requests": result["responses"],
        "failed": failed(result),
        "status_codes": result["status_codes"],
    }
    runner.report.facts["scale_in"] = facts
    runner.report.check(
        "scale-in under load loses no request",
        after < before and result["responses"] > 0 and facts["failed"] == 0,
        {k: v for k, v in facts.items() if k != "hpa"},
    )


def network_policy(runner: Runner) -> None:
    """NetworkPolicy is enforced: a pod in another namespace cannot reach the model directly, but it can reach
    Traefik (a positive control: its network works), and the ingress path to the model works."""
    model = model_pods(runner)[0]
    image = model["spec"]["containers"][0]["image"]
    namespace = runner.names["sentiment_app_namespace"]
    traefik = runner.kubectl_json("get", "services", "-A", "-l", "app.kubernetes.io/name=traefik")["items"][0]
    traefik_namespace = traefik["metadata"]["namespace"]
    targets = {
        "model Service": f"http://{runner.names['sentiment_app_name']}.{namespace}.svc/health",
        "model pod": f"http://{model['status']['podIP']}:8000/health",
        "Traefik": f"http://traefik.{traefik_namespace}.svc/ping",
    }
    script = (
        "import json, sys, urllib.request\n"
        "out = {}\n"
        "for name, url in json.loads(sys.argv[1]).items():\n"
        "    try:\n"
        "        urllib.request.urlopen(url, timeout=5)\n"
        "        out[name] = 'reached'\n"
        "    except urllib.error.HTTPError:\n"
        "        out[name] = 'reached'\n"
        "    except OSError as exc:\n"
        "        out[name] = 'blocked: ' + type(exc).__name__\n"
        "print(json.dumps(out))\n"
    )
    kubectl(
        runner,
        "run",
        "netpol-probe",
        "-n",
        "default",
        "--image",
        image,
        "--image-pull-policy=IfNotPresent",
        "--restart=Never",
        "--command",
        "--",
        "python",
        "-c",
        script,
        json.dumps(targets),
    )
    kubectl(
        runner,
        "wait",
        "-n",
        "default",
        "pod/netpol-probe",
        "--for=jsonpath={.status.phase}=Succeeded",
        "--timeout=120s",
        check=False,
    )
    logs = kubectl(runner, "logs", "-n", "default", "netpol-probe", check=False).stdout.strip()
    kubectl(runner, "delete", "pod", "-n", "default", "netpol-probe", "--wait=false", check=False)
    try:
        seen = json.loads(logs.splitlines()[-1])
    except (ValueError, IndexError):
        seen = {"probe output": logs[-500:]}
    runner.report.facts["network_policy"] = seen
    runner.report.check(
        "NetworkPolicy enforced: another namespace cannot reach the model directly, yet reaches Traefik",
        seen.get("Traefik") == "reached"
        and str(seen.get("model Service", "")).startswith("blocked")
        and str(seen.get("model pod", "")).startswith("blocked"),
        seen,
    )


def summary(report: Report) -> str:
    lines = ["# e2e summary", "", "| stage | seconds |", "|---|---|"]
    lines += [f"| {name} | {seconds} |" for name, seconds in report.stages.items()]
    lines += ["", "| check | result |", "|---|---|"]
    lines += [f"| {c.name} | {'PASS' if c.ok else 'FAIL'} |" for c in report.checks]
    load = report.facts.get("load")
    if load:
        samples = load["hpa"]["samples"]
        lines += [
            "",
            "HPA timeline (s: current/desired/ready): "
            + "  ".join(f"{s['t']:.0f}:{s['current']}/{s['desired']}/{s['ready']}" for s in samples),
            f"hey: {load['hey']['requests_per_second']:.0f} req/s, p99 {load['hey']['p99_seconds'] * 1000:.0f} ms, "
            f"status codes {load['hey']['status_codes']}",
        ]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-build", action="store_true", help="images are built already")
    parser.add_argument("--keep", action="store_true", help="leave the cluster up at the end (delete it with --down)")
    parser.add_argument("--down", action="store_true", help="only delete the cluster an earlier run of this clone left")
    parser.add_argument(
        "--only-canary",
        action="store_true",
        help="a development loop: the stages with Flagger only (site.yml, the cluster checks, the canary "
        "stage, the existing cluster); CI runs every stage",
    )
    args = parser.parse_args()
    report = Report()
    runner = Runner(report, cluster=f"sentiment-e2e-{secrets.token_hex(3)}", host_port=free_port())
    if args.down:
        delete_recorded_clusters(runner)
        return 0
    try:
        if not args.skip_build:
            runner.stage("build binaries and images, publish them", build, runner)
        docker_facts(runner)
        delete_recorded_clusters(runner)
        start_run(runner)
        runner.names = runner.inventory(*INVENTORY_NAMES)
        report.facts["model"] = runner.names["sentiment_app_model"]
        recap = runner.stage("site.yml (first run)", runner.playbook, "site.yml", "site-first-run.log")
        report.facts["first_run_recap"] = recap
        runner.stage("cluster checks", cluster_checks, runner)
        if not args.only_canary:
            runner.stage("load.yml", load, runner)
            runner.stage("drift.yml", drift, runner)
            runner.stage("site.yml (second run)", idempotence, runner)
            runner.stage("rolling restart under load", rolling_restart, runner)
            runner.stage("NetworkPolicy", network_policy, runner)
            runner.stage("faults under load", faults, runner)
            runner.stage("scale-in under load", scale_in, runner)
        runner.stage("canary rollouts under load", rollouts, runner)
        if not args.keep:  # as `make down` does it
            runner.stage("teardown.yml", teardown, runner)
        runner.stage("existing cluster (kind_cluster_enabled false, Flagger from the start)", existing_cluster, runner)
    except Exception as exc:  # noqa: BLE001 - recorded in the report, then the exit status says it
        report.check("e2e ran to the end", False, str(exc)[-3000:])
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


if __name__ == "__main__":
    raise SystemExit(main())
