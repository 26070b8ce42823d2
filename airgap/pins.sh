# shellcheck shell=bash
# Every variable set here is read by the scripts that source this file, never here: no SC2034 for them.
# shellcheck disable=SC2034
# The platform's pins, read from infrastructure/versions.yml (the one file that holds them), as the shell
# variables the factory's scripts use. Source it; it needs only sed.
PINS_FILE=$(cd "$(dirname "${BASH_SOURCE[0]}")/../infrastructure" && pwd)/versions.yml

# pin KEY: the value of a `key: value` line of versions.yml.
pin() {
  local value
  value=$(sed -n "s/^$1: *//p" "$PINS_FILE")
  [[ -n $value ]] || { echo "no pin '$1' in $PINS_FILE" >&2; return 1; }
  printf '%s\n' "$value"
}
# image_tag REF: the tag of an image reference (digest dropped).
image_tag() { local ref=${1%@*}; printf '%s\n' "${ref##*:}"; }

KIND_VERSION=$(pin kind_version)
K8S_VERSION=$(pin kubernetes_version)
# k8s.io/* staging modules are published as v0.<minor>.<patch> for Kubernetes v1.<minor>.<patch>.
K8S_STAGING_VERSION=v0.${K8S_VERSION#v1.}
TRAEFIK_IMAGE=$(pin traefik_image)
TRAEFIK_VERSION=$(image_tag "$TRAEFIK_IMAGE")
PROMETHEUS_IMAGE=$(pin prometheus_image)
PROMETHEUS_VERSION=$(image_tag "$PROMETHEUS_IMAGE")
# Prometheus v3.X.Y is the Go module github.com/prometheus/prometheus v0.3XX.Y (minor zero-padded).
PROMETHEUS_MODULE_VERSION=$(IFS=. read -r major minor patch <<<"${PROMETHEUS_VERSION#v}"; printf 'v0.%d%02d.%d' "$major" "$minor" "$patch")
PROMETHEUS_ADAPTER_IMAGE=$(pin prometheus_adapter_image)
PROMETHEUS_ADAPTER_VERSION=$(image_tag "$PROMETHEUS_ADAPTER_IMAGE")
METRICS_SERVER_IMAGE=$(pin metrics_server_image)
METRICS_SERVER_VERSION=$(image_tag "$METRICS_SERVER_IMAGE")
# Flagger (image tag 1.41.0 is module version v1.41.0) and the Gateway API CRDs it routes through.
FLAGGER_IMAGE=$(pin flagger_image)
FLAGGER_VERSION=v$(image_tag "$FLAGGER_IMAGE")
GATEWAY_API_VERSION=$(pin gateway_api_version)
PROMETHEUS_OPERATOR_VERSION=$(pin prometheus_operator_version)
# CNCF distribution: the local registry (image docker.io/library/registry:X.Y.Z is module v3 vX.Y.Z).
REGISTRY_IMAGE=$(pin registry_image)
REGISTRY_VERSION=v$(image_tag "$REGISTRY_IMAGE")
# Our stand-in for the Python base image (host/build-python-base.sh): a private name, never the upstream one.
AIRGAP_PYTHON_IMAGE=airgap.local/python:3.11-slim-bookworm
# The node image the factory builds: a local name (a digest could never match a local build).
NODE_IMAGE=localhost/kind-node:${K8S_VERSION}
