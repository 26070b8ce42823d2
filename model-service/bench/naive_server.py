"""The naive baseline for `make bench`: the notebook's model behind FastAPI, one
``predict_proba`` call per request, the full scikit-learn pipeline loaded from joblib.
Same uvicorn settings as the service (one process, uvloop, httptools, no access log).
Never deployed; it exists to be measured against.
"""

from __future__ import annotations

import os
from pathlib import Path

import joblib
import uvicorn
from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict

pipeline = joblib.load(Path(os.environ["SENTIMENT_MODEL_DIR"]) / "pipeline.joblib")
app = FastAPI()


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
    p_positive = float(pipeline.predict_proba([request.text])[0, 1])
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
