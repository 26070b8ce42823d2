#!/usr/bin/env bash
# Publish the platform's images into the local registry beside the cluster, under their upstream names
# (docker.io/library/traefik:v3.6.25 is served as <registry>/library/traefik:v3.6.25, and so on): a cluster
# whose containerd mirrors docker.io, quay.io and registry.k8s.io to that registry then pulls exactly the
# references the product's manifests name, as a user's cluster pulls them from the real registries.
# The registry is the container the kind_cluster role runs in kind's local-registry pattern (same name,
# image and port: the role finds it running and keeps it). Needs build-images.sh done.
# Usage: publish.sh   (prints the registry's host address)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

REGISTRY_NAME=${AIRGAP_REGISTRY_NAME:-kind-registry}
REGISTRY_PORT=${AIRGAP_REGISTRY_PORT:-5001}
REGISTRY_HOST=localhost:$REGISTRY_PORT

# running NAME: true when the container NAME is running.
running() { [[ $(docker inspect --format '{{.State.Running}}' "$1" 2>/dev/null) == true ]]; }

start_registry() {
  if ! docker inspect "$REGISTRY_NAME" >/dev/null 2>&1; then
    docker run --detach --restart=always --name "$REGISTRY_NAME" \
      --publish "127.0.0.1:$REGISTRY_PORT:5000" "$REGISTRY_IMAGE" >/dev/null
  elif ! running "$REGISTRY_NAME"; then
    docker start "$REGISTRY_NAME" >/dev/null
  fi
  for _ in $(seq 1 30); do
    curl -fsS "http://$REGISTRY_HOST/v2/" >/dev/null 2>&1 && return 0
    sleep 1
  done
  die "registry $REGISTRY_NAME does not answer on $REGISTRY_HOST"
}

# path_in_registry REF: the repository path and tag of REF without its registry (docker.io/library/x:1 -> library/x:1).
path_in_registry() { printf '%s\n' "${1#*/}"; }

publish() {
  local ref=$1 target
  target=$REGISTRY_HOST/$(path_in_registry "$ref")
  # Already there with the same content: nothing to push.
  if [[ $(curl -fsS -o /dev/null -w '%{http_code}' \
    -H 'Accept: application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json' \
    "http://$REGISTRY_HOST/v2/$(path_in_registry "${ref%:*}")/manifests/${ref##*:}" 2>/dev/null) == 200 ]] &&
    [[ $(docker image inspect --format "{{ index .Config.Labels \"$AIRGAP_RECIPE_LABEL\" }}" "$target" 2>/dev/null) == $(image_recipe "$ref") ]]; then
    log "published already: $ref"
    return 0
  fi
  docker tag "$ref" "$target"
  docker push --quiet "$target" >/dev/null
  log "published $ref as $target"
}

require_cmd docker curl
stage "publish:registry" start_registry
for ref in "$TRAEFIK_IMAGE" "$PROMETHEUS_IMAGE" "$PROMETHEUS_ADAPTER_IMAGE" "$METRICS_SERVER_IMAGE" "$FLAGGER_IMAGE"; do
  stage "publish:$(path_in_registry "${ref%:*}" | tr / -)" publish "$ref"
done
printf '%s\n' "$REGISTRY_HOST"
