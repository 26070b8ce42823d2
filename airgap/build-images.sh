#!/usr/bin/env bash
# Build, without any container registry, every image the 3-node kind cluster and the platform need:
#   - component images from the binaries of build-binaries.sh, each `docker import`ed from a small rootfs
#     (static binary + CA bundle + /etc/passwd; a Debian rootfs where iptables is needed);
#   - the kind node image: debootstrap rootfs + kind's base files (read from kind's module at build time)
#     + containerd/runc/CNI/crictl + kubeadm/kubelet/kubectl + the control-plane, CNI and storage images
#     imported into containerd's k8s.io namespace, committed with `docker commit` as kind's own build does;
#   - the platform's images (Traefik, Prometheus, prometheus-adapter, metrics-server, the registry) under their
#     upstream names: publish.sh puts them into the local registry the cluster's mirrors point at.
# Every image carries the label $AIRGAP_RECIPE_LABEL (hash of these scripts, versions.env and our sources)
# and is saved under $AIRGAP_CACHE_DIR/images: a rerun loads or keeps it instead of rebuilding.
# Usage: build-images.sh [all|rootfs]   (rootfs: only the debootstrap tarballs; needs no Go binaries)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
require_cmd docker tar sha256sum
ensure_cmds debootstrap:debootstrap jq:jq

DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
RECIPE=$(recipe_hash "$AIRGAP_DIR/build-images.sh" "$AIRGAP_DIR/images" "$AIRGAP_DIR/go.mod" "$AIRGAP_DIR/cmd")

# Debian packages: a small rootfs (CA bundle, busybox, iptables for kube-proxy/kindnetd) and the node's
# (the package list of kind's images/base/Dockerfile, less NFS/iSCSI/fuse-overlayfs which kind here never uses).
SLIM_PACKAGES=ca-certificates,iptables,ipset,conntrack,iproute2,busybox-static
NODE_PACKAGES=systemd,conntrack,iptables,nftables,iproute2,ethtool,util-linux,mount,kmod,libseccomp2,pigz,bash,ca-certificates,curl,jq,procps

# Scratch space of this run; removed on exit (stages run in subshells, so no per-directory bookkeeping).
RUN_TMP=$(mktemp -d "$AIRGAP_WORK_DIR/run.XXXXXX")
NODE_BUILD_CONTAINER=e2e-node-build-$$
cleanup() {
  docker rm -f -v "$NODE_BUILD_CONTAINER" >/dev/null 2>&1 || true
  rm -rf "$RUN_TMP"
}
trap cleanup EXIT
new_tmp() { mktemp -d "$RUN_TMP/d.XXXXXX"; }

# ---------------------------------------------------------------------------------------------------
# Debian root filesystems (cached as tarballs keyed by suite + package list)

# debootstrap_tar NAME PACKAGES: print the path of a cached minbase rootfs tarball with PACKAGES.
debootstrap_tar() {
  local name=$1 pkgs=$2 tar dir
  tar=$AIRGAP_ROOTFS_DIR/$DEBIAN_SUITE-$name-$(printf '%s %s' "$pkgs" "$DEBIAN_MIRROR" | sha256sum | cut -c1-12).tar
  if [[ ! -s $tar ]]; then
    dir=$(new_tmp)
    mkdir -p "$AIRGAP_ROOTFS_DIR/debs"
    log "debootstrap $DEBIAN_SUITE ($name): $pkgs"
    if ! debootstrap --variant=minbase --include="$pkgs" --cache-dir="$AIRGAP_ROOTFS_DIR/debs" \
      "$DEBIAN_SUITE" "$dir/rootfs" "$DEBIAN_MIRROR" >"$dir/debootstrap.log" 2>&1; then
      tail -n 30 "$dir/debootstrap.log" >&2
      die "debootstrap $name failed"
    fi
    # Slim it like the upstream -slim images: no apt lists or caches, docs, man pages, locales.
    rm -rf "$dir/rootfs"/var/lib/apt/lists/* "$dir/rootfs"/var/cache/apt/*.bin "$dir/rootfs"/var/cache/apt/archives/*.deb \
      "$dir/rootfs"/usr/share/doc/* "$dir/rootfs"/usr/share/man/* "$dir/rootfs"/usr/share/locale/* \
      "$dir/rootfs"/usr/share/info/* "$dir/rootfs"/var/log/*.log "$dir/rootfs"/var/log/apt/*
    tar --numeric-owner --xattrs -C "$dir/rootfs" -cf "$tar.tmp" .
    mv "$tar.tmp" "$tar"
    rm -rf "$dir"
  fi
  printf '%s\n' "$tar"
}

# extract_rootfs TAR: unpack a rootfs tarball into a new temporary directory and print it.
extract_rootfs() {
  local dir
  dir=$(new_tmp)
  tar --numeric-owner --xattrs -xpf "$1" -C "$dir"
  printf '%s\n' "$dir"
}

SLIM_DIR=
slim_dir() {
  [[ -n $SLIM_DIR ]] || SLIM_DIR=$(extract_rootfs "$(debootstrap_tar slim "$SLIM_PACKAGES")")
  printf '%s\n' "$SLIM_DIR"
}

# tiny_rootfs: a new directory with only the CA bundle, passwd/group (root, nobody, nonroot), /tmp.
tiny_rootfs() {
  local dir slim
  slim=$(slim_dir)
  dir=$(new_tmp)
  install -d -m 0755 "$dir/etc/ssl/certs" "$dir/bin" "$dir/usr/local/bin"
  install -d -m 1777 "$dir/tmp"
  install -m 0644 "$slim/etc/ssl/certs/ca-certificates.crt" "$dir/etc/ssl/certs/ca-certificates.crt"
  printf '%s\n' 'root:x:0:0:root:/root:/sbin/nologin' 'nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin' \
    'nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin' >"$dir/etc/passwd"
  printf '%s\n' 'root:x:0:' 'nobody:x:65534:' 'nonroot:x:65532:' >"$dir/etc/group"
  echo 'hosts: files dns' >"$dir/etc/nsswitch.conf"
  printf '%s\n' "$dir"
}

# add_busybox DIR APPLET...: Debian's static busybox as /bin/busybox with links for the applets.
add_busybox() {
  local dir=$1 applet slim
  shift
  slim=$(slim_dir)
  install -m 0755 "$slim/usr/bin/busybox" "$dir/bin/busybox"
  for applet in "$@"; do ln -sf busybox "$dir/bin/$applet"; done
}

# iptables_rootfs: the slim Debian rootfs whose iptables names go through our iptables-wrapper.
iptables_rootfs() {
  local dir name
  dir=$(extract_rootfs "$(debootstrap_tar slim "$SLIM_PACKAGES")")
  install -m 0755 "$AIRGAP_DIR/images/iptables-wrapper" "$dir/usr/sbin/iptables-wrapper"
  for name in iptables iptables-save iptables-restore ip6tables ip6tables-save ip6tables-restore; do
    ln -sf iptables-wrapper "$dir/usr/sbin/$name"
  done
  printf '%s\n' "$dir"
}

PATH_ENV='ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'

# ---------------------------------------------------------------------------------------------------
# Component images

KUBE_BIN=$(bin_dir kubernetes "$K8S_VERSION")
OWN_BIN=$(bin_dir own "$(own_version)")

build_kube_static_image() { # kube-apiserver, kube-controller-manager, kube-scheduler
  local name=$1 dir
  dir=$(tiny_rootfs)
  install -m 0755 "$KUBE_BIN/$name" "$dir/usr/local/bin/$name"
  import_rootfs "$dir" "registry.k8s.io/$name:$K8S_VERSION" "$RECIPE" --change "$PATH_ENV" \
    --change "ENTRYPOINT [\"/usr/local/bin/$name\"]"
}

build_kube_proxy_image() {
  local dir
  dir=$(iptables_rootfs)
  install -m 0755 "$KUBE_BIN/kube-proxy" "$dir/usr/local/bin/kube-proxy"
  import_rootfs "$dir" "registry.k8s.io/kube-proxy:$K8S_VERSION" "$RECIPE" --change "$PATH_ENV" \
    --change 'ENTRYPOINT ["/usr/local/bin/kube-proxy"]'
}

build_etcd_image() {
  local dir
  dir=$(tiny_rootfs)
  install -m 0755 "$(bin_dir etcd "$ETCD_VERSION")/etcd" "$dir/usr/local/bin/etcd"
  install -d -m 0700 "$dir/var/lib/etcd"
  import_rootfs "$dir" "registry.k8s.io/etcd:$ETCD_IMAGE_TAG" "$RECIPE" --change "$PATH_ENV" \
    --change 'ENTRYPOINT ["/usr/local/bin/etcd"]'
}

build_coredns_image() {
  # Runs as root (upstream: nonroot + file capability cap_net_bind_service on /coredns); kubeadm's
  # Deployment adds NET_BIND_SERVICE, which is what binding :53 needs.
  local dir
  dir=$(tiny_rootfs)
  install -m 0755 "$(bin_dir coredns "$COREDNS_VERSION")/coredns" "$dir/coredns"
  import_rootfs "$dir" "registry.k8s.io/coredns/coredns:$COREDNS_VERSION" "$RECIPE" \
    --change 'EXPOSE 53 53/udp' --change 'ENTRYPOINT ["/coredns"]'
}

build_pause_image() {
  local dir
  dir=$(new_tmp)
  install -D -m 0755 "$OWN_BIN/pause" "$dir/pause"
  import_rootfs "$dir" "registry.k8s.io/pause:$PAUSE_IMAGE_TAG" "$RECIPE" \
    --change 'USER 65535:65535' --change 'ENTRYPOINT ["/pause"]'
}

build_kindnetd_image() {
  local dir
  dir=$(iptables_rootfs)
  install -m 0755 "$OWN_BIN/kindnetd" "$dir/bin/kindnetd"
  import_rootfs "$dir" "$KINDNETD_IMAGE" "$RECIPE" --change "$PATH_ENV" \
    --change 'LABEL org.opencontainers.image.description=kindnetd-stand-in-from-airgap/cmd/kindnetd' \
    --change 'ENTRYPOINT ["/bin/kindnetd"]'
}

build_kube_router_image() {
  # kube-router's NetworkPolicy controller (versions.env): iptables through our wrapper, ipset.
  local dir
  dir=$(iptables_rootfs)
  install -m 0755 "$(bin_dir kube-router "$KUBE_ROUTER_VERSION")/kube-router" "$dir/usr/local/bin/kube-router"
  import_rootfs "$dir" "$KUBE_ROUTER_IMAGE" "$RECIPE" --change "$PATH_ENV" \
    --change 'ENTRYPOINT ["/usr/local/bin/kube-router"]'
}

build_local_path_provisioner_image() {
  local dir
  dir=$(tiny_rootfs)
  install -m 0755 "$(bin_dir local-path-provisioner "$LOCAL_PATH_PROVISIONER_VERSION")/local-path-provisioner" \
    "$dir/usr/local/bin/local-path-provisioner"
  import_rootfs "$dir" "$LOCAL_PATH_PROVISIONER_IMAGE" "$RECIPE" --change "$PATH_ENV" \
    --change 'ENTRYPOINT ["/usr/local/bin/local-path-provisioner"]'
}

build_local_path_helper_image() {
  # The helper pod runs the provisioner's setup/teardown scripts: it needs sh, mkdir and rm.
  local dir
  dir=$(tiny_rootfs)
  add_busybox "$dir" sh mkdir rm
  import_rootfs "$dir" "$LOCAL_PATH_HELPER_IMAGE" "$RECIPE" --change 'ENV PATH=/bin'
}

build_traefik_image() {
  # Like the official image (alpine, /usr/local/bin/traefik, /entrypoint.sh, CMD traefik), on busybox
  # (sh for the entrypoint; not wget: Debian's static busybox wget segfaults on these machines).
  local dir
  dir=$(tiny_rootfs)
  add_busybox "$dir" sh
  install -m 0755 "$(bin_dir traefik "$TRAEFIK_VERSION")/traefik" "$dir/usr/local/bin/traefik"
  install -m 0755 "$AIRGAP_DIR/images/traefik-entrypoint.sh" "$dir/entrypoint.sh"
  import_rootfs "$dir" "$TRAEFIK_IMAGE" "$RECIPE" --change "$PATH_ENV" --change 'EXPOSE 80' \
    --change 'ENTRYPOINT ["/entrypoint.sh"]' --change 'CMD ["traefik"]'
}

build_prometheus_image() {
  # Upstream layout (Dockerfile of the module): busybox, /bin/prometheus, /bin/promtool, the example
  # config as /etc/prometheus/prometheus.yml, data in /prometheus, user nobody.
  local dir src bin
  dir=$(tiny_rootfs)
  src=$(mod_dir "github.com/prometheus/prometheus@$PROMETHEUS_MODULE_VERSION")
  bin=$(bin_dir prometheus "$PROMETHEUS_VERSION")
  add_busybox "$dir" sh
  install -m 0755 "$bin/prometheus" "$bin/promtool" "$dir/bin/"
  install -D -m 0644 "$src/documentation/examples/prometheus.yml" "$dir/etc/prometheus/prometheus.yml"
  install -m 0644 "$src/LICENSE" "$src/NOTICE" "$dir/"
  install -d -m 0775 -o 65534 -g 65534 "$dir/prometheus"
  chown -R 65534:65534 "$dir/etc/prometheus"
  import_rootfs "$dir" "$PROMETHEUS_IMAGE" "$RECIPE" --change "$PATH_ENV" --change 'USER nobody' \
    --change 'WORKDIR /prometheus' --change 'EXPOSE 9090' --change 'VOLUME ["/prometheus"]' \
    --change 'ENTRYPOINT ["/bin/prometheus"]' \
    --change 'CMD ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"]'
}

build_prometheus_adapter_image() {
  # Upstream: distroless static, /adapter, user 65534.
  local dir
  dir=$(tiny_rootfs)
  install -m 0755 "$(bin_dir prometheus-adapter "$PROMETHEUS_ADAPTER_VERSION")/adapter" "$dir/adapter"
  import_rootfs "$dir" "$PROMETHEUS_ADAPTER_IMAGE" "$RECIPE" --change 'USER 65534' --change 'ENTRYPOINT ["/adapter"]'
}

build_metrics_server_image() {
  # Upstream: distroless static, /metrics-server, user 65534.
  local dir
  dir=$(tiny_rootfs)
  install -m 0755 "$(bin_dir metrics-server "$METRICS_SERVER_VERSION")/metrics-server" "$dir/metrics-server"
  import_rootfs "$dir" "$METRICS_SERVER_IMAGE" "$RECIPE" --change 'USER 65534' --change 'ENTRYPOINT ["/metrics-server"]'
}

build_flagger_image() {
  # Upstream (flagger's Dockerfile): alpine with CA certificates, /flagger run as ./flagger from /, user nobody.
  local dir
  dir=$(tiny_rootfs)
  install -m 0755 "$(bin_dir flagger "$FLAGGER_VERSION")/flagger" "$dir/flagger"
  import_rootfs "$dir" "$FLAGGER_IMAGE" "$RECIPE" --change 'USER 65534' --change 'WORKDIR /' --change 'ENTRYPOINT ["./flagger"]'
}

build_registry_image() {
  # Upstream layout (distribution's Dockerfile): /bin/registry, /etc/distribution/config.yml, data in
  # /var/lib/registry, port 5000, ENTRYPOINT registry serve <config>. Our config: filesystem storage,
  # deletes allowed, no auth (it listens on the host's loopback and the kind network only).
  local dir
  dir=$(tiny_rootfs)
  install -m 0755 "$(bin_dir registry "$REGISTRY_VERSION")/registry" "$dir/bin/registry"
  install -d -m 0755 "$dir/etc/distribution" "$dir/var/lib/registry"
  printf '%s\n' 'version: 0.1' 'log: {fields: {service: registry}}' \
    'storage: {filesystem: {rootdirectory: /var/lib/registry}, delete: {enabled: true}}' \
    'http: {addr: ":5000", headers: {X-Content-Type-Options: [nosniff]}}' >"$dir/etc/distribution/config.yml"
  import_rootfs "$dir" "$REGISTRY_IMAGE" "$RECIPE" --change "$PATH_ENV" --change 'EXPOSE 5000' \
    --change 'VOLUME ["/var/lib/registry"]' --change 'ENTRYPOINT ["registry"]' \
    --change 'CMD ["serve", "/etc/distribution/config.yml"]'
}

# check_image TAG EXPECT [docker run args...]: run the image (no network) and require EXPECT in its output
# (the exit status is not checked: some checks run a daemon without its configuration on purpose).
check_image() {
  local tag=$1 expect=$2 out
  shift 2
  out=$(docker run --rm --network none "$@" 2>&1) || true
  grep -qF -- "$expect" <<<"$out" || die "$tag: expected '$expect' from 'docker run $*', got: $out"
  log "ok $tag: $(grep -m1 -F -- "$expect" <<<"$out")"
}

NODE_COMPONENT_IMAGES=(
  "registry.k8s.io/kube-apiserver:$K8S_VERSION"
  "registry.k8s.io/kube-controller-manager:$K8S_VERSION"
  "registry.k8s.io/kube-scheduler:$K8S_VERSION"
  "registry.k8s.io/kube-proxy:$K8S_VERSION"
  "registry.k8s.io/etcd:$ETCD_IMAGE_TAG"
  "registry.k8s.io/coredns/coredns:$COREDNS_VERSION"
  "registry.k8s.io/pause:$PAUSE_IMAGE_TAG"
  "$KINDNETD_IMAGE"
  "$KUBE_ROUTER_IMAGE"
  "$LOCAL_PATH_PROVISIONER_IMAGE"
  "$LOCAL_PATH_HELPER_IMAGE"
)
# The platform's third-party images are not in the node image: the cluster pulls them under their upstream
# names through its registry mirrors, from the local registry publish.sh fills, as a user's cluster pulls them.
PLATFORM_IMAGES=("$TRAEFIK_IMAGE" "$PROMETHEUS_IMAGE" "$PROMETHEUS_ADAPTER_IMAGE" "$METRICS_SERVER_IMAGE" "$REGISTRY_IMAGE")

build_component_images() {
  local name
  for name in kube-apiserver kube-controller-manager kube-scheduler; do
    ensure_image "registry.k8s.io/$name:$K8S_VERSION" "$RECIPE" build_kube_static_image "$name"
    check_image "registry.k8s.io/$name:$K8S_VERSION" "Kubernetes $K8S_VERSION" "registry.k8s.io/$name:$K8S_VERSION" --version
  done
  ensure_image "registry.k8s.io/kube-proxy:$K8S_VERSION" "$RECIPE" build_kube_proxy_image
  check_image "registry.k8s.io/kube-proxy:$K8S_VERSION" "Kubernetes $K8S_VERSION" "registry.k8s.io/kube-proxy:$K8S_VERSION" --version
  check_image "registry.k8s.io/kube-proxy:$K8S_VERSION" "iptables v" --entrypoint iptables "registry.k8s.io/kube-proxy:$K8S_VERSION" --version
  ensure_image "registry.k8s.io/etcd:$ETCD_IMAGE_TAG" "$RECIPE" build_etcd_image
  check_image "registry.k8s.io/etcd:$ETCD_IMAGE_TAG" "etcd Version: ${ETCD_VERSION#v}" "registry.k8s.io/etcd:$ETCD_IMAGE_TAG" --version
  ensure_image "registry.k8s.io/coredns/coredns:$COREDNS_VERSION" "$RECIPE" build_coredns_image
  check_image "registry.k8s.io/coredns/coredns:$COREDNS_VERSION" "CoreDNS-${COREDNS_VERSION#v}" "registry.k8s.io/coredns/coredns:$COREDNS_VERSION" -version
  ensure_image "registry.k8s.io/pause:$PAUSE_IMAGE_TAG" "$RECIPE" build_pause_image
  check_image "registry.k8s.io/pause:$PAUSE_IMAGE_TAG" "pause" "registry.k8s.io/pause:$PAUSE_IMAGE_TAG" -v
  ensure_image "$KINDNETD_IMAGE" "$RECIPE" build_kindnetd_image
  check_image "$KINDNETD_IMAGE" "HOST_IP" "$KINDNETD_IMAGE"
  ensure_image "$KUBE_ROUTER_IMAGE" "$RECIPE" build_kube_router_image
  check_image "$KUBE_ROUTER_IMAGE" "$KUBE_ROUTER_VERSION" "$KUBE_ROUTER_IMAGE" --version
  check_image "$KUBE_ROUTER_IMAGE" "ipset v" --entrypoint ipset "$KUBE_ROUTER_IMAGE" --version
  ensure_image "$LOCAL_PATH_PROVISIONER_IMAGE" "$RECIPE" build_local_path_provisioner_image
  check_image "$LOCAL_PATH_PROVISIONER_IMAGE" "$LOCAL_PATH_PROVISIONER_VERSION" "$LOCAL_PATH_PROVISIONER_IMAGE" --version
  ensure_image "$LOCAL_PATH_HELPER_IMAGE" "$RECIPE" build_local_path_helper_image
  check_image "$LOCAL_PATH_HELPER_IMAGE" "helper-ok" "$LOCAL_PATH_HELPER_IMAGE" sh -c 'mkdir -m 0777 -p /tmp/v/x && rm -rf /tmp/v && echo helper-ok'
  ensure_image "$TRAEFIK_IMAGE" "$RECIPE" build_traefik_image
  check_image "$TRAEFIK_IMAGE" "Version:      ${TRAEFIK_VERSION#v}" "$TRAEFIK_IMAGE" version
  ensure_image "$PROMETHEUS_IMAGE" "$RECIPE" build_prometheus_image
  check_image "$PROMETHEUS_IMAGE" "prometheus, version ${PROMETHEUS_VERSION#v}" "$PROMETHEUS_IMAGE" --version
  check_image "$PROMETHEUS_IMAGE" "SUCCESS" --entrypoint /bin/promtool "$PROMETHEUS_IMAGE" check config /etc/prometheus/prometheus.yml
  ensure_image "$PROMETHEUS_ADAPTER_IMAGE" "$RECIPE" build_prometheus_adapter_image
  check_image "$PROMETHEUS_ADAPTER_IMAGE" "--prometheus-url" "$PROMETHEUS_ADAPTER_IMAGE" --help
  ensure_image "$METRICS_SERVER_IMAGE" "$RECIPE" build_metrics_server_image
  check_image "$METRICS_SERVER_IMAGE" "$METRICS_SERVER_VERSION" "$METRICS_SERVER_IMAGE" --version
  ensure_image "$FLAGGER_IMAGE" "$RECIPE" build_flagger_image
  check_image "$FLAGGER_IMAGE" "Flagger version ${FLAGGER_VERSION#v}" "$FLAGGER_IMAGE" -version
  ensure_image "$REGISTRY_IMAGE" "$RECIPE" build_registry_image
  check_image "$REGISTRY_IMAGE" "$REGISTRY_VERSION" "$REGISTRY_IMAGE" --version
}

# ---------------------------------------------------------------------------------------------------
# Node image

KIND_SRC=
kind_src() {
  [[ -n $KIND_SRC ]] || KIND_SRC=$(mod_dir "sigs.k8s.io/kind@$KIND_VERSION")
  printf '%s\n' "$KIND_SRC"
}

# Check our pins against what kind and kubeadm themselves reference, so a pin bump cannot drift.
check_pins() {
  local src km want got
  src=$(kind_src)
  km=$OWN_BIN/kind-manifests
  [[ $("$km" "$src" kindnetdImage) == "$KINDNETD_IMAGE" ]] || die "kind $KIND_VERSION uses $("$km" "$src" kindnetdImage), versions.env $KINDNETD_IMAGE"
  [[ $("$km" "$src" storageProvisionerImage) == "$LOCAL_PATH_PROVISIONER_IMAGE" ]] || die "local-path-provisioner pin differs from kind's"
  [[ $("$km" "$src" storageHelperImage) == "$LOCAL_PATH_HELPER_IMAGE" ]] || die "local-path-helper pin differs from kind's"
  grep -q "sandbox_image = \"registry.k8s.io/pause:$PAUSE_IMAGE_TAG\"" "$src/images/base/files/etc/containerd/config.toml" ||
    die "kind's containerd config does not use registry.k8s.io/pause:$PAUSE_IMAGE_TAG"
  want=$("$KUBE_BIN/kubeadm" config images list --kubernetes-version "$K8S_VERSION" 2>/dev/null | grep -v /pause: | sort)
  got=$(printf '%s\n' "${NODE_COMPONENT_IMAGES[@]}" | grep '^registry.k8s.io/' | grep -v /pause: | sort)
  [[ $want == "$got" ]] || die "kubeadm $K8S_VERSION wants images:"$'\n'"$want"$'\n'"we build:"$'\n'"$got"
  log "pins agree with kind $KIND_VERSION and kubeadm $K8S_VERSION"
}

# node_rootfs: the node's root filesystem, assembled as kind's images/base/Dockerfile does.
node_rootfs() {
  local dir src files f bin
  dir=$(extract_rootfs "$(debootstrap_tar node "$NODE_PACKAGES")")
  src=$(kind_src)
  files=$src/images/base/files
  # kind's static files: scripts 0755, everything else 0644.
  install -m 0755 "$files"/usr/local/bin/* "$dir/usr/local/bin/"
  install -d -m 0755 "$dir/kind/bin" "$dir/kind/manifests" "$dir/etc/containerd" "$dir/etc/default" \
    "$dir/etc/sysctl.d" "$dir/etc/systemd/system/kubelet.service.d"
  install -m 0644 "$files"/kind/*.txt "$dir/kind/"
  install -m 0755 "$files"/kind/bin/* "$dir/kind/bin/"
  for f in "$files"/etc/*; do if [[ -f $f ]]; then install -m 0644 "$f" "$dir/etc/"; fi; done
  install -m 0644 "$files"/etc/containerd/* "$dir/etc/containerd/"
  install -m 0644 "$files"/etc/default/* "$dir/etc/default/"
  install -m 0644 "$files"/etc/sysctl.d/* "$dir/etc/sysctl.d/"
  for f in "$files"/etc/systemd/system/*; do if [[ -f $f ]]; then install -m 0644 "$f" "$dir/etc/systemd/system/"; fi; done
  install -m 0644 "$files"/etc/systemd/system/kubelet.service.d/* "$dir/etc/systemd/system/kubelet.service.d/"

  # The systemd trimming of kind's Dockerfile.
  rm -f "$dir"/lib/systemd/system/sysinit.target.wants/systemd-tmpfiles-setup.service \
    "$dir"/lib/systemd/system/multi-user.target.wants/* "$dir"/etc/systemd/system/*.wants/* \
    "$dir"/lib/systemd/system/local-fs.target.wants/* "$dir"/lib/systemd/system/sockets.target.wants/*udev* \
    "$dir"/lib/systemd/system/sockets.target.wants/*initctl* "$dir"/lib/systemd/system/basic.target.wants/*
  echo "ReadKMsg=no" >>"$dir/etc/systemd/journald.conf"
  ln -sf /lib/systemd/systemd "$dir/sbin/init"
  chroot "$dir" systemctl enable kubelet.service containerd.service undo-mount-hacks.service >/dev/null 2>&1
  chroot "$dir" systemctl mask systemd-binfmt.service >/dev/null 2>&1
  install -d -m 0755 "$dir/etc/kubernetes/manifests"
  # Our one addition for this VM: see images/node/containerd-oom-score-adj-compat.
  install -m 0755 "$AIRGAP_DIR/images/node/containerd-oom-score-adj-compat" "$dir/usr/local/bin/"
  install -D -m 0644 "$AIRGAP_DIR/images/node/containerd-oom-score-adj-compat.conf" \
    "$dir/etc/systemd/system/containerd.service.d/10-oom-score-adj-compat.conf"

  # Runtime: containerd, runc, crictl, CNI plugins (where kind's base image puts them).
  bin=$(bin_dir containerd "$CONTAINERD_VERSION")
  install -m 0755 "$bin/containerd" "$bin/ctr" "$bin/containerd-shim-runc-v2" "$dir/usr/local/bin/"
  install -m 0755 "$(bin_dir runc "$RUNC_VERSION")/runc" "$dir/usr/local/sbin/runc"
  install -m 0755 "$(bin_dir crictl "$CRICTL_VERSION")/crictl" "$dir/usr/local/bin/crictl"
  install -d -m 0755 "$dir/opt/cni/bin"
  install -m 0755 "$(bin_dir cni-plugins "$CNI_PLUGINS_VERSION")"/* "$dir/opt/cni/bin/"
  # The default runtime spec with kind's createContainer hook and without rlimits.
  "$bin/ctr" oci spec |
    jq '.hooks.createContainer[.hooks.createContainer|length] |= . + {"path": "/kind/bin/mount-product-files.sh"}' |
    jq 'del(.process.rlimits)' >"$dir/etc/containerd/cri-base.json"

  # Kubernetes node binaries, /kind/version, and the default manifests from kind's own templates.
  install -m 0755 "$KUBE_BIN/kubeadm" "$KUBE_BIN/kubelet" "$KUBE_BIN/kubectl" "$dir/usr/bin/"
  printf '%s' "$K8S_VERSION" >"$dir/kind/version"
  "$OWN_BIN/kind-manifests" "$src" defaultCNIManifest >"$dir/kind/manifests/default-cni.yaml"
  # ... plus NetworkPolicy enforcement, as kind's own node image has it (images/node/network-policy.yaml).
  { echo '---'; sed "s#@KUBE_ROUTER_IMAGE@#$KUBE_ROUTER_IMAGE#" "$AIRGAP_DIR/images/node/network-policy.yaml"; } \
    >>"$dir/kind/manifests/default-cni.yaml"
  "$OWN_BIN/kind-manifests" "$src" defaultStorageManifest >"$dir/kind/manifests/default-storage.yaml"
  printf '%s\n' "$dir"
}

node_base_tag() { printf 'localhost/kind-node-base:%s-%s\n' "$K8S_VERSION" "$RECIPE"; }

build_node_base_image() {
  local dir
  dir=$(node_rootfs)
  # (docker import/commit cannot set STOPSIGNAL: the build container is run with --stop-signal instead,
  # and docker commit keeps it.)
  import_rootfs "$dir" "$(node_base_tag)" "$RECIPE" --change 'ENV container=docker' \
    --change 'ENTRYPOINT ["/usr/local/bin/entrypoint", "/sbin/init"]'
}

# build_node_image: start the base image as kind's builder does (sleep, no privileges), run containerd in it,
# import the component images (pinned, not unpacked), stop containerd, commit.
build_node_image() {
  local base tag cid=$NODE_BUILD_CONTAINER i refs missing
  base=$(node_base_tag)
  [[ $(image_recipe "$base") == "$RECIPE" ]] || build_node_base_image
  docker run -d --name "$cid" --network none --entrypoint=sleep --security-opt seccomp=unconfined \
    --stop-signal SIGRTMIN+3 "$base" infinity >/dev/null
  docker exec "$cid" bash -c 'nohup containerd >/var/log/containerd-build.log 2>&1 &'
  for i in $(seq 1 30); do
    docker exec "$cid" ctr version >/dev/null 2>&1 && break
    [[ $i -lt 30 ]] || { docker exec "$cid" tail -n 30 /var/log/containerd-build.log >&2; die "containerd did not start in $cid"; }
    sleep 1
  done
  for tag in "${NODE_COMPONENT_IMAGES[@]}"; do
    log "node image: importing $tag"
    docker exec -i "$cid" ctr --namespace=k8s.io images import --label=io.cri-containerd.pinned=pinned \
      --all-platforms --no-unpack --digests - <"$(image_tar "$tag" "$RECIPE")" >/dev/null
  done
  refs=$(docker exec "$cid" ctr --namespace=k8s.io images list -q)
  missing=
  for tag in "${NODE_COMPONENT_IMAGES[@]}"; do grep -qxF "$tag" <<<"$refs" || missing+=" $tag"; done
  [[ -z $missing ]] || die "node image lacks:$missing (has: $(tr '\n' ' ' <<<"$refs"))"
  docker exec "$cid" bash -c 'pkill -x containerd; for i in $(seq 50); do pgrep -x containerd >/dev/null || break; sleep 0.2; done
    rm -rf /run/containerd /var/log/containerd-build.log /tmp/* /root/.bash_history'
  docker commit \
    --change 'ENTRYPOINT ["/usr/local/bin/entrypoint", "/sbin/init"]' --change 'CMD []' \
    --change 'ENV HTTP_PROXY="" HTTPS_PROXY="" NO_PROXY=""' \
    --change "LABEL $AIRGAP_RECIPE_LABEL=$RECIPE" "$cid" "$NODE_IMAGE" >/dev/null
  docker rm -f -v "$cid" >/dev/null
  docker image rm "$base" >/dev/null
}

check_node_image() {
  local out
  out=$(docker run --rm --network none --entrypoint bash "$NODE_IMAGE" -c \
    'cat /kind/version; echo; containerd --version; runc --version | head -n1; crictl --version; kubelet --version;
     ls /opt/cni/bin | tr "\n" " "; echo; ls /kind/manifests | tr "\n" " "; echo; readlink /sbin/init')
  grep -q "^$K8S_VERSION\$" <<<"$out" || die "node image: /kind/version is not $K8S_VERSION: $out"
  grep -q "containerd.* $CONTAINERD_VERSION" <<<"$out" || die "node image: containerd is not $CONTAINERD_VERSION: $out"
  grep -q "default-cni.yaml default-storage.yaml" <<<"$out" || die "node image: manifests missing: $out"
  # (An empty CMD reads [] from the classic image store, null from the containerd one: both mean none.)
  [[ $(docker image inspect -f '{{.Config.StopSignal}} {{json .Config.Entrypoint}} {{json .Config.Cmd}}' "$NODE_IMAGE") =~ \
    ^'SIGRTMIN+3 ["/usr/local/bin/entrypoint","/sbin/init"] '(\[\]|null)$ ]] ||
    die "node image config: $(docker image inspect -f '{{.Config.StopSignal}} {{json .Config.Entrypoint}} {{json .Config.Cmd}}' "$NODE_IMAGE")"
  log "ok $NODE_IMAGE:"$'\n'"$out"
}

build_rootfs() {
  debootstrap_tar slim "$SLIM_PACKAGES" >/dev/null
  debootstrap_tar node "$NODE_PACKAGES" >/dev/null
}

require_binaries() {
  local pair
  for pair in own:"$(own_version)" kind:"$KIND_VERSION" kubernetes:"$K8S_VERSION" containerd:"$CONTAINERD_VERSION" \
    runc:"$RUNC_VERSION" crictl:"$CRICTL_VERSION" cni-plugins:"$CNI_PLUGINS_VERSION" etcd:"$ETCD_VERSION" \
    coredns:"$COREDNS_VERSION" local-path-provisioner:"$LOCAL_PATH_PROVISIONER_VERSION" traefik:"$TRAEFIK_VERSION" \
    kube-router:"$KUBE_ROUTER_VERSION" \
    prometheus:"$PROMETHEUS_VERSION" prometheus-adapter:"$PROMETHEUS_ADAPTER_VERSION" \
    metrics-server:"$METRICS_SERVER_VERSION" registry:"$REGISTRY_VERSION"; do
    built "${pair%%:*}" "${pair#*:}" || die "binaries ${pair%%:*} ${pair#*:} not built: run airgap/build-binaries.sh first"
  done
}

case ${1:-all} in
  rootfs)
    stage "images:rootfs" build_rootfs
    ;;
  all)
    stage "images:rootfs" build_rootfs
    require_binaries
    stage "images:check-pins" check_pins
    stage "images:components" build_component_images
    stage "images:node" ensure_image "$NODE_IMAGE" "$RECIPE" build_node_image
    check_node_image
    log "images ready:"
    printf '  %s\n' "${NODE_COMPONENT_IMAGES[@]}" "${PLATFORM_IMAGES[@]}" "$NODE_IMAGE" >&2
    ;;
  *) die "usage: $0 [all|rootfs]" ;;
esac
