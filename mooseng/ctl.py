"""``mooseng status`` and ``mooseng switchover``: small clients of the agents' HTTP API (stdlib only)."""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

HOST_URLS = ["http://127.0.0.1:9431", "http://127.0.0.1:9432", "http://127.0.0.1:9433"]
REPO_ENV = Path(__file__).resolve().parents[1] / ".env"  # the checkout's, when installed -e


def dotenv_value(name: str, path: Path) -> str | None:
    """``name``'s value in a .env file (``NAME=value``, optionally ``export`` and quotes);
    None when the file or the key is missing."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    for line in lines:
        key, sep, value = line.strip().removeprefix("export ").partition("=")
        if sep and key.strip() == name:
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
                value = value[1:-1]
            return value
    return None


def api_token(environ: dict[str, str] | None = None, env_files: list[Path] | None = None) -> str:
    """MOOSENG_API_TOKEN from the environment, else from ./.env, else from the checkout's
    .env (``make env`` writes it there); "" when none has it."""
    env = os.environ if environ is None else environ
    if env.get("MOOSENG_API_TOKEN"):
        return env["MOOSENG_API_TOKEN"]
    for path in env_files if env_files is not None else [Path(".env"), REPO_ENV]:
        value = dotenv_value("MOOSENG_API_TOKEN", path)
        if value:
            return value
    return ""


def default_urls() -> list[str]:
    """Inside the compose network (MOOSENG_MASTERS set): the masters' API; on the host: 127.0.0.1:9431..3."""
    masters = [m.strip() for m in os.environ.get("MOOSENG_MASTERS", "").split(",") if m.strip()]
    port = os.environ.get("MOOSENG_API_PORT", "9430")
    return [f"http://{m}:{port}" for m in masters] if masters else list(HOST_URLS)


def fetch(url: str, timeout: float = 2.0, data: bytes | None = None,
          headers: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
    """(status, JSON body) of a request; status 0 with {"error"} when unreachable."""
    request = urllib.request.Request(url, data=data, headers=headers or {},
                                     method="POST" if data is not None else "GET")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            return answer.status, json.loads(answer.read() or b"{}")
    except urllib.error.HTTPError as exc:
        try:
            return exc.code, json.loads(exc.read() or b"{}")
        except ValueError:
            return exc.code, {"error": exc.reason}
    except (OSError, ValueError) as exc:
        return 0, {"error": str(exc)}


def status_table(rows: list[dict[str, Any]]) -> str:
    """A fixed-width table of agents."""
    head = ["node", "role", "lease holder", "epoch", "expires", "term", "quorum", "daemon", "version",
            "decision"]
    lines = [head]
    for row in rows:
        lines.append([str(row.get(k, "")) for k in ("node", "role", "holder", "epoch", "expires", "term",
                                                     "quorum", "daemon", "version", "decision")])
    widths = [max(len(line[i]) for line in lines) for i in range(len(head) - 1)]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(line[:-1], widths)) + "  " + line[-1]
                     for line in lines)


def human_bytes(value: float | None) -> str:
    """1.5GiB-style size; "?" when unknown."""
    if value is None:
        return "?"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{value:.0f}{unit}" if unit == "B" else f"{value:.1f}{unit}"
        value /= 1024
    return f"{value:.1f}TiB"


def layout_lines(cluster: dict[str, Any]) -> list[str]:
    """Storage classes (our own, not MooseFS's numbered ones) and space per tier summed over
    the chunkservers, from /cluster's "storage_classes" and "disks" (mfscli -SSC, -SHD);
    folders that are not ok are listed one by one."""
    lines = []
    classes = cluster.get("storage_classes")
    if classes is None:
        lines.append(f"storage classes: unknown ({cluster.get('storage_classes_error')})")
    else:
        named = [c for c in classes if not str(c.get("name", "")).isdigit()]
        for sc in named:
            keep, archive = sc["keep"], sc["archive"]
            text = (f"storage class {sc['name']}: create={','.join(sc['create']['labels'])} "
                    f"keep={','.join(keep['labels'])}")
            if sc.get("archive_delay_days"):
                text += f" archive={','.join(archive['labels'])} after {sc['archive_delay_days']}d"
            text += (f" mode={sc['mode']} files={sc['files']} fulfilled={keep['can_be_fulfilled']}")
            lines.append(text)
        if not named:
            lines.append("storage classes: only MooseFS's own (1..9)")
    disks = cluster.get("disks")
    if disks is None:
        lines.append(f"tiers: unknown ({cluster.get('disks_error')})")
        return lines
    tiers: dict[str, dict[str, int]] = {}
    for disk in disks:
        sums = tiers.setdefault(disk["tier"], {"used": 0, "total": 0, "folders": 0, "bad": 0})
        sums["folders"] += 1
        sums["used"] += disk.get("used_bytes") or 0
        sums["total"] += disk.get("total_bytes") or 0
        sums["bad"] += 1 if disk.get("damaged") else 0
    for tier, sums in sorted(tiers.items()):
        lines.append(f"tier {tier}: used={human_bytes(sums['used'])} total="
                     f"{human_bytes(sums['total'])} folders={sums['folders']} "
                     f"damaged={sums['bad']}")
    for disk in disks:
        if disk.get("status") != "ok":
            lines.append(f"  disk {disk['address']}:{disk['path']} status={disk['status']} "
                         f"chunks={disk['chunks']}")
    return lines


def status_main(argv: list[str] | None = None) -> int:
    """``mooseng status [--url URL ...] [--json]``: 0 when exactly one leader is seen, else 1."""
    parser = argparse.ArgumentParser(prog="mooseng status", description=status_main.__doc__)
    parser.add_argument("--url", action="append", help="agent base URL (repeatable)")
    parser.add_argument("--json", action="store_true", help="print the raw /status bodies")
    args = parser.parse_args(argv)
    urls = args.url or default_urls()
    rows, bodies, cluster = [], {}, None
    for url in urls:
        code, body = fetch(url.rstrip("/") + "/status")
        bodies[url] = body
        if code != 200:
            rows.append({"node": url, "role": "unreachable", "decision": body.get("error", code)})
            continue
        lease, raft, daemon = body.get("lease", {}), body.get("raft", {}), body.get("daemon", {})
        rows.append({"node": body.get("node"), "role": body.get("role"), "holder": lease.get("holder"),
                     "epoch": lease.get("epoch"), "expires": lease.get("expires_in"),
                     "term": raft.get("term"), "quorum": raft.get("has_quorum"),
                     "daemon": f"{daemon.get('name')}:"
                               f"{'frozen' if body.get('frozen') else daemon.get('state')}",
                     "version": body.get("metadata_version"), "decision": body.get("last_decision")})
        if cluster is None:
            code, cluster_body = fetch(url.rstrip("/") + "/cluster", timeout=5.0)
            cluster = cluster_body if code == 200 else None
    if args.json:
        print(json.dumps({"status": bodies, "cluster": cluster}, indent=2))
    else:
        print(status_table(rows))
        if cluster is not None:
            chunks = cluster.get("chunks")
            print(f"\nleader: {cluster.get('leader')}  epoch: {cluster.get('epoch')}")
            if chunks:
                print("chunks: " + "  ".join(f"{k}={v}" for k, v in chunks.items()))
            else:
                print(f"chunks: unknown ({cluster.get('chunks_error')})")
            for server in cluster.get("chunkservers") or []:
                print(f"chunkserver {server['address']} labels={server['labels'] or '-'} "
                      f"chunks={server['chunks']} used={server['used_bytes']} total={server['total_bytes']}")
            for line in layout_lines(cluster):
                print(line)
    leaders = {r["node"] for r in rows if r.get("role") == "leader"}
    return 0 if len(leaders) == 1 else 1


def switchover_main(argv: list[str] | None = None) -> int:
    """``mooseng switchover [--to NODE] [--token T] [--url URL]``: ask the agents for a planned transfer."""
    parser = argparse.ArgumentParser(prog="mooseng switchover", description=switchover_main.__doc__)
    parser.add_argument("--to", help="the follower to hand over to (default: the best one)")
    parser.add_argument("--token", default=None,
                        help="bearer token (default: $MOOSENG_API_TOKEN, else MOOSENG_API_TOKEN in "
                             "./.env or the checkout's .env; --token shows it in ps)")
    parser.add_argument("--url", action="append", help="agent base URL (repeatable)")
    args = parser.parse_args(argv)
    args.token = args.token or api_token()
    if not args.token:
        print("mooseng switchover: no token: set MOOSENG_API_TOKEN (make env writes it to .env)",
              file=sys.stderr)
        return 2
    payload = json.dumps({"to": args.to} if args.to else {}).encode()
    headers = {"Authorization": f"Bearer {args.token}", "Content-Type": "application/json"}
    last: tuple[int, dict[str, Any]] = (0, {"error": "no agent URL"})
    for url in args.url or default_urls():
        last = fetch(url.rstrip("/") + "/switchover", data=payload, headers=headers, timeout=5.0)
        if last[0] == 202:
            print(f"switchover accepted by {last[1].get('node')}: {last[1].get('from')} -> {last[1].get('to')}")
            return 0
        if last[0] in (400, 401, 403, 404):
            break
    print(f"mooseng switchover: refused ({last[0]}): {last[1].get('error')}", file=sys.stderr)
    return 1
