#!/usr/bin/env bash
# Create .env with freshly generated secrets (never committed). Keeps an existing file,
# adding only the keys it lacks, so user overrides survive.
set -euo pipefail
file="${1:-.env}"
touch "$file"
chmod 600 "$file"
add() { grep -q "^$1=" "$file" || printf '%s=%s\n' "$1" "$2" >>"$file"; }
secret() { python3 -c 'import secrets; print(secrets.token_hex(16))'; }
add COMPOSE_PROJECT_NAME mooseng
add MOOSENG_RAFT_PASSWORD "$(secret)"
add MOOSENG_API_TOKEN "$(secret)"
