#!/usr/bin/env bash
# Host settings a multi-node kind cluster needs (kind's known-issues page): several nodes' systemd
# and kubelets exhaust the default inotify limits. Only ever raises them.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

if [[ $(cat /proc/sys/fs/inotify/max_user_instances) -lt 512 ]]; then
  log "raising fs.inotify.max_user_instances to 512 (was $(cat /proc/sys/fs/inotify/max_user_instances))"
  sysctl -qw fs.inotify.max_user_instances=512
fi
if [[ $(cat /proc/sys/fs/inotify/max_user_watches) -lt 524288 ]]; then
  log "raising fs.inotify.max_user_watches to 524288"
  sysctl -qw fs.inotify.max_user_watches=524288
fi
