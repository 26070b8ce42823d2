"""Inventory and role variables stay consistent: every knob declared, documented and prefixed."""

from __future__ import annotations

import re

import pytest
import yaml
from infra import INVENTORY, PLATFORM_ROLES, ROLES_DIR

ALL_ROLES = [*PLATFORM_ROLES, "manifests"]
SHARED_PREFIXES = ("platform_", "load_")


def specs(role: str) -> dict[str, dict]:
    data = yaml.safe_load((ROLES_DIR / role / "meta" / "argument_specs.yml").read_text())["argument_specs"]
    options: dict[str, dict] = {}
    for entry in data.values():
        options.update(entry.get("options", {}))
    return options


def defaults(role: str) -> dict:
    return yaml.safe_load((ROLES_DIR / role / "defaults" / "main.yml").read_text()) or {}


def inventory_variables() -> dict[str, str]:
    found = {}
    for path in sorted((INVENTORY / "group_vars").rglob("*.yml")):
        for name in yaml.safe_load(path.read_text()) or {}:
            found[name] = path.name
    return found


@pytest.mark.parametrize("role", ALL_ROLES)
def test_every_default_is_declared_in_the_argument_specs_and_back(role: str) -> None:
    assert set(defaults(role)) == set(specs(role))


@pytest.mark.parametrize("role", ALL_ROLES)
def test_every_role_variable_carries_the_role_prefix(role: str) -> None:
    assert all(name.startswith(role + "_") for name in defaults(role)), sorted(defaults(role))


@pytest.mark.parametrize("role", ALL_ROLES)
def test_every_default_has_a_comment(role: str) -> None:
    lines = (ROLES_DIR / role / "defaults" / "main.yml").read_text().splitlines()
    for index, line in enumerate(lines):
        if re.match(r"^[a-z0-9_]+:", line):
            above = lines[index - 1]
            # A variable directly under another variable shares its comment block.
            assert above.startswith("#") or re.match(r"^[a-z0-9_]+:", above), f"{role}: {line}"


def test_every_inventory_variable_belongs_to_a_role() -> None:
    declared = {name for role in PLATFORM_ROLES for name in specs(role)}
    unknown = {
        name: source
        for name, source in inventory_variables().items()
        if name not in declared and not name.startswith(SHARED_PREFIXES)
    }
    assert not unknown, f"inventory sets variables no role reads (typos?): {unknown}"


def test_inventory_pins_every_image_in_one_file() -> None:
    images = {
        name for role in PLATFORM_ROLES for name in defaults(role) if name.endswith("_image") and "pull" not in name
    }
    pinned = {name for name, source in inventory_variables().items() if source == "versions.yml"}
    assert images == pinned
