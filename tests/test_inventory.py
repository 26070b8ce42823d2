"""Roles document their variables once (argument specs), the collection wires them, the inventory chooses.

Each role variable is written once, in its role's meta/argument_specs.yml; defaults/main.yml, the platform
role's shared copies, docs/variables.md and the README's knob table are generated from the specs
(infrastructure/tools/role_docs.py). Cross-role values are derived inside the collection: a role's default
names the owner's variable. The inventory sets only what a user chooses.
"""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
import yaml
from infra import COLLECTION, INVENTORY, PLATFORM_ROLES, REPO, ROLES_DIR

ALL_ROLES = [*PLATFORM_ROLES, "manifests", "platform"]
# Values in the default inventory that equal a role default on purpose: the knobs the design card wants
# visible (node counts, the GPU label and taint, HPA bounds and targets, GPU scheduling, the model), the
# public host and port, the feature switch, and the canary's steps and gate thresholds.
VISIBLE_ON_PURPOSE = {
    "kind_cluster_workers",
    "kind_cluster_gpu_workers",
    "kind_cluster_gpu_label",
    "kind_cluster_gpu_taint",
    "kind_cluster_name",
    "sentiment_app_model",
    "sentiment_app_host",
    "sentiment_app_replicas_min",
    "sentiment_app_replicas_max",
    "sentiment_app_hpa_cpu_utilization",
    "sentiment_app_gpu_scheduling",
    "platform_public_port",
    "platform_canary_enabled",
    "canary_interval",
    "canary_step_weight",
    "canary_max_weight",
    "canary_threshold",
    "canary_max_error_ratio",
    "canary_max_p95_seconds",
    "canary_max_added_p95_seconds",
    "canary_max_confidence_drop",
    "canary_golden_set_tolerance",
}
# What an inventory value may compute from: where the inventory itself is, and the environment.
LOCATION_ONLY = re.compile(r"\{\{\s*inventory_dir\b[^}]*\}\}")


def specs(role: str) -> dict[str, dict]:
    data = yaml.safe_load((ROLES_DIR / role / "meta" / "argument_specs.yml").read_text())["argument_specs"]
    options: dict[str, dict] = {}
    for entry in data.values():
        options.update(entry.get("options", {}))
    return options


def defaults(role: str) -> dict:
    return yaml.safe_load((ROLES_DIR / role / "defaults" / "main.yml").read_text()) or {}


def inventory_values() -> dict[str, object]:
    found = {}
    for path in sorted((INVENTORY / "group_vars").rglob("*.yml")):
        found.update(yaml.safe_load(path.read_text()) or {})
    return found


def owner_of() -> dict[str, str]:
    return {name: role for role in ALL_ROLES for name in specs(role)}


def test_generated_defaults_reference_and_readme_table_are_current() -> None:
    result = subprocess.run(
        [sys.executable, str(COLLECTION / "tools" / "role_docs.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("role", ALL_ROLES)
def test_defaults_are_exactly_the_specs_defaults(role: str) -> None:
    """The generated file carries every spec default, and nothing else (the platform role adds the shared copies)."""
    own = {name: spec["default"] for name, spec in specs(role).items() if "default" in spec}
    generated = defaults(role)
    assert {name: generated[name] for name in own} == own
    extra = set(generated) - set(own)
    if role != "platform":
        assert not extra, extra


@pytest.mark.parametrize("role", ALL_ROLES)
def test_every_option_is_described_typed_and_either_defaulted_or_required(role: str) -> None:
    for name, spec in specs(role).items():
        assert spec.get("description"), f"{role}: {name} has no description"
        assert spec.get("type"), f"{role}: {name} has no type"
        assert ("default" in spec) != bool(spec.get("required")), f"{role}: {name} needs a default or required: true"


@pytest.mark.parametrize("role", ALL_ROLES)
def test_every_role_variable_carries_the_role_prefix(role: str) -> None:
    assert all(name.startswith(role + "_") for name in specs(role)), sorted(specs(role))


def test_the_platform_role_shares_each_fact_a_role_reads_from_another_with_the_owners_value() -> None:
    owners, shared = owner_of(), defaults("platform")
    copies = {name: value for name, value in shared.items() if owners[name] != "platform"}
    assert copies, "no shared facts"
    for name, value in copies.items():
        assert value == specs(owners[name])[name]["default"], name
    # The facts the wiring is made of are among them.
    for name in ("sentiment_app_namespace", "monitoring_namespace", "ingress_namespace", "canary_namespace"):
        assert name in copies


@pytest.mark.parametrize("role", PLATFORM_ROLES)
def test_every_platform_role_depends_on_the_shared_defaults(role: str) -> None:
    meta = yaml.safe_load((ROLES_DIR / role / "meta" / "main.yml").read_text())
    assert {"role": "sentiment.platform.platform"} in meta["dependencies"]


@pytest.mark.parametrize(
    ("variable", "follows"),
    [
        ("monitoring_app_namespace", "sentiment_app_namespace"),
        ("monitoring_app_job", "sentiment_app_name"),
        ("sentiment_app_hpa_metric", "custom_metrics_request_rate_metric"),
        ("sentiment_app_ingress_class", "ingress_class_name"),
        ("sentiment_app_gpu_taint", "kind_cluster_gpu_taint"),
        ("monitoring_request_rate_window", "custom_metrics_rate_window"),
        ("canary_max_drift_psi", "monitoring_alert_drift_psi"),
        ("monitoring_public_port", "platform_public_port"),
        ("sentiment_app_public_url", "platform_ingress_url"),
    ],
)
def test_cross_role_defaults_follow_their_owner(variable: str, follows: str) -> None:
    owners = owner_of()
    assert specs(owners[variable])[variable]["default"] == "{{ " + follows + " }}"


def test_every_inventory_variable_belongs_to_a_role() -> None:
    unknown = set(inventory_values()) - set(owner_of())
    assert not unknown, f"inventory sets variables no role reads (typos?): {sorted(unknown)}"


def test_inventory_holds_choices_not_wiring() -> None:
    """No value of the default inventory is computed from another variable (only from where the inventory is)."""
    wiring = {
        name: value
        for name, value in inventory_values().items()
        if "{{" in LOCATION_ONLY.sub("", yaml.safe_dump(value))
    }
    assert not wiring, wiring


def test_inventory_restates_a_role_default_only_where_it_should_be_visible() -> None:
    owners = owner_of()
    restated = {name for name, value in inventory_values().items() if specs(owners[name])[name].get("default") == value}
    assert restated <= VISIBLE_ON_PURPOSE, f"inventory restates role defaults: {sorted(restated - VISIBLE_ON_PURPOSE)}"


def test_inventory_pins_no_image() -> None:
    """Pins live in infrastructure/versions.yml; the inventory only overrides one deliberately (not by default)."""
    images = {name for name in inventory_values() if name.endswith("_image")}
    assert not images, images


def test_readme_knob_table_names_real_variables_with_their_defaults() -> None:
    readme = (REPO / "README.md").read_text()
    table = readme[readme.index("<!-- knobs:begin -->") : readme.index("<!-- knobs:end -->")]
    named = re.findall(r"^\| `([a-z0-9_]+)` \|", table, flags=re.MULTILINE)
    owners = owner_of()
    assert set(inventory_values()) <= set(named)
    assert set(named) <= set(owners)
