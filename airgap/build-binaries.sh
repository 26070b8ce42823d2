#!/usr/bin/env bash
# Build every Go binary the e2e images need, from the Go module proxy only, into
# $AIRGAP_CACHE_DIR/bin/<name>-<version>/ (a `.done` marker makes reruns skip finished builds).
# Usage: build-binaries.sh [TARGET...]   (default: all; targets listed in ALL_TARGETS below)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
require_cmd go nice
ensure_cmds jq:jq

ALL_TARGETS=(own kind kubernetes containerd runc crictl cni-plugins etcd coredns local-path-provisioner
  traefik prometheus prometheus-adapter metrics-server flagger docker-engine buildx registry kube-router)

# origin_hash MODULE@VERSION: the VCS commit the proxy records for a version ("" when it has none).
origin_hash() { (cd "$AIRGAP_WORK_DIR" && go mod download -json "$1") | jq -r '.Origin.Hash // empty'; }

# finish NAME VERSION: list the built files and mark the build complete (with its build settings, which
# `built` compares).
finish() {
  local dir
  dir=$(bin_dir "$1" "$2")
  ls -l "$dir" >&2
  bin_settings "$1" >"$dir/.done"
}

# go_build_in_module MODULE VERSION OUTDIR [go build args...]: build inside the module's own directory
# (needed when its go.mod has replace/exclude lines, which `go install mod@version` refuses).
# -mod=readonly: module zips carry vendor/modules.txt but not the vendored code, so the vendor directory
# must be ignored; dependencies come from the proxy as go.sum lists them, and go.mod is never rewritten.
go_build_in_module() {
  local mod=$1 ver=$2 out=$3 dir
  shift 3
  dir=$(mod_dir "$mod@$ver")
  mkdir -p "$out"
  (cd "$dir" && "${GO_NICE[@]}" go build -mod=readonly -trimpath -o "$out/" "$@")
}

build_own() {
  # Our own small programs (airgap/cmd): pause, the kindnetd stand-in, the kind manifest extractor.
  local ver out
  ver=$(own_version)
  built own "$ver" && return 0
  out=$(bin_dir own "$ver")
  mkdir -p "$out"
  (cd "$AIRGAP_DIR" && "${GO_NICE[@]}" go build -trimpath -ldflags "-s -w" -o "$out/" ./cmd/...)
  finish own "$ver"
  # builds of earlier source versions are of no further use
  find "$AIRGAP_BIN_DIR" -maxdepth 1 -name 'own-src-*' ! -name "own-$ver" -exec rm -rf {} +
}

build_kind() {
  built kind "$KIND_VERSION" && return 0
  local out
  out=$(bin_dir kind "$KIND_VERSION")
  mkdir -p "$out"
  GOBIN=$out "${GO_NICE[@]}" go install -trimpath -ldflags "-s -w" "sigs.k8s.io/kind@$KIND_VERSION"
  "$out/kind" version
  finish kind "$KIND_VERSION"
}

build_kubernetes() {
  # A wrapper module that requires k8s.io/kubernetes and points every k8s.io staging module at its
  # published release (k8s.io/kubernetes' own go.mod replaces them with ./staging/... paths, which the
  # module zip does not contain). Version ldflags as hack/lib/version.sh writes them.
  built kubernetes "$K8S_VERSION" && return 0
  local out src wrap commit ldflags major minor
  out=$(bin_dir kubernetes "$K8S_VERSION")
  src=$(mod_dir "k8s.io/kubernetes@$K8S_VERSION")
  commit=$(origin_hash "k8s.io/kubernetes@$K8S_VERSION")
  wrap=$AIRGAP_WORK_DIR/k8s-wrapper-$K8S_VERSION
  rm -rf "$wrap" && mkdir -p "$wrap" "$out"
  {
    echo "module e2e.local/kubernetes-build"
    echo
    grep -m1 '^go ' "$src/go.mod"
    echo
    echo "require k8s.io/kubernetes $K8S_VERSION"
    echo
    echo "replace ("
    # every "k8s.io/x => ./staging/src/k8s.io/x" line becomes "k8s.io/x => k8s.io/x <staging version>"
    sed -n 's#^\s*\(k8s\.io/[^ ]*\) => \./staging/.*#\t\1 => \1 '"$K8S_STAGING_VERSION"'#p' "$src/go.mod"
    echo ")"
  } >"$wrap/go.mod"
  [[ $(grep -c ' => k8s.io/' "$wrap/go.mod") -gt 20 ]] || die "could not derive staging replaces from $src/go.mod"
  [[ $K8S_VERSION =~ ^v([0-9]+)\.([0-9]+)\. ]] || die "bad K8S_VERSION $K8S_VERSION"
  major=${BASH_REMATCH[1]} minor=${BASH_REMATCH[2]}
  local -a kv=(gitVersion="$K8S_VERSION" gitMajor="$major" gitMinor="$minor" gitCommit="$commit"
    gitTreeState=clean buildDate="$(date -u +%Y-%m-%dT%H:%M:%SZ)")
  ldflags="-s -w"
  local pair
  for pair in "${kv[@]}"; do
    ldflags+=" -X k8s.io/client-go/pkg/version.${pair%%=*}=${pair#*=}"
    ldflags+=" -X k8s.io/component-base/version.${pair%%=*}=${pair#*=}"
  done
  (cd "$wrap" && "${GO_NICE[@]}" go build -mod=mod -trimpath -ldflags "$ldflags" -o "$out/" \
    k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kube-proxy \
    k8s.io/kubernetes/cmd/kubeadm k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kubectl)
  "$out/kubeadm" version -o short | grep -qx "$K8S_VERSION" || die "kubeadm reports $("$out/kubeadm" version -o short)"
  "$out/kubelet" --version
  finish kubernetes "$K8S_VERSION"
}

build_containerd() {
  built containerd "$CONTAINERD_VERSION" && return 0
  local out pkg=github.com/containerd/containerd/v2 rev
  out=$(bin_dir containerd "$CONTAINERD_VERSION")
  rev=$(origin_hash "$pkg@$CONTAINERD_VERSION")
  # Static, no cgo; without the optional snapshotters kind does not use either.
  go_build_in_module "$pkg" "$CONTAINERD_VERSION" "$out" \
    -tags "no_btrfs no_devmapper no_zfs no_aufs urfave_cli_no_docs" \
    -ldflags "-s -w -X $pkg/version.Version=$CONTAINERD_VERSION -X $pkg/version.Revision=$rev -X $pkg/version.Package=$pkg" \
    ./cmd/containerd ./cmd/ctr ./cmd/containerd-shim-runc-v2
  "$out/containerd" --version
  finish containerd "$CONTAINERD_VERSION"
}

build_runc() {
  # runc needs cgo for libseccomp; linked static-pie as runc's own `make static` does.
  built runc "$RUNC_VERSION" && return 0
  if ! dpkg -s libseccomp-dev >/dev/null 2>&1; then
    log "installing libseccomp-dev (runc's seccomp support)"
    ensure_cmds gcc:gcc pkg-config:pkg-config
    DEBIAN_FRONTEND=noninteractive NEEDRESTART_SUSPEND=1 apt-get install -qq -y --no-install-recommends libseccomp-dev libc6-dev >/dev/null ||
      { apt-get update -qq && DEBIAN_FRONTEND=noninteractive NEEDRESTART_SUSPEND=1 apt-get install -qq -y --no-install-recommends libseccomp-dev libc6-dev >/dev/null; }
  fi
  local out rev
  out=$(bin_dir runc "$RUNC_VERSION")
  rev=$(origin_hash "github.com/opencontainers/runc@$RUNC_VERSION")
  CGO_ENABLED=1 go_build_in_module github.com/opencontainers/runc "$RUNC_VERSION" "$out" \
    -buildmode=pie -tags "seccomp urfave_cli_no_docs netgo osusergo" \
    -ldflags "-s -w -X main.gitCommit=$rev -linkmode external -extldflags -static-pie" .
  "$out/runc" --version
  finish runc "$RUNC_VERSION"
}

build_crictl() {
  built crictl "$CRICTL_VERSION" && return 0
  local out
  out=$(bin_dir crictl "$CRICTL_VERSION")
  go_build_in_module sigs.k8s.io/cri-tools "$CRICTL_VERSION" "$out" \
    -ldflags "-s -w -X sigs.k8s.io/cri-tools/pkg/version.Version=$CRICTL_VERSION" ./cmd/crictl
  "$out/crictl" --version
  finish crictl "$CRICTL_VERSION"
}

build_cni_plugins() {
  # The four plugins kind's node image ships (images/base/Dockerfile).
  built cni-plugins "$CNI_PLUGINS_VERSION" && return 0
  local out
  out=$(bin_dir cni-plugins "$CNI_PLUGINS_VERSION")
  go_build_in_module github.com/containernetworking/plugins "$CNI_PLUGINS_VERSION" "$out" \
    -ldflags "-s -w -X github.com/containernetworking/plugins/pkg/utils/buildversion.BuildVersion=$CNI_PLUGINS_VERSION" \
    ./plugins/ipam/host-local ./plugins/main/loopback ./plugins/main/ptp ./plugins/meta/portmap
  finish cni-plugins "$CNI_PLUGINS_VERSION"
}

build_etcd() {
  # go.etcd.io/etcd/server/v3 replaces its sibling modules with ../ paths: build it from a wrapper module.
  built etcd "$ETCD_VERSION" && return 0
  local out wrap rev
  out=$(bin_dir etcd "$ETCD_VERSION")
  rev=$(origin_hash "go.etcd.io/etcd/v3@$ETCD_VERSION")
  wrap=$AIRGAP_WORK_DIR/etcd-wrapper-$ETCD_VERSION
  rm -rf "$wrap" && mkdir -p "$wrap" "$out"
  printf 'module e2e.local/etcd-build\n\ngo 1.24\n\nrequire go.etcd.io/etcd/server/v3 %s\n' "$ETCD_VERSION" >"$wrap/go.mod"
  (cd "$wrap" && "${GO_NICE[@]}" go build -mod=mod -trimpath \
    -ldflags "-s -w -X go.etcd.io/etcd/api/v3/version.GitSHA=${rev:0:9}" -o "$out/etcd" go.etcd.io/etcd/server/v3)
  "$out/etcd" --version
  finish etcd "$ETCD_VERSION"
}

build_coredns() {
  built coredns "$COREDNS_VERSION" && return 0
  local out rev
  out=$(bin_dir coredns "$COREDNS_VERSION")
  rev=$(origin_hash "github.com/coredns/coredns@$COREDNS_VERSION")
  go_build_in_module github.com/coredns/coredns "$COREDNS_VERSION" "$out" \
    -ldflags "-s -w -X github.com/coredns/coredns/coremain.GitCommit=${rev:0:7}" .
  "$out/coredns" -version
  finish coredns "$COREDNS_VERSION"
}

build_local_path_provisioner() {
  built local-path-provisioner "$LOCAL_PATH_PROVISIONER_VERSION" && return 0
  local out
  out=$(bin_dir local-path-provisioner "$LOCAL_PATH_PROVISIONER_VERSION")
  go_build_in_module github.com/rancher/local-path-provisioner "$LOCAL_PATH_PROVISIONER_VERSION" "$out" \
    -ldflags "-s -w -X main.VERSION=$LOCAL_PATH_PROVISIONER_VERSION" .
  "$out/local-path-provisioner" --version
  finish local-path-provisioner "$LOCAL_PATH_PROVISIONER_VERSION"
}

build_traefik() {
  # The web UI assets are built by yarn upstream and are not in the module: the dashboard stays empty.
  # Version without "v" and the release codename, as Traefik's release (goreleaser) stamps them.
  built traefik "$TRAEFIK_VERSION" && return 0
  local out src codename pkg=github.com/traefik/traefik/v3
  out=$(bin_dir traefik "$TRAEFIK_VERSION")
  src=$(mod_dir "$pkg@$TRAEFIK_VERSION")
  codename=$(sed -n 's/^ *CODENAME: *//p' "$src/.github/workflows/release.yaml" 2>/dev/null | head -n1)
  go_build_in_module "$pkg" "$TRAEFIK_VERSION" "$out" \
    -ldflags "-s -w -X $pkg/pkg/version.Version=${TRAEFIK_VERSION#v} -X $pkg/pkg/version.Codename=${codename:-cheddar} -X $pkg/pkg/version.BuildDate=$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
    ./cmd/traefik
  "$out/traefik" version
  finish traefik "$TRAEFIK_VERSION"
}

build_prometheus() {
  # Without the `builtinassets` tag: the React UI is built by npm upstream and is not in the module,
  # so the server and its HTTP API work and the web UI pages do not.
  built prometheus "$PROMETHEUS_VERSION" && return 0
  local out rev v=github.com/prometheus/common/version
  out=$(bin_dir prometheus "$PROMETHEUS_VERSION")
  rm -rf "$out"
  rev=$(origin_hash "github.com/prometheus/prometheus@$PROMETHEUS_MODULE_VERSION")
  go_build_in_module github.com/prometheus/prometheus "$PROMETHEUS_MODULE_VERSION" "$out" \
    -tags "$PROMETHEUS_BUILD_TAGS" \
    -ldflags "-s -w -X $v.Version=${PROMETHEUS_VERSION#v} -X $v.Revision=$rev -X $v.Branch=HEAD -X $v.BuildUser=e2e@local -X $v.BuildDate=$(date -u +%Y%m%d-%H:%M:%S)" \
    ./cmd/prometheus ./cmd/promtool
  "$out/prometheus" --version
  finish prometheus "$PROMETHEUS_VERSION"
}

build_prometheus_adapter() {
  built prometheus-adapter "$PROMETHEUS_ADAPTER_VERSION" && return 0
  local out
  out=$(bin_dir prometheus-adapter "$PROMETHEUS_ADAPTER_VERSION")
  go_build_in_module sigs.k8s.io/prometheus-adapter "$PROMETHEUS_ADAPTER_VERSION" "$out" \
    -ldflags "-s -w" ./cmd/adapter
  local help
  help=$("$out/adapter" --help 2>&1) || true
  grep -q -- '--prometheus-url' <<<"$help" || die "adapter binary does not run: $help"
  finish prometheus-adapter "$PROMETHEUS_ADAPTER_VERSION"
}

build_metrics_server() {
  # Version ldflags as its Makefile sets them (client-go's version package).
  built metrics-server "$METRICS_SERVER_VERSION" && return 0
  local out rev v=k8s.io/client-go/pkg/version
  out=$(bin_dir metrics-server "$METRICS_SERVER_VERSION")
  rev=$(origin_hash "sigs.k8s.io/metrics-server@$METRICS_SERVER_VERSION")
  go_build_in_module sigs.k8s.io/metrics-server "$METRICS_SERVER_VERSION" "$out" \
    -ldflags "-s -w -X $v.gitVersion=$METRICS_SERVER_VERSION -X $v.gitCommit=$rev -X $v.buildDate=$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
    ./cmd/metrics-server
  "$out/metrics-server" --version
  finish metrics-server "$METRICS_SERVER_VERSION"
}

build_flagger() {
  # Static (lib.sh: CGO_ENABLED=0), as flagger's Dockerfile builds it; the revision ldflag as its release sets it.
  built flagger "$FLAGGER_VERSION" && return 0
  local out rev pkg=github.com/fluxcd/flagger
  out=$(bin_dir flagger "$FLAGGER_VERSION")
  rev=$(origin_hash "$pkg@$FLAGGER_VERSION")
  go_build_in_module "$pkg" "$FLAGGER_VERSION" "$out" \
    -ldflags "-s -w -X $pkg/pkg/version.REVISION=$rev" ./cmd/flagger
  "$out/flagger" -version
  finish flagger "$FLAGGER_VERSION"
}

build_docker_engine() {
  # dockerd and docker-proxy of the e2e host's engine; static and without cgo (so without the btrfs and
  # zfs graph drivers, which the containerd image store does not use), tags as moby's hack/make.sh sets them.
  built docker-engine "$DOCKER_ENGINE_VERSION" && return 0
  local out rev pkg=github.com/moby/moby/v2
  out=$(bin_dir docker-engine "$DOCKER_ENGINE_VERSION")
  rev=$(origin_hash "$pkg@$DOCKER_ENGINE_VERSION")
  go_build_in_module "$pkg" "$DOCKER_ENGINE_VERSION" "$out" \
    -tags "netgo osusergo static_build nri_no_wasm exclude_graphdriver_btrfs exclude_graphdriver_zfs" \
    -ldflags "-s -w -X $pkg/dockerversion.Version=$DOCKER_ENGINE_REPORTED_VERSION -X $pkg/dockerversion.GitCommit=${rev:0:7}" \
    ./cmd/dockerd ./cmd/docker-proxy
  "$out/dockerd" --version
  finish docker-engine "$DOCKER_ENGINE_VERSION"
}

build_buildx() {
  # The docker CLI's BuildKit front end (a CLI plugin): `docker buildx build`, as Docker Desktop and
  # Engine packages ship it.
  built buildx "$BUILDX_VERSION" && return 0
  local out rev pkg=github.com/docker/buildx
  out=$(bin_dir buildx "$BUILDX_VERSION")
  rev=$(origin_hash "$pkg@$BUILDX_VERSION")
  go_build_in_module "$pkg" "$BUILDX_VERSION" "$out" \
    -ldflags "-s -w -X $pkg/version.Version=$BUILDX_VERSION -X $pkg/version.Revision=${rev:0:12} -X $pkg/version.Package=$pkg" \
    ./cmd/buildx
  mv "$out/buildx" "$out/docker-buildx"
  "$out/docker-buildx" version
  finish buildx "$BUILDX_VERSION"
}

build_registry() {
  # CNCF distribution's registry server: the local registry beside the e2e cluster.
  built registry "$REGISTRY_VERSION" && return 0
  local out pkg=github.com/distribution/distribution/v3
  out=$(bin_dir registry "$REGISTRY_VERSION")
  go_build_in_module "$pkg" "$REGISTRY_VERSION" "$out" \
    -ldflags "-s -w -X $pkg/version.version=$REGISTRY_VERSION" ./cmd/registry
  "$out/registry" --version
  finish registry "$REGISTRY_VERSION"
}

build_kube_router() {
  # Only its NetworkPolicy controller runs (see versions.env); version ldflags as its Makefile sets them.
  built kube-router "$KUBE_ROUTER_VERSION" && return 0
  local out pkg=github.com/cloudnativelabs/kube-router/v2
  out=$(bin_dir kube-router "$KUBE_ROUTER_VERSION")
  go_build_in_module "$pkg" "$KUBE_ROUTER_VERSION" "$out" \
    -ldflags "-s -w -X $pkg/pkg/version.Version=$KUBE_ROUTER_VERSION -X $pkg/pkg/version.BuildDate=$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
    ./cmd/kube-router
  "$out/kube-router" --version
  finish kube-router "$KUBE_ROUTER_VERSION"
}

targets=("$@")
[[ ${#targets[@]} -gt 0 ]] || targets=("${ALL_TARGETS[@]}")
for t in "${targets[@]}"; do
  fn=build_${t//-/_}
  declare -F "$fn" >/dev/null || die "unknown target $t (known: ${ALL_TARGETS[*]})"
  stage "bin:$t" "$fn"
done
