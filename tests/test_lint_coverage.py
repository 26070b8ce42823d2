"""`make lint` reaches every script we write: a new shell script cannot escape shellcheck."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from pathlib import Path

from infra import REPO

# The shells shellcheck understands; a shebang naming one of them makes a file a shell script.
SHELLS = {"sh", "bash", "dash", "ksh"}


def lint_commands(**env: str) -> list[str]:
    """The command lines `make lint` would run (a dry run: nothing is executed)."""
    result = subprocess.run(
        ["make", "--no-print-directory", "-n", "lint"],
        cwd=REPO,
        env=os.environ | env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


def tracked_files() -> list[str]:
    listing = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, text=True, check=True)
    return [name for name in listing.stdout.split("\0") if name]


def shebang_shell(path: Path) -> str | None:
    """The interpreter a file's `#!` line names (through `env`), or None."""
    if path.is_symlink() or not path.is_file():
        return None
    with path.open("rb") as handle:
        first = handle.readline(256)
    if not first.startswith(b"#!"):
        return None
    words = first[2:].decode(errors="replace").split()
    if words and Path(words[0]).name == "env":
        words = [word for word in words[1:] if not word.startswith("-")]
    return Path(words[0]).name if words else None


def test_shellcheck_covers_every_shell_script() -> None:
    lines = [line for line in lint_commands() if line.startswith("shellcheck ")]
    assert len(lines) == 1, "make lint runs shellcheck once, over the list of scripts"
    linted = set(shlex.split(lines[0])[1:])
    scripts = {name for name in tracked_files() if name.endswith(".sh") or shebang_shell(REPO / name) in SHELLS}
    assert {".ci/run", "airgap/lib.sh", "airgap/images/iptables-wrapper"} <= scripts
    assert scripts - linted == set(), "shell scripts that make lint would not check"
    assert linted - scripts == set(), "make lint would run shellcheck on files that are not shell scripts"


def test_go_is_vetted_with_the_image_factory_caches(tmp_path: Path) -> None:
    lines = lint_commands(AIRGAP_CACHE_DIR=str(tmp_path))
    vet = next(line for line in lines if "go vet ./cmd/..." in line)
    assert vet.startswith("cd airgap && ")
    assert any("gofmt -l airgap/cmd" in line for line in lines)
    # The Go caches airgap/lib.sh exports for the factory's builds, under AIRGAP_CACHE_DIR.
    lib = (REPO / "airgap" / "lib.sh").read_text()
    for name in ("GOMODCACHE", "GOCACHE", "GOPATH"):
        exported = re.search(rf"^export {name}=\$AIRGAP_CACHE_DIR(/\S+)$", lib, re.MULTILINE)
        assert exported, f"airgap/lib.sh no longer exports {name} under AIRGAP_CACHE_DIR"
        assert f"{name}={tmp_path}{exported.group(1)} " in vet
    flags = re.search(r'^export GOFLAGS="([^"]*)"$', lib, re.MULTILINE)
    assert flags
    assert f"GOFLAGS='{flags.group(1)}'" in vet
