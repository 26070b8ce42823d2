"""The loaded model and what serves it: card, model, drift window, metrics recorder, micro-batcher."""

from __future__ import annotations

import gc
import logging
import math
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from .batching import BatcherClosed, MicroBatcher, Overloaded
from .drift import DriftWindow, reference_shares
from .metrics import ModelRecorder, ServiceMetrics
from .model import ARTIFACT_FORMAT, ModelLoadError, Scored, ScoringModel, SentimentModel, load_card
from .schemas import Prediction
from .settings import Settings
from .signature import verify_signature

log = logging.getLogger("sentiment_service")

WARMUP_TEXTS = ["A warm, funny and beautifully acted film.", "Dull, predictable and far too long."]


def available_cpus() -> int:
    """CPUs this process may use: its affinity, capped by a cgroup v2 CPU quota (a pod's CPU limit)."""
    cpus = len(os.sched_getaffinity(0))
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()
    except (OSError, ValueError):
        return cpus
    if quota == "max":
        return cpus
    return max(1, min(cpus, math.ceil(int(quota) / int(period))))


def load_model(model_dir: Path, card: dict, settings: Settings) -> ScoringModel:
    """The variant the card names: the compiled TF-IDF model, or the MiniLM graph (whose runtime,
    onnxruntime and tokenizers, only the transformer image installs)."""
    variant = card.get("artifact", {}).get("format")
    if variant == ARTIFACT_FORMAT:
        return SentimentModel.load(model_dir, settings.word_cache_size, card=card)
    try:
        from . import transformer  # noqa: PLC0415 - the TF-IDF image has no onnxruntime
    except ImportError as exc:
        raise ModelLoadError(f"the model is {variant!r}, but this image cannot score it: {exc}") from exc
    if variant != transformer.ARTIFACT_FORMAT:
        raise ModelLoadError(f"unsupported model format {variant!r}")
    return transformer.TransformerModel.load(
        model_dir,
        card,
        threads=settings.model_threads or available_cpus(),
        batch_tokens=settings.model_batch_tokens,
        device=settings.model_device,
    )


class ModelNotReady(RuntimeError):
    """The model is not loaded (yet, or it failed its checks), or it is shutting down."""


class ModelOverloaded(RuntimeError):
    """The model's queue is full: the request was shed, the client should retry after a moment."""


class Runtime:
    """``ready`` only once the model is loaded, verified against its card and warmed up."""

    def __init__(self, settings: Settings, metrics: ServiceMetrics) -> None:
        self.settings = settings
        self.metrics = metrics
        self.model: ScoringModel | None = None
        self.card: dict[str, Any] = {}
        self.batcher: MicroBatcher[Scored] | None = None
        self.recorder: ModelRecorder | None = None
        # One model thread: scoring leaves the event loop free to parse requests and answer probes.
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="model")
        self.ready = False
        self.not_ready_reason = "starting"

    def load(self) -> None:
        started = time.perf_counter()
        model_dir = self.settings.model_dir
        try:
            signer = verify_signature(model_dir, self.settings.model_public_key_file)
            self.card = load_card(model_dir)
            self.model = load_model(model_dir, self.card, self.settings)
            window = DriftWindow(
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
        self.recorder = self.metrics.attach_model(
            self.model.version, self.card.get("model_name", "unknown"), window, device=self.model.device
        )
        self.batcher = MicroBatcher(
            self.model.score_batch,
            max_size=self.settings.batch_max_size,
            max_wait_s=self.settings.batch_max_wait_ms / 1000.0,
            on_batch=self.recorder.record_batch,
            max_queued_texts=self.settings.max_queued_texts,
            max_queued_chars=self.settings.max_queued_chars,
            executor=self.executor,
        )
        self.batcher.start()
        batcher = self.batcher
        self.metrics.queued_texts.set_function(lambda: batcher.queued_texts)
        self.ready = True
        self.not_ready_reason = ""
        self.metrics.model_ready.set(1)
        log.info(
            "model %s (signed by key %s) ready: %s, loaded and warmed up in %.0f ms",
            self.model.version,
            signer,
            self.model.summary,
            (time.perf_counter() - started) * 1000,
        )

    async def stop(self) -> None:
        self.ready = False
        self.metrics.model_ready.set(0)
        if self.batcher is not None:
            await self.batcher.stop()
        self.executor.shutdown(wait=True)

    async def predict(self, texts: list[str]) -> list[Prediction]:
        if not self.ready or self.batcher is None or self.model is None or self.recorder is None:
            raise ModelNotReady(self.not_ready_reason or "model not ready")
        started = time.perf_counter()
        try:
            results = await self.batcher.submit(texts)
        except BatcherClosed as exc:
            raise ModelNotReady(str(exc)) from exc
        except Overloaded as exc:
            self.metrics.requests_shed.inc()
            raise ModelOverloaded(str(exc)) from exc
        self.recorder.observe_latency(time.perf_counter() - started)
        version = self.model.version
        return [
            Prediction(label=r.label, score=r.p_positive, confidence=r.confidence, model_version=version)
            for r in results
        ]
