"""The dashboard and the adapter, proven against real data.

Starts the real model service and a real Prometheus (Debian's `prometheus`) on loopback, with the
rules and scrape jobs the monitoring role renders (timings shortened through inventory variables,
targets pointed at the local processes), drives in-distribution traffic and then shifted traffic,
and checks that:
  * every PromQL expression of the Grafana dashboard, of the prometheus-adapter rules and of the
    recording rules returns data;
  * drift stays low on held-out reviews and crosses the alert threshold on tweets;
  * SentimentModelDrift goes pending, then firing.
kube-state-metrics cannot run without a cluster: a stub serves the HPA series it would export.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
import yaml
from infra import REPO, load_documents, render
from svc import TRUSTED_PUBLIC_KEY, free_port

from sentiment_training.data import shifted_domains

SERVICE_DIR = REPO / "model-service"
MODEL_DIR = SERVICE_DIR / "artifacts"
NAMESPACE = "sentiment"
JOB = "sentiment-service"
# Shortened timings for the test; everything else is the default inventory.
OVERRIDES = {
    "monitoring_scrape_interval": "1s",
    "monitoring_alert_drift_for": "10s",
    "custom_metrics_rate_window": "30s",
}
KSM_STUB = f"""\
# TYPE kube_horizontalpodautoscaler_status_current_replicas gauge
kube_horizontalpodautoscaler_status_current_replicas{{namespace="{NAMESPACE}",horizontalpodautoscaler="{JOB}"}} 3
# TYPE kube_horizontalpodautoscaler_status_desired_replicas gauge
kube_horizontalpodautoscaler_status_desired_replicas{{namespace="{NAMESPACE}",horizontalpodautoscaler="{JOB}"}} 4
# TYPE kube_horizontalpodautoscaler_spec_max_replicas gauge
kube_horizontalpodautoscaler_spec_max_replicas{{namespace="{NAMESPACE}",horizontalpodautoscaler="{JOB}"}} 6
# TYPE kube_horizontalpodautoscaler_spec_min_replicas gauge
kube_horizontalpodautoscaler_spec_min_replicas{{namespace="{NAMESPACE}",horizontalpodautoscaler="{JOB}"}} 2
"""

# Flagger's own exposition (flagger_canary_weight per workload): scraped like Flagger's pod, whose
# namespace label Prometheus keeps as exported_namespace.
FLAGGER_STUB = f"""\
# TYPE flagger_canary_weight gauge
flagger_canary_weight{{namespace="{NAMESPACE}",workload="{JOB}-primary"}} 80
flagger_canary_weight{{namespace="{NAMESPACE}",workload="{JOB}"}} 20
"""

pytestmark = pytest.mark.slow


def wait_for(url: str, process: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args[0]} exited with {process.returncode}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} not ready")


class _KsmStub(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = (FLAGGER_STUB if self.path.startswith("/flagger") else KSM_STUB).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


class Stack:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.processes: list[subprocess.Popen] = []

    def start(self, command: list[str], log_name: str, **env: str) -> subprocess.Popen:
        log = (self.tmp / log_name).open("w")
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **env})
        self.processes.append(process)
        return process

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict:
    tmp = tmp_path_factory.mktemp("rendered")
    (tmp / "overrides.yml").write_text(yaml.safe_dump(OVERRIDES))
    render(tmp / "manifests", tmp / "overrides.yml")
    monitoring = load_documents(tmp / "manifests" / "monitoring")
    adapter = load_documents(tmp / "manifests" / "custom_metrics")
    config_maps = {d["metadata"]["name"]: d["data"] for d in monitoring + adapter if d["kind"] == "ConfigMap"}
    return {
        "prometheus": yaml.safe_load(config_maps["prometheus-config"]["prometheus.yml"]),
        "rules": config_maps["prometheus-rules"]["sentiment-service.yml"],
        "dashboard": json.loads(config_maps["grafana-dashboards"]["sentiment-service.json"]),
        "adapter": yaml.safe_load(config_maps["prometheus-adapter-config"]["config.yaml"]),
    }


@pytest.fixture(scope="module")
def stack(rendered: dict, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    prometheus_binary = os.environ.get("PROMETHEUS") or shutil.which("prometheus")
    if not prometheus_binary:
        pytest.fail("no prometheus binary: apt-get install prometheus")
    if not (MODEL_DIR / "model_card.json").exists():
        pytest.fail("no trained model: run `make model`")
    tmp = tmp_path_factory.mktemp("stack")
    stack = Stack(tmp)
    service_port, prometheus_port = free_port(), free_port()
    ksm = ThreadingHTTPServer(("127.0.0.1", 0), _KsmStub)
    threading.Thread(target=ksm.serve_forever, daemon=True).start()
    try:
        service = stack.start(
            [sys.executable, "-m", "sentiment_service"],
            "service.log",
            PYTHONPATH=str(SERVICE_DIR / "src"),
            SENTIMENT_HOST="127.0.0.1",
            SENTIMENT_PORT=str(service_port),
            SENTIMENT_MODEL_DIR=str(MODEL_DIR),
            SENTIMENT_MODEL_PUBLIC_KEY_FILE=str(TRUSTED_PUBLIC_KEY),
            SENTIMENT_LOG_LEVEL="warning",
        )
        wait_for(f"http://127.0.0.1:{service_port}/ready", service)

        # The deployed configuration, with static targets carrying the labels that the
        # deployed relabelling gives the pods (namespace, pod, job from app.kubernetes.io/name).
        deployed = rendered["prometheus"]
        jobs = {job["job_name"]: job for job in deployed["scrape_configs"]}
        assert {"kubernetes-pods", "kube-state-metrics"} <= set(jobs)
        (tmp / "rules.yml").write_text(rendered["rules"])
        config = {
            "global": deployed["global"],
            "rule_files": [str(tmp / "rules.yml")],
            "scrape_configs": [
                {
                    "job_name": JOB,
                    "static_configs": [
                        {
                            "targets": [f"127.0.0.1:{service_port}"],
                            "labels": {"namespace": NAMESPACE, "pod": f"{JOB}-local-0", "node": "localhost"},
                        }
                    ],
                },
                {
                    "job_name": "flagger",
                    "metrics_path": "/flagger/metrics",
                    "static_configs": [
                        {"targets": [f"127.0.0.1:{ksm.server_address[1]}"], "labels": {"namespace": "flagger"}}
                    ],
                },
                {
                    "job_name": "kube-state-metrics",
                    "honor_labels": jobs["kube-state-metrics"]["honor_labels"],
                    "static_configs": [
                        {"targets": [f"127.0.0.1:{ksm.server_address[1]}"], "labels": {"namespace": "monitoring"}}
                    ],
                },
            ],
        }
        (tmp / "prometheus.yml").write_text(yaml.safe_dump(config))
        prometheus = stack.start(
            [
                prometheus_binary,
                f"--config.file={tmp / 'prometheus.yml'}",
                f"--storage.tsdb.path={tmp / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{prometheus_port}",
            ],
            "prometheus.log",
        )
        wait_for(f"http://127.0.0.1:{prometheus_port}/-/ready", prometheus)
        yield {
            "service": f"http://127.0.0.1:{service_port}",
            "prometheus": f"http://127.0.0.1:{prometheus_port}",
            "logs": tmp,
        }
    finally:
        stack.stop()
        ksm.shutdown()


def query(prometheus: str, expr: str) -> list[dict]:
    response = httpx.get(f"{prometheus}/api/v1/query", params={"query": expr}, timeout=10)
    body = response.json()
    assert body["status"] == "success", (expr, body)
    return body["data"]["result"]


def send(service: str, texts: list[str], seconds: float) -> int:
    """Single-text requests, round robin over texts, for about `seconds`; returns the count."""
    sent = 0
    deadline = time.monotonic() + seconds
    with httpx.Client(base_url=service, timeout=10) as client:
        while time.monotonic() < deadline:
            text = texts[sent % len(texts)]
            assert client.post("/predict", json={"text": text}).status_code == 200
            sent += 1
            time.sleep(0.01)
    return sent


def drift_scores(prometheus: str) -> dict[str, float]:
    return {
        r["metric"]["target"]: float(r["value"][1])
        for r in query(prometheus, f'namespace:sentiment_model_drift_score:max{{namespace="{NAMESPACE}"}}')
    }


def dashboard_queries(dashboard: dict) -> list[str]:
    return [
        target["expr"].replace("$namespace", NAMESPACE)
        for panel in dashboard["panels"]
        for target in panel.get("targets", [])
    ]


def adapter_queries(adapter: dict) -> list[str]:
    queries = []
    for rule in adapter["rules"]:
        series = rule["seriesQuery"].split("{", 1)[0]
        queries.append(
            rule["metricsQuery"]
            .replace("<<.Series>>", series)
            .replace("<<.LabelMatchers>>", f'namespace="{NAMESPACE}",pod=~"{JOB}-.*"')
            .replace("<<.GroupBy>>", "pod")
        )
    return queries


def test_queries_drift_and_the_drift_alert_on_real_data(stack: dict, rendered: dict, heldout_texts) -> None:
    prometheus, service = stack["prometheus"], stack["service"]
    expressions = set(dashboard_queries(rendered["dashboard"])) | set(adapter_queries(rendered["adapter"]))
    recorded = [r["record"] for g in yaml.safe_load(rendered["rules"])["groups"] for r in g["rules"] if "record" in r]
    expressions |= set(recorded)
    alert_expressions = {e for e in expressions if "ALERTS" in e and "vector(0)" not in e}
    with_data: set[str] = set()

    # Phase 1: held-out reviews, the distribution the model was trained on.
    normal_sent = send(service, heldout_texts, seconds=25)
    time.sleep(3)
    for expr in expressions - alert_expressions:
        if query(prometheus, expr):
            with_data.add(expr)
    normal = drift_scores(prometheus)
    assert set(normal) == {"label", "confidence", "text_length", "unknown_tokens"}
    assert max(normal.values()) < 0.1, normal
    assert not query(prometheus, 'ALERTS{alertname="SentimentModelDrift"}')

    # Phase 2: tweets - other vocabulary, other lengths.
    tweets = shifted_domains(SERVICE_DIR / ".cache" / "data")["tweets"].texts
    states: list[str] = []
    shifted: dict[str, float] = {}
    deadline = time.monotonic() + 90
    shifted_sent = 0
    while time.monotonic() < deadline and "firing" not in states:
        shifted_sent += send(service, tweets[shifted_sent:], seconds=3)
        shifted = drift_scores(prometheus)
        for alert in query(prometheus, 'ALERTS{alertname="SentimentModelDrift"}'):
            states.append(alert["metric"]["alertstate"])
        for expr in alert_expressions:
            if query(prometheus, expr):
                with_data.add(expr)

    report = {"normal": normal, "shifted": shifted, "normal_sent": normal_sent, "shifted_sent": shifted_sent}
    (stack["logs"] / "drift-report.json").write_text(json.dumps(report, indent=2))
    print(f"\ndrift scores (PSI): {json.dumps(report)}\nalert states seen: {sorted(set(states))}")

    assert max(shifted.values()) > 0.25, shifted
    assert shifted["unknown_tokens"] > 5 * normal["unknown_tokens"]
    assert "pending" in states
    assert "firing" in states
    missing = expressions - with_data
    assert not missing, f"expressions that never returned data: {sorted(missing)}"


@pytest.fixture(scope="module")
def heldout_texts() -> list[str]:
    lines = (MODEL_DIR / "heldout.jsonl").read_text().splitlines()
    return [json.loads(line)["text"] for line in lines]
