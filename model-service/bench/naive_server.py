"""Baselines for `make bench`: the notebook's model behind FastAPI.

TF-IDF (a model directory with ``pipeline.joblib``): the scikit-learn pipeline.
MiniLM (a model directory with ``model-fp32.onnx``): the fp32 graph in an ONNX Runtime session with
default options, the tokenizer padding nothing, as a first deployment of an exported model looks.
``NAIVE_BATCHING=0``: the naive design, one model call per request, on the event loop.
``NAIVE_BATCHING=1``: the same model behind the service's ``MicroBatcher``, one call per batch:
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

MODEL_DIR = Path(os.environ["SENTIMENT_MODEL_DIR"])
BATCHING = os.environ.get("NAIVE_BATCHING", "0") == "1"

if (MODEL_DIR / "model-fp32.onnx").exists():
    import numpy as np
    import onnxruntime as ort
    from tokenizers import Tokenizer

    session = ort.InferenceSession(str(MODEL_DIR / "model-fp32.onnx"))
    tokenizer = Tokenizer.from_file(str(MODEL_DIR / "tokenizer.json"))
    tokenizer.enable_truncation(128)
    tokenizer.enable_padding()

    def predict_proba(texts: list[str]) -> list[float]:
        encodings = tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encodings], np.int64)
        mask = np.array([e.attention_mask for e in encodings], np.int64)
        return [float(p) for p in session.run(["p_positive"], {"input_ids": ids, "attention_mask": mask})[0]]

else:
    pipeline = joblib.load(MODEL_DIR / "pipeline.joblib")

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
