"""hey, driven one way (infrastructure/plugins/module_utils/hey.py): its command line, the parser of its summary
on real output, a run in the background, and the sentiment.platform.hey module in a playbook as load.yml and
rollout.yml use it, against an HTTP server of the test's own on 127.0.0.1."""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest
from ansible_collections.sentiment.platform.plugins.module_utils import hey
from infra import run_local_playbook

# Real hey output (hey 0.1.4, Debian 12) against a local server; tabs and trailing blanks as escapes.
# A POST to python -m http.server, which answers 501 to every POST, for 2 s:
REAL_501 = """
Summary:
  Total:\t2.0086 secs
  Slowest:\t0.0415 secs
  Fastest:\t0.0010 secs
  Average:\t0.0053 secs
  Requests/sec:\t750.2803
\x20\x20
  Total data:\t537999 bytes
  Size/request:\t357 bytes

Response time histogram:
  0.001 [1]\t|
  0.005 [1038]\t|■■■■■■■■■■■■■■■■■■■■■■■■■■■■■■■■■■■■■■■■
  0.009 [315]\t|■■■■■■■■■■■■
  0.013 [79]\t|■■■
  0.017 [34]\t|■
  0.021 [16]\t|■
  0.025 [2]\t|
  0.029 [6]\t|
  0.033 [8]\t|
  0.037 [2]\t|
  0.041 [6]\t|


Latency distribution:
  10% in 0.0024 secs
  25% in 0.0030 secs
  50% in 0.0040 secs
  75% in 0.0057 secs
  90% in 0.0092 secs
  95% in 0.0131 secs
  99% in 0.0301 secs

Details (average, fastest, slowest):
  DNS+dialup:\t0.0003 secs, 0.0010 secs, 0.0415 secs
  DNS-lookup:\t0.0000 secs, 0.0000 secs, 0.0000 secs
  req write:\t0.0001 secs, 0.0000 secs, 0.0029 secs
  resp wait:\t0.0043 secs, 0.0005 secs, 0.0377 secs
  resp read:\t0.0006 secs, 0.0000 secs, 0.0303 secs

Status code distribution:
  [501]\t1507 responses



"""

# A GET to a server stopped half way through (200s, then refused connections), for 2 s:
REAL_MIXED = """
Summary:
  Total:\t2.0156 secs
  Slowest:\t0.0112 secs
  Fastest:\t0.0019 secs
  Average:\t0.0049 secs
  Requests/sec:\t39.6899
\x20\x20
  Total data:\t18468 bytes
  Size/request:\t486 bytes

Response time histogram:
  0.002 [1]\t|■■■■
  0.003 [6]\t|■■■■■■■■■■■■■■■■■■■■■■■■
  0.004 [10]\t|■■■■■■■■■■■■■■■■■■■■■■■■■■■■■■■■■■■■■■■■
  0.005 [2]\t|■■■■■■■■
  0.006 [6]\t|■■■■■■■■■■■■■■■■■■■■■■■■
  0.007 [5]\t|■■■■■■■■■■■■■■■■■■■■
  0.007 [2]\t|■■■■■■■■
  0.008 [2]\t|■■■■■■■■
  0.009 [2]\t|■■■■■■■■
  0.010 [1]\t|■■■■
  0.011 [1]\t|■■■■


Latency distribution:
  10% in 0.0023 secs
  25% in 0.0031 secs
  50% in 0.0050 secs
  75% in 0.0065 secs
  90% in 0.0089 secs
  95% in 0.0112 secs
  0% in 0.0000 secs

Details (average, fastest, slowest):
  DNS+dialup:\t0.0006 secs, 0.0019 secs, 0.0112 secs
  DNS-lookup:\t0.0000 secs, 0.0000 secs, 0.0000 secs
  req write:\t0.0001 secs, 0.0000 secs, 0.0002 secs
  resp wait:\t0.0039 secs, 0.0006 secs, 0.0083 secs
  resp read:\t0.0003 secs, 0.0001 secs, 0.0015 secs

Status code distribution:
  [200]\t38 responses

Error distribution:
  [42]\tGet "http://127.0.0.1:18766/": dial tcp 127.0.0.1:18766: connect: connection refused

"""

# A GET to a port nothing listens on, for 1 s (hey exits 0 all the same):
REAL_REFUSED = """
Summary:
  Total:\t1.0133 secs
  Slowest:\t0.0000 secs
  Fastest:\t0.0000 secs
  Average:\t NaN secs
  Requests/sec:\t19.7382
\x20\x20

Response time histogram:


Latency distribution:

Details (average, fastest, slowest):
  DNS+dialup:\t NaN secs, 0.0000 secs, 0.0000 secs
  DNS-lookup:\t NaN secs, 0.0000 secs, 0.0000 secs
  req write:\t NaN secs, 0.0000 secs, 0.0000 secs
  resp wait:\t NaN secs, 0.0000 secs, 0.0000 secs
  resp read:\t NaN secs, 0.0000 secs, 0.0000 secs

Status code distribution:

Error distribution:
  [20]\tGet "http://127.0.0.1:18799/": dial tcp 127.0.0.1:18799: connect: connection refused

"""


def test_a_clean_run_with_non_2xx_answers() -> None:
    report = hey.parse(REAL_501)
    assert report == {
        "requests_per_second": pytest.approx(750.2803),
        "p50_seconds": pytest.approx(0.004),
        "p99_seconds": pytest.approx(0.0301),
        "status_codes": {501: 1507},
        "responses": 1507,
        "non_2xx": 1507,
        "errors": {},
        "error_count": 0,
    }
    assert hey.failed(report) == 1507


def test_errors_are_counted_even_though_hey_exits_zero() -> None:
    report = hey.parse(REAL_MIXED)
    assert report["status_codes"] == {200: 38}
    assert report["non_2xx"] == 0
    assert report["errors"] == {
        'Get "http://127.0.0.1:18766/": dial tcp 127.0.0.1:18766: connect: connection refused': 42
    }
    assert report["error_count"] == 42
    assert hey.failed(report) == 42
    # Too few requests for a 99th percentile: hey prints "0% in 0.0000 secs" instead.
    assert report["p50_seconds"] == pytest.approx(0.005)
    assert report["p99_seconds"] is None


def test_a_run_without_a_single_response() -> None:
    report = hey.parse(REAL_REFUSED)
    assert report["requests_per_second"] == pytest.approx(19.7382)
    assert (report["responses"], report["status_codes"], report["error_count"]) == (0, {}, 20)
    assert report["p50_seconds"] is None


def test_output_without_a_summary_is_an_error() -> None:
    with pytest.raises(hey.HeyError, match="Requests/sec"):
        hey.parse("hey: command not found")


def test_the_command_line_of_load_yml_and_the_e2e() -> None:
    body = json.dumps({"text": "A warm, funny film."})
    assert hey.command(
        "http://127.0.0.1:8080/predict",
        duration=150,
        concurrency=32,
        method="POST",
        content_type="application/json",
        host="sentiment.local",
        body=body,
    ) == [
        "hey",
        "-z",
        "150s",
        "-c",
        "32",
        "-m",
        "POST",
        "-T",
        "application/json",
        "-host",
        "sentiment.local",
        "-d",
        body,
        "http://127.0.0.1:8080/predict",
    ]


def test_rate_headers_body_file_and_executable() -> None:
    argv = hey.command(
        "http://x/",
        duration=2.5,
        concurrency=2,
        rate=5.0,
        headers={"X-Run": "e2e"},
        body_file="/tmp/body.json",
        executable="/usr/bin/hey",
    )
    assert argv[:9] == ["/usr/bin/hey", "-z", "2.5s", "-c", "2", "-q", "5", "-m", "GET"]
    assert argv[9:] == ["-H", "X-Run: e2e", "-D", "/tmp/body.json", "http://x/"]
    assert hey.command("http://x/", duration=1, rate=0.5)[5:7] == ["-q", "0.5"]
    assert "-q" not in hey.command("http://x/", duration=1, rate=0)
    with pytest.raises(hey.HeyError, match="not both"):
        hey.command("http://x/", duration=1, body="{}", body_file="/tmp/body.json")
    with pytest.raises(hey.HeyError, match="positive"):
        hey.command("http://x/", duration=0)


class Recorder(BaseHTTPRequestHandler):
    """Answers every GET and POST with 200 and keeps what came: method, Host, Content-Type, body."""

    seen: ClassVar[list[dict]] = []

    def answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        type(self).seen.append(
            {
                "method": self.command,
                "host": self.headers.get("Host"),
                "content_type": self.headers.get("Content-Type"),
                "body": body,
            }
        )
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    # The names http.server dispatches to.
    do_GET = answer
    do_POST = answer

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    if shutil.which("hey") is None:
        if os.environ.get("CI"):
            pytest.fail("hey is not installed (.ci/run installs it)")
        pytest.skip("hey is not installed (apt install hey)")
    Recorder.seen = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_a_background_run_interrupted_prints_its_summary(server: str, tmp_path: Path) -> None:
    started = time.monotonic()
    run = hey.start(hey.command(f"{server}/", duration=60, concurrency=2, rate=20), tmp_path / "hey.txt")
    time.sleep(1.5)
    assert run.running()
    report = run.finish(interrupt=True, timeout=30)
    assert time.monotonic() - started < 20
    assert not run.running()
    assert report["status_codes"].get(200, 0) > 0
    assert report["responses"] == len(Recorder.seen)
    assert hey.failed(report) == 0


def test_a_background_run_read_back_by_pid_waits_for_its_end(server: str, tmp_path: Path) -> None:
    """What the module's state=stopped does: a pid and a log, no process handle (hey's parent has exited in
    a playbook; here it is this process, so hey lingers as a zombie, which counts as ended)."""
    body = json.dumps({"text": "fine"})
    argv = hey.command(f"{server}/predict", duration=1, concurrency=2, method="POST", host="sentiment.local", body=body)
    first = hey.start(argv, tmp_path / "hey.txt")
    later = hey.Run(first.pid, first.log)
    report = later.finish(interrupt=False, timeout=30)
    assert not later.running()
    assert report["responses"] > 0
    assert {(r["method"], r["host"], r["body"]) for r in Recorder.seen} == {("POST", "sentiment.local", body)}
    first.process.wait(timeout=10)


def test_a_run_that_outlives_its_timeout_is_an_error(server: str, tmp_path: Path) -> None:
    run = hey.start(hey.command(f"{server}/", duration=30, concurrency=1, rate=5), tmp_path / "hey.txt")
    with pytest.raises(hey.HeyError, match="still runs"):
        hey.Run(run.pid, run.log).finish(interrupt=False, timeout=1)
    run.finish(interrupt=True, timeout=30)


PLAYBOOK = """\
- name: Drive hey with the collection's module, as load.yml and rollout.yml do
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Start hey in the background (load.yml)
      sentiment.platform.hey:
        state: started
        url: "{{ url }}/predict"
        host: sentiment.local
        method: POST
        body: {text: "{{ text }}"}
        duration: 2
        concurrency: 2
        rate: 20
        log: "{{ out }}/load-hey.txt"
      register: load_hey

    - name: Wait for hey to finish and read its summary (load.yml)
      sentiment.platform.hey:
        state: stopped
        pid: "{{ load_hey.pid }}"
        log: "{{ load_hey.log }}"
        interrupt: false
        timeout: 30
      register: load_summary

    - name: Send traffic for up to 15 minutes (rollout.yml)
      sentiment.platform.hey:
        state: started
        url: "{{ url }}/predict"
        host: sentiment.local
        method: POST
        content_type: application/json
        body: "{{ {'texts': [text, text]} | to_json }}"
        duration: 900
        concurrency: 2
        rate: 5
      register: rollout_hey

    - name: Stop the traffic and read hey's summary (rollout.yml)
      sentiment.platform.hey:
        state: stopped
        pid: "{{ rollout_hey.pid }}"
        log: "{{ rollout_hey.log }}"
        timeout: 30
      register: rollout_summary

    - name: Run hey to its end in the foreground
      sentiment.platform.hey:
        url: "{{ url }}/health"
        duration: 1
        concurrency: 1
        rate: 10
      register: foreground

    - name: Write what the module returned
      ansible.builtin.copy:
        dest: "{{ out }}/results.json"
        mode: "0644"
        content: "{{ {'load': [load_hey, load_summary], 'rollout': [rollout_hey, rollout_summary],
                      'foreground': foreground} | to_json }}"
"""


@pytest.mark.slow
def test_the_module_in_a_playbook(server: str, tmp_path: Path) -> None:
    (tmp_path / "play.yml").write_text(PLAYBOOK)
    text = "The plot wanders, but the ending is genuinely moving."
    started = time.monotonic()
    result = run_local_playbook(tmp_path / "play.yml", {"url": server, "out": str(tmp_path), "text": text})
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    # The 900 s run was stopped: the playbook took seconds.
    assert time.monotonic() - started < 120
    results = json.loads((tmp_path / "results.json").read_text())

    load_hey, load_summary = results["load"]
    assert load_hey["changed"]
    assert load_hey["log"] == str(tmp_path / "load-hey.txt")
    assert load_hey["cmd"][1:5] == ["-z", "2s", "-c", "2"]
    assert load_summary["interrupted"] is False
    assert not load_summary["changed"]
    assert load_summary["report"]["status_codes"]["200"] > 0  # keys are strings once the report is JSON
    assert load_summary["report"]["error_count"] == 0
    assert "Status code distribution" in (tmp_path / "load-hey.txt").read_text()

    rollout_hey, rollout_summary = results["rollout"]
    assert rollout_hey["log"].endswith(".txt")  # a temporary file: no log was given
    assert rollout_summary["interrupted"] is True
    assert rollout_summary["changed"]
    assert rollout_summary["report"]["responses"] > 0

    assert results["foreground"]["report"]["non_2xx"] == 0
    assert not results["foreground"]["changed"]

    seen = {(r["method"], r["host"], r["content_type"], r["body"]) for r in Recorder.seen}
    assert seen == {
        ("POST", "sentiment.local", "application/json", json.dumps({"text": text})),
        ("POST", "sentiment.local", "application/json", json.dumps({"texts": [text, text]})),
        ("GET", f"{server[len('http://') :]}", "text/html", ""),
    }
    Path(rollout_hey["log"]).unlink()
