#!/usr/bin/env bash
# Container healthcheck: cheap (no Python start-up, which costs a lot on a 2-core machine
# with nine containers) but testing real function.
#   master       the local agent answers GET /health with 200 (loop alive, daemon running)
#   chunkserver  mfschunkserver holds an established session through the local leader
#                router, which forwards only to the lease holder and cuts sessions of a
#                master that stops leading
#   client       the mount answers stat, and a probe file is written, read back, removed
set -uo pipefail
role="${1:?usage: mooseng-healthcheck master|chunkserver|client}"
node="${MOOSENG_NODE:-$(hostname)}"
fail() { echo "unhealthy: $role: $*"; exit 1; }

case "$role" in
  master)
    exec 3<>"/dev/tcp/127.0.0.1/${MOOSENG_API_PORT:-9430}" || fail "agent API not listening"
    printf 'GET /health HTTP/1.0\r\nHost: localhost\r\n\r\n' >&3
    status=$(timeout 5 head -1 <&3) || fail "agent API did not answer"
    [[ "$status" == *" 200 "* ]] || fail "/health said: $status"
    echo "healthy: master: /health 200" ;;
  chunkserver)
    pgrep -x mfschunkserver >/dev/null || fail "mfschunkserver not running"
    address=$(hostname -i | awk '{print $1}')
    port="${MOOSENG_ROUTER_CS_PORT:-9520}"
    ss -Htn state established "( dst $address:$port )" | grep -q . \
      || fail "no session to the leader through the router ($address:$port)"
    echo "healthy: chunkserver: connected to the leader through $address:$port" ;;
  client)
    mnt="${MOOSENG_MOUNT_POINT:-/mnt/$node}"
    probe="$mnt/.health-$node"
    # The script given to bash -c is a constant: the paths travel as arguments ($1 $2 $3),
    # never interpolated into shell text (a quote in MOOSENG_MOUNT_POINT once made it pass).
    timeout 8 bash -c 'mountpoint -q -- "$1" && stat -- "$1" >/dev/null \
      && printf "%s %s\n" "$3" "$(date +%s%N)" > "$2" && cat -- "$2" >/dev/null && rm -f -- "$2"' \
      mooseng-healthcheck "$mnt" "$probe" "$node" \
      || fail "$mnt: stat or probe write failed"
    echo "healthy: client: $mnt answers stat and probe writes" ;;
  *) fail "unknown role (expected master, chunkserver or client)" ;;
esac
