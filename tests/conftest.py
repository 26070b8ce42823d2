"""Fixtures for the infrastructure tests (no cluster needed)."""

from __future__ import annotations

import pytest
from infra import MANIFESTS, load_documents


@pytest.fixture(scope="session")
def committed_documents() -> list[dict]:
    return load_documents(MANIFESTS)
