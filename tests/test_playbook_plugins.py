"""The collection's plugins: hey's output parser, the HPA timeline summary, the pins lookup."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.sentiment.platform.plugins.filter.hey_report import hey_report
from ansible_collections.sentiment.platform.plugins.modules.hpa_timeline import summarise

HEY_OK = """
Summary:
  Total:\t30.0021 secs
  Slowest:\t0.2010 secs
  Fastest:\t0.0011 secs
  Average:\t0.0175 secs
  Requests/sec:\t912.3360

Response time histogram:
  0.001 [1]\t|

Latency distribution:
  10% in 0.0051 secs
  50% in 0.0128 secs
  99% in 0.0911 secs

Status code distribution:
  [200]\t27371 responses
"""

HEY_MIXED = """
Summary:
  Requests/sec:\t55.1000

Latency distribution:
  50% in 0.1000 secs
  99% in 0.9000 secs

Status code distribution:
  [200]\t1500 responses
  [503]\t12 responses

Error distribution:
  [3]\tPost "http://127.0.0.1:8080/predict": dial tcp 127.0.0.1:8080: connect: connection refused
  [1]\tPost "http://127.0.0.1:8080/predict": context deadline exceeded (Client.Timeout exceeded)
"""


def test_clean_run() -> None:
    report = hey_report(HEY_OK)
    assert report["requests_per_second"] == pytest.approx(912.336)
    assert report["p50_seconds"] == pytest.approx(0.0128)
    assert report["p99_seconds"] == pytest.approx(0.0911)
    assert report["status_codes"] == {200: 27371}
    assert report["responses"] == 27371
    assert report["non_2xx"] == 0
    assert report["error_count"] == 0


def test_failures_are_counted_even_though_hey_exits_zero() -> None:
    report = hey_report(HEY_MIXED)
    assert report["status_codes"] == {200: 1500, 503: 12}
    assert report["non_2xx"] == 12
    assert report["error_count"] == 4
    assert len(report["errors"]) == 2


def test_output_without_a_summary_is_an_error() -> None:
    with pytest.raises(AnsibleFilterError, match="Requests/sec"):
        hey_report("hey: command not found")


def test_timeline_summary() -> None:
    samples = [
        {"t": 0.0, "current": 2, "desired": 2, "ready": 2},
        {"t": 5.0, "current": 2, "desired": 4, "ready": 2},
        {"t": 10.0, "current": 4, "desired": 6, "ready": 2},
        {"t": 15.0, "current": 6, "desired": 6, "ready": 6},
    ]
    assert summarise(samples, min_replicas=2) == (6, 10.0)
    assert summarise(samples[:2], min_replicas=2) == (2, None)
