#!/usr/bin/env bash
# The Docker engine of our build machines (Debian 12, no engine, no registry), as users run Docker today:
# Docker Engine 29 (moby v2, built from the Go module proxy by build-binaries.sh) with the containerd
# image store (Engine 29's default), its own containerd v2 and runc, BuildKit through the buildx CLI
# plugin, listening on a socket of its own and reached through a docker context (the current context of a private DOCKER_CONFIG,
# exported by lib.sh). The default socket, /etc/docker and ~/.docker are left alone.
# Idempotent: returns at once when the engine answers. Prints the environment a shell needs to use it.
set -euo pipefail
# shellcheck source=../lib.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/lib.sh"

engine_answers() { docker info >/dev/null 2>&1; }

print_env() {
  docker version --format 'docker engine ready: {{.Server.Version}} (API {{.Server.APIVersion}}), CLI {{.Client.Version}}' >&2
  printf 'export DOCKER_CONFIG=%q\n' "$DOCKER_CONFIG"
}

if engine_answers; then
  print_env
  exit 0
fi
require_cmd docker
ensure_cmds iptables:iptables ip:iproute2 python3:python3
"$AIRGAP_DIR/build-binaries.sh" containerd runc docker-engine buildx >&2

containerd_bin=$(bin_dir containerd "$CONTAINERD_VERSION")
runc_bin=$(bin_dir runc "$RUNC_VERSION")
engine_bin=$(bin_dir docker-engine "$DOCKER_ENGINE_VERSION")
mkdir -p "$AIRGAP_STATE_DIR" "$AIRGAP_RUN_DIR" "$DOCKER_CONFIG/cli-plugins"
install -m 0755 "$(bin_dir buildx "$BUILDX_VERSION")/docker-buildx" "$DOCKER_CONFIG/cli-plugins/docker-buildx"

# runc, through the wrapper that drops CAP_SYS_RESOURCE from privileged containers' specs (this VM's
# capability bounding set lacks it; kind nodes are privileged), pointed at the runc built above.
install -m 0755 "$AIRGAP_DIR/host/runc-drop-sys-resource" "$AIRGAP_STATE_DIR/runc-drop-sys-resource.py"
printf '#!/bin/sh\nREAL_RUNC=%q exec %q "$@"\n' "$runc_bin/runc" "$AIRGAP_STATE_DIR/runc-drop-sys-resource.py" \
  >"$AIRGAP_STATE_DIR/runc-drop-sys-resource"
chmod 0755 "$AIRGAP_STATE_DIR/runc-drop-sys-resource"
export PATH=$engine_bin:$containerd_bin:$runc_bin:$PATH

cat >"$AIRGAP_STATE_DIR/containerd.toml" <<TOML
version = 3
root = "$AIRGAP_STATE_DIR/containerd"
state = "$AIRGAP_RUN_DIR/containerd"
[grpc]
  address = "$AIRGAP_RUN_DIR/containerd/containerd.sock"
TOML
cat >"$AIRGAP_STATE_DIR/daemon.json" <<JSON
{
  "hosts": ["unix://$AIRGAP_DOCKER_SOCKET"],
  "data-root": "$AIRGAP_STATE_DIR/docker",
  "exec-root": "$AIRGAP_RUN_DIR/docker",
  "pidfile": "$AIRGAP_RUN_DIR/docker.pid",
  "containerd": "$AIRGAP_RUN_DIR/containerd/containerd.sock",
  "runtimes": {"runc-drop-sys-resource": {"path": "$AIRGAP_STATE_DIR/runc-drop-sys-resource"}},
  "default-runtime": "runc-drop-sys-resource"
}
JSON

# A machine restart that keeps /run leaves the sockets of the last engine behind: a stale socket file
# would pass for a serving one, so clear them unless their daemon still runs, and wait for containerd
# to answer, not for its socket to exist.
containerd_socket=$AIRGAP_RUN_DIR/containerd/containerd.sock
if ! pgrep -f -- "--config $AIRGAP_STATE_DIR/containerd.toml" >/dev/null; then
  rm -f "$containerd_socket" "$containerd_socket.ttrpc"
  nohup containerd --config "$AIRGAP_STATE_DIR/containerd.toml" >"$AIRGAP_STATE_DIR/containerd.log" 2>&1 &
fi
containerd_ready=false
for _ in $(seq 1 60); do
  if ctr --address "$containerd_socket" version >/dev/null 2>&1; then
    containerd_ready=true
    break
  fi
  sleep 1
done
if [[ $containerd_ready != true ]]; then
  echo "containerd did not answer on $containerd_socket; last log lines:" >&2
  tail -n 30 "$AIRGAP_STATE_DIR/containerd.log" >&2
  exit 1
fi
if ! pgrep -f -- "--config-file $AIRGAP_STATE_DIR/daemon.json" >/dev/null; then
  rm -f "$AIRGAP_DOCKER_SOCKET" "$AIRGAP_RUN_DIR/docker.pid"
  nohup dockerd --config-file "$AIRGAP_STATE_DIR/daemon.json" >"$AIRGAP_STATE_DIR/dockerd.log" 2>&1 &
fi

# The context users switch to for Docker Desktop, Colima or rootless Docker: the CLI, kind and the
# roles all follow it.
docker context inspect "$AIRGAP_DOCKER_CONTEXT" >/dev/null 2>&1 ||
  docker context create "$AIRGAP_DOCKER_CONTEXT" --description "sentiment-platform airgap engine" \
    --docker "host=unix://$AIRGAP_DOCKER_SOCKET" >/dev/null
docker context use "$AIRGAP_DOCKER_CONTEXT" >/dev/null
for _ in $(seq 1 60); do
  if engine_answers; then
    print_env
    exit 0
  fi
  sleep 1
done
echo "dockerd did not start; last log lines:" >&2
tail -n 30 "$AIRGAP_STATE_DIR/dockerd.log" "$AIRGAP_STATE_DIR/containerd.log" >&2
exit 1
