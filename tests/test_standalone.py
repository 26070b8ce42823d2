"""The collection stands alone: installed from its tarball, driven by a ten-line inventory of the user's own.

No copy of inventory/default, no ansible.cfg of the repository, no link to the source tree: the tarball,
`ansible-playbook sentiment.platform.site` in render-only mode, and the user's few choices render the whole
platform exactly as `make render` does (deploy/manifests, which `make check-rendered` keeps equal to it).
"""

from __future__ import annotations

import filecmp
import os
import subprocess
import sys
from pathlib import Path

import pytest
from infra import COLLECTION, MANIFESTS, REPO

pytestmark = pytest.mark.slow
BIN = Path(sys.executable).parent

# Written from scratch as a user of the published collection would: the host, and where the model service's
# source is (the only thing the collection cannot know). Every other value is the collection's default.
INVENTORY = """\
# My sentiment platform: the collection's defaults, built from my checkout of the model service.
all:
  hosts:
    localhost:
      ansible_connection: local
      ansible_python_interpreter: "{{{{ ansible_playbook_python }}}}"
  vars:
    sentiment_app_build_context: {model_service}
"""


def run(command: list[str], cwd: Path, env: dict[str, str]) -> str:
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-3000:]
    return result.stdout


def tree(root: Path) -> set[str]:
    return {str(path.relative_to(root)) for path in root.rglob("*") if path.is_file()}


def test_a_ten_line_inventory_renders_the_whole_platform_from_the_installed_collection(tmp_path: Path) -> None:
    (tmp_path / "ansible.cfg").write_text("[defaults]\n")
    env = {
        "PATH": f"{BIN}:{os.environ['PATH']}",
        "ANSIBLE_CONFIG": str(tmp_path / "ansible.cfg"),
        "HOME": str(tmp_path),
        "PWD": str(tmp_path),
    }
    galaxy = str(BIN / "ansible-galaxy")
    run([galaxy, "collection", "build", str(COLLECTION), "--output-path", str(tmp_path)], tmp_path, env)
    tarball = next(tmp_path.glob("sentiment-platform-*.tar.gz"))
    installed = tmp_path / "collections"
    run([galaxy, "collection", "install", "--no-deps", "-p", str(installed), str(tarball)], tmp_path, env)
    env["ANSIBLE_COLLECTIONS_PATH"] = str(installed)

    inventory = INVENTORY.format(model_service=REPO / "model-service")
    assert len(inventory.splitlines()) <= 10
    (tmp_path / "inventory.yml").write_text(inventory)
    out = tmp_path / "manifests"
    run(
        [
            str(BIN / "ansible-playbook"),
            "-i",
            "inventory.yml",
            "sentiment.platform.site",
            "-e",
            "platform_render_only=true",
            "-e",
            f"platform_manifests_dir={out}",
        ],
        tmp_path,
        env,
    )

    assert tree(out) == tree(MANIFESTS)
    different = [
        name for name in sorted(tree(MANIFESTS)) if not filecmp.cmp(out / name, MANIFESTS / name, shallow=False)
    ]
    assert not different, f"rendered differently from make render: {different}"
