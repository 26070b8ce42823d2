"""Every Python dependency is pinned with its hashes, and the image build insists on them."""

from __future__ import annotations

import re

import pytest
from infra import REPO

LOCKS = {
    "model-service/requirements.txt": "model-service/requirements.in",
    "model-service/requirements-train.txt": "model-service/requirements-train.in",
    "requirements-dev.txt": "requirements-dev.in",
    "requirements-uv.txt": "requirements-uv.in",
}


def requirements(path: str) -> dict[str, str]:
    """name -> the whole requirement entry (continuation lines joined)."""
    text = (REPO / path).read_text().replace("\\\n", " ")
    entries = {}
    for line in text.splitlines():
        match = re.match(r"^([A-Za-z0-9_.\-]+)==(\S+)", line)
        if match:
            entries[match.group(1).lower().replace("_", "-")] = line
    return entries


@pytest.mark.parametrize("lock", sorted(LOCKS))
def test_every_locked_requirement_carries_sha256_hashes(lock: str) -> None:
    entries = requirements(lock)
    assert entries
    unhashed = [name for name, line in entries.items() if "--hash=sha256:" not in line]
    assert not unhashed, f"{lock}: no hash for {unhashed}"


@pytest.mark.parametrize(("lock", "source"), sorted(LOCKS.items()))
def test_every_direct_pin_is_in_its_lock_at_that_version(lock: str, source: str) -> None:
    locked = {name: line.split("==")[1].split()[0] for name, line in requirements(lock).items()}
    direct = re.findall(r"^([A-Za-z0-9_.\-]+)==(\S+)", (REPO / source).read_text(), re.M)
    assert direct
    for name, version in direct:
        assert locked.get(name.lower().replace("_", "-")) == version, f"{source}: {name}=={version} vs {lock}"


def test_the_image_installs_in_hash_checking_mode() -> None:
    dockerfile = (REPO / "model-service" / "Dockerfile").read_text()
    installs = re.findall(r"pip install[^\n]*", dockerfile)
    assert len(installs) == 2
    assert all("--require-hashes" in line for line in installs)
