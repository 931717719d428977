#!/usr/bin/env bash
# Create .env with freshly generated secrets (never committed). Keeps an existing file,
# adding only the keys it lacks, so user overrides survive. Run by `make env` (and so by
# `make up`) every time; prints only what it added.
# Also writes .env.public next to it: .env without any secret, the env_file of chunkservers
# and clients (docker-compose.yml), so they get every override but neither the Raft
# password nor the API token. A secret is a key generated here, or any key whose name
# contains PASSWORD, TOKEN or SECRET.
set -euo pipefail
file="${1:-.env}"
touch "$file"
chmod 600 "$file"
has() { grep -q "^$1=" "$file"; }
secret() { python3 -c 'import secrets; print(secrets.token_hex(16))'; }
has COMPOSE_PROJECT_NAME || printf 'COMPOSE_PROJECT_NAME=mooseng\n' >>"$file"
secrets=(MOOSENG_RAFT_PASSWORD MOOSENG_API_TOKEN MOOSENG_GRAFANA_PASSWORD)
for key in "${secrets[@]}"; do
  if ! has "$key"; then
    printf '%s=%s\n' "$key" "$(secret)" >>"$file"
    echo "==> $file: generated $key"
  fi
done
public="$(dirname "$file")/.env.public"
secret_keys="^[[:space:]]*(export[[:space:]]+)?($(IFS='|'; echo "${secrets[*]}")|[A-Za-z0-9_]*(PASSWORD|TOKEN|SECRET)[A-Za-z0-9_]*)[[:space:]]*="
{
  echo "# Written by scripts/make-env.sh from $(basename "$file") without its secrets; do not edit."
  grep -v -E "$secret_keys" "$file" || true
} >"$public.tmp"
chmod 644 "$public.tmp"
mv "$public.tmp" "$public"
