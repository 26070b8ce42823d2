"""Filter plugin ``sentiment.platform.hey_report``: the numbers in hey's text summary.

hey exits 0 even when every request failed, so load.yml must read its output: the status code
distribution, the error distribution, requests per second and latency percentiles.
Documentation: hey_report.yml beside this file (filter plugins document themselves in a YAML sidecar).
"""

from __future__ import annotations

import re

from ansible.errors import AnsibleFilterError


def hey_report(output: str) -> dict:
    """Parse hey's summary; an output without one (hey did not run) is an error."""
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    if rate is None:
        raise AnsibleFilterError("no 'Requests/sec' in hey's output: did hey run?")
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


class FilterModule:
    def filters(self) -> dict:
        return {"hey_report": hey_report}
