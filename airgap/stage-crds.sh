#!/usr/bin/env bash
# The upstream CRDs the roles install, taken from the pinned Go module sources (the release assets they are
# published as cannot be downloaded here): one YAML file each, in $AIRGAP_CACHE_DIR/crds/, which
# inventory/airgap names instead of the release URLs the roles fetch on the user's path.
#   gateway-api-<version>-standard.yaml  the standard channel (config/crd/standard/, the files its
#                                        standard-install.yaml release asset bundles)
#   flagger-<version>-crd.yaml           artifacts/flagger/crd.yaml (Canary, MetricTemplate, AlertProvider)
#   prometheus-operator-<version>-crds.yaml  the PodMonitor and PrometheusRule CRDs (example/prometheus-operator-crd/):
#                                        the schemas the monitoring role's prometheus-operator manifests are checked
#                                        against (the tests; the cluster's own operator installs its CRDs)
# Usage: stage-crds.sh   (prints the directory)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
require_cmd go jq

CRD_DIR=$AIRGAP_CACHE_DIR/crds
mkdir -p "$CRD_DIR"

stage_gateway_api() {
  local src out=$CRD_DIR/gateway-api-$GATEWAY_API_VERSION-standard.yaml file
  src=$(mod_dir "sigs.k8s.io/gateway-api@$GATEWAY_API_VERSION")
  {
    for file in "$src"/config/crd/standard/gateway.networking.k8s.io_*.yaml; do
      echo "---"
      cat "$file"
    done
  } >"$out.tmp"
  [[ $(grep -c '^kind: CustomResourceDefinition' "$out.tmp") -ge 6 ]] || die "expected 6 CRDs in $src/config/crd/standard"
  mv "$out.tmp" "$out"
  log "staged $(basename "$out")"
}

stage_flagger() {
  local src out=$CRD_DIR/flagger-$FLAGGER_VERSION-crd.yaml
  src=$(mod_dir "github.com/fluxcd/flagger@$FLAGGER_VERSION")
  install -m 0644 "$src/artifacts/flagger/crd.yaml" "$out"
  log "staged $(basename "$out")"
}

stage_prometheus_operator() {
  local src out=$CRD_DIR/prometheus-operator-$PROMETHEUS_OPERATOR_VERSION-crds.yaml kind
  src=$(mod_dir "github.com/prometheus-operator/prometheus-operator@$PROMETHEUS_OPERATOR_VERSION")
  {
    for kind in podmonitors prometheusrules; do
      echo "---"
      cat "$src/example/prometheus-operator-crd/monitoring.coreos.com_$kind.yaml"
    done
  } >"$out.tmp"
  mv "$out.tmp" "$out"
  log "staged $(basename "$out")"
}

stage "crds:gateway-api" stage_gateway_api
stage "crds:flagger" stage_flagger
stage "crds:prometheus-operator" stage_prometheus_operator
printf '%s\n' "$CRD_DIR"
