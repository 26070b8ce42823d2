"""Helpers of the infrastructure tests: repository paths, rendering, manifest loading."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
MANIFESTS = REPO / "deploy" / "manifests"
COLLECTION = REPO / "infrastructure"
ROLES_DIR = COLLECTION / "roles"
INVENTORY = REPO / "inventory" / "default"
PLATFORM_ROLES = ["kind_cluster", "ingress", "monitoring", "custom_metrics", "sentiment_app", "canary"]

# The collection's plugins import as ansible_collections.sentiment.platform.plugins.* (see ansible.cfg).
sys.path.insert(0, str(REPO / ".collections"))


def local_playbook_command(*extra: str) -> list[str]:
    """ansible-playbook of this venv against localhost (local connection, this Python): append the playbook."""
    binary = Path(sys.executable).parent / "ansible-playbook"
    interpreter = f"ansible_python_interpreter={sys.executable}"
    return [str(binary), "-i", "localhost,", "-c", "local", "-e", interpreter, *extra]


def run_local_playbook(playbook: Path, variables: dict) -> subprocess.CompletedProcess:
    """A playbook on localhost with the repository's ansible.cfg (its collections path) and extra variables."""
    return subprocess.run(
        local_playbook_command("-e", json.dumps(variables), str(playbook)),
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg")},
    )


def load_documents(directory: Path) -> list[dict]:
    documents = []
    for path in sorted(directory.rglob("*.yaml")):
        documents.extend(doc for doc in yaml.safe_load_all(path.read_text()) if doc)
    return documents


def render(out: Path, extra_vars: Path | None = None) -> None:
    """`make render OUT=out VARS=extra_vars`, through ansible-playbook directly."""
    command = [
        str(Path(sys.executable).parent / "ansible-playbook"),
        str(REPO / "infrastructure" / "playbooks" / "render.yml"),
        "-e",
        f"platform_manifests_dir={out}",
    ]
    if extra_vars is not None:
        command += ["-e", f"@{extra_vars}"]
    result = subprocess.run(
        command,
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        env={"ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
