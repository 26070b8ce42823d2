"""The collection's plugins: the hey_report filter, the HPA and canary timelines, the PNG timeline, the pins lookup,
the ownership check and its report line.

hey's parser itself (module_utils/hey.py, which the filter wraps) and the hey module: tests/test_hey.py.
"""

from __future__ import annotations

import pytest
import yaml
from ansible.errors import AnsibleFilterError
from ansible_collections.sentiment.platform.plugins.filter.hey_report import hey_report
from ansible_collections.sentiment.platform.plugins.filter.ownership_conflict import ownership_conflict, ownership_of
from ansible_collections.sentiment.platform.plugins.filter.uninstall_order import uninstall_order
from ansible_collections.sentiment.platform.plugins.module_utils.hey import parse
from ansible_collections.sentiment.platform.plugins.module_utils.ownership import owner
from ansible_collections.sentiment.platform.plugins.modules.canary_timeline import proxy_target, track_queries
from ansible_collections.sentiment.platform.plugins.modules.hpa_timeline import summarise
from ansible_collections.sentiment.platform.plugins.modules.owned_objects import label_selector, with_type
from ansible_collections.sentiment.platform.plugins.modules.ownership import classify, object_ref
from ansible_collections.sentiment.platform.plugins.modules.timeline_png import draw, gate_panels, value_at
from infra import REPO

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


# --- ownership: what a run may change -------------------------------------------------------------------
OURS = {"app.kubernetes.io/managed-by": "sentiment-platform", "app.kubernetes.io/instance": "sentiment"}


def doc(kind: str, name: str, namespace: str | None = None) -> dict:
    meta = {"name": name, **({"namespace": namespace} if namespace else {})}
    return {"apiVersion": "v1", "kind": kind, "metadata": meta}


def test_ownership_sorts_objects_by_their_labels() -> None:
    documents = [
        doc("Namespace", "sentiment"),
        doc("Deployment", "sentiment-service", "sentiment"),
        doc("IngressClass", "traefik"),
        doc("Namespace", "monitoring"),
        doc("ClusterRole", "sentiment-platform-prometheus"),
        doc("APIService", "v1beta1.metrics.k8s.io"),
        doc("Namespace", "sentiment"),  # twice in the documents, once in the result
    ]
    found = {
        "Namespace/sentiment": OURS,
        "Deployment/sentiment/sentiment-service": {"app.kubernetes.io/part-of": "sentiment-platform"},  # 1.x
        "IngressClass/traefik": {"app.kubernetes.io/managed-by": "Helm", "app.kubernetes.io/instance": "traefik"},
        "Namespace/monitoring": {},
        "ClusterRole/sentiment-platform-prometheus": {**OURS, "app.kubernetes.io/instance": "staging"},
        "APIService/v1beta1.metrics.k8s.io": None,
    }
    result = classify(documents, found, "sentiment")
    assert result["ours"] == ["Namespace/sentiment", "Deployment/sentiment/sentiment-service"]
    assert result["absent"] == ["APIService/v1beta1.metrics.k8s.io"]
    assert [c["object"] for c in result["conflicts"]] == [
        "IngressClass/traefik",
        "Namespace/monitoring",
        "ClusterRole/sentiment-platform-prometheus",
    ]
    assert result["conflicts"][0] == {
        "object": "IngressClass/traefik",
        "kind": "IngressClass",
        "name": "traefik",
        "namespace": None,
        "managed_by": "Helm",
        "instance": "traefik",
    }


def test_owned_objects_selects_by_the_labels_the_roles_write() -> None:
    # The selector teardown.yml lists by is the role's platform_ownership_labels, for this instance.
    role_vars = yaml.safe_load((REPO / "infrastructure/roles/platform/vars/main.yml").read_text())
    labels = role_vars["platform_ownership_labels"]
    expected = {k: v.replace("{{ platform_instance }}", "staging") for k, v in labels.items()}
    assert dict(pair.split("=") for pair in label_selector("staging").split(",")) == expected
    assert owner(expected, "staging") == "ours"
    # List items come without apiVersion and kind; the module puts them back (the deletion needs them).
    assert with_type([{"metadata": {"name": "a"}}], "flagger.app/v1beta1", "Canary") == [
        {"apiVersion": "flagger.app/v1beta1", "kind": "Canary", "metadata": {"name": "a"}}
    ]


def test_another_tool_claiming_part_of_is_not_ours() -> None:
    # part-of alone counts as a 1.x object only while no managed-by label says someone else manages it.
    labels = {"app.kubernetes.io/part-of": "sentiment-platform", "app.kubernetes.io/managed-by": "Helm"}
    assert owner(labels, "sentiment") == "theirs"
    assert owner(None, "sentiment") == "theirs"
    assert object_ref(doc("Service", "web", "shop")) == "Service/shop/web"
    assert ownership_of(OURS, "sentiment") == "ours"
    assert ownership_of(OURS, "staging") == "theirs"
    assert ownership_of(None, "sentiment") == "theirs"
    with pytest.raises(AnsibleFilterError):
        ownership_of(["not", "labels"], "sentiment")


SWITCHES = [
    {"match": r"^IngressClass/", "switch": "ingress_class_name: a free name\n"},
    {"match": r"^Namespace/monitoring$", "switch": "monitoring_namespace: a namespace that does not exist"},
]


def test_ownership_conflict_names_the_owner_and_the_first_matching_switch() -> None:
    conflict = {"object": "IngressClass/traefik", "managed_by": "Helm", "instance": None}
    assert (
        ownership_conflict(conflict, SWITCHES)
        == "- IngressClass/traefik (managed by Helm, instance (none)): ingress_class_name: a free name"
    )
    assert ownership_conflict({"object": "Namespace/monitoring"}, SWITCHES) == (
        "- Namespace/monitoring (no app.kubernetes.io/managed-by label): "
        "monitoring_namespace: a namespace that does not exist"
    )
    assert ownership_conflict({"object": "ClusterRole/x"}, SWITCHES) == (
        "- ClusterRole/x (no app.kubernetes.io/managed-by label)"
    )
    with pytest.raises(AnsibleFilterError):
        ownership_conflict({"kind": "Namespace"}, SWITCHES)


def found(kind: str, name: str, namespace: str | None = None, api_version: str = "v1") -> dict:
    meta = {"name": name, "uid": "x", "labels": OURS, **({"namespace": namespace} if namespace else {})}
    return {"apiVersion": api_version, "kind": kind, "metadata": meta, "spec": {}}


def test_uninstall_order_deletes_children_first_and_lets_namespaces_take_their_contents() -> None:
    objects = [
        found("ClusterRole", "sentiment-platform-prometheus"),
        found("Namespace", "sentiment"),
        found("ConfigMap", "prometheus-config", "monitoring"),  # in a namespace of ours: goes with it
        found("Namespace", "monitoring"),
        found("ClusterRoleBinding", "sentiment-platform-prometheus"),
        found("RoleBinding", "adapter-auth-reader", "kube-system"),  # someone else's namespace
        found("APIService", "v1beta1.custom.metrics.k8s.io", api_version="apiregistration.k8s.io/v1"),
        found("Canary", "sentiment-service", "sentiment", api_version="flagger.app/v1beta1"),
        found("IngressClass", "traefik"),
    ]
    order = uninstall_order(objects)
    assert [(o["kind"], o["metadata"]["name"]) for o in order] == [
        ("Canary", "sentiment-service"),
        ("APIService", "v1beta1.custom.metrics.k8s.io"),
        ("RoleBinding", "adapter-auth-reader"),
        ("Namespace", "monitoring"),
        ("Namespace", "sentiment"),
        ("ClusterRoleBinding", "sentiment-platform-prometheus"),
        ("ClusterRole", "sentiment-platform-prometheus"),
        ("IngressClass", "traefik"),
    ]
    # References only: nothing of the live object (uid, spec) goes into the delete call.
    assert order[2] == {
        "apiVersion": "v1",
        "kind": "RoleBinding",
        "metadata": {"name": "adapter-auth-reader", "namespace": "kube-system"},
    }
    with pytest.raises(AnsibleFilterError):
        uninstall_order([{"kind": "Namespace"}])
