"""`make bench`: the naive design and ours, side by side in one run, under the same load.

For each server variant: start it, measure the time from process start to a 200 on /ready,
drive it with wrk (POST /predict cycling through held-out review texts) at each concurrency,
record req/s, p50, p99, errors (non-2xx plus socket errors) and the process's peak RSS, stop it
with SIGTERM. Then a micro-benchmark of the drift window's per-text cost against the model's.

Overload section: ours with load shedding (the defaults) and without (an unbounded queue), each
under hey at 256 and 1,024 clients: answered req/s, the share shed (503 + Retry-After), the p99 of
the admitted requests alone (hey's per-request CSV), client errors, and /health over a fresh
connection every 100 ms meanwhile (p50, p95, max: what a kubelet probe sees), peak RSS.
Absolute numbers drift between machines and runs; read the ratios.

    python bench/run_bench.py --duration 15 --concurrency 16 64 --overload 256 1024 --out ../.bench
"""

from __future__ import annotations

import argparse
import csv
import http.client
import io
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from sentiment_service.drift import DriftWindow, reference_shares
from sentiment_service.model import ARTIFACT_FORMAT, load_card
from sentiment_service.runtime import load_model
from sentiment_service.settings import Settings

HERE = Path(__file__).resolve().parent
SERVICE_DIR = HERE.parent
# make model's signing key (make bench trains first): the served model verifies with its public key.
SIGNING_KEY = SERVICE_DIR / ".keys" / "model-signing.key"


@dataclass
class Variant:
    name: str
    description: str
    command: list[str]
    env: dict[str, str] = field(default_factory=dict)


@dataclass
class LoadResult:
    concurrency: int
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int


@dataclass
class VariantResult:
    name: str
    description: str
    ready_s: float
    peak_rss_mb: float
    loads: list[LoadResult]


def variants(transformer: bool) -> list[Variant]:
    python = sys.executable
    service = [python, "-m", "sentiment_service"]
    if transformer:
        return [
            Variant(
                "naive",
                "fp32 ONNX graph, default session options, one run per request on the event loop",
                [python, str(HERE / "naive_server.py")],
                {"NAIVE_BATCHING": "0"},
            ),
            Variant(
                "naive + micro-batching",
                "fp32 ONNX graph, default session options, behind the service's MicroBatcher",
                [python, str(HERE / "naive_server.py")],
                {"NAIVE_BATCHING": "1"},
            ),
            Variant("ours", "int8 graph, token-sized batches, model thread off the loop (defaults)", service),
        ]
    return [
        Variant(
            "naive",
            "scikit-learn pipeline, one predict_proba per request",
            [python, str(HERE / "naive_server.py")],
            {"NAIVE_BATCHING": "0"},
        ),
        Variant(
            "naive + micro-batching",
            "scikit-learn pipeline behind the service's MicroBatcher",
            [python, str(HERE / "naive_server.py")],
            {"NAIVE_BATCHING": "1"},
        ),
        Variant(
            "ours, batching off",
            "compiled model, SENTIMENT_BATCH_MAX_SIZE=1",
            service,
            {"SENTIMENT_BATCH_MAX_SIZE": "1"},
        ),
        Variant("ours", "compiled model, micro-batching (defaults)", service),
    ]


def wrk_script(texts: list[str], path: Path) -> None:
    """A wrk Lua script that POSTs the texts in turn (JSON bodies, ASCII-escaped)."""
    bodies = [json.dumps({"text": t}) for t in texts]
    lua_strings = ",\n".join('"' + b.replace("\\", "\\\\").replace('"', '\\"') + '"' for b in bodies)
    path.write_text(
        'wrk.method = "POST"\n'
        'wrk.headers["Content-Type"] = "application/json"\n'
        f"local bodies = {{\n{lua_strings}\n}}\n"
        "local i = 0\n"
        "request = function()\n"
        "  i = i % #bodies + 1\n"
        "  return wrk.format(nil, nil, nil, bodies[i])\n"
        "end\n",
        encoding="utf-8",
    )


def _get(port: int, path: str, timeout: float = 1.0) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("GET", path)
        return connection.getresponse().status
    finally:
        connection.close()


def start(variant: Variant, port: int, model_dir: Path) -> tuple[subprocess.Popen, float]:
    env = {
        **os.environ,
        "PYTHONPATH": str(SERVICE_DIR / "src"),
        "SENTIMENT_MODEL_DIR": str(model_dir),
        "SENTIMENT_MODEL_PUBLIC_KEY_FILE": str(SIGNING_KEY.with_suffix(".pub")),
        "SENTIMENT_HOST": "127.0.0.1",
        "SENTIMENT_PORT": str(port),
        "SENTIMENT_PROBE_PORT": str(port + 1),
        "SENTIMENT_LOG_LEVEL": "warning",
        **variant.env,
    }
    started = time.perf_counter()
    process = subprocess.Popen(variant.command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    while time.perf_counter() - started < 60:
        if process.poll() is not None:
            raise RuntimeError(f"{variant.name} exited: {process.stderr.read().decode()[-2000:]}")
        try:
            if _get(port, "/ready") == 200:
                return process, time.perf_counter() - started
        except OSError:
            pass
        time.sleep(0.005)
    process.kill()
    raise RuntimeError(f"{variant.name} not ready within 60 s")


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def _ms(value: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", value)
    if not match:
        raise ValueError(f"unexpected wrk latency {value!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def parse_wrk(output: str, concurrency: int) -> LoadResult:
    percentiles = dict(re.findall(r"^\s+(50|99)%\s+(\S+)", output, re.M))
    requests = int(re.search(r"(\d+) requests in", output).group(1))
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    sockets = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    errors = (int(non_2xx.group(1)) if non_2xx else 0) + (sum(map(int, sockets.groups())) if sockets else 0)
    return LoadResult(concurrency, rate, _ms(percentiles["50"]), _ms(percentiles["99"]), requests, errors)


def drive(port: int, script: Path, concurrency: int, duration: int) -> LoadResult:
    # One wrk thread: on a 2-core machine the server gets one core, the load generator the other.
    threads = 1
    command = [
        "wrk",
        f"-t{threads}",
        f"-c{concurrency}",
        f"-d{duration}s",
        "--latency",
        "-s",
        str(script),
        f"http://127.0.0.1:{port}/predict",
    ]
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return parse_wrk(output, concurrency)


@dataclass
class OverloadResult:
    variant: str
    clients: int
    answered_per_s: float
    shed_share: float
    admitted_p99_ms: float
    errors: int
    health_p50_ms: float
    health_p95_ms: float
    health_max_ms: float
    health_failures: int
    probe_p50_ms: float
    probe_p95_ms: float
    probe_max_ms: float
    probe_failures: int
    peak_rss_mb: float


def health_over_fresh_connections(port: int, stop: threading.Event, timeout: float = 10.0) -> list[float]:
    """GET /health on a new TCP connection every 100 ms until ``stop``; milliseconds to the full answer
    (``timeout`` when there was none: the probe failed)."""
    samples = []
    request = b"GET /health HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n"
    while not stop.is_set():
        started = time.perf_counter()
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
                sock.settimeout(timeout)
                sock.sendall(request)
                data = b""
                while b'"ok"' not in data:
                    chunk = sock.recv(4096)
                    if not chunk:
                        raise ConnectionError("closed")
                    data += chunk
            samples.append((time.perf_counter() - started) * 1000)
        except OSError:
            samples.append(timeout * 1000)
        stop.wait(0.1)
    return samples


def _probe_stats(samples_ms: list[float]) -> tuple[float, float, float, int]:
    """p50, p95, max and failures (answers that took the prober's whole 10 s timeout) of probe samples."""
    ordered = sorted(samples_ms)
    return (
        statistics.median(ordered),
        ordered[int(0.95 * (len(ordered) - 1))],
        ordered[-1],
        sum(ms >= 10_000 for ms in ordered),
    )


def overload(port: int, variant: str, clients: int, *, duration: int, body: Path, pid: int) -> OverloadResult:
    stop = threading.Event()
    health: list[float] = []  # the API port's /health, queued with the traffic
    probe: list[float] = []  # the probe port's /health, what kubelet asks
    probers = [
        threading.Thread(target=lambda: health.extend(health_over_fresh_connections(port, stop))),
        threading.Thread(target=lambda: probe.extend(health_over_fresh_connections(port + 1, stop))),
    ]
    for prober in probers:
        prober.start()
    command = [
        "hey",
        "-z",
        f"{duration}s",
        "-c",
        str(clients),
        "-m",
        "POST",
        "-T",
        "application/json",
        "-D",
        str(body),
        "-o",
        "csv",
        f"http://127.0.0.1:{port}/predict",
    ]
    try:
        output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    finally:
        stop.set()
        for prober in probers:
            prober.join()
    rows = list(csv.DictReader(io.StringIO(output)))
    admitted = sorted(float(r["response-time"]) * 1000 for r in rows if r["status-code"] == "200")
    shed = sum(r["status-code"] == "503" for r in rows)
    answered = [r for r in rows if r["status-code"] not in ("", "0")]
    errors = len(rows) - len(answered) + sum(r["status-code"] not in ("200", "503") for r in answered)
    health_p50, health_p95, health_max, health_failures = _probe_stats(health)
    probe_p50, probe_p95, probe_max, probe_failures = _probe_stats(probe)
    return OverloadResult(
        variant=variant,
        clients=clients,
        answered_per_s=len(answered) / duration,
        shed_share=shed / max(len(answered), 1),
        admitted_p99_ms=admitted[int(0.99 * (len(admitted) - 1))] if admitted else float("nan"),
        errors=errors,
        health_p50_ms=health_p50,
        health_p95_ms=health_p95,
        health_max_ms=health_max,
        health_failures=health_failures,
        probe_p50_ms=probe_p50,
        probe_p95_ms=probe_p95,
        probe_max_ms=probe_max,
        probe_failures=probe_failures,
        peak_rss_mb=peak_rss_mb(pid),
    )


def overload_table(results: list[OverloadResult]) -> str:
    lines = [
        "| variant | clients | answered req/s | shed | p99 admitted ms | errors "
        "| API port /health p50 / p95 / max ms | probe port /health p50 / p95 / max ms | peak RSS MB |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        health = f"{r.health_p50_ms:.1f} / {r.health_p95_ms:.1f} / {r.health_max_ms:.1f}"
        probe = f"{r.probe_p50_ms:.1f} / {r.probe_p95_ms:.1f} / {r.probe_max_ms:.1f}"
        lines.append(
            f"| {r.variant} | {r.clients:,} | {r.answered_per_s:,.0f} | {r.shed_share:.1%} "
            f"| {r.admitted_p99_ms:,.0f} | {r.errors} | {health} | {probe} | {r.peak_rss_mb:.0f} |"
        )
    return "\n".join(lines)


def run_overload(args: argparse.Namespace, model_dir: Path, texts: list[str], tmp: Path) -> list[OverloadResult]:
    """Ours with its defaults (the model-queue bound), with the in-flight bound too, and with no bound, at each
    overload client count."""
    body = tmp / "body.json"
    body.write_text(json.dumps({"text": texts[0]}))
    overloads: list[OverloadResult] = []
    service = [sys.executable, "-m", "sentiment_service"]
    unbounded = {
        "SENTIMENT_MAX_QUEUED_TEXTS": "1000000",
        "SENTIMENT_MAX_QUEUED_CHARS": "1000000000",
        "SENTIMENT_MAX_IN_FLIGHT": "0",
    }
    variants = (
        ("ours (defaults: model-queue bound)", {}),
        ("ours + in-flight bound 256", {"SENTIMENT_MAX_IN_FLIGHT": "256"}),
        ("ours, no bound at all", unbounded),
    )
    for name, env in variants:
        for clients in args.overload:
            # A fresh process per run: its peak RSS is that run's.
            process, _ = start(Variant(name, "", service, env), args.port, model_dir)
            try:
                overloads.append(overload(args.port, name, clients, duration=args.duration, body=body, pid=process.pid))
            finally:
                process.send_signal(signal.SIGTERM)
                process.wait(timeout=60)
            print(f"{name}, {clients} clients: done", file=sys.stderr)
    return overloads


def drift_overhead(model_dir: Path, texts: list[str]) -> dict[str, float]:
    """Per-text cost of scoring vs of recording the prediction in the drift window."""
    card = load_card(model_dir)
    model = load_model(model_dir, card, Settings(model_dir=model_dir))
    window = DriftWindow(reference_shares(load_card(model_dir)["reference"]), 1000, 600.0)
    model.score_batch(texts)  # warm the word cache, as a running server has
    started = time.perf_counter()
    scored = model.score_batch(texts)
    score_s = time.perf_counter() - started
    started = time.perf_counter()
    for _ in range(5):
        window.add(scored, texts)
    add_s = (time.perf_counter() - started) / 5
    started = time.perf_counter()
    for _ in range(100):
        window.stats()
    stats_s = (time.perf_counter() - started) / 100
    n = len(texts)
    return {
        "score_us_per_text": score_s / n * 1e6,
        "drift_add_us_per_text": add_s / n * 1e6,
        "drift_share_of_model_time": add_s / score_s,
        "drift_stats_ms_per_scrape": stats_s * 1e3,
    }


def image_sizes(variant: str) -> dict[str, float] | None:
    """Build the product image and the naive single-stage one; sizes in MB and the product's layers."""
    if (
        shutil.which("docker") is None
        or subprocess.run(["docker", "info"], check=False, capture_output=True).returncode
    ):
        return None
    # As the sentiment_app role builds; PYTHON_IMAGE overrides the pinned base (our machines' stand-in).
    build = ["docker", "buildx", "build", "--load", "--provenance=false", "--sbom=false", "-q"]
    build.append(f"--secret=id=model_signing_key,src={SIGNING_KEY}")
    if os.environ.get("PYTHON_IMAGE"):
        build.append(f"--build-arg=PYTHON_IMAGE={os.environ['PYTHON_IMAGE']}")
    builds = {
        "ours": ("sentiment-service:bench", [f"--build-arg=MODEL={variant}"]),
        "naive": ("sentiment-service:bench-naive", ["-f", str(HERE / "Dockerfile.naive")]),
    }
    sizes: dict[str, float] = {}
    for name, (tag, extra) in builds.items():
        subprocess.run([*build, *extra, "-t", tag, str(SERVICE_DIR)], check=True, capture_output=True)
        # Unpacked layers (docker history): the same measure with the classic and the containerd image store.
        sizes[name] = sum(size for size, _ in _history(tag)) / 1e6
    layers = {"virtualenv": "/opt/venv", "service code": "/opt/app", "model": "/opt/model"}
    for size, created_by in _history("sentiment-service:bench"):
        for label, path in layers.items():
            if "COPY" in created_by and path in created_by:
                sizes[label] = size / 1e6
    sizes["base image"] = sizes["ours"] - sum(sizes.get(label, 0) for label in layers)
    return sizes


def _history(tag: str) -> list[tuple[int, str]]:
    """(bytes, created by) of each layer of an image."""
    output = subprocess.run(
        ["docker", "history", "--human=false", "--no-trunc", "--format", "{{.Size}}\t{{.CreatedBy}}", tag],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return [(int(size), created_by) for size, created_by in (line.split("\t", 1) for line in output.splitlines())]


def table(results: list[VariantResult]) -> str:
    baseline = {load.concurrency: load.requests_per_s for load in results[0].loads}
    lines = [
        "| variant | concurrency | req/s | vs naive | p50 ms | p99 ms | errors | peak RSS MB | ready s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for result in results:
        for load in result.loads:
            lines.append(
                f"| {result.name} | {load.concurrency} | {load.requests_per_s:,.0f} | "
                f"{load.requests_per_s / baseline[load.concurrency]:.2f}x | {load.p50_ms:.1f} | "
                f"{load.p99_ms:.1f} | {load.errors} | {result.peak_rss_mb:.0f} | {result.ready_s:.2f} |"
            )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, default=SERVICE_DIR / "artifacts")
    parser.add_argument("--duration", type=int, default=15)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[16, 64])
    parser.add_argument("--overload", type=int, nargs="*", default=[256, 1024], help="clients of the overload runs")
    parser.add_argument("--port", type=int, default=18080)
    parser.add_argument("--out", type=Path, default=SERVICE_DIR.parent / ".bench")
    parser.add_argument("--no-images", dest="images", action="store_false", help="skip the image size comparison")
    parser.add_argument("--overload-only", action="store_true", help="only the overload section (sizing its limits)")
    args = parser.parse_args()
    for tool in ("wrk", "hey"):
        if shutil.which(tool) is None:
            print(f"{tool} not found: apt-get install {tool}", file=sys.stderr)
            return 2
    model_dir = args.model_dir.resolve()
    texts = [json.loads(line)["text"] for line in (model_dir / "heldout.jsonl").open(encoding="utf-8")]
    model_variant = "tfidf" if load_card(model_dir)["artifact"]["format"] == ARTIFACT_FORMAT else "minilm"

    results: list[VariantResult] = []
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "predict.lua"
        wrk_script(texts[:500], script)
        for variant in [] if args.overload_only else variants(transformer=model_variant == "minilm"):
            process, ready_s = start(variant, args.port, model_dir)
            try:
                loads = [drive(args.port, script, c, args.duration) for c in args.concurrency]
                rss = peak_rss_mb(process.pid)
            finally:
                process.send_signal(signal.SIGTERM)
                process.wait(timeout=30)
            results.append(VariantResult(variant.name, variant.description, ready_s, rss, loads))
            print(f"{variant.name}: done", file=sys.stderr)

        overloads = run_overload(args, model_dir, texts, Path(tmp))

    overhead = drift_overhead(model_dir, texts)
    sizes = image_sizes(model_variant) if args.images else None
    report = (table(results) + "\n\n" if results else "") + "Overload:\n\n" + overload_table(overloads)
    drift_line = (
        f"Drift window: {overhead['drift_add_us_per_text']:.1f} us per text recorded vs "
        f"{overhead['score_us_per_text']:.0f} us per text scored "
        f"({overhead['drift_share_of_model_time']:.1%} of model time); "
        f"computing the scores at a scrape: {overhead['drift_stats_ms_per_scrape']:.2f} ms."
    )
    size_line = (
        "Image: " + ", ".join(f"{name} {mb:.1f} MB" for name, mb in sizes.items())
        if sizes
        else "Image sizes: skipped (no Docker engine, or --no-images)"
    )
    print(report)
    print()
    print(drift_line)
    print(size_line)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bench.json").write_text(
        json.dumps(
            {
                "results": [asdict(r) for r in results],
                "overload": [asdict(r) for r in overloads],
                "drift_overhead": overhead,
                "image_mb": sizes,
            },
            indent=2,
        )
        + "\n"
    )
    (args.out / "bench.md").write_text(report + "\n\n" + drift_line + "\n" + size_line + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
