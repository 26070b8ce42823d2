"""Prometheus metrics of the service.

One process per pod (see docs/architecture.md, "Why one worker per pod"), so plain in-process metrics are
exact; each pod is one scrape target. Names the case study asks for:

* ``inference_latency_seconds`` (histogram): per request, from handing the texts to the
  micro-batcher until their results are back (queue wait + model time).
* ``prediction_count_total`` (counter): one per text scored, by predicted ``label`` and ``model_version``.
* ``model_confidence_score`` (gauge): mean probability of the predicted label over the drift
  window (the last ``SENTIMENT_DRIFT_WINDOW_SIZE`` predictions, none older than
  ``SENTIMENT_DRIFT_WINDOW_SECONDS``); 0.5 means coin tosses, 1.0 certainty. Absent until the
  first prediction.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from .drift import DriftWindow
from .model import Scored

# No `*_created` series: Prometheus does not need them and they double the series count.
disable_created_metrics()

# Inference takes a fraction of a millisecond to tens of milliseconds under load.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
BATCH_SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


class _DriftCollector(Collector):
    """Computes window statistics at scrape time, so the request path only appends to the window."""

    def __init__(self, window: Callable[[], DriftWindow | None], version: Callable[[], str | None]) -> None:
        self._window = window
        self._version = version

    def describe(self) -> list:
        return []

    def collect(self) -> Iterator[GaugeMetricFamily]:
        window, version = self._window(), self._version()
        if window is None or version is None:
            return
        stats = window.stats()
        samples = GaugeMetricFamily(
            "model_drift_window_samples", "Predictions in the drift window.", labels=["model_version"]
        )
        samples.add_metric([version], stats.samples)
        yield samples
        if stats.mean_confidence is not None:
            confidence = GaugeMetricFamily(
                "model_confidence_score",
                "Mean probability of the predicted label over the drift window (0.5 to 1.0).",
                labels=["model_version"],
            )
            confidence.add_metric([version], stats.mean_confidence)
            yield confidence
        drift = GaugeMetricFamily(
            "model_drift_score",
            "Population Stability Index of the drift window against the training reference.",
            labels=["model_version", "target", "method"],
        )
        for target, value in stats.psi.items():
            drift.add_metric([version, target, "psi"], value)
        yield drift


class ServiceMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.inference_latency = Histogram(
            "inference_latency_seconds",
            "Time from submitting a request's texts to the model until their predictions are back.",
            ["model_version"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.predictions = Counter(
            "prediction_count", "Texts scored, by predicted label.", ["label", "model_version"], registry=r
        )
        self.batch_size = Histogram(
            "inference_batch_size", "Texts per model call.", ["model_version"], buckets=BATCH_SIZE_BUCKETS, registry=r
        )
        self.text_length = Histogram(
            "input_text_length_chars",
            "Characters per scored text.",
            ["model_version"],
            buckets=(25, 50, 100, 200, 500, 1000, 2000, 5000),
            registry=r,
        )
        self.model_info = Gauge(
            "model_info",
            "The loaded model (always 1); device: where it is scored (cpu, or cuda when a GPU was found).",
            ["model_version", "model_name", "device"],
            registry=r,
        )
        self.model_ready = Gauge("model_ready", "1 once the model is loaded and warmed up, else 0.", registry=r)
        self.http_requests = Counter(
            "http_requests", "HTTP requests answered.", ["method", "route", "status"], registry=r
        )
        self.http_duration = Histogram(
            "http_request_duration_seconds",
            "Time to answer an HTTP request.",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.http_in_flight = Gauge("http_requests_in_flight", "HTTP requests being answered now.", registry=r)
        self.requests_shed = Counter(
            "inference_requests_shed",
            "Requests to /predict refused at once (503, Retry-After): the model's queue was full, or the "
            "process was answering its most /predict requests at once.",
            registry=r,
        )
        self.loop_lag = Gauge(
            "event_loop_lag_seconds",
            "How late the event loop ran its last timer: how long requests wait for it.",
            registry=r,
        )
        self.predict_in_flight = Gauge(
            "predict_requests_in_flight",
            "/predict requests admitted and not answered yet (shed above a bound).",
            registry=r,
        )
        self.queued_texts = Gauge(
            "inference_queue_texts", "Texts waiting for the model (queued or being scored).", registry=r
        )
        self._window: DriftWindow | None = None
        self._version: str | None = None
        r.register(_DriftCollector(lambda: self._window, lambda: self._version))

    def attach_model(self, version: str, name: str, window: DriftWindow, device: str = "cpu") -> ModelRecorder:
        """Register the loaded model; the returned recorder is the one place its samples are recorded."""
        self._version = version
        self._window = window
        self.model_info.labels(model_version=version, model_name=name, device=device).set(1)
        # The autoscaler's metric (prometheus-adapter) only exists once its series does: a pod that has
        # served no /predict yet must report 0 requests per second, not "unknown".
        self.http_requests.labels(method="POST", route="/predict", status="200")
        return ModelRecorder(self, version, window)


class ModelRecorder:
    """The metric children of one model version, created once (so dashboards and rate() see zeros
    instead of missing series from the start), and the drift window its predictions go to."""

    def __init__(self, metrics: ServiceMetrics, version: str, window: DriftWindow) -> None:
        self._predicted = {
            label: metrics.predictions.labels(label=label, model_version=version) for label in ("negative", "positive")
        }
        self._batch_size = metrics.batch_size.labels(model_version=version)
        self._text_length = metrics.text_length.labels(model_version=version)
        self._latency = metrics.inference_latency.labels(model_version=version)
        self._window = window

    def record_batch(self, texts: Sequence[str], results: Sequence[Scored]) -> None:
        """One model call: its size, each text's label and length, and the drift window."""
        self._batch_size.observe(len(texts))
        for text, result in zip(texts, results, strict=True):
            self._predicted[result.label].inc()
            self._text_length.observe(len(text))
        self._window.add(results, texts)

    def observe_latency(self, seconds: float) -> None:
        """One request: from handing its texts to the batcher until their results came back."""
        self._latency.observe(seconds)
