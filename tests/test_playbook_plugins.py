"""The collection's plugins: the hey_report filter, the HPA and canary timelines, the PNG timeline, the pins lookup.

hey's parser itself (module_utils/hey.py, which the filter wraps) and the hey module: tests/test_hey.py.
"""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.sentiment.platform.plugins.filter.hey_report import hey_report
from ansible_collections.sentiment.platform.plugins.module_utils.hey import parse
from ansible_collections.sentiment.platform.plugins.modules.canary_timeline import proxy_target, track_queries
from ansible_collections.sentiment.platform.plugins.modules.hpa_timeline import summarise
from ansible_collections.sentiment.platform.plugins.modules.timeline_png import draw, gate_panels, value_at

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
    assert report == parse(HEY_OK)  # the filter is the module's parser


def test_failures_are_counted_even_though_hey_exits_zero() -> None:
    report = hey_report(HEY_MIXED)
    assert report["status_codes"] == {200: 1500, 503: 12}
    assert report["non_2xx"] == 12
    assert report["error_count"] == 4
    assert len(report["errors"]) == 2


def test_output_without_a_summary_is_a_filter_error() -> None:
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


def test_canary_timeline_reaches_prometheus_through_the_service_proxy() -> None:
    assert proxy_target("http://prometheus.monitoring.svc:9090") == ("monitoring", "prometheus:9090")
    assert proxy_target("http://prom.observability:80/") == ("observability", "prom:80")
    with pytest.raises(ValueError, match="cannot tell"):
        proxy_target("http://localhost:9090")


def test_canary_timeline_tells_the_tracks_apart_by_pod_name() -> None:
    queries = track_queries("sentiment", "sentiment-service", "1m")
    assert 'pod=~"sentiment-service-primary-[0-9a-zA-Z]+-[0-9a-zA-Z]+"' in queries["primary"]["rps"]
    # <name>-<hash>-<id> only: the primary's pods (<name>-primary-<hash>-<id>) have one part too many.
    assert 'pod=~"sentiment-service-[0-9a-zA-Z]+-[0-9a-zA-Z]+"' in queries["canary"]["p95_seconds"]
    assert "[1m]" in queries["canary"]["rps"]


def test_timeline_png_reads_dotted_paths_and_skips_missing_values() -> None:
    sample = {"t": 5, "ready": {"primary": 2}, "gates": {"latency-p95": None}}
    assert value_at(sample, "ready.primary") == 2.0
    assert value_at(sample, "ready.canary") is None
    assert value_at(sample, "gates.latency-p95") is None
    panels = gate_panels([{"name": "latency-p95", "max": 0.08}, {"name": "confidence-vs-primary", "min": -0.05}])
    assert panels[0]["limits"] == {"max": 0.08}
    assert panels[1]["series"] == {"confidence-vs-primary": "gates.confidence-vs-primary"}


def test_timeline_png_is_a_png_and_the_same_samples_give_the_same_bytes() -> None:
    samples = [{"t": t, "weight": min(60, t), "ready": {"primary": 2, "canary": 1}} for t in range(0, 100, 5)]
    panels = [{"title": "weight", "series": {"canary": "weight"}}, {"title": "ready", "series": {"p": "ready.primary"}}]
    image, points = draw("rollout", samples, panels, [{"t": 30, "label": "halt"}])
    assert image.startswith(b"\x89PNG\r\n\x1a\n")
    assert points == 40
    assert draw("rollout", samples, panels, [{"t": 30, "label": "halt"}])[0] == image
