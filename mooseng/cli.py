"""The ``mooseng`` command.

    mooseng run ROLE              container entrypoint: master | chunkserver | client
    mooseng agent                 the master HA agent (started by ``run master``)
    mooseng status [...]          table of masters, roles, lease, chunk health
    mooseng switchover --to NODE  planned leader transfer (needs MOOSENG_API_TOKEN)
    mooseng settings [--markdown | --check ROLE]
    mooseng proxies               the Toxiproxy proxy list (toxiproxy/proxies.json) as JSON
    mooseng disk show | limit TIER BYTES|--restore | removal TIER on|off | fail TIER on|off
                                  a chunkserver's tiers (inside its container; JSON out)
"""

from __future__ import annotations

import logging
import sys

from mooseng import settings

USAGE = __doc__.split("\n", 2)[2]


def configure_logging() -> None:
    """One line per event on stderr, picked up by the log aggregation."""
    level = str(settings.read("MOOSENG_LOG_LEVEL")).upper()
    logging.basicConfig(
        level=getattr(logging, level, logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def settings_main(argv: list[str]) -> int:
    """``mooseng settings``: print the table, or check a role's environment."""
    if argv[:1] == ["--markdown"] or not argv:
        print(settings.markdown_table())
        return 0
    if argv[0] == "--check" and len(argv) == 2:
        errors = settings.validate(argv[1])
        for error in errors:
            print(f"configuration error: {error}", file=sys.stderr)
        return 2 if errors else 0
    print(USAGE, file=sys.stderr)
    return 2


def disk_main(argv: list[str]) -> int:
    """``mooseng disk ...`` (:mod:`mooseng.mfs.disks`): the show JSON on stdout and 0; on a bad
    request ``{"error"}`` on stderr and 2, when mfschunkserver did not take the change 1. Only
    JSON is printed, on either stream (no log lines)."""
    import json

    from mooseng.mfs import disks
    try:
        body = disks.run(argv)
    except (disks.DiskError, settings.SettingError) as exc:
        print(json.dumps({"error": str(exc)}), file=sys.stderr)
        return 2
    except (disks.ChunkserverError, OSError) as exc:
        print(json.dumps({"error": str(exc)}), file=sys.stderr)
        return 1
    print(json.dumps(body))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Dispatch a subcommand; return its exit code."""
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-h", "--help", "help"):
        print(USAGE)
        return 0 if args else 2
    command, rest = args[0], args[1:]
    if command == "disk":
        return disk_main(rest)
    configure_logging()
    if command == "run" and len(rest) == 1:
        from mooseng import roles
        return roles.run(rest[0])
    if command == "agent":
        from mooseng import agent
        return agent.main(rest)
    if command == "status":
        from mooseng import ctl
        return ctl.status_main(rest)
    if command == "switchover":
        from mooseng import ctl
        return ctl.switchover_main(rest)
    if command == "settings":
        return settings_main(rest)
    if command == "proxies" and not rest:
        import json

        from mooseng import links
        print(json.dumps(links.Topology.from_settings().toxiproxy_config(), indent=1))
        return 0
    print(f"mooseng: unknown command {' '.join(args)!r}\n{USAGE}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
