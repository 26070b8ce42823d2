"""The collection works outside the repository: built with ansible-galaxy, installed, used by FQCN."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from infra import COLLECTION, local_playbook_command

pytestmark = pytest.mark.slow
BIN = Path(sys.executable).parent

PLAYBOOK = """\
- name: Use the installed collection by FQCN
  hosts: localhost
  gather_facts: false
  vars:
    out: "{{ playbook_dir }}/out"
  tasks:
    - name: Render a kind config with the collection's role
      ansible.builtin.import_role:
        name: sentiment.platform.kind_cluster
        tasks_from: render
      vars:
        kind_cluster_name: outside
        kind_cluster_workers: 3
        kind_cluster_manifests_dir: "{{ out }}/kind"

    - name: Render Traefik's manifests (the role renders through sentiment.platform.manifests and its macros)
      ansible.builtin.import_role:
        name: sentiment.platform.ingress
        tasks_from: render
      vars:
        ingress_namespace: edge
        ingress_manifests_dir: "{{ out }}/ingress"

    - name: Write what the plugins return
      ansible.builtin.copy:
        dest: "{{ out }}/plugins.yml"
        mode: "0644"
        content: "{{ {'pinned': lookup('sentiment.platform.pinned', 'traefik_image'),
                      'hey': hey_text | sentiment.platform.hey_report} | to_nice_yaml }}"
      vars:
        hey_text: |
          Requests/sec:  10.0

          Status code distribution:
            [200]  7 responses
            [503]  1 responses
"""


def run(command: list[str], cwd: Path, env: dict[str, str]) -> str:
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout


def test_built_tarball_installs_and_its_roles_and_plugins_run_from_a_playbook_outside_the_repo(tmp_path: Path) -> None:
    # No ansible.cfg of the repository, no link to the source tree: only what was installed.
    (tmp_path / "ansible.cfg").write_text("[defaults]\n")
    env = {
        "PATH": f"{BIN}:{os.environ['PATH']}",
        "ANSIBLE_CONFIG": str(tmp_path / "ansible.cfg"),
        "HOME": str(tmp_path),
    }
    run(
        [str(BIN / "ansible-galaxy"), "collection", "build", str(COLLECTION), "--output-path", str(tmp_path)],
        tmp_path,
        env,
    )
    tarball = next(tmp_path.glob("sentiment-platform-*.tar.gz"))
    installed = tmp_path / "collections"
    # kubernetes.core and the rest come with the `ansible` package; no Galaxy on our machines.
    run(
        [str(BIN / "ansible-galaxy"), "collection", "install", "--no-deps", "-p", str(installed), str(tarball)],
        tmp_path,
        env,
    )
    assert (installed / "ansible_collections" / "sentiment" / "platform" / "versions.yml").is_file()
    assert not list(installed.rglob("molecule")), "the tarball carries test scenarios"

    (tmp_path / "play.yml").write_text(PLAYBOOK)
    env["ANSIBLE_COLLECTIONS_PATH"] = str(installed)
    output = run(local_playbook_command("play.yml"), tmp_path, env)
    assert "sentiment.platform.kind_cluster" in output

    kind = yaml.safe_load((tmp_path / "out" / "kind" / "kind-config.yaml").read_text())
    assert kind["name"] == "outside"
    assert [node["role"] for node in kind["nodes"]] == ["control-plane", "worker", "worker", "worker"]
    traefik = yaml.safe_load((tmp_path / "out" / "ingress" / "30-deployment.yaml").read_text())
    assert traefik["metadata"]["namespace"] == "edge"
    assert traefik["metadata"]["labels"]["app.kubernetes.io/part-of"] == "sentiment-platform"
    plugins = yaml.safe_load((tmp_path / "out" / "plugins.yml").read_text())
    pins = yaml.safe_load((COLLECTION / "versions.yml").read_text())
    assert plugins["pinned"] == pins["traefik_image"]
    assert plugins["hey"]["non_2xx"] == 1
    assert plugins["hey"]["responses"] == 8
