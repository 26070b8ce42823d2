"""The HTTP API: ``POST /predict``, ``GET /health``, ``GET /ready``, ``GET /model``, ``GET /metrics``.

Routes take what they need through dependencies (the runtime and metrics live on ``app.state``);
``create_app`` assembles the app from the router, the error handlers and the middleware.
"""

import importlib.resources
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from fastapi.routing import APIRoute
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect
from starlette.responses import Response
from starlette.routing import Route

from .admission import Admission
from .errors import error_response
from .metrics import ServiceMetrics
from .middleware import HttpMetricsMiddleware, RequestGuardMiddleware
from .probes import ProbeServer, ProbeState
from .runtime import ModelNotReady, ModelOverloaded, Runtime
from .schemas import (
    BatchPrediction,
    ErrorResponse,
    Health,
    ModelInfo,
    Prediction,
    PredictRequestBase,
    Readiness,
    predict_request_model,
)
from .settings import Settings

log = logging.getLogger("sentiment_service")

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse, "description": text}
    for code, text in {
        400: "Body is not valid JSON.",
        413: "Body larger than SENTIMENT_MAX_BODY_BYTES.",
        415: "Body is not application/json.",
        422: "Body is JSON but not a valid request (see error.details).",
        503: "Model not loaded (yet, or it failed its integrity check), or busy (Retry-After says when to retry).",
    }.items()
}
# FastAPI raises a plain 400 for bodies it cannot even decode (not UTF-8, for one): invalid JSON too.
HTTP_ERROR_TYPES = {400: "invalid_json", 404: "not_found", 405: "method_not_allowed", 413: "body_too_large"}


def get_runtime(request: Request) -> Runtime:
    return request.app.state.runtime


def get_metrics(request: Request) -> ServiceMetrics:
    return request.app.state.metrics


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
MetricsDep = Annotated[ServiceMetrics, Depends(get_metrics)]

router = APIRouter()
# Swagger UI's assets ship in the image (the fastapi-offline wheel): /docs needs no CDN, works offline.
SWAGGER_ASSETS = importlib.resources.files("fastapi_offline") / "static"
SWAGGER_JS, SWAGGER_CSS = "/docs/swagger-ui-bundle.js", "/docs/swagger-ui.css"


@router.get("/health", response_model=Health, summary="Liveness: the process answers.")
async def health() -> Health:
    return Health(status="ok")


@router.get(
    "/ready",
    response_model=Readiness,
    responses={503: {"model": Readiness}},
    summary="Readiness: model loaded, verified and warmed up.",
)
async def ready(runtime: RuntimeDep) -> Readiness | JSONResponse:
    if runtime.ready and runtime.model is not None:
        return Readiness(status="ready", model_version=runtime.model.version)
    body = Readiness(status="not_ready", reason=runtime.not_ready_reason)
    return JSONResponse(body.model_dump(), status_code=503)


@router.get("/model", response_model=ModelInfo, summary="The loaded model's card: version, data, quality.")
async def model_info(runtime: RuntimeDep) -> ModelInfo:
    if not runtime.ready:
        raise ModelNotReady(runtime.not_ready_reason)
    return ModelInfo.model_validate(runtime.card)


@router.get("/docs", include_in_schema=False)
async def docs() -> HTMLResponse:
    return get_swagger_ui_html(
        openapi_url="/openapi.json",
        title="Sentiment service",
        swagger_js_url=SWAGGER_JS,
        swagger_css_url=SWAGGER_CSS,
        swagger_favicon_url="data:,",
    )


@router.get(SWAGGER_JS, include_in_schema=False)
async def docs_script() -> FileResponse:
    return FileResponse(str(SWAGGER_ASSETS / "swagger-ui-bundle.js"), media_type="text/javascript")


@router.get(SWAGGER_CSS, include_in_schema=False)
async def docs_style() -> FileResponse:
    return FileResponse(str(SWAGGER_ASSETS / "swagger-ui.css"), media_type="text/css")


@router.get("/metrics", include_in_schema=False)
async def prometheus_metrics(metrics: MetricsDep) -> Response:
    return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)


def predict_router(request_model: type[PredictRequestBase]) -> APIRouter:
    """``POST /predict``, whose body schema carries this deployment's limits (validation and OpenAPI)."""
    predict_routes = APIRouter()

    @predict_routes.post(
        "/predict",
        response_model=Prediction | BatchPrediction,
        responses=ERROR_RESPONSES,
        summary="Classify one text or a batch of texts.",
    )
    async def predict(payload: request_model, runtime: RuntimeDep) -> Prediction | BatchPrediction:  # type: ignore[valid-type]
        predictions = await runtime.predict(payload.items)
        if payload.texts is None:
            return predictions[0]
        return BatchPrediction(predictions=predictions, model_version=predictions[0].model_version)

    return predict_routes


def _location(loc: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in loc if part != "body") or "body"


async def invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
    errors = exc.errors()
    if any(e.get("type") == "json_invalid" for e in errors):
        return error_response(400, "invalid_json", "the body is not valid JSON")
    details = [{"location": _location(e.get("loc", ())), "message": e.get("msg", "")} for e in errors]
    return error_response(422, "validation_error", "the request body does not match the schema", details)


async def http_error(_: Request, exc: HTTPException) -> JSONResponse:
    response = error_response(exc.status_code, HTTP_ERROR_TYPES.get(exc.status_code, "http_error"), str(exc.detail))
    response.headers.update(exc.headers or {})  # Allow on a 405
    return response


async def model_not_ready(_: Request, exc: ModelNotReady) -> JSONResponse:
    return error_response(503, "not_ready", str(exc))


async def model_overloaded(request: Request, exc: ModelOverloaded) -> JSONResponse:
    response = error_response(503, "overloaded", f"the model is busy, retry shortly: {exc}")
    response.headers["Retry-After"] = str(request.app.state.runtime.settings.retry_after_s)
    return response


async def client_gone(_: Request, __: ClientDisconnect) -> JSONResponse:
    # The client went away (or was cut off by a read timeout) mid-body: nobody will read an answer.
    return error_response(400, "client_disconnected", "the client disconnected before sending the whole body")


async def unexpected(_: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error", exc_info=exc)
    return error_response(500, "internal_error", "unexpected server error; see the service log")


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    metrics = ServiceMetrics()
    runtime = Runtime(settings, metrics)
    admission = Admission(metrics, settings.max_in_flight, settings.retry_after_s)

    def model_ready() -> tuple[bool, str | None, str]:
        version = runtime.model.version if runtime.model is not None else None
        return runtime.ready, version, runtime.not_ready_reason

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        admission.start()
        probes = None
        if settings.probe_port:
            state = ProbeState(admission.seconds_since_tick, model_ready, settings.loop_stall_s)
            probes = ProbeServer(settings.host, settings.probe_port, state)
            probes.start()
        runtime.load()
        yield
        # Runs after uvicorn stopped accepting and in-flight requests finished (graceful shutdown).
        await runtime.stop()
        await admission.stop()
        if probes is not None:
            probes.stop()
        log.info("stopped")

    app = FastAPI(
        title="Sentiment service",
        version="1",
        summary="TF-IDF + logistic regression sentiment classifier with ML metrics.",
        lifespan=lifespan,
        docs_url=None,  # served by the router, from local assets
        redoc_url=None,
    )
    app.state.runtime = runtime
    app.state.metrics = metrics
    app.state.admission = admission  # the HTTP protocol sheds with it (server.py)
    routers = [predict_router(predict_request_model(settings.max_text_chars, settings.max_batch_items)), router]
    for included in routers:
        app.include_router(included)
    app.add_exception_handler(RequestValidationError, invalid_request)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(ModelNotReady, model_not_ready)
    app.add_exception_handler(ModelOverloaded, model_overloaded)
    app.add_exception_handler(ClientDisconnect, client_gone)
    app.add_exception_handler(Exception, unexpected)
    app.add_middleware(RequestGuardMiddleware, max_body_bytes=settings.max_body_bytes)
    # The app's own paths (its routers' and FastAPI's docs) are the route labels; any other is "unmatched".
    paths = {route.path for included in routers for route in included.routes if isinstance(route, APIRoute)}
    paths |= {route.path for route in app.routes if isinstance(route, Route)}
    app.state.route_paths = frozenset(paths)
    app.add_middleware(HttpMetricsMiddleware, metrics=metrics, routes=paths)
    return app
