#!/usr/bin/env bash
# List what is left of the lab on this Docker host, one line each; exit 1 if anything is,
# 0 if nothing, 2 if Docker cannot be asked. `make clean` and .ci/run end with it.
#   containers  of the compose project, and of the lab's images outside any compose project
#   volumes     of the compose project; with --since EPOCH also every volume that no container
#               uses and that was created at or after EPOCH: an anonymous volume whose
#               container was removed without -v carries no label at all, so the start of a
#               run is the only way to tell it came from that run (.ci/run passes its own)
#   networks    of the compose project
#   images      the lab's (label org.mooseng.project=mooseng) and the base image when
#               images/make-base-image.sh made it; --keep-images leaves them out (the CI
#               keeps its images between runs, `make clean` removes them)
set -uo pipefail
cd "$(dirname "$0")/.."

since="" keep_images=false
while [ $# -gt 0 ]; do
  case "$1" in
    --since) since="${2:?--since needs seconds since the epoch}"; shift 2 ;;
    --keep-images) keep_images=true; shift ;;
    *) echo "usage: scripts/leftovers.sh [--since EPOCH] [--keep-images]" >&2; exit 2 ;;
  esac
done

project="${COMPOSE_PROJECT_NAME:-$(sed -n 's/^COMPOSE_PROJECT_NAME=//p' .env 2>/dev/null | tail -1)}"
project="${project:-mooseng}"
by_project="label=com.docker.compose.project=$project"
by_lab="label=org.mooseng.project=mooseng"
base_image="${BASE_IMAGE:-debian:bookworm-slim}"

if ! docker info >/dev/null 2>&1; then
  echo "leftovers: Docker is not reachable; cannot tell what is left" >&2
  exit 2
fi

left=$({
  docker ps -a --filter "$by_project" --format 'container {{.Names}} ({{.Status}})'
  docker ps -a --filter "$by_lab" \
    --format '{{.Label "com.docker.compose.project"}}|container {{.Names}} ({{.Status}}, image {{.Image}})' \
    | sed -n 's/^|//p'
  docker volume ls --filter "$by_project" --format 'volume {{.Name}}'
  if [ -n "$since" ]; then
    docker volume ls -q --filter dangling=true | while read -r name; do
      created=$(docker volume inspect --format '{{.CreatedAt}}' "$name" 2>/dev/null) || continue
      at=$(date -d "$created" +%s 2>/dev/null) || continue
      [ "$at" -ge "$since" ] && echo "volume $name (unused, created $created: during this run)"
    done
  fi
  docker network ls --filter "$by_project" --format 'network {{.Name}}'
  if ! $keep_images; then
    docker image ls --filter "$by_lab" --format 'image {{.Repository}}:{{.Tag}} ({{.ID}})'
    if [ "$(docker image inspect "$base_image" --format '{{index .Config.Labels "org.mooseng.base-image"}}' 2>/dev/null)" = "true" ]; then
      echo "image $base_image (the base image images/make-base-image.sh made)"
    fi
  fi
} | sort -u)
if [ -z "$left" ]; then
  echo "leftovers: nothing of project $project is left"
  exit 0
fi
printf '%s\n' "$left"
echo "leftovers: $(printf '%s\n' "$left" | wc -l) thing(s) of project $project left (listed above)"
exit 1
