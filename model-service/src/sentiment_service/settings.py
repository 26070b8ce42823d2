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

    max_text_chars: int = Field(5000, ge=1, le=100_000, description="Longest accepted text, in characters.")
    max_batch_items: int = Field(64, ge=1, le=1024, description="Most texts in one batch request.")
    max_body_bytes: int = Field(1_048_576, ge=1024, description="Largest accepted request body.")

    batch_max_size: int = Field(32, ge=1, le=1024, description="Most texts scored in one model call.")
    batch_max_wait_ms: float = Field(
        0.0, ge=0.0, le=100.0, description="How long a batch waits for more requests once one arrived."
    )

    drift_window_size: int = Field(1000, ge=10, description="Most recent predictions kept for drift scores.")
    drift_window_seconds: float = Field(600.0, gt=0, description="Oldest prediction kept, in seconds.")
    word_cache_size: int = Field(50_000, ge=0, description="Words whose character n-grams are cached.")

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
        return self
