#!/usr/bin/env bash
# Wait until every container of the compose project (or of the services named) is healthy;
# print progress.
# Usage: scripts/wait-healthy.sh [TIMEOUT_SECONDS [SERVICE...]]
set -uo pipefail
timeout="${1:-240}"
shift $(( $# > 0 ? 1 : 0 ))
services=" $* "
project="${COMPOSE_PROJECT_NAME:-$(sed -n 's/^COMPOSE_PROJECT_NAME=//p' .env 2>/dev/null)}"
project="${project:-mooseng}"
deadline=$(( $(date +%s) + timeout ))
last=""
while :; do
  states=$(docker ps -a --filter "label=com.docker.compose.project=$project" \
    --format '{{.Label "com.docker.compose.service"}}={{.State}}/{{.Status}}' | sort \
    | while IFS= read -r row; do
        [ "$services" = "  " ] || [[ "$services" == *" ${row%%=*} "* ]] && printf '%s\n' "$row"
      done)
  total=$(grep -c . <<<"$states")
  healthy=$(grep -c '(healthy)' <<<"$states")
  line="healthy $healthy/$total"
  [ "$line" != "$last" ] && printf '%s %s\n' "$(date -u +%H:%M:%S)" "$line" && last="$line"
  if [ "$total" -gt 0 ] && [ "$healthy" = "$total" ]; then exit 0; fi
  if grep -qE '=exited' <<<"$states"; then
    echo "error: a container exited:"; grep -E '=exited' <<<"$states"; exit 1
  fi
  if [ "$(date +%s)" -ge "$deadline" ]; then
    echo "error: not all healthy after ${timeout}s:"; grep -v '(healthy)' <<<"$states"; exit 1
  fi
  sleep 1
done
