#!/usr/bin/env bash
# Create .env with freshly generated secrets (never committed). Keeps an existing file,
# adding only the keys it lacks, so user overrides survive. Run by `make env` (and so by
# `make up`) every time; prints only what it added.
# Also writes, next to it, the env_files of docker-compose.yml (no service gets .env itself):
#   .env.public   .env without any secret: chunkservers and clients get every override
#                 but neither the Raft password nor the API token;
#   .env.masters  .env.public plus the two secrets masters need (MOOSENG_RAFT_PASSWORD,
#                 MOOSENG_API_TOKEN), mode 600; never the Grafana password or a user's own.
# A secret is a key generated here, or any key whose name contains PASSWORD, TOKEN or SECRET.
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
master_secrets=(MOOSENG_RAFT_PASSWORD MOOSENG_API_TOKEN)
keys() { echo "^[[:space:]]*(export[[:space:]]+)?($(IFS='|'; echo "$*"))[[:space:]]*="; }
secret_keys="$(keys "${secrets[@]}" '[A-Za-z0-9_]*(PASSWORD|TOKEN|SECRET)[A-Za-z0-9_]*')"
# write_env NAME MODE WHAT [KEYS]: NAME next to .env, holding .env without its secrets plus
# the lines of .env that the pattern KEYS selects; written aside (never readable by others
# while it holds secrets), then renamed.
write_env() {
  local out tmp
  out="$(dirname "$file")/$1"
  tmp="$out.tmp"
  rm -f "$tmp"
  (umask 077 && : >"$tmp")
  {
    echo "# Written by scripts/make-env.sh from $(basename "$file") $3; do not edit."
    grep -v -E "$secret_keys" "$file" || true
    if [ -n "${4:-}" ]; then grep -E "$4" "$file" || true; fi
  } >"$tmp"
  chmod "$2" "$tmp"
  mv "$tmp" "$out"
}
write_env .env.public 644 "without its secrets"
write_env .env.masters 600 "with only the masters' secrets" "$(keys "${master_secrets[@]}")"
