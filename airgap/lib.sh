# shellcheck shell=bash
# Shared helpers for airgap/*.sh. Source it from a script that runs with `set -euo pipefail`.
# Everything built lands under AIRGAP_CACHE_DIR; nothing is written inside the repository.

AIRGAP_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# The platform's pins (infrastructure/versions.yml), then the factory's own (versions.env).
# shellcheck source=pins.sh
source "$AIRGAP_DIR/pins.sh"
# shellcheck source=versions.env
source "$AIRGAP_DIR/versions.env"

AIRGAP_CACHE_DIR=${AIRGAP_CACHE_DIR:-$HOME/.cache/sentiment-platform-airgap}
AIRGAP_BIN_DIR=$AIRGAP_CACHE_DIR/bin          # <name>-<version>/ per built tool
AIRGAP_IMAGE_DIR=$AIRGAP_CACHE_DIR/images     # docker save tarballs
AIRGAP_ROOTFS_DIR=$AIRGAP_CACHE_DIR/rootfs    # debootstrap tarballs and .deb cache
AIRGAP_WORK_DIR=$AIRGAP_CACHE_DIR/work        # scratch (wrapper modules, staging dirs)
mkdir -p "$AIRGAP_BIN_DIR" "$AIRGAP_IMAGE_DIR" "$AIRGAP_ROOTFS_DIR" "$AIRGAP_WORK_DIR" "$AIRGAP_CACHE_DIR/timings"
# One timings file per top-level invocation; nested scripts append to the same one.
export AIRGAP_TIMINGS_FILE=${AIRGAP_TIMINGS_FILE:-$AIRGAP_CACHE_DIR/timings/$(date +%Y%m%dT%H%M%S)-$$.tsv}

# The factory's Docker engine (host/start-engine.sh): Docker Engine 29 with the containerd image store on
# a socket of its own, the current context of a private DOCKER_CONFIG. Every docker and kind call of the
# factory, the e2e run and CI goes there; the default socket, /etc/docker and ~/.docker are never touched.
AIRGAP_STATE_DIR=${AIRGAP_STATE_DIR:-/var/lib/sentiment-airgap}
AIRGAP_RUN_DIR=${AIRGAP_RUN_DIR:-/run/sentiment-airgap}
# shellcheck disable=SC2034 # used by host/start-engine.sh
AIRGAP_DOCKER_SOCKET=$AIRGAP_RUN_DIR/docker.sock
# shellcheck disable=SC2034 # used by host/start-engine.sh
AIRGAP_DOCKER_CONTEXT=sentiment-airgap
export DOCKER_CONFIG=${AIRGAP_DOCKER_CONFIG:-$AIRGAP_CACHE_DIR/docker-config}

# Go: everything cached under AIRGAP_CACHE_DIR, never a toolchain download, the proxy only.
export GOMODCACHE=$AIRGAP_CACHE_DIR/gomod
export GOCACHE=$AIRGAP_CACHE_DIR/gobuild
export GOPATH=$AIRGAP_CACHE_DIR/gopath
export GOFLAGS="-modcacherw -buildvcs=false"
export GOTOOLCHAIN=local
export GOWORK=off
export GOPROXY=${GOPROXY:-https://proxy.golang.org,direct}
export CGO_ENABLED=0
# Go builds share two cores with another engineer's work.
# shellcheck disable=SC2034 # used by the scripts that source this file
GO_NICE=(nice -n "${AIRGAP_NICE:-10}")
# Prometheus' build tags: of its service discoveries only kubernetes (file and http are always built in), since
# the platform's scrape configs use kubernetes_sd_configs alone: the cloud providers' SDKs are not compiled.
# shellcheck disable=SC2034 # used by build-binaries.sh
PROMETHEUS_BUILD_TAGS=netgo,remove_all_sd,enable_kubernetes_sd
# Label carried by every image we build: the hash of the recipe that made it (see recipe_hash).
AIRGAP_RECIPE_LABEL=io.sentiment-platform.airgap.recipe

log() { printf '[airgap %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# stage NAME CMD...: run CMD, log and record its wall time in AIRGAP_TIMINGS_FILE.
stage() {
  local name=$1 start end rc=0
  shift
  start=$(date +%s)
  log "stage $name: start"
  # A subshell with errexit on: `cmd || rc=$?` would switch errexit off inside cmd.
  set +e
  (set -e; "$@")
  rc=$?
  set -e
  end=$(date +%s)
  printf '%s\t%s\t%s\n' "$name" "$((end - start))" "$rc" >>"$AIRGAP_TIMINGS_FILE"
  log "stage $name: $((end - start))s (rc=$rc)"
  return "$rc"
}

# mod_dir MODULE@VERSION: download a module through the proxy, print its directory in GOMODCACHE.
mod_dir() {
  local json dir
  json=$(cd "$AIRGAP_WORK_DIR" && go mod download -json "$1") || die "go mod download $1 failed: $json"
  dir=$(jq -r '.Dir // empty' <<<"$json")
  [[ -n $dir && -d $dir ]] || die "no module dir for $1: $json"
  printf '%s\n' "$dir"
}

# own_version: version key of our own programs in cmd/ (a hash of their sources).
own_version() { printf 'src-%s\n' "$(hash_files "$AIRGAP_DIR/go.mod" "$AIRGAP_DIR/cmd")"; }

# bin_dir NAME VERSION: directory holding the built binaries of NAME at VERSION.
bin_dir() { printf '%s/%s-%s\n' "$AIRGAP_BIN_DIR" "$1" "$2"; }

# bin_settings NAME: the build settings a build of NAME records in its `.done` marker (none for most), so that
# changing them rebuilds it.
bin_settings() { case $1 in prometheus) printf 'tags=%s' "$PROMETHEUS_BUILD_TAGS" ;; esac; }

# built NAME VERSION: true when a previous build of NAME VERSION completed, with the current build settings.
built() { [[ -f "$(bin_dir "$1" "$2")/.done" && "$(cat "$(bin_dir "$1" "$2")/.done")" == "$(bin_settings "$1")" ]]; }

# hash_files FILE...: short content hash of files/directories (sorted, content and path relative to the
# repository, so that every clone of the same commit computes the same hash).
hash_files() {
  local f
  for f in "$@"; do
    if [[ -d $f ]]; then
      (cd "$f" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum)
    else
      sha256sum "$f"
    fi
  done | sed "s#$(dirname "$AIRGAP_DIR")/##" | sha256sum | cut -c1-12
}

# recipe_hash EXTRA...: hash of the pins, lib.sh and the given recipe inputs.
recipe_hash() { hash_files "$PINS_FILE" "$AIRGAP_DIR/pins.sh" "$AIRGAP_DIR/versions.env" "$AIRGAP_DIR/lib.sh" "$@"; }

image_recipe() { docker image inspect --format "{{ index .Config.Labels \"$AIRGAP_RECIPE_LABEL\" }}" "$1" 2>/dev/null || true; }

# image_tar TAG RECIPE: path of the `docker save` tarball of TAG built by RECIPE.
image_tar() { printf '%s/%s__%s.tar\n' "$AIRGAP_IMAGE_DIR" "$(tr '/:@' '___' <<<"$1")" "$2"; }

# ensure_image TAG RECIPE BUILD_FN [ARGS...]: make TAG present in the engine.
#  1. present with the same recipe label -> nothing to do
#  2. a tarball for (TAG, RECIPE) in the cache -> docker load
#  3. otherwise BUILD_FN ARGS... builds it (it must label it with RECIPE), then docker save to the cache.
ensure_image() {
  local tag=$1 recipe=$2 fn=$3 tar old_id
  shift 3
  tar=$(image_tar "$tag" "$recipe")
  old_id=$(docker image inspect --format '{{.Id}}' "$tag" 2>/dev/null || true)
  if [[ $(image_recipe "$tag") == "$recipe" ]]; then
    log "image $tag present (recipe $recipe)"
    if [[ ! -s $tar ]]; then
      docker save -o "$tar.tmp" "$tag"
      mv "$tar.tmp" "$tar"
    fi
  elif [[ -s $tar ]]; then
    log "image $tag: loading cached $tar"
    docker load -i "$tar" >/dev/null
  else
    log "image $tag: building (recipe $recipe)"
    "$fn" "$@"
    [[ $(image_recipe "$tag") == "$recipe" ]] || die "$fn did not produce $tag with recipe $recipe"
    rm -f "$AIRGAP_IMAGE_DIR/$(tr '/:@' '___' <<<"$tag")"__*.tar
    docker save -o "$tar.tmp" "$tag"
    mv "$tar.tmp" "$tar"
  fi
  [[ $(image_recipe "$tag") == "$recipe" ]] || die "image $tag has recipe '$(image_recipe "$tag")', want $recipe"
  remove_if_dangling "$old_id"
}

# remove_if_dangling ID: remove an image we built (it has our recipe label) once no tag points to it.
remove_if_dangling() {
  [[ -n $1 ]] || return 0
  [[ -n $(image_recipe "$1") ]] || return 0
  [[ $(docker image inspect --format '{{len .RepoTags}}' "$1" 2>/dev/null) == 0 ]] || return 0
  docker image rm "$1" >/dev/null 2>&1 || true
}

# import_rootfs DIR TAG RECIPE [--change ...]: tar DIR (numeric root ownership) into a one-layer image.
import_rootfs() {
  local dir=$1 tag=$2 recipe=$3
  shift 3
  tar --numeric-owner --xattrs -C "$dir" -c . |
    docker import --change "LABEL $AIRGAP_RECIPE_LABEL=$recipe" "$@" - "$tag" >/dev/null
}

# ensure_cmds CMD:DEBIAN_PACKAGE...: install (apt) the package of every missing command.
ensure_cmds() {
  local pair missing=()
  for pair in "$@"; do command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair#*:}"); done
  [[ ${#missing[@]} -gt 0 ]] || return 0
  log "installing ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive NEEDRESTART_SUSPEND=1 apt-get install -qq -y --no-install-recommends "${missing[@]}" >/dev/null ||
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive NEEDRESTART_SUSPEND=1 apt-get install -qq -y --no-install-recommends "${missing[@]}" >/dev/null; }
}

require_cmd() {
  local c
  for c in "$@"; do command -v "$c" >/dev/null 2>&1 || die "missing command: $c"; done
}
