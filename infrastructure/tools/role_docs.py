"""Generate every role's defaults/main.yml, the platform role's shared copies and the variable reference
from the roles' meta/argument_specs.yml: each variable's default, type and description is written once.

    python infrastructure/tools/role_docs.py          # write the generated files (`make docs`)
    python infrastructure/tools/role_docs.py --check  # exit 1 and name every stale file (`make lint`)

Generated:
- roles/<role>/defaults/main.yml: each option with a default, in spec order, its description as the comment;
- roles/platform/defaults/main.yml: the platform role's own options, then a copy of every variable that a role
  other than its owner, or a playbook, reads (the platform role is a dependency of every role, so a role used on
  its own finds the facts it shares with the others; the owner's default is the same value);
- docs/variables.md: every role's variables (type, default, description);
- the table between README.md's knob markers: the platform's choices and what inventory/default sets.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import textwrap
from pathlib import Path

import yaml

COLLECTION = Path(__file__).resolve().parents[1]
REPO = COLLECTION.parent
ROLES = COLLECTION / "roles"
PLAYBOOKS = COLLECTION / "playbooks"
PLATFORM = "platform"
# The internal helper role: its inputs are passed explicitly by include_role, never shared.
HELPER = "manifests"
README = REPO / "README.md"
REFERENCE = REPO / "docs" / "variables.md"
INVENTORY = REPO / "inventory" / "default" / "group_vars"
# Knobs the README's table shows beside the platform's choices and what inventory/default sets.
EXTRA_KNOBS = [
    "kind_cluster_enabled",
    "sentiment_app_hpa_target_rps",
    "sentiment_app_image_registry",
    "sentiment_app_resources",
    "monitoring_grafana_enabled",
    "monitoring_alert_drift_psi",
]
KNOBS_BEGIN, KNOBS_END = "<!-- knobs:begin -->", "<!-- knobs:end -->"
WIDTH = 120
HEADER = (
    "---\n"
    "# Generated from meta/argument_specs.yml (the one documented home of each variable) by\n"
    "# infrastructure/tools/role_docs.py: edit the specs, then run `make docs`.\n"
)
PLAIN = re.compile(r"^[A-Za-z0-9_./][A-Za-z0-9_./@-]*$")


# --- reading the specs ----------------------------------------------------------------------------------
def role_names() -> list[str]:
    return sorted(path.name for path in ROLES.iterdir() if (path / "meta" / "argument_specs.yml").is_file())


def options(role: str) -> dict[str, dict]:
    """Every option of the role's entry points, in spec order (main first), each once."""
    specs = yaml.safe_load((ROLES / role / "meta" / "argument_specs.yml").read_text())["argument_specs"]
    merged: dict[str, dict] = {}
    for entry in specs.values():
        for name, spec in (entry.get("options") or {}).items():
            if merged.setdefault(name, spec) != spec:
                raise SystemExit(f"{role}: {name} is declared differently in two entry points")
    return merged


def defaults_of(role: str) -> dict[str, object]:
    return {name: spec["default"] for name, spec in options(role).items() if "default" in spec}


def owners() -> dict[str, str]:
    """Variable name -> the role whose specs declare it."""
    return {name: role for role in role_names() for name in options(role)}


def _strings(value: object):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _references(text: str, owner_of: dict[str, str]) -> set[str]:
    return {word for word in re.findall(r"\b[a-z][a-z0-9_]*\b", text) if word in owner_of}


def shared_variables() -> list[str]:
    """Variables read outside their owner role (by another role or a playbook), with what their defaults read."""
    owner_of = owners()
    wanted: set[str] = set()
    for role in role_names():
        texts = [text for value in defaults_of(role).values() for text in _strings(value)]
        role_dir = ROLES / role
        texts += [path.read_text() for path in sorted(role_dir.glob("tasks/*.yml"))]
        texts += [path.read_text() for path in sorted(role_dir.glob("templates/**/*.j2"))]
        texts += [path.read_text() for path in sorted(role_dir.glob("vars/*.yml"))]
        for text in texts:
            wanted |= {name for name in _references(text, owner_of) if owner_of[name] not in (role, PLATFORM, HELPER)}
    for path in sorted(PLAYBOOKS.glob("*.yml")):
        wanted |= {name for name in _references(path.read_text(), owner_of) if owner_of[name] not in (PLATFORM, HELPER)}
    # What a copied default reads must be there too.
    pending = list(wanted)
    while pending:
        name = pending.pop()
        spec = options(owner_of[name])[name]
        for text in _strings(spec.get("default")):
            for found in _references(text, owner_of) - wanted:
                if owner_of[found] != PLATFORM:
                    wanted.add(found)
                    pending.append(found)
    order = {name: index for index, name in enumerate(owner_of)}
    return sorted((name for name in wanted if name in defaults_of(owner_of[name])), key=order.__getitem__)


# --- writing YAML the way a person would ----------------------------------------------------------------
def scalar(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return json.dumps(value)
    text = str(value)
    if text and PLAIN.match(text) and yaml.safe_load(text) == text:
        return text
    if "'" not in text and "{{" not in text and "\\" not in text:
        return "'" + text + "'" if text else "''"
    return json.dumps(text)


def flow(value: object) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{scalar(key)}: {flow(item)}" for key, item in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(flow(item) for item in value) + "]"
    return scalar(value)


def folded(text: str, indent: int) -> list[str] | None:
    """A long string as a folded block (>-), broken only at single spaces so that it reads back unchanged."""
    if "  " in text or text != text.strip() or "\n" in text:
        return None
    lines = textwrap.wrap(text, WIDTH - indent, break_long_words=False, break_on_hyphens=False)
    return [" " * indent + line for line in lines] if " ".join(lines) == text else None


def block(key: str, value: object, indent: int = 0) -> list[str]:
    """`key: value` at this indent: one line where it fits, else nested lines."""
    pad = " " * indent
    line = f"{pad}{key}: {flow(value)}"
    if len(line) <= WIDTH:
        return [line]
    if isinstance(value, str):
        lines = folded(value, indent + 2)
        return [f"{pad}{key}: >-", *lines] if lines else [line]
    if isinstance(value, dict):
        nested = [part for item_key, item in value.items() for part in block(scalar(item_key), item, indent + 2)]
        return [f"{pad}{key}:", *nested]
    if isinstance(value, list):
        lines = [f"{pad}{key}:"]
        for item in value:
            entry = f"{pad}  - {flow(item)}"
            if len(entry) <= WIDTH or not isinstance(item, dict):
                lines.append(entry)
            else:
                nested = [part for item_key, sub in item.items() for part in block(scalar(item_key), sub, indent + 4)]
                lines.append(f"{pad}  - {nested[0].lstrip()}")
                lines.extend(nested[1:])
        return lines
    return [line]


def comment(text: str) -> list[str]:
    return ["# " + line for line in textwrap.wrap(" ".join(text.split()), WIDTH - 2, break_on_hyphens=False)]


def description(spec: dict) -> str:
    text = spec.get("description", "")
    return " ".join(text) if isinstance(text, list) else str(text)


def defaults_file(role: str) -> str:
    lines: list[str] = []
    for name, spec in options(role).items():
        if "default" in spec:
            lines += comment(description(spec)) + block(name, spec["default"])
    if role == PLATFORM:
        owner_of = owners()
        lines += [
            "",
            "# --- shared facts ------------------------------------------------------------------------------------",
            *comment(
                "Copies of the defaults of every variable that a role other than its owner, or a playbook, reads "
                "(generated from the owners' specs). Every role depends on this one, so a role used on its own "
                "finds them; the owner's own default is the same value. Set them in inventory by their names."
            ),
        ]
        for name in shared_variables():
            spec = options(owner_of[name])[name]
            lines += comment(f"{description(spec)} (owner: {owner_of[name]})") + block(name, spec["default"])
    return HEADER + "\n".join(lines) + "\n"


# --- the reference and the README's table ---------------------------------------------------------------
def cell(value: object) -> str:
    text = flow(value) if not isinstance(value, str) else (value or "''")
    return "`" + text.replace("|", "\\|") + "`"


def prose(text: str) -> str:
    """Description text for a Markdown table cell."""
    return text.replace("|", "/").replace("<", "&lt;").replace(">", "&gt;")


def reference() -> str:
    out = [
        "# Variable reference",
        "",
        "Every variable of every role of the `sentiment.platform` collection, generated from the roles'",
        "`meta/argument_specs.yml` by `infrastructure/tools/role_docs.py` (`make docs`). A role's defaults",
        "live in its `defaults/main.yml`, generated from the same specs. Defaults in `{{ }}` are derived:",
        "they follow the variables they name, so setting the owner's variable is enough.",
        "",
    ]
    for role in role_names():
        specs = yaml.safe_load((ROLES / role / "meta" / "argument_specs.yml").read_text())["argument_specs"]
        entry = specs.get("main") or next(iter(specs.values()))
        out += [f"## {role}", "", entry.get("short_description", ""), "", "| variable | type | default | description |"]
        out.append("|---|---|---|---|")
        for name, spec in options(role).items():
            default = cell(spec["default"]) if "default" in spec else ("required" if spec.get("required") else "")
            kind = spec.get("type", "str") + (f" of {spec['elements']}" if spec.get("elements") else "")
            listed = ", ".join(f"`{choice}`" for choice in spec.get("choices", []))
            choices = f" One of {listed}." if listed else ""
            out.append(f"| `{name}` | {kind} | {default} | {prose(description(spec))}{choices} |")
        out.append("")
    return "\n".join(out)


def inventory_choices() -> list[str]:
    names: list[str] = []
    for path in sorted(INVENTORY.rglob("*.yml")):
        names += [name for name in (yaml.safe_load(path.read_text()) or {}) if name not in names]
    return names


def knob_table() -> str:
    owner_of = owners()
    names = [name for name in options(PLATFORM) if not name.startswith("platform_load_")]
    names += [name for name in inventory_choices() + EXTRA_KNOBS if name in owner_of and name not in names]
    rows = ["| variable | default | what it chooses |", "|---|---|---|"]
    for name in names:
        spec = options(owner_of[name])[name]
        short = description(spec).split(". ")[0].rstrip(".")
        rows.append(f"| `{name}` | {cell(spec.get('default', ''))} | {prose(short)} |")
    return "\n".join(rows)


def readme(text: str) -> str:
    begin, end = text.index(KNOBS_BEGIN) + len(KNOBS_BEGIN), text.index(KNOBS_END)
    return text[:begin] + "\n" + knob_table() + "\n" + text[end:]


def generated() -> dict[Path, str]:
    files = {ROLES / role / "defaults" / "main.yml": defaults_file(role) for role in role_names()}
    files[REFERENCE] = reference()
    files[README] = readme(README.read_text())
    return files


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="fail if a generated file differs instead of writing it")
    stale = []
    check = parser.parse_args().check
    for path, content in generated().items():
        if path.is_file() and path.read_text() == content:
            continue
        stale.append(path.relative_to(REPO))
        if not check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content)
    if check and stale:
        print("stale, run `make docs`: " + ", ".join(map(str, stale)), file=sys.stderr)
        return 1
    for path in stale:
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
