"""hey, the load generator, driven one way everywhere: its command line, a run in the background, stopping
it, and the numbers of its summary.

The ``sentiment.platform.hey`` module (load.yml, rollout.yml), the ``hey_report`` filter and the e2e runner
(tests/e2e) all use this file. hey exits 0 even when every request failed: only its summary (the status code
and error distributions) says how the requests went, so every caller reads it through ``parse``.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import time
from pathlib import Path


class HeyError(ValueError):
    """hey did not run, or did not end in time."""


def number(value: float) -> str:
    """A number as hey's flags take it: 5 -> "5", 0.5 -> "0.5"."""
    return f"{float(value):g}"


def command(
    url: str,
    *,
    duration: float,
    concurrency: int = 50,
    rate: float = 0,
    method: str = "GET",
    content_type: str | None = None,
    headers: dict[str, str] | None = None,
    host: str | None = None,
    body: str | None = None,
    body_file: str | None = None,
    executable: str = "hey",
) -> list[str]:
    """hey's argv: ``concurrency`` clients for ``duration`` seconds, each at most ``rate`` requests per second
    (0: as fast as they are answered); ``host`` sets the Host header (a name the ingress routes on);
    ``body`` is sent as is, ``body_file`` is read by hey."""
    if body is not None and body_file is not None:
        raise HeyError("give body or body_file, not both")
    if float(duration) <= 0:
        raise HeyError(f"duration must be positive, got {duration}")
    argv = [executable, "-z", f"{number(duration)}s", "-c", str(int(concurrency))]
    if rate:
        argv += ["-q", number(rate)]
    argv += ["-m", method.upper()]
    if content_type:
        argv += ["-T", content_type]
    for name, value in (headers or {}).items():
        argv += ["-H", f"{name}: {value}"]
    if host:
        argv += ["-host", host]
    if body is not None:
        argv += ["-d", body]
    if body_file is not None:
        argv += ["-D", str(body_file)]
    return [*argv, url]


def parse(output: str) -> dict:
    """The numbers of hey's summary; an output without one (hey did not run) is an error."""
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    if rate is None:
        raise HeyError("no 'Requests/sec' in hey's output: did hey run?")
    percentiles = {m.group(1): float(m.group(2)) for m in re.finditer(r"^\s+(\d+)% in ([\d.]+) secs", output, re.M)}
    statuses = {
        int(m.group(1)): int(m.group(2)) for m in re.finditer(r"^\s+\[(\d{3})\]\s+(\d+) responses", output, re.M)
    }
    errors_section = output.split("Error distribution:", 1)[1] if "Error distribution:" in output else ""
    errors = {m.group(2).strip(): int(m.group(1)) for m in re.finditer(r"^\s+\[(\d+)\]\s+(.+)$", errors_section, re.M)}
    responses = sum(statuses.values())
    return {
        "requests_per_second": float(rate.group(1)),
        "p50_seconds": percentiles.get("50"),
        "p99_seconds": percentiles.get("99"),
        "status_codes": statuses,
        "responses": responses,
        "non_2xx": sum(count for code, count in statuses.items() if not 200 <= code < 300),
        "errors": errors,
        "error_count": sum(errors.values()),
    }


def failed(report: dict) -> int:
    """Requests that did not get a 2xx: non-2xx responses and requests with no response at all."""
    return int(report["non_2xx"]) + int(report["error_count"])


def alive(pid: int, executable: str = "hey") -> bool:
    """Whether ``pid`` is a running hey: neither gone nor a zombie (hey started by a process that has
    exited since, such as an Ansible task, is reaped by whoever adopted it), nor another program that
    got the pid since (where /proc tells)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: not the hey this caller started
        return False
    proc = Path("/proc") / str(pid)
    try:
        state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        program = (proc / "cmdline").read_bytes().split(b"\0", 1)[0].decode(errors="replace")
    except (OSError, IndexError):
        return True  # no /proc (macOS): the pid is all there is to go by
    return state != "Z" and Path(program).name == Path(executable).name


class Run:
    """A hey running in the background, its output going to ``log``."""

    def __init__(
        self, pid: int, log: str | Path, executable: str = "hey", process: subprocess.Popen | None = None
    ) -> None:
        self.pid = pid
        self.log = Path(log)
        self.executable = executable
        # Set when this process started hey (it can wait for its child); None for a pid read back later.
        self.process = process

    def running(self) -> bool:
        if self.process is not None:
            return self.process.poll() is None
        return alive(self.pid, self.executable)

    def finish(self, interrupt: bool = False, timeout: float = 600) -> dict:
        """hey's report once it has ended: at the end of its duration, or now with ``interrupt`` (on SIGINT
        hey stops and prints its summary). HeyError when it runs on past ``timeout`` seconds."""
        if interrupt and self.running():
            with contextlib.suppress(ProcessLookupError):  # it ended just now
                os.kill(self.pid, signal.SIGINT)
        if self.process is not None:
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired as exc:
                raise HeyError(f"hey (pid {self.pid}) still runs after {timeout} s") from exc
        else:
            deadline = time.monotonic() + timeout
            while self.running():
                if time.monotonic() > deadline:
                    raise HeyError(f"hey (pid {self.pid}) still runs after {timeout} s")
                time.sleep(0.2)
        return self.report()

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def report(self) -> dict:
        return parse(self.output())


def start(argv: list[str], log: str | Path, env: dict[str, str] | None = None) -> Run:
    """Start hey in the background, its output (summary and errors) going to ``log``; it runs on after the
    caller exits (an Ansible task), and ``Run.finish`` (or a later ``Run(pid, log).finish``) collects it."""
    path = Path(log)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as out:
        process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env)
    # Until the child has exec'd hey, its pid still shows this program: a caller that reads the pid back at
    # once (Run(pid, log)) would take it for another program's and find hey ended.
    name = Path(argv[0]).name
    deadline = time.monotonic() + 5
    while process.poll() is None and not alive(process.pid, name) and time.monotonic() < deadline:
        time.sleep(0.01)
    return Run(process.pid, path, name, process)


def run(argv: list[str], log: str | Path | None = None, env: dict[str, str] | None = None) -> str:
    """Run hey to the end of its duration; its output (``parse`` reads the summary), also written to ``log``."""
    result = subprocess.run(
        argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, check=False
    )
    output = result.stdout.decode(errors="replace")
    if log is not None:
        Path(log).parent.mkdir(parents=True, exist_ok=True)
        Path(log).write_text(output)
    return output
