#!/usr/bin/env bash
# Create .env with freshly generated secrets (never committed). Keeps an existing file,
# adding only the keys it lacks, so user overrides survive. Run by `make env` (and so by
# `make up`) every time; prints only what it added.
set -euo pipefail
file="${1:-.env}"
touch "$file"
chmod 600 "$file"
has() { grep -q "^$1=" "$file"; }
secret() { python3 -c 'import secrets; print(secrets.token_hex(16))'; }
has COMPOSE_PROJECT_NAME || printf 'COMPOSE_PROJECT_NAME=mooseng\n' >>"$file"
for key in MOOSENG_RAFT_PASSWORD MOOSENG_API_TOKEN MOOSENG_GRAFANA_PASSWORD; do
  if ! has "$key"; then
    printf '%s=%s\n' "$key" "$(secret)" >>"$file"
    echo "==> $file: generated $key"
  fi
done
