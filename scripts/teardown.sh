#!/usr/bin/env bash
# Take the lab down: `make down`, `make clean` and .ci/run call this.
#   (no option)  every container of the compose project goes, each with its anonymous
#                volumes, and the project's networks; named volumes (the cluster's data) stay,
#                so `make up` brings every file back
#   --volumes    the project's named volumes too
#   --images     the images this repo builds (label org.mooseng.project=mooseng), and the base
#                image when images/make-base-image.sh made it (label org.mooseng.base-image)
# Compose stops the services first, in dependency order and with their grace periods. Then
# the Docker CLI sweeps by label, so containers that compose no longer lists go too (a one-off
# `compose run`, a service of a profile that is not enabled such as grafana, an orphan; with
# --images also a `docker run` of a lab image outside compose, which would keep its image),
# always with `docker rm -v`: a container
# removed without -v leaves its anonymous volumes behind, detached and with nothing left to
# tell whose they were (issue 13, item 14). scripts/leftovers.sh lists what remains.
set -uo pipefail
cd "$(dirname "$0")/.."

volumes=false images=false
for arg in "$@"; do
  case "$arg" in
    --volumes) volumes=true ;;
    --images) images=true ;;
    *) echo "usage: scripts/teardown.sh [--volumes] [--images]" >&2; exit 2 ;;
  esac
done

if [ -z "${COMPOSE:-}" ]; then
  COMPOSE="docker-compose"
  docker compose version >/dev/null 2>&1 && COMPOSE="docker compose"
fi
project="${COMPOSE_PROJECT_NAME:-$(sed -n 's/^COMPOSE_PROJECT_NAME=//p' .env 2>/dev/null | tail -1)}"
project="${project:-mooseng}"
by_project="label=com.docker.compose.project=$project"
by_lab="label=org.mooseng.project=mooseng"
base_image="${BASE_IMAGE:-debian:bookworm-slim}"
failed=0
say() { printf '==> %s\n' "$*"; }
try() { "$@" || { echo "teardown: '$*' failed" >&2; failed=1; }; }

if ! docker info >/dev/null 2>&1; then
  echo "teardown: Docker is not reachable; nothing was removed" >&2
  exit 1
fi

# The project's containers: its compose ones and, with --images, containers of lab images
# that belong to no compose project (docker run). Another project's are never touched.
containers() {  # $1: "" (running ones) or "-a" (all)
  { docker ps -q $1 --filter "$by_project"
    if $images; then
      docker ps $1 --filter "$by_lab" \
        --format '{{.ID}} {{.Label "com.docker.compose.project"}}' | awk 'NF == 1 {print $1}'
    fi
  } | sort -u
}

# compose needs .env (env_file) to load the project at all.
if [ -f .env ]; then
  say "stopping project $project"
  $COMPOSE stop || true
fi
mapfile -t running < <(containers "")
if [ "${#running[@]}" -gt 0 ]; then
  say "stopping ${#running[@]} more container(s) of $project"
  try docker stop "${running[@]}" >/dev/null
fi
mapfile -t all < <(containers "-a")
if [ "${#all[@]}" -gt 0 ]; then
  say "removing ${#all[@]} container(s) with their anonymous volumes"
  try docker rm -v "${all[@]}" >/dev/null
fi

if [ -f .env ]; then
  # Networks (and named volumes with --volumes) as compose knows them.
  if $volumes; then
    $COMPOSE down --remove-orphans --volumes || true
  else
    $COMPOSE down --remove-orphans || true
  fi
fi
mapfile -t networks < <(docker network ls -q --filter "$by_project")
if [ "${#networks[@]}" -gt 0 ]; then
  say "removing ${#networks[@]} network(s)"
  try docker network rm "${networks[@]}" >/dev/null
fi
if $volumes; then
  mapfile -t named < <(docker volume ls -q --filter "$by_project")
  if [ "${#named[@]}" -gt 0 ]; then
    say "removing ${#named[@]} volume(s)"
    try docker volume rm "${named[@]}" >/dev/null
  fi
fi

if $images; then
  say "removing the lab's images (label org.mooseng.project)"
  try docker image prune --all --force --filter "$by_lab" >/dev/null
  if [ "$(docker image inspect "$base_image" --format '{{index .Config.Labels "org.mooseng.base-image"}}' 2>/dev/null)" = "true" ]; then
    say "removing the base image $base_image (made by images/make-base-image.sh)"
    try docker image rm "$base_image" >/dev/null
  fi
fi
exit "$failed"
