"""Service settings: environment variables prefixed ``SENTIMENT_``, validated at start-up."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SENTIMENT_", extra="forbid", frozen=True)

    host: str = Field("0.0.0.0", description="Address to listen on.")
    port: int = Field(8000, ge=1, le=65535, description="TCP port to listen on.")
    model_dir: Path = Field(Path("artifacts"), description="Directory with model.json and model_card.json.")
    model_public_key_file: Path | None = Field(
        None,
        description="ed25519 public key the model's signature must verify with (the trust anchor, kept apart "
        "from the model directory); without one the model is refused.",
    )

    max_text_chars: int = Field(5000, ge=1, le=100_000, description="Longest accepted text, in characters.")
    max_batch_items: int = Field(64, ge=1, le=1024, description="Most texts in one batch request.")
    max_body_bytes: int = Field(1_048_576, ge=1024, description="Largest accepted request body.")

    batch_max_size: int = Field(32, ge=1, le=1024, description="Most texts scored in one model call.")
    batch_max_wait_ms: float = Field(
        0.0, ge=0.0, le=100.0, description="How long a batch waits for more requests once one arrived."
    )

    max_queued_texts: int = Field(
        256,
        ge=1,
        description="Most texts waiting for the model in this process; a /predict that would exceed it is "
        "answered 503 with Retry-After at once (load shedding). Sized in make bench's overload section.",
    )
    max_queued_chars: int = Field(
        400_000, ge=1000, description="Most characters of texts waiting for the model; shed above, as for texts."
    )
    retry_after_s: int = Field(1, ge=1, le=60, description="Retry-After of a shed request, in seconds.")
    max_in_flight: int = Field(
        0,
        ge=0,
        description="Most /predict requests a process answers at once; beyond it a /predict is answered 503 with "
        "Retry-After at once, before its body is read; 0 (the default) turns it off. Off because make bench "
        "measured no gain where clients ignore Retry-After and share the server's CPU (see docs/performance.md).",
    )

    probe_port: int = Field(
        8001,
        ge=0,
        le=65535,
        description="Port of the probe listener (GET /health, GET /ready from a thread of its own, so probes never "
        "wait behind traffic); 0 turns it off.",
    )
    loop_stall_s: float = Field(
        10.0, gt=0, description="The probes report unhealthy once the event loop has not run for this long."
    )

    max_header_bytes: int = Field(
        16_384, ge=1024, le=1_048_576, description="Largest request head (request line and headers); 431 above."
    )
    request_head_timeout_s: float = Field(
        10.0,
        gt=0,
        description="Time a client gets to send a complete request head after it connects or begins one; 408 after.",
    )
    request_body_timeout_s: float = Field(
        30.0, gt=0, description="Time a client gets to send the body once the head arrived; 408 after."
    )
    shutdown_drain_s: float = Field(
        5.0,
        ge=0,
        le=30,
        description="After SIGTERM, at most how long the server keeps reading requests whose bytes already "
        "arrived (it stops as soon as no connection has unread bytes) before it closes idle connections.",
    )

    drift_window_size: int = Field(1000, ge=10, description="Most recent predictions kept for drift scores.")
    drift_window_seconds: float = Field(600.0, gt=0, description="Oldest prediction kept, in seconds.")
    word_cache_size: int = Field(50_000, ge=0, description="Words whose character n-grams are cached (TF-IDF).")
    model_threads: int = Field(
        0,
        ge=0,
        le=256,
        description="Threads the transformer's ONNX Runtime session computes with; 0: the CPUs this process may "
        "use (its affinity, capped by the cgroup's CPU quota). The Deployment passes its CPU limit.",
    )
    model_batch_tokens: int = Field(
        1024,
        ge=128,
        description="Most padded tokens in one transformer call (rows x longest row): batches are cut by what "
        "they cost, not by how many texts they hold. 1024 was the fastest of a sweep from 128 to 4096 on a 2-core "
        "machine (the activations stay in cache).",
    )
    model_device: Literal["cpu", "cuda"] = Field(
        "cpu", description="Where the transformer is scored; cuda falls back to the CPU (logged) without a GPU."
    )

    graceful_timeout_s: float = Field(20.0, gt=0, description="Time in-flight requests get after SIGTERM.")
    keep_alive_s: int = Field(
        75,
        ge=1,
        description="How long an idle client connection stays open. Keep it above the reverse proxy's idle "
        "timeout, or the proxy may reuse a connection the server is closing (a 502).",
    )
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    @model_validator(mode="after")
    def _body_fits_a_full_batch(self) -> Settings:
        # A full batch of maximal texts must fit the body limit, or the limits contradict each other.
        smallest_full_batch = self.max_batch_items * self.max_text_chars
        if self.max_body_bytes < smallest_full_batch:
            raise ValueError(
                f"max_body_bytes ({self.max_body_bytes}) is smaller than max_batch_items x "
                f"max_text_chars ({smallest_full_batch}): a valid batch could never be sent"
            )
        if self.max_queued_chars < smallest_full_batch or self.max_queued_texts < self.max_batch_items:
            raise ValueError(
                f"max_queued_texts ({self.max_queued_texts}) and max_queued_chars ({self.max_queued_chars}) must "
                f"hold a full batch ({self.max_batch_items} texts, {smallest_full_batch} characters), or a valid "
                "batch could be shed on a busy server forever"
            )
        return self
