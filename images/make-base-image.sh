#!/usr/bin/env bash
# Make the Debian bookworm base image without a container registry.
#
# The Dockerfiles start FROM ${BASE_IMAGE} (default debian:bookworm-slim). Where
# a registry is reachable that tag is simply pulled. Where it is not (this lab's
# reference machine), this script builds an equivalent image from Debian's
# packages with debootstrap and `docker import`s it under the same tag.
#
# Skipped when the tag already exists or a pull succeeds.
# Settings: BASE_IMAGE (tag to produce), DEBIAN_MIRROR, DEBIAN_SUITE.
set -euo pipefail

BASE_IMAGE="${BASE_IMAGE:-debian:bookworm-slim}"
DEBIAN_MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
DEBIAN_SUITE="${DEBIAN_SUITE:-bookworm}"

log() { printf '%s base-image: %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

if docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
  log "image=$BASE_IMAGE already present, nothing to do"
  exit 0
fi
if timeout 60 docker pull "$BASE_IMAGE" >/dev/null 2>&1; then
  log "image=$BASE_IMAGE pulled from a registry"
  exit 0
fi
if ! command -v debootstrap >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    log "installing debootstrap from Debian's packages"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
  else
    log "error: no registry reachable and debootstrap is not installed (apt-get install debootstrap)"
    exit 1
  fi
fi

rootfs="$(mktemp -d /tmp/mooseng-rootfs.XXXXXX)"
trap 'rm -rf "$rootfs"' EXIT
log "no registry: debootstrapping $DEBIAN_SUITE from $DEBIAN_MIRROR into $rootfs"
start=$(date +%s)
debootstrap --variant=minbase --include=ca-certificates \
  "$DEBIAN_SUITE" "$rootfs" "$DEBIAN_MIRROR" >"$rootfs.log" 2>&1 || {
  log "error: debootstrap failed, last lines of its log:"; tail -20 "$rootfs.log" >&2; exit 1; }
rm -f "$rootfs.log"
# Trim like the official slim image: no apt lists, caches, docs or man pages.
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb \
       "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* "$rootfs"/var/log/*.log
log "importing as $BASE_IMAGE"
tar -C "$rootfs" -c . | docker import --change 'CMD ["bash"]' --change 'LABEL org.mooseng.base-image=true' - "$BASE_IMAGE" >/dev/null
log "image=$BASE_IMAGE built in $(( $(date +%s) - start ))s"
