"""The golden-set acceptance gate of a canary rollout: a Flagger pre-rollout webhook.

    python -m sentiment_service.acceptance        (SENTIMENT_GATE_* settings; port 8080)

Before a candidate model takes any traffic, Flagger POSTs ``{name, namespace, phase, metadata}`` to
``/gate``. The gate scores a labelled golden set through the candidate's own endpoint
(``metadata.candidate``: its ``/predict``) and answers 200 when the candidate's accuracy is at least the
bar, 412 when it is below (Flagger counts any answer above 202 as a failed check and rolls back at its
threshold). The bar is the held-out accuracy of the model cards, the candidate's own and, when
``metadata.reference`` names the serving (primary) model, that one's, whichever is higher, minus
``metadata.tolerance``: a candidate must be as good as its card says, and no worse than the model it
replaces. A model whose confidence and latency look fine but whose answers are wrong (labels inverted
in training: its own card, computed on the same inverted labels, looks healthy) fails here and only here.

The golden set is the held-out split of the pinned corpus, written by training into the image this
gate runs from (``/opt/golden/heldout.jsonl``): the platform's image, never the candidate's.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import uvicorn
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from .errors import error_body, error_response

log = logging.getLogger("sentiment_service.acceptance")


class GateSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SENTIMENT_GATE_")

    host: str = "0.0.0.0"
    port: int = Field(8080, ge=1, le=65535)
    golden_set: Path = Field(Path("/opt/golden/heldout.jsonl"), description="JSON lines of {text, label}.")
    batch_size: int = Field(64, ge=1, le=1024, description="Texts per /predict call (the service's max_batch_items).")
    request_timeout_s: float = Field(10.0, gt=0, description="Timeout of each call to the candidate.")
    default_tolerance: float = Field(0.02, ge=0, le=1, description="When the webhook's metadata names none.")
    log_level: Literal["debug", "info", "warning", "error"] = "info"


class GateMetadata(BaseModel):
    """Flagger's webhook ``metadata`` (a string map): where to score, and how much accuracy may be lost."""

    candidate: str = Field(description="Base URL of the candidate (the canary Service).")
    reference: str | None = Field(None, description="Base URL of the serving model (the primary Service).")
    tolerance: float | None = Field(None, ge=0, le=1, description="Accuracy below the bar still accepted.")

    @field_validator("candidate", "reference")
    @classmethod
    def _http_url(cls, url: str | None) -> str | None:
        if url is not None and not url.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return url.rstrip("/") if url else url


class GateRequest(BaseModel):
    """The body Flagger POSTs to a webhook."""

    name: str
    namespace: str
    phase: str | None = None
    checksum: str | None = None
    metadata: GateMetadata


class GateResult(BaseModel):
    passed: bool
    accuracy: float = Field(description="Share of the golden set the candidate labelled right.")
    bar: float = Field(description="The accuracy the candidate needed: the highest card's, minus the tolerance.")
    rows: int
    candidate_version: str
    candidate_card_accuracy: float
    reference_version: str | None = None
    reference_card_accuracy: float | None = None
    tolerance: float


@dataclass(frozen=True)
class Example:
    text: str
    label: str


class UnreachableModel(Exception):
    """The candidate or the reference did not answer as the API says it does."""


def load_golden_set(path: Path) -> list[Example]:
    examples = []
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                row = json.loads(line)
                examples.append(Example(row["text"], row["label"]))
    if not examples:
        raise ValueError(f"the golden set {path} is empty")
    return examples


def _call(url: str, timeout: float, body: dict | None = None) -> dict:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.load(response)
    except (urllib.error.URLError, TimeoutError, OSError, json.JSONDecodeError) as exc:
        raise UnreachableModel(f"{url}: {exc}") from exc


def card_accuracy(base_url: str, timeout: float) -> tuple[str, float]:
    card = _call(f"{base_url}/model", timeout)
    try:
        return str(card["model_version"]), float(card["metrics_heldout"]["accuracy"])
    except (KeyError, TypeError, ValueError) as exc:
        raise UnreachableModel(f"{base_url}/model: no model_version and metrics_heldout.accuracy") from exc


def golden_accuracy(base_url: str, golden: list[Example], batch_size: int, timeout: float) -> float:
    correct = 0
    for start in range(0, len(golden), batch_size):
        batch = golden[start : start + batch_size]
        answer = _call(f"{base_url}/predict", timeout, {"texts": [example.text for example in batch]})
        try:
            labels = [prediction["label"] for prediction in answer["predictions"]]
        except (KeyError, TypeError) as exc:
            raise UnreachableModel(f"{base_url}/predict: no predictions in the answer") from exc
        if len(labels) != len(batch):
            raise UnreachableModel(f"{base_url}/predict: {len(labels)} predictions for {len(batch)} texts")
        correct += sum(label == example.label for label, example in zip(labels, batch, strict=True))
    return correct / len(golden)


def evaluate(metadata: GateMetadata, golden: list[Example], settings: GateSettings) -> GateResult:
    """Blocking (urllib): the app runs it in a worker thread."""
    timeout = settings.request_timeout_s
    tolerance = settings.default_tolerance if metadata.tolerance is None else metadata.tolerance
    candidate_version, candidate_card = card_accuracy(metadata.candidate, timeout)
    reference_version, reference_card = (
        card_accuracy(metadata.reference, timeout) if metadata.reference else (None, None)
    )
    accuracy = golden_accuracy(metadata.candidate, golden, settings.batch_size, timeout)
    bar = max(candidate_card, reference_card or 0.0) - tolerance
    return GateResult(
        passed=accuracy >= bar,
        accuracy=round(accuracy, 4),
        bar=round(bar, 4),
        rows=len(golden),
        candidate_version=candidate_version,
        candidate_card_accuracy=candidate_card,
        reference_version=reference_version,
        reference_card_accuracy=reference_card,
        tolerance=tolerance,
    )


def create_gate_app(settings: GateSettings, golden: list[Example]) -> FastAPI:
    app = FastAPI(title="Golden-set acceptance gate", docs_url=None, redoc_url=None)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        if any(e.get("type") == "json_invalid" for e in exc.errors()):
            return error_response(400, "invalid_json", "the body is not valid JSON")
        details = [
            {"location": ".".join(str(p) for p in e.get("loc", ()) if p != "body") or "body", "message": e["msg"]}
            for e in exc.errors()
        ]
        return error_response(422, "validation_error", "the body is not a Flagger webhook payload", details)

    @app.get("/health")
    async def health() -> dict[str, str | int]:
        return {"status": "ok", "golden_rows": len(golden)}

    @app.post("/gate", response_model=GateResult, responses={412: {"description": "The candidate failed."}})
    async def gate(payload: GateRequest) -> GateResult | JSONResponse:
        try:
            result = await asyncio.to_thread(evaluate, payload.metadata, golden, settings)
        except UnreachableModel as exc:
            log.warning("%s.%s: cannot score the candidate: %s", payload.name, payload.namespace, exc)
            return error_response(502, "model_unreachable", str(exc))
        log.info(
            "%s.%s: candidate %s scored %.4f on %d golden rows, bar %.4f: %s",
            payload.name,
            payload.namespace,
            result.candidate_version,
            result.accuracy,
            result.rows,
            result.bar,
            "accepted" if result.passed else "REJECTED",
        )
        if result.passed:
            return result
        message = (
            f"golden-set accuracy {result.accuracy} of candidate {result.candidate_version} is below {result.bar} "
            f"(card {max(result.candidate_card_accuracy, result.reference_card_accuracy or 0.0)} - tolerance "
            f"{result.tolerance})"
        )
        return JSONResponse({**error_body("acceptance_failed", message), "result": result.model_dump()}, 412)

    return app


def main() -> int:
    try:
        settings = GateSettings()
    except ValidationError as exc:
        print(f"invalid settings:\n{exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    golden = load_golden_set(settings.golden_set)
    log.info("golden set: %d rows from %s", len(golden), settings.golden_set)
    uvicorn.run(
        create_gate_app(settings, golden),
        host=settings.host,
        port=settings.port,
        access_log=False,
        log_level=settings.log_level,
        server_header=False,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
