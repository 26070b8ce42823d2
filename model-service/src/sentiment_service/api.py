"""The HTTP API: ``POST /predict``, ``GET /health``, ``GET /ready``, ``GET /model``, ``GET /metrics``."""

import gc
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.exceptions import HTTPException
from starlette.responses import Response

from .batching import BatcherClosed, MicroBatcher
from .drift import DriftWindow, reference_shares
from .metrics import ServiceMetrics
from .middleware import HttpMetricsMiddleware, RequestGuardMiddleware
from .model import ModelLoadError, Scored, SentimentModel, load_card
from .schemas import (
    BatchPrediction,
    ErrorResponse,
    Health,
    ModelInfo,
    Prediction,
    Readiness,
    predict_request_model,
)
from .settings import Settings

log = logging.getLogger("sentiment_service")

WARMUP_TEXTS = ["A warm, funny and beautifully acted film.", "Dull, predictable and far too long."]
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse, "description": text}
    for code, text in {
        400: "Body is not valid JSON.",
        413: "Body larger than SENTIMENT_MAX_BODY_BYTES.",
        415: "Body is not application/json.",
        422: "Body is JSON but not a valid request (see error.details).",
        503: "Model not loaded (yet, or it failed its integrity check).",
    }.items()
}


class ModelNotReady(HTTPException):
    def __init__(self, reason: str) -> None:
        super().__init__(503, reason)


class Runtime:
    """The loaded model and what serves it; ``ready`` only after a warm-up prediction ran."""

    def __init__(self, settings: Settings, metrics: ServiceMetrics) -> None:
        self.settings = settings
        self.metrics = metrics
        self.model: SentimentModel | None = None
        self.card: dict[str, Any] = {}
        self.batcher: MicroBatcher[Scored] | None = None
        self.window: DriftWindow | None = None
        self.ready = False
        self.not_ready_reason = "starting"

    def load(self) -> None:
        started = time.perf_counter()
        model_dir = self.settings.model_dir
        try:
            self.card = load_card(model_dir)
            self.model = SentimentModel.load(model_dir, word_cache_size=self.settings.word_cache_size)
            self.window = DriftWindow(
                reference_shares(self.card["reference"]),
                max_samples=self.settings.drift_window_size,
                max_age_s=self.settings.drift_window_seconds,
            )
        except (ModelLoadError, KeyError, ValueError) as exc:
            self.not_ready_reason = f"model not loaded: {exc}"
            log.error("refusing to become ready: %s", self.not_ready_reason)
            return
        self.model.score_batch(WARMUP_TEXTS)  # warm-up: first-call costs are paid before traffic
        # The model is ~100k long-lived objects: move them out of the cyclic GC's reach, or every
        # full collection walks them all and stalls requests for tens of milliseconds.
        gc.collect()
        gc.freeze()
        version = self.model.version
        self.metrics.attach_model(version, self.card.get("model_name", "unknown"), self.window)
        self._predicted = {
            label: self.metrics.predictions.labels(label=label, model_version=version)
            for label in ("negative", "positive")
        }
        self._batch_size = self.metrics.batch_size.labels(model_version=version)
        self._text_length = self.metrics.text_length.labels(model_version=version)
        self.latency = self.metrics.inference_latency.labels(model_version=version)
        self.batcher = MicroBatcher(
            self.model.score_batch,
            max_size=self.settings.batch_max_size,
            max_wait_s=self.settings.batch_max_wait_ms / 1000.0,
            on_batch=self._record_batch,
        )
        self.batcher.start()
        self.ready = True
        self.not_ready_reason = ""
        self.metrics.model_ready.set(1)
        log.info(
            "model %s ready: %d features, loaded and warmed up in %.0f ms",
            version,
            self.model.n_features,
            (time.perf_counter() - started) * 1000,
        )

    def _record_batch(self, texts: list[str], results: list[Scored]) -> None:
        self._batch_size.observe(len(texts))
        for text, result in zip(texts, results, strict=True):
            self._predicted[result.label].inc()
            self._text_length.observe(len(text))
        assert self.window is not None
        self.window.add(results, texts)

    async def stop(self) -> None:
        self.ready = False
        self.metrics.model_ready.set(0)
        if self.batcher is not None:
            await self.batcher.stop()

    async def predict(self, texts: list[str]) -> list[Prediction]:
        if not self.ready or self.batcher is None or self.model is None:
            raise ModelNotReady(self.not_ready_reason or "model not ready")
        started = time.perf_counter()
        try:
            results = await self.batcher.submit(texts)
        except BatcherClosed as exc:
            raise ModelNotReady(str(exc)) from exc
        self.latency.observe(time.perf_counter() - started)
        version = self.model.version
        return [
            Prediction(label=r.label, score=r.p_positive, confidence=r.confidence, model_version=version)
            for r in results
        ]


def _error(status: int, kind: str, message: str, details: list[dict[str, str]] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"type": kind, "message": message, "details": details or []}}, status)


def _location(loc: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in loc if part != "body") or "body"


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    metrics = ServiceMetrics()
    runtime = Runtime(settings, metrics)
    request_model = predict_request_model(settings.max_text_chars, settings.max_batch_items)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        runtime.load()
        yield
        # Runs after uvicorn stopped accepting and in-flight requests finished (graceful shutdown).
        await runtime.stop()
        log.info("stopped")

    app = FastAPI(
        title="Sentiment service",
        version="1",
        summary="TF-IDF + logistic regression sentiment classifier with ML metrics.",
        lifespan=lifespan,
    )
    app.state.runtime = runtime
    app.state.metrics = metrics

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        if any(e.get("type") == "json_invalid" for e in errors):
            return _error(400, "invalid_json", "the body is not valid JSON")
        details = [{"location": _location(e.get("loc", ())), "message": e.get("msg", "")} for e in errors]
        return _error(422, "validation_error", "the request body does not match the schema", details)

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, exc: HTTPException) -> JSONResponse:
        kinds = {404: "not_found", 405: "method_not_allowed", 413: "body_too_large", 503: "not_ready"}
        return _error(exc.status_code, kinds.get(exc.status_code, "http_error"), str(exc.detail))

    @app.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", exc_info=exc)
        return _error(500, "internal_error", "unexpected server error; see the service log")

    @app.post(
        "/predict",
        response_model=Prediction | BatchPrediction,
        responses=ERROR_RESPONSES,
        summary="Classify one text or a batch of texts.",
    )
    async def predict(payload: request_model) -> Prediction | BatchPrediction:  # type: ignore[valid-type]
        predictions = await runtime.predict(payload.items)
        if payload.texts is None:
            return predictions[0]
        return BatchPrediction(predictions=predictions, model_version=predictions[0].model_version)

    @app.get("/health", response_model=Health, summary="Liveness: the process answers.")
    async def health() -> Health:
        return Health(status="ok")

    @app.get(
        "/ready",
        response_model=Readiness,
        responses={503: {"model": Readiness}},
        summary="Readiness: model loaded, verified and warmed up.",
    )
    async def ready() -> Readiness | JSONResponse:
        if runtime.ready and runtime.model is not None:
            return Readiness(status="ready", model_version=runtime.model.version)
        body = Readiness(status="not_ready", reason=runtime.not_ready_reason)
        return JSONResponse(body.model_dump(), status_code=503)

    @app.get("/model", response_model=ModelInfo, summary="The loaded model's card: version, data, quality.")
    async def model_info() -> ModelInfo:
        if not runtime.ready:
            raise ModelNotReady(runtime.not_ready_reason)
        return ModelInfo.model_validate(runtime.card)

    @app.get("/metrics", include_in_schema=False)
    async def prometheus_metrics() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    app.add_middleware(RequestGuardMiddleware, max_body_bytes=settings.max_body_bytes)
    app.add_middleware(HttpMetricsMiddleware, metrics=metrics)
    return app
