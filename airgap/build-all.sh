#!/usr/bin/env bash
# Build everything (binaries, then images) and optionally run the smoke test; print the timings table.
# Usage: build-all.sh [--smoke]
# A cold run (empty AIRGAP_CACHE_DIR) builds everything from the Go module proxy and the Debian mirror;
# a warm run finds the binaries, rootfs tarballs and images in the cache and only loads what is missing.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

smoke=0
case ${1:-} in
  --smoke) smoke=1 ;;
  "") ;;
  *) die "usage: $0 [--smoke]" ;;
esac
log "cache: $AIRGAP_CACHE_DIR; timings: $AIRGAP_TIMINGS_FILE"
# One build at a time per cache: two e2e runs sharing it wait for each other instead of writing
# the same tarballs and images at once.
exec 9>"$AIRGAP_CACHE_DIR/.build.lock"
flock 9
# A Docker engine with the runc wrapper these machines need (returns at once when one answers).
docker info >/dev/null 2>&1 || "$AIRGAP_DIR/host/start-engine.sh"
stage "total:binaries" "$AIRGAP_DIR/build-binaries.sh"
stage "total:images" "$AIRGAP_DIR/build-images.sh"
stage "total:crds" "$AIRGAP_DIR/stage-crds.sh"
if [[ $smoke == 1 ]]; then
  stage "total:smoke" "$AIRGAP_DIR/smoke-cluster.sh"
fi
log "timings (seconds; stage, seconds, exit status):"
if command -v column >/dev/null 2>&1; then column -t -s $'\t' "$AIRGAP_TIMINGS_FILE" >&2; else cat "$AIRGAP_TIMINGS_FILE" >&2; fi
