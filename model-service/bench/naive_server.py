"""Baselines for `make bench`: the notebook's scikit-learn pipeline behind FastAPI.

``NAIVE_BATCHING=0``: the naive design, one ``predict_proba`` call per request.
``NAIVE_BATCHING=1``: the same pipeline behind the service's ``MicroBatcher``, one call per batch:
isolates what micro-batching buys a model with a large fixed cost per call.
Same uvicorn settings as the service (one process, uvloop, httptools, no access log). Never deployed.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import joblib
import uvicorn
from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict

from sentiment_service.batching import MicroBatcher

pipeline = joblib.load(Path(os.environ["SENTIMENT_MODEL_DIR"]) / "pipeline.joblib")
BATCHING = os.environ.get("NAIVE_BATCHING", "0") == "1"


def predict_proba(texts: list[str]) -> list[float]:
    return [float(p) for p in pipeline.predict_proba(texts)[:, 1]]


batcher = MicroBatcher(predict_proba, max_size=32, max_wait_s=0.0)


@asynccontextmanager
async def lifespan(_: FastAPI) -> AsyncIterator[None]:
    batcher.start()
    yield
    await batcher.stop()


app = FastAPI(lifespan=lifespan)


class PredictRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    text: str


class Prediction(BaseModel):
    label: str
    score: float
    confidence: float


@app.get("/ready")
async def ready() -> dict[str, str]:
    return {"status": "ready"}


@app.post("/predict")
async def predict(request: PredictRequest) -> Prediction:
    if BATCHING:
        (p_positive,) = await batcher.submit([request.text])
    else:
        (p_positive,) = predict_proba([request.text])
    label = "positive" if p_positive >= 0.5 else "negative"
    return Prediction(label=label, score=p_positive, confidence=max(p_positive, 1 - p_positive))


if __name__ == "__main__":
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=int(os.environ["SENTIMENT_PORT"]),
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level="warning",
    )
