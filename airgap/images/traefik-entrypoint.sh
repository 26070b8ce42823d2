#!/bin/sh
# Entrypoint of our local traefik image, with the behaviour of the official image's:
# arguments that start with "-", or that name a traefik subcommand, are handed to traefik;
# anything else runs as a command of its own.
set -e
case "${1:-}" in
  -*) set -- traefik "$@" ;;
  traefik) ;;
  *) if [ -n "${1:-}" ] && traefik "$1" --help >/dev/null 2>&1; then set -- traefik "$@"; fi ;;
esac
exec "$@"
