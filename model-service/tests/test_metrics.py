"""/metrics: the names, types and labels the platform relies on, and that the numbers move."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families
from svc import start_server


def scrape(client) -> dict:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {family.name: family for family in text_string_to_metric_families(response.text)}


def value(families: dict, family: str, sample: str, **labels: str) -> float:
    for s in families[family].samples:
        if s.name == sample and all(s.labels.get(k) == v for k, v in labels.items()):
            return s.value
    return 0.0


@pytest.mark.parametrize(
    ("family", "kind", "labels"),
    [
        ("inference_latency_seconds", "histogram", {"model_version"}),
        ("prediction_count", "counter", {"label", "model_version"}),
        ("model_confidence_score", "gauge", {"model_version"}),
        ("model_drift_score", "gauge", {"model_version", "target", "method"}),
        ("model_drift_window_samples", "gauge", {"model_version"}),
        ("http_requests", "counter", {"method", "route", "status"}),
        ("http_request_duration_seconds", "histogram", {"method", "route"}),
        ("http_requests_in_flight", "gauge", set()),
        ("inference_batch_size", "histogram", {"model_version"}),
        ("model_info", "gauge", {"model_version", "model_name", "device"}),
        ("model_ready", "gauge", set()),
    ],
)
def test_metric_families_have_the_documented_type_and_labels(client, family, kind, labels) -> None:
    client.post("/predict", json={"text": "ensure every family has samples"})
    families = scrape(client)
    assert family in families, sorted(families)
    assert families[family].type == kind
    sample_labels = {k for s in families[family].samples for k in s.labels if k != "le"}
    assert sample_labels == labels


def test_latency_buckets_resolve_milliseconds(client) -> None:
    bounds = {s.labels["le"] for s in scrape(client)["inference_latency_seconds"].samples if s.name.endswith("_bucket")}
    assert {"0.0005", "0.001", "0.005", "0.01", "0.025"} <= bounds


def test_counts_move_with_predictions(client, card) -> None:
    version = card["model_version"]
    before = scrape(client)
    texts = ["Brilliant, moving and funny.", "Terrible, boring, a waste of time.", "A masterpiece."]
    predictions = client.post("/predict", json={"texts": texts}).json()["predictions"]
    client.post("/predict", json={"text": ""})  # a 422
    after = scrape(client)

    for label in ("positive", "negative"):
        expected = sum(p["label"] == label for p in predictions)
        delta = value(after, "prediction_count", "prediction_count_total", label=label, model_version=version) - value(
            before, "prediction_count", "prediction_count_total", label=label, model_version=version
        )
        assert delta == expected
    latency_delta = value(after, "inference_latency_seconds", "inference_latency_seconds_count") - value(
        before, "inference_latency_seconds", "inference_latency_seconds_count"
    )
    assert latency_delta == 1  # one request, however many texts
    ok = {"route": "/predict", "status": "200", "method": "POST"}
    bad = {"route": "/predict", "status": "422", "method": "POST"}
    assert (
        value(after, "http_requests", "http_requests_total", **ok)
        - value(before, "http_requests", "http_requests_total", **ok)
        == 1
    )
    assert (
        value(after, "http_requests", "http_requests_total", **bad)
        - value(before, "http_requests", "http_requests_total", **bad)
        == 1
    )
    assert value(after, "model_drift_window_samples", "model_drift_window_samples") >= 3


def test_confidence_gauge_is_the_mean_confidence_of_recent_predictions(model_dir, tmp_path) -> None:
    server = start_server(model_dir, tmp_path / "log", SENTIMENT_DRIFT_WINDOW_SIZE="10")
    try:
        with server.client() as client:
            fresh = scrape(client)
            assert "model_confidence_score" not in fresh  # no predictions yet: no value
            # ...but the autoscaler's series exists from the start, at zero.
            ok = {"method": "POST", "route": "/predict", "status": "200"}
            assert any(s.labels == ok and s.value == 0 for s in fresh["http_requests"].samples)
            texts = [f"review number {i}, quite {w}" for i, w in enumerate(["good", "bad", "fine", "dull"] * 5)]
            predictions = client.post("/predict", json={"texts": texts}).json()["predictions"]
            confidences = [p["confidence"] for p in predictions]
            gauge = value(scrape(client), "model_confidence_score", "model_confidence_score")
            assert gauge == pytest.approx(sum(confidences[-10:]) / 10)  # the window holds the last 10
            assert value(scrape(client), "model_drift_window_samples", "model_drift_window_samples") == 10
    finally:
        server.stop()


def test_unknown_paths_share_one_route_label(client) -> None:
    for path in ("/a", "/b", "/c/d"):
        client.get(path)
    routes = {s.labels["route"] for s in scrape(client)["http_requests"].samples}
    assert "unmatched" in routes
    assert not {"/a", "/b", "/c/d"} & routes


def test_in_flight_gauge_returns_to_zero(client) -> None:
    client.post("/predict", json={"text": "fine"})
    # The scrape itself is the one request in flight.
    assert value(scrape(client), "http_requests_in_flight", "http_requests_in_flight") == 1
