"""Roles hold defaults, the inventory holds overrides and wiring, and both stay consistent.

Each role variable is documented once, in its role's defaults/main.yml (the comment above it); the
argument specs mirror that comment and value, and the inventory sets only what the platform wants
visible (the design card's knobs, the names the playbooks share) or wires one role to another.
"""

from __future__ import annotations

import re

import pytest
import yaml
from infra import INVENTORY, PLATFORM_ROLES, ROLES_DIR

ALL_ROLES = [*PLATFORM_ROLES, "manifests"]
# Variables of the playbooks and the inventory itself, not of a role.
SHARED_PREFIXES = ("platform_", "load_")
# Inventory values that equal a role default on purpose: the knobs the design card wants visible in the
# inventory (node counts, GPU label and taint, HPA bounds and targets, GPU scheduling, the model, the canary's
# steps and gate thresholds) and the names
# the playbooks outside the roles read (cluster name, app namespace/name/host, Prometheus' namespace).
VISIBLE_ON_PURPOSE = {
    "kind_cluster_workers",
    "kind_cluster_gpu_workers",
    "kind_cluster_gpu_label",
    "kind_cluster_gpu_taint",
    "kind_cluster_name",
    "sentiment_app_model",
    "sentiment_app_replicas_min",
    "sentiment_app_replicas_max",
    "sentiment_app_hpa_target_rps",
    "sentiment_app_hpa_cpu_utilization",
    "sentiment_app_gpu_scheduling",
    "sentiment_app_namespace",
    "sentiment_app_name",
    "sentiment_app_host",
    "monitoring_namespace",
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


def specs(role: str) -> dict[str, dict]:
    data = yaml.safe_load((ROLES_DIR / role / "meta" / "argument_specs.yml").read_text())["argument_specs"]
    options: dict[str, dict] = {}
    for entry in data.values():
        options.update(entry.get("options", {}))
    return options


def defaults(role: str) -> dict:
    return yaml.safe_load((ROLES_DIR / role / "defaults" / "main.yml").read_text()) or {}


def default_comments(role: str) -> dict[str, str]:
    """The comment block directly above each default, joined into one line."""
    lines = (ROLES_DIR / role / "defaults" / "main.yml").read_text().splitlines()
    comments = {}
    for index, line in enumerate(lines):
        match = re.match(r"^([a-z0-9_]+):", line)
        if match:
            above = []
            for previous in reversed(lines[:index]):
                if not previous.startswith("#"):
                    break
                above.insert(0, previous.lstrip("# ").strip())
            comments[match.group(1)] = " ".join(above)
    return comments


def inventory_values() -> dict[str, tuple[object, str]]:
    found = {}
    for path in sorted((INVENTORY / "group_vars").rglob("*.yml")):
        for name, value in (yaml.safe_load(path.read_text()) or {}).items():
            found[name] = (value, path.name)
    return found


def is_template(value: object) -> bool:
    return "{{" in yaml.safe_dump(value)


def all_defaults() -> dict[str, object]:
    merged: dict[str, object] = {}
    for role in PLATFORM_ROLES:
        merged.update(defaults(role))
    return merged


@pytest.mark.parametrize("role", ALL_ROLES)
def test_every_default_is_declared_in_the_argument_specs(role: str) -> None:
    assert set(defaults(role)) <= set(specs(role))
    undefaulted = {name for name, spec in specs(role).items() if name not in defaults(role)}
    assert all(specs(role)[name].get("required") for name in undefaulted), undefaulted


@pytest.mark.parametrize("role", ALL_ROLES)
def test_options_with_a_default_are_not_required(role: str) -> None:
    required = {name for name in defaults(role) if specs(role)[name].get("required")}
    assert not required, f"{role}: required although they have a default: {sorted(required)}"


@pytest.mark.parametrize("role", ALL_ROLES)
def test_argument_specs_mirror_the_documented_defaults(role: str) -> None:
    """One documented home: the spec's description and default are the defaults file's comment and value."""
    comments, values = default_comments(role), defaults(role)
    for name, spec in specs(role).items():
        if name not in values:
            continue
        assert comments[name], f"{role}: {name} has no comment in defaults/main.yml"
        assert spec["description"] == comments[name], f"{role}: description of {name} differs from its comment"
        if is_template(values[name]):
            assert "default" not in spec, f"{role}: {name} defaults to a template; its spec shows no literal"
        else:
            assert spec.get("default") == values[name], f"{role}: default of {name} differs"


@pytest.mark.parametrize("role", ALL_ROLES)
def test_every_role_variable_carries_the_role_prefix(role: str) -> None:
    assert all(name.startswith(role + "_") for name in specs(role)), sorted(specs(role))


def test_every_inventory_variable_belongs_to_a_role() -> None:
    declared = {name for role in PLATFORM_ROLES for name in specs(role)}
    unknown = {
        name: source
        for name, (_, source) in inventory_values().items()
        if name not in declared and not name.startswith(SHARED_PREFIXES)
    }
    assert not unknown, f"inventory sets variables no role reads (typos?): {unknown}"


def test_inventory_restates_a_role_default_only_where_it_should_be_visible() -> None:
    role_defaults = all_defaults()
    restated = {
        name
        for name, (value, _) in inventory_values().items()
        if name in role_defaults and role_defaults[name] == value
    }
    assert restated <= VISIBLE_ON_PURPOSE, f"inventory restates role defaults: {sorted(restated - VISIBLE_ON_PURPOSE)}"


def test_inventory_pins_no_image() -> None:
    """Pins live in infrastructure/versions.yml; the inventory only overrides one deliberately (not by default)."""
    images = {name for name in inventory_values() if name.endswith("_image")}
    assert not images, images


def test_cross_role_defaults_agree() -> None:
    """Roles used on their own carry their own defaults; where two roles share a fact, the defaults agree."""
    d = all_defaults()
    assert d["sentiment_app_gpu_label"] == d["kind_cluster_gpu_label"]
    assert d["sentiment_app_gpu_taint"] == d["kind_cluster_gpu_taint"]
    assert d["ingress_node_selector"] == {
        d["kind_cluster_ingress_label"]["key"]: d["kind_cluster_ingress_label"]["value"]
    }
    assert d["kind_cluster_port_mappings"][0]["node_port"] == d["ingress_http_node_port"]
    assert d["kind_cluster_port_mappings"][0]["host_port"] == d["monitoring_public_port"]
    assert d["sentiment_app_hpa_metric"] == d["custom_metrics_request_rate_metric"]
    assert d["monitoring_request_rate_window"] == d["custom_metrics_rate_window"]
    assert d["sentiment_app_kind_cluster"] == d["kind_cluster_name"]
    assert d["sentiment_app_ingress_class"] == d["ingress_class_name"]
    assert d["monitoring_app_namespace"] == d["sentiment_app_namespace"]
    assert d["monitoring_app_job"] == d["monitoring_app_hpa"] == d["sentiment_app_name"]
    assert d["custom_metrics_prometheus"]["namespace"] == d["monitoring_namespace"]
    assert d["ingress_prometheus"]["namespace"] == d["monitoring_namespace"]
    assert {"namespace": d["ingress_namespace"], "name": "traefik"} in d["sentiment_app_network_clients"]
    assert {"namespace": d["monitoring_namespace"], "name": "prometheus"} in d["sentiment_app_network_clients"]
    adapter = {"namespace": d["custom_metrics_namespace"], "name": "prometheus-adapter"}
    assert adapter in d["monitoring_prometheus_clients"]
    assert {"namespace": d["sentiment_app_namespace"], "port": 8000} in d["ingress_backends"]


def test_inventory_wires_each_cross_role_fact_to_its_owner() -> None:
    inventory = {name: value for name, (value, _) in inventory_values().items()}
    wiring = {
        "sentiment_app_gpu_label": "{{ kind_cluster_gpu_label }}",
        "sentiment_app_gpu_taint": "{{ kind_cluster_gpu_taint }}",
        "sentiment_app_hpa_metric": "{{ custom_metrics_request_rate_metric }}",
        "sentiment_app_kind_cluster": "{{ kind_cluster_name if kind_cluster_enabled else '' }}",
        "sentiment_app_ingress_class": "{{ ingress_class_name }}",
        "monitoring_request_rate_window": "{{ custom_metrics_rate_window }}",
        "monitoring_app_namespace": "{{ sentiment_app_namespace }}",
        "monitoring_app_job": "{{ sentiment_app_name }}",
        "monitoring_app_hpa": "{{ sentiment_app_name }}",
        "monitoring_public_port": "{{ platform_public_port }}",
        "sentiment_app_public_url": "{{ platform_ingress_url }}",
    }
    assert {name: inventory.get(name) for name in wiring} == wiring
    assert inventory["kind_cluster_port_mappings"] == [
        {"host_port": "{{ platform_public_port }}", "node_port": "{{ ingress_http_node_port }}"}
    ]
