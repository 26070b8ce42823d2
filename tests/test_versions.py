"""Every pin lives in infrastructure/versions.yml; whatever else names a version derives it or agrees."""

from __future__ import annotations

import re
import subprocess

import yaml
from infra import COLLECTION, REPO

PINS = yaml.safe_load((COLLECTION / "versions.yml").read_text())


def airgap_pins() -> dict[str, str]:
    """The variables the offline image factory's scripts see from airgap/pins.sh."""
    names = [
        "KIND_VERSION",
        "K8S_VERSION",
        "K8S_STAGING_VERSION",
        "TRAEFIK_VERSION",
        "TRAEFIK_IMAGE",
        "PROMETHEUS_VERSION",
        "PROMETHEUS_MODULE_VERSION",
        "PROMETHEUS_IMAGE",
        "PROMETHEUS_ADAPTER_VERSION",
        "PROMETHEUS_ADAPTER_IMAGE",
        "METRICS_SERVER_VERSION",
        "METRICS_SERVER_IMAGE",
        "NODE_IMAGE",
        "AIRGAP_PYTHON_IMAGE",
        "REGISTRY_IMAGE",
        "REGISTRY_VERSION",
    ]
    script = "source airgap/pins.sh; " + "; ".join(f'echo "{n}=${n}"' for n in names)
    out = subprocess.run(["bash", "-c", script], cwd=REPO, capture_output=True, text=True, check=True).stdout
    return dict(line.split("=", 1) for line in out.splitlines())


def tag(image: str) -> str:
    return image.split("@", maxsplit=1)[0].rsplit(":", 1)[1]


def test_every_pin_is_a_string_and_every_image_has_a_tag() -> None:
    assert all(isinstance(value, str) for value in PINS.values())
    for name, image in PINS.items():
        if name.endswith("_image"):
            assert re.search(r":[\w.-]+(@sha256:[0-9a-f]{64})?$", image), name


def test_node_image_runs_the_pinned_kubernetes_version() -> None:
    assert tag(PINS["kind_node_image"]) == PINS["kubernetes_version"]


def test_the_image_factory_derives_its_versions_from_the_pins() -> None:
    airgap = airgap_pins()
    assert airgap["KIND_VERSION"] == PINS["kind_version"]
    assert airgap["K8S_VERSION"] == PINS["kubernetes_version"]
    assert airgap["K8S_STAGING_VERSION"] == "v0." + PINS["kubernetes_version"].split(".", 1)[1]
    for component, key in [
        ("TRAEFIK", "traefik_image"),
        ("PROMETHEUS", "prometheus_image"),
        ("PROMETHEUS_ADAPTER", "prometheus_adapter_image"),
        ("METRICS_SERVER", "metrics_server_image"),
    ]:
        assert airgap[f"{component}_IMAGE"] == PINS[key]
        assert airgap[f"{component}_VERSION"] == tag(PINS[key])
    major, minor, patch = tag(PINS["prometheus_image"]).lstrip("v").split(".")
    assert airgap["PROMETHEUS_MODULE_VERSION"] == f"v0.{major}{int(minor):02d}.{patch}"


def test_factory_pins_restate_no_platform_pin() -> None:
    text = (REPO / "airgap" / "versions.env").read_text()
    for derived in (
        "KIND_VERSION=",
        "K8S_VERSION=",
        "TRAEFIK_VERSION=",
        "PROMETHEUS_VERSION=",
        "_IMAGE=docker.io/library/traefik",
    ):
        assert not re.search(rf"^{re.escape(derived)}", text, re.M), derived


def test_makefile_builds_promtool_of_the_deployed_prometheus() -> None:
    out = subprocess.run(["make", "-n", "-p", "help"], cwd=REPO, capture_output=True, text=True, check=False).stdout
    assert f"PROMETHEUS_VERSION := {tag(PINS['prometheus_image'])}" in out


def test_dockerfile_default_base_is_the_pinned_python_image() -> None:
    for dockerfile in ("model-service/Dockerfile", "model-service/bench/Dockerfile.naive"):
        text = (REPO / dockerfile).read_text()
        assert f"ARG PYTHON_IMAGE={PINS['python_image']}\n" in text, dockerfile
    assert "@sha256:" in PINS["python_image"]


def test_airgap_inventory_names_the_images_the_factory_builds() -> None:
    airgap = yaml.safe_load((REPO / "inventory" / "airgap" / "group_vars" / "all" / "airgap.yml").read_text())
    factory = airgap_pins()
    assert airgap["kind_cluster_node_image"] == factory["NODE_IMAGE"]
    assert airgap["sentiment_app_python_image"] == factory["AIRGAP_PYTHON_IMAGE"]
