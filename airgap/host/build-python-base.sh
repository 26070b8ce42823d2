#!/usr/bin/env bash
# Build a local stand-in for the upstream `python:3.11-slim-bookworm` image, because our build
# machines cannot pull from any registry. Debian bookworm's own Python 3.11 from a debootstrap rootfs,
# plus this host's CA bundle so pip inside `docker build` trusts the machine's HTTPS proxy.
# It gets a private name, never the upstream one (the Dockerfile pins the upstream base by digest; our
# machines pass this image as its PYTHON_IMAGE build argument): nothing else ever builds on it by accident.
# Usage: build-python-base.sh [TAG]   (default $AIRGAP_PYTHON_IMAGE; skipped if the tag exists)
set -euo pipefail
# shellcheck source=../lib.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/lib.sh"
tag=${1:-$AIRGAP_PYTHON_IMAGE}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
ca_bundle=${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}

if docker image inspect "$tag" >/dev/null 2>&1; then
  echo "$tag already present"
  exit 0
fi
command -v debootstrap >/dev/null 2>&1 || DEBIAN_FRONTEND=noninteractive apt-get install -y debootstrap >/dev/null

rootfs=$(mktemp -d)
trap 'rm -rf "$rootfs"' EXIT
debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
  bookworm "$rootfs" "$mirror" >/dev/null
# Slim it the way the upstream slim images are slim: no apt lists, docs, man pages or locales.
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/usr/share/doc/* \
  "$rootfs"/usr/share/man/* "$rootfs"/usr/share/locale/* "$rootfs"/usr/share/info/*
ln -sf python3 "$rootfs/usr/bin/python"
install -D -m 0644 "$ca_bundle" "$rootfs/usr/local/share/build-proxy-ca.crt"

tar -C "$rootfs" -c . | docker import \
  --change 'ENV PIP_CERT=/usr/local/share/build-proxy-ca.crt' \
  --change 'ENV SSL_CERT_FILE=/usr/local/share/build-proxy-ca.crt' \
  --change 'ENV LANG=C.UTF-8' \
  --change 'CMD ["python3"]' \
  - "$tag" >/dev/null
echo "built $tag ($(docker image inspect "$tag" --format '{{.Size}}') bytes)"
