#!/usr/bin/env bash
# Host settings a multi-node kind cluster needs (kind's known-issues page): several nodes' systemd
# and kubelets exhaust the default inotify limits. Only ever raises them.
set -euo pipefail
# shellcheck source=../lib.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/lib.sh"

if [[ $(cat /proc/sys/fs/inotify/max_user_instances) -lt 512 ]]; then
  log "raising fs.inotify.max_user_instances to 512 (was $(cat /proc/sys/fs/inotify/max_user_instances))"
  sysctl -qw fs.inotify.max_user_instances=512
fi
if [[ $(cat /proc/sys/fs/inotify/max_user_watches) -lt 524288 ]]; then
  log "raising fs.inotify.max_user_watches to 524288"
  sysctl -qw fs.inotify.max_user_watches=524288
fi

# A packet to a Service IP that leaves a node un-translated (sent before kube-proxy programmed the
# Service) must fail fast, as on a laptop with no route to 10.96.0.0/16: here it would otherwise
# reach this machine's intercepting HTTPS proxy, which answers 404 and keeps the connection open
# (the API server then reuses it for every availability check of an APIService). Nothing of the
# cluster's may leave the machine anyway. DOCKER-USER sees every packet containers send out.
SERVICE_CIDR=${AIRGAP_SERVICE_CIDR:-10.96.0.0/16}
if ! iptables -C DOCKER-USER -d "$SERVICE_CIDR" -p tcp -j REJECT --reject-with tcp-reset 2>/dev/null; then
  log "rejecting traffic to the Service CIDR $SERVICE_CIDR that leaves a kind node"
  iptables -I DOCKER-USER -d "$SERVICE_CIDR" -p tcp -j REJECT --reject-with tcp-reset
fi
