#!/usr/bin/env bash
# Start a Docker engine on one of our build machines (Debian 12, no engine running, no registry).
# Idempotent: returns at once when `docker info` already answers.
# Installs docker.io from Debian, registers the CAP_SYS_RESOURCE-dropping runc wrapper as the
# default runtime (privileged containers such as kind nodes need it here), starts dockerd in the background.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

if docker info >/dev/null 2>&1; then
  exit 0
fi
if ! command -v dockerd >/dev/null 2>&1; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends docker.io >/dev/null
fi

install -m 0755 "$here/runc-drop-sys-resource" /usr/local/sbin/runc-drop-sys-resource
mkdir -p /etc/docker
cat >/etc/docker/daemon.json <<'JSON'
{
  "runtimes": {"runc-drop-sys-resource": {"path": "/usr/local/sbin/runc-drop-sys-resource"}},
  "default-runtime": "runc-drop-sys-resource",
  "storage-driver": "overlay2"
}
JSON

log=/var/log/dockerd-hack.log
nohup dockerd >"$log" 2>&1 &
for _ in $(seq 1 60); do
  if docker info >/dev/null 2>&1; then
    echo "docker engine ready ($(docker version --format '{{.Server.Version}}'))"
    exit 0
  fi
  sleep 1
done
echo "dockerd did not start; last log lines:" >&2
tail -n 30 "$log" >&2
exit 1
