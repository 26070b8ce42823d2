"""Settings come from SENTIMENT_* variables and are validated before the server starts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from sentiment_service.settings import Settings

SERVICE_DIR = Path(__file__).resolve().parents[1]


def test_defaults(monkeypatch) -> None:
    for name in list(__import__("os").environ):
        if name.startswith("SENTIMENT_"):
            monkeypatch.delenv(name)
    settings = Settings()
    assert settings.port == 8000
    assert settings.max_text_chars == 5000
    assert settings.max_batch_items == 64
    assert settings.batch_max_size >= 1


def test_environment_overrides(monkeypatch) -> None:
    monkeypatch.setenv("SENTIMENT_PORT", "9001")
    monkeypatch.setenv("SENTIMENT_BATCH_MAX_WAIT_MS", "2.5")
    monkeypatch.setenv("SENTIMENT_MODEL_DIR", "/models/v3")
    settings = Settings()
    assert settings.port == 9001
    assert settings.batch_max_wait_ms == 2.5
    assert settings.model_dir == Path("/models/v3")


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("SENTIMENT_PORT", "0"),
        ("SENTIMENT_PORT", "eighty"),
        ("SENTIMENT_MAX_TEXT_CHARS", "-1"),
        ("SENTIMENT_BATCH_MAX_SIZE", "0"),
        ("SENTIMENT_BATCH_MAX_WAIT_MS", "-3"),
        ("SENTIMENT_LOG_LEVEL", "chatty"),
    ],
)
def test_invalid_values_are_rejected(monkeypatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError):
        Settings()


def test_contradictory_limits_are_rejected() -> None:
    with pytest.raises(ValidationError, match="max_body_bytes"):
        Settings(max_body_bytes=10_000, max_batch_items=64, max_text_chars=5000)


def test_server_refuses_to_start_with_invalid_settings() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "sentiment_service"],
        env={"PYTHONPATH": str(SERVICE_DIR / "src"), "SENTIMENT_PORT": "99999"},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert "invalid settings" in result.stderr
    assert "port" in result.stderr
