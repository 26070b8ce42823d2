"""The collection's public face matches its tree: the README lists every role, plugin and playbook (and nothing
else), galaxy.yml's version is the newest CHANGELOG entry, the shared connection options are documented once
(doc fragment) and set once (action group, proven with module_defaults in a real playbook run)."""

from __future__ import annotations

import ast
import importlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from ansible_collections.sentiment.platform.plugins.doc_fragments.kube import ModuleDocFragment
from ansible_collections.sentiment.platform.plugins.module_utils.kube import CONNECTION_ARGS
from infra import COLLECTION, REPO

README = COLLECTION / "README.md"
PLUGINS = COLLECTION / "plugins"
BIN = Path(sys.executable).parent
FQCN = "sentiment.platform."

# README section heading -> the kind of content its table lists.
SECTIONS = {
    "Roles": "role",
    "Modules": "module",
    "Filters": "filter",
    "Lookups": "lookup",
    "Doc fragments": "doc_fragment",
    "Action groups": "action_group",
    "Playbooks": "playbook",
}


def python_plugins(kind: str) -> set[str]:
    return {path.stem for path in (PLUGINS / kind).glob("*.py") if path.stem != "__init__"}


def filter_names() -> set[str]:
    """Every filter name the collection's filter plugins return from FilterModule.filters()."""
    names: set[str] = set()
    for stem in python_plugins("filter"):
        plugin = importlib.import_module(f"ansible_collections.sentiment.platform.plugins.filter.{stem}")
        names |= set(plugin.FilterModule().filters())
    return names


def runtime() -> dict:
    return yaml.safe_load((COLLECTION / "meta" / "runtime.yml").read_text())


def tree() -> dict[str, set[str]]:
    """What the collection holds, by kind of content."""
    return {
        "role": {path.name for path in (COLLECTION / "roles").iterdir() if path.is_dir()},
        "module": python_plugins("modules"),
        "filter": filter_names(),
        "lookup": python_plugins("lookup"),
        "doc_fragment": python_plugins("doc_fragments"),
        "action_group": set(runtime().get("action_groups", {})),
        "playbook": {path.stem for path in (COLLECTION / "playbooks").glob("*.yml")},
    }


def readme_tables() -> dict[str, set[str]]:
    """The names in the first column of each content table of the README, by kind (FQCN prefix removed)."""
    listed: dict[str, set[str]] = {kind: set() for kind in SECTIONS.values()}
    kind = None
    for line in README.read_text().splitlines():
        heading = re.match(r"^#{2,3} (.+?)\s*$", line)
        if heading:
            kind = SECTIONS.get(heading.group(1))
            continue
        row = re.match(r"^\| `([^`]+)` \|", line)
        if kind and row:
            name = row.group(1).removeprefix("group/")
            assert name.startswith(FQCN), f"README {kind} table: {row.group(1)} is not a {FQCN}* name"
            listed[kind].add(name.removeprefix(FQCN))
    return listed


@pytest.mark.parametrize("kind", sorted(SECTIONS.values()))
def test_readme_lists_exactly_what_the_collection_holds(kind: str) -> None:
    present, listed = tree()[kind], readme_tables()[kind]
    assert present, f"no {kind} found in the tree: the test reads the wrong place"
    assert not present - listed, f"{kind}s missing from infrastructure/README.md: {sorted(present - listed)}"
    assert not listed - present, f"README names {kind}s that do not exist: {sorted(listed - present)}"


def test_every_fqcn_the_readme_mentions_exists() -> None:
    """Prose and examples too: a name the README uses anywhere is something the collection has."""
    text = README.read_text()
    content = tree()
    names = set().union(*(names for kind, names in content.items() if kind != "action_group"))
    groups = set(re.findall(r"group/sentiment\.platform\.(\w+)", text))
    mentioned = set(re.findall(r"(?<!group/)\bsentiment\.platform\.(\w+)", text))
    assert not groups - content["action_group"], f"unknown action groups: {sorted(groups - content['action_group'])}"
    assert not mentioned - names, f"README mentions what the collection lacks: {sorted(mentioned - names)}"


def changelog_versions() -> list[tuple[int, ...]]:
    text = (COLLECTION / "CHANGELOG.md").read_text()
    return [tuple(map(int, v.split("."))) for v in re.findall(r"^## \[?(\d+\.\d+\.\d+)\]?", text, re.M)]


def test_galaxy_version_is_the_newest_changelog_entry() -> None:
    galaxy = yaml.safe_load((COLLECTION / "galaxy.yml").read_text())
    versions = changelog_versions()
    assert versions, "CHANGELOG.md has no version headings (## [x.y.z])"
    assert versions == sorted(versions, reverse=True), "CHANGELOG.md's versions are not newest first"
    assert len(set(versions)) == len(versions), "a version appears twice in CHANGELOG.md"
    assert ".".join(map(str, versions[0])) == str(galaxy["version"])


def module_documentation(stem: str) -> dict:
    """A module's DOCUMENTATION, read without importing it."""
    source = (PLUGINS / "modules" / f"{stem}.py").read_text()
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "DOCUMENTATION" for t in node.targets):
            return yaml.safe_load(ast.literal_eval(node.value))
    raise AssertionError(f"{stem} has no DOCUMENTATION")


def kube_modules() -> set[str]:
    """The modules opened through module_utils/kube.py's kube_module (the ones taking the connection options)."""
    modules = PLUGINS / "modules"
    return {stem for stem in python_plugins("modules") if "kube_module(" in (modules / f"{stem}.py").read_text()}


def test_connection_options_are_documented_once_and_grouped_once() -> None:
    fragment = yaml.safe_load(ModuleDocFragment.DOCUMENTATION)
    assert {name: option["type"] for name, option in fragment["options"].items()} == {
        name: spec["type"] for name, spec in CONNECTION_ARGS.items()
    }, "the doc fragment and module_utils/kube.py's CONNECTION_ARGS disagree"
    modules = kube_modules()
    assert modules == {"hpa_timeline", "canary_timeline", "ownership", "owned_objects"}
    for stem in modules:
        doc = module_documentation(stem)
        assert "sentiment.platform.kube" in doc.get("extends_documentation_fragment", []), stem
        assert not set(doc["options"]) & set(CONNECTION_ARGS), f"{stem} restates the fragment's options"
    assert set(runtime()["action_groups"]["kube"]) == modules


def ansible_env(tmp_path: Path) -> dict[str, str]:
    """The repository's collection on the path, nothing else of its configuration (no inventory)."""
    (tmp_path / "ansible.cfg").write_text("[defaults]\n")
    return {
        **os.environ,
        "PATH": f"{BIN}:{os.environ['PATH']}",
        "ANSIBLE_CONFIG": str(tmp_path / "ansible.cfg"),
        "ANSIBLE_COLLECTIONS_PATH": str(REPO / ".collections"),
        "ANSIBLE_LOCAL_TEMP": str(tmp_path / "tmp"),
        "ANSIBLE_HOME": str(tmp_path / "home"),
    }


@pytest.mark.slow
def test_ansible_doc_shows_the_fragments_options(tmp_path: Path) -> None:
    command = [str(BIN / "ansible-doc"), "-t", "module", "--json", f"{FQCN}hpa_timeline", f"{FQCN}canary_timeline"]
    result = subprocess.run(command, env=ansible_env(tmp_path), capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    docs = json.loads(result.stdout)
    for module in ("hpa_timeline", "canary_timeline"):
        doc = docs[FQCN + module]["doc"]
        assert {"kubeconfig", "context"} <= set(doc["options"]), module
        assert doc["options"]["kubeconfig"]["type"] == "path"
        assert any("kubernetes" in requirement for requirement in doc["requirements"]), module


@pytest.mark.slow
def test_ansible_doc_parses_every_modules_documentation_examples_and_return_values(tmp_path: Path) -> None:
    """ansible-doc parses every module's DOCUMENTATION (a YAML slip there hides the module's docs)."""
    modules = sorted(path.stem for path in (COLLECTION / "plugins" / "modules").glob("*.py"))
    command = [str(BIN / "ansible-doc"), "-t", "module", "--json", *(FQCN + name for name in modules)]
    result = subprocess.run(command, env=ansible_env(tmp_path), capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    docs = json.loads(result.stdout)
    assert sorted(docs) == [FQCN + name for name in modules]
    for name, entry in docs.items():
        assert entry["doc"]["short_description"], name
        assert entry["examples"].strip(), name
        assert entry["return"] is not None, name


PLAY = """\
- name: module_defaults of group/sentiment.platform.kube reach the group's modules
  hosts: localhost
  gather_facts: false
  module_defaults:
    group/sentiment.platform.kube:
      kubeconfig: "{dir}/from-group-defaults.kubeconfig"
      context: from-group-defaults
  tasks:
    - name: The HPA timeline, with none of the connection options of its own
      sentiment.platform.hpa_timeline: {{name: web, namespace: default, duration: 1}}
      register: hpa
      ignore_errors: true

    - name: The canary timeline, likewise
      sentiment.platform.canary_timeline: {{name: web, namespace: default, timeout: 1}}
      register: canary
      ignore_errors: true

    - name: A task's own argument wins over the group's default
      sentiment.platform.hpa_timeline:
        {{name: web, namespace: default, duration: 1, kubeconfig: "{dir}/from-task.kubeconfig"}}
      register: own
      ignore_errors: true

    - name: Write what the modules said
      ansible.builtin.copy:
        dest: "{dir}/results.json"
        mode: "0644"
        content: "{{{{ {{'hpa': hpa, 'canary': canary, 'own': own}} | to_json }}}}"
"""


@pytest.mark.slow
def test_module_defaults_of_the_action_group_reach_the_modules(tmp_path: Path) -> None:
    """No cluster: each module fails loading a kubeconfig that exists nowhere, and its message names the one
    module_defaults gave it."""
    (tmp_path / "play.yml").write_text(PLAY.format(dir=tmp_path))
    command = [str(BIN / "ansible-playbook"), "-i", "localhost,", "-c", "local", "-e"]
    command += [f"ansible_python_interpreter={sys.executable}", str(tmp_path / "play.yml")]
    result = subprocess.run(command, env=ansible_env(tmp_path), capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    results = json.loads((tmp_path / "results.json").read_text())
    for task in ("hpa", "canary"):
        assert results[task]["failed"], results[task]
        assert f"{tmp_path}/from-group-defaults.kubeconfig" in results[task]["msg"], results[task]["msg"]
        assert results[task]["context"] == "from-group-defaults", results[task]
    assert f"{tmp_path}/from-task.kubeconfig" in results["own"]["msg"], results["own"]["msg"]
    assert results["own"]["context"] == "from-group-defaults"
