"""Every environment setting of the cluster side, in one table.

Each setting has a name (``MOOSENG_*``), a default, a parser and a line of
documentation. ``mooseng settings --markdown`` prints the table that the
README carries, so the two cannot drift apart.

A value that does not parse raises :class:`SettingError` naming the variable,
the value and what was expected: containers fail at start with that message
instead of misbehaving later.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass


class SettingError(ValueError):
    """A setting's value is malformed."""


def parse_port(raw: str) -> int:
    """A TCP port number, 1..65535."""
    value = int(raw)
    if not 1 <= value <= 65535:
        raise ValueError("not in 1..65535")
    return value


def parse_positive_float(raw: str) -> float:
    """A number of seconds greater than zero."""
    value = float(raw)
    if not value > 0:
        raise ValueError("not greater than zero")
    return value


def parse_positive_int(raw: str) -> int:
    """A whole number greater than zero."""
    value = int(raw)
    if value <= 0:
        raise ValueError("not greater than zero")
    return value


def parse_hold_ms(raw: str) -> int:
    """Milliseconds a router may hold a connection, 0 (off) to 60000."""
    value = int(raw)
    if not 0 <= value <= 60000:
        raise ValueError("not in 0..60000")
    return value


def parse_bool(raw: str) -> bool:
    """true/false, yes/no, 1/0, on/off (case-insensitive); anything else is an error."""
    lowered = raw.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError("not a boolean (true/false)")


def parse_non_negative_float(raw: str) -> float:
    """A number of seconds, zero or more."""
    value = float(raw)
    if not value >= 0:
        raise ValueError("below zero")
    return value


def parse_tap_sync(raw: str) -> str:
    """fsync or write."""
    value = raw.strip().lower()
    if value not in ("fsync", "write"):
        raise ValueError("not fsync or write")
    return value


def parse_domain(raw: str) -> str:
    """Empty, or a DNS name such as raft (letters, digits, hyphens; dot-separated labels)."""
    value = raw.strip()
    labels = value.split(".") if value else []
    for label in labels:
        if not (label and len(label) <= 63 and label.replace("-", "").isalnum() and label.isascii()
                and not label.startswith("-") and not label.endswith("-")):
            raise ValueError("not a DNS name")
    return value


def parse_str(raw: str) -> str:
    """Any string."""
    return raw


SIZE_UNITS = {"": 1, "b": 1, "kib": 1024, "mib": 1024**2, "gib": 1024**3, "tib": 1024**4}
CHUNK_BYTES = 64 * 1024**2  # one MooseFS chunk; mfshdd.cfg limits below it draw a warning


def parse_size(raw: str) -> int:
    """A size in bytes: a number with an optional unit B, KiB, MiB, GiB or TiB (1GiB, 1.5 GiB)."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*", raw)
    if not match or match.group(2).lower() not in SIZE_UNITS:
        raise ValueError(f"{raw.strip()!r} is not a size such as 1GiB, 512MiB or 1073741824")
    return int(float(match.group(1)) * SIZE_UNITS[match.group(2).lower()])


def parse_tier_sizes(raw: str) -> dict[str, int]:
    """tier=size pairs separated by commas (fast=1GiB,bulk=2GiB); each size at least 64MiB."""
    sizes: dict[str, int] = {}
    for entry in (item.strip() for item in raw.split(",")):
        if not entry:
            continue
        tier, sep, size = (part.strip() for part in entry.partition("="))
        if not sep or not re.fullmatch(r"[A-Za-z0-9_-]+", tier):
            raise ValueError(f"entry {entry!r} is not tier=size")
        if tier in sizes:
            raise ValueError(f"entry {entry!r} repeats tier {tier}")
        try:
            value = parse_size(size)
        except ValueError as exc:
            raise ValueError(f"entry {entry!r}: {exc}") from None
        if value < CHUNK_BYTES:
            raise ValueError(f"entry {entry!r} is below 64MiB (one MooseFS chunk)")
        sizes[tier] = value
    return sizes


def parse_labels(raw: str) -> str:
    """Empty, or letters A-Z separated by commas (A or A,F), each at most once."""
    # mfschunkserver (masterconn.c masterconn_parselabels) takes "," or ";" between letters.
    letters = [item.strip().upper() for item in re.split("[,;]", raw)] if raw.strip() else []
    for letter in letters:
        if len(letter) != 1 or not "A" <= letter <= "Z":
            raise ValueError(f"{letter!r} is not a single letter A-Z")
    if len(set(letters)) != len(letters):
        raise ValueError("a label is repeated")
    return ",".join(letters)


def parse_list(raw: str) -> list[str]:
    """A comma-separated list; blanks are dropped."""
    return [item.strip() for item in raw.split(",") if item.strip()]


ROLES = ("master", "chunkserver", "client")


@dataclass(frozen=True)
class Setting:
    """One environment variable: its name, default, parser and meaning; ``scope`` is what the
    table shows, ``roles`` the container roles that read it (and so validate it at start)."""

    name: str
    default: str
    parse: Callable[[str], object]
    doc: str
    scope: str
    roles: tuple[str, ...] = ROLES

    def expected(self) -> str:
        """The parser's one-line description of an acceptable value."""
        return (self.parse.__doc__ or "a value").strip().splitlines()[0]


SETTINGS: dict[str, Setting] = {}


def define(name: str, default: str, parse: Callable[[str], object], doc: str, scope: str,
           roles: tuple[str, ...] | None = None) -> None:
    """Register a setting; names are unique. ``roles`` defaults to every role for the scope
    ``all``, else to the role the scope names."""
    if name in SETTINGS:
        raise ValueError(f"setting {name} defined twice")
    if roles is None:
        roles = ROLES if scope == "all" else (scope,)
    unknown = set(roles) - set(ROLES)
    if unknown:
        raise ValueError(f"setting {name}: unknown roles {sorted(unknown)}")
    SETTINGS[name] = Setting(name, default, parse, doc, scope, tuple(roles))


# --- every role -----------------------------------------------------------
define("MOOSENG_NODE", "", parse_str, "This container's node name (defaults to the host name).", "all")
define("MOOSENG_MASTERS", "master-1,master-2,master-3", parse_list,
       "Host names of the master containers, in a fixed order.", "all")
define("MOOSENG_CHUNKSERVERS", "chunkserver-1,chunkserver-2,chunkserver-3", parse_list,
       "Host names of the chunkserver containers, in a fixed order (proxy port numbering).", "all")
define("MOOSENG_CLIENTS", "client-1,client-2,client-3", parse_list,
       "Host names of the client containers, in a fixed order (proxy port numbering).", "all")
define("MOOSENG_TOXIPROXY_HOST", "toxiproxy", parse_str,
       "Host of the Toxiproxy server that carries every link to a master (see toxiproxy/); "
       "empty dials masters directly.", "all")
define("MOOSENG_TOXIPROXY_BASE_PORT", "20000", parse_port,
       "First proxy port: <source>><master>:<kind> listens on base + 100*node + 10*master + kind.",
       "all")
define("MOOSENG_RAFT_DOMAIN", "raft", parse_domain,
       "Raft runs on a network that only masters and Toxiproxy join, where each answers to "
       "<name>.<this> (compose aliases): agents bind Raft to <node>.<this>, raft proxies listen on "
       "<toxiproxy>.<this> and dial <master>.<this>. Change it together with docker-compose.yml "
       "and toxiproxy/proxies.json; empty puts Raft on the shared network.", "all")
define("MOOSENG_API_PORT", "9430", parse_port, "Port of each master agent's HTTP API.", "all")
define("MOOSENG_EXPORTER_PORT", "9450", parse_port,
       "Port of the Prometheus exporter in chunkserver and client containers (GET /metrics).", "all")
define("MOOSENG_LOG_LEVEL", "INFO", parse_str, "Log level of the Python processes.", "all")
define("MOOSENG_DATA_DIR", "/var/lib/mooseng", parse_str,
       "Persistent state of the container (a named volume); MooseFS DATA_PATH is its mfs/ folder.", "all")
# --- MooseFS ports ----------------------------------------------------------
define("MOOSENG_MATOML_PORT", "9419", parse_port, "mfsmaster port for metaloggers.", "master")
define("MOOSENG_MATOCS_PORT", "9420", parse_port, "mfsmaster port for chunkservers.", "master")
define("MOOSENG_MATOCL_PORT", "9421", parse_port, "mfsmaster port for clients (mounts, mfscli).", "master")
# The router runs in every container; each role reads only the ports of its own listeners
# (router.ROLE_ROUTES): masters serve metaloggers and mfscli, chunkservers and clients theirs.
define("MOOSENG_ROUTER_ML_PORT", "9519", parse_port,
       "Local leader router port for metaloggers (in master containers).", "router",
       roles=("master",))
define("MOOSENG_ROUTER_CS_PORT", "9520", parse_port,
       "Local leader router port for chunkservers.", "router", roles=("chunkserver",))
define("MOOSENG_ROUTER_CL_PORT", "9521", parse_port,
       "Local leader router port for clients.", "router", roles=("master", "client"))
define("MOOSENG_ROUTER_CHECK_INTERVAL_MS", "250", parse_positive_int,
       "How often the router asks each agent's /leader (milliseconds).", "router", roles=ROLES)
define("MOOSENG_ROUTER_HOLD_MS", "900", parse_hold_ms,
       "How long the router holds a new mfsmount (or mfscli) connection while no master is "
       "routable (a failover), routing it as soon as one is (milliseconds; 0: refuse at once). "
       "mfsmount waits 1 s for its registration answer: keep it under 1000.", "router",
       roles=("master", "client"))
define("MOOSENG_ROUTER_CS_HOLD_MS", "5000", parse_hold_ms,
       "The same for a chunkserver's connection; it waits 10 s for its registration answer "
       "and retries every MOOSENG_RECONNECT_DELAY s, so a hold over that keeps one waiting "
       "at every moment of a failover.", "router", roles=("chunkserver",))
define("MOOSENG_RECONNECT_DELAY", "1", parse_positive_int,
       "MASTER_RECONNECTION_DELAY of metaloggers and chunkservers (seconds).", "all")
# --- master HA agent (mooseng agent) -------------------------------------------
define("MOOSENG_TTL", "1.5", parse_positive_float,
       "Leader lease time to live (seconds); a dead leader is replaced about this long after it died.",
       "master")
define("MOOSENG_LOOP_WAIT", "0.25", parse_positive_float,
       "Seconds between two HA decisions; the lease holder renews once per loop.", "master")
define("MOOSENG_RETRY_TIMEOUT", "0.25", parse_positive_float,
       "Upper bound of one Raft store call (seconds); loop_wait + 2*retry_timeout must be <= ttl.",
       "master")
define("MOOSENG_SAFETY_MARGIN", "0.3", parse_positive_float,
       "The holder stops mfsmaster if it could not renew for ttl minus this many seconds.", "master")
define("MOOSENG_FREEZE_ON_CONTACT_LOSS", "true", parse_bool,
       "Freeze mfsmaster (SIGSTOP) when no follower answers the lease holder's Raft heartbeats, so "
       "it acknowledges no write the followers' metaloggers will not get; thaw after contact "
       "returns and the lease is renewed.", "master")
define("MOOSENG_FREEZE_AFTER", "0.4", parse_positive_float,
       "Seconds without an answer from any follower before the holder freezes mfsmaster; "
       "freeze_after + contact_check_interval must be < ttl - safety_margin.", "master")
define("MOOSENG_CONTACT_CHECK_INTERVAL", "0.05", parse_positive_float,
       "How often the watchdog checks follower contact and the fencing deadline (seconds).",
       "master")
define("MOOSENG_RAFT_PORT", "9440", parse_port, "Port of the agents' Raft (pysyncobj) links.", "master")
define("MOOSENG_RAFT_MIN_TIMEOUT", "0.3", parse_positive_float,
       "Raft election timeout, lower bound (seconds).", "master")
define("MOOSENG_RAFT_MAX_TIMEOUT", "0.6", parse_positive_float,
       "Raft election timeout, upper bound (seconds).", "master")
define("MOOSENG_RAFT_PASSWORD", "", parse_str,
       "Shared secret encrypting Raft links (generated into .env by make); the agent refuses to "
       "start without it.", "master")
define("MOOSENG_API_TOKEN", "", parse_str,
       "Bearer token for POST /switchover; empty refuses every switchover.", "master")
define("MOOSENG_REPLICA_MAX_LAG", "200", parse_positive_int,
       "A follower whose change number is more than this behind the leader is not a healthy replica.",
       "master")
# --- reply barrier (docs/reply-barrier.md) ------------------------------------------
define("MOOSENG_BARRIER", "false", parse_bool,
       "Reply barrier: the leader holds every client reply until MOOSENG_BARRIER_QUORUM followers "
       "have persisted the change behind it (each follower runs a changelog tap next to its "
       "metalogger); off runs exactly the plain daemons.", "master")
define("MOOSENG_BARRIER_ACK_PORT", "9424", parse_port,
       "Port of the leader's barrier where followers' taps acknowledge changes (with the barrier "
       "on).", "master")
define("MOOSENG_MFSMASTER_CLIENT_PORT", "9423", parse_port,
       "With the barrier on: mfsmaster's client port, on 127.0.0.1 only; the barrier serves "
       "MOOSENG_MATOCL_PORT.", "master")
define("MOOSENG_ROUTER_ACK_PORT", "9524", parse_port,
       "Local router port for the tap's acknowledgements (in master containers, barrier on).",
       "router", roles=("master",))
define("MOOSENG_BARRIER_QUORUM", "1", parse_positive_int,
       "Followers that must acknowledge a change before the barrier releases a reply.", "master")
define("MOOSENG_BARRIER_HOLD_TIMEOUT", "10", parse_non_negative_float,
       "Seconds a reply may be held before the barrier closes its client connection (outcome "
       "unknown, never released unacknowledged); 0 holds forever.", "master")
define("MOOSENG_BARRIER_MAX_IN_FLIGHT", "4", parse_positive_int,
       "CLTOMA_INFO probes the barrier keeps in flight to learn the change number behind replies.",
       "master")
define("MOOSENG_BARRIER_TAP_SYNC", "fsync", parse_tap_sync,
       "How a follower's tap makes a batch durable before acknowledging it: fsync (survives a host "
       "crash) or write (survives the tap or container being killed).", "master")
# --- chunkserver --------------------------------------------------------------
define("MOOSENG_CS_PORT", "9422", parse_port, "Chunkserver port for clients and replication.", "chunkserver")
define("MOOSENG_CS_LABELS", "", parse_labels,
       "Storage class labels of this chunkserver (MooseFS LABELS: letters, e.g. A or A,F); "
       "docker-compose.yml gives each an identity label (A, B, C) and a tier role label "
       "(F fast, S bulk).", "chunkserver")
define("MOOSENG_CS_TIERS", "fast,bulk", parse_list,
       "Storage tier folders under $MOOSENG_DATA_DIR/tiers (one volume each), listed in mfshdd.cfg.",
       "chunkserver")
define("MOOSENG_CS_LEAVE_SPACE", "64MiB", parse_str,
       "HDD_LEAVE_SPACE_DEFAULT: space left free on a tier without a size limit (MooseFS does "
       "not apply it to a bounded tier, see MOOSENG_CS_TIER_SIZES).", "chunkserver")
define("MOOSENG_CS_TIER_SIZES", "fast=1GiB,bulk=2GiB", parse_tier_sizes,
       "Space MooseFS may use in each tier folder (mfshdd.cfg size limit; MooseFS then reports "
       "total = this size and used = its chunk data); every tier of MOOSENG_CS_TIERS needs one. "
       "A size larger than the tier's volume is ignored by MooseFS (it uses the volume's size).",
       "chunkserver")
# --- client -------------------------------------------------------------------
define("MOOSENG_MOUNT_POINT", "", parse_str,
       "Where the client mounts MooseFS (default /mnt/<node name>).", "client")
define("MOOSENG_MOUNT_SUBFOLDER", "/", parse_str,
       "MooseFS folder to mount (mfsmount -S).", "client")
define("MOOSENG_SCLASS_CHECK_INTERVAL", "30", parse_positive_float,
       "Seconds between two checks that the lab's storage classes (mooseng/storageclasses.py) "
       "exist; a client creates the missing ones through its mount.", "client")


def read(name: str, environ: Mapping[str, str] | None = None) -> object:
    """Return the parsed value of setting ``name`` from ``environ`` (default: os.environ).

    Raises SettingError naming the variable when the value does not parse.
    """
    env = os.environ if environ is None else environ
    setting = SETTINGS[name]
    raw = env.get(name, setting.default)
    try:
        return setting.parse(raw)
    except ValueError as exc:
        raise SettingError(
            f"{name}={raw!r} is invalid ({exc}); expected {setting.expected()}"
        ) from None


def validate(role: str, environ: Mapping[str, str] | None = None) -> list[str]:
    """Check every setting that ``role`` reads (``*``: every setting); return the error
    messages."""
    errors = []
    for setting in SETTINGS.values():
        if role in setting.roles or role == "*":
            try:
                read(setting.name, environ)
            except SettingError as exc:
                errors.append(str(exc))
    if not errors and role in ("chunkserver", "*"):
        try:
            tier_sizes(environ)
        except SettingError as exc:
            errors.append(str(exc))
    return errors


def tier_sizes(environ: Mapping[str, str] | None = None) -> dict[str, int]:
    """{tier: size in bytes} for every tier of MOOSENG_CS_TIERS, in that order, from
    MOOSENG_CS_TIER_SIZES; SettingError when a tier has no size."""
    tiers = [str(t) for t in read("MOOSENG_CS_TIERS", environ)]  # type: ignore[attr-defined]
    sizes = read("MOOSENG_CS_TIER_SIZES", environ)
    assert isinstance(sizes, dict)
    missing = [tier for tier in tiers if tier not in sizes]
    if missing:
        raw = (os.environ if environ is None else environ).get(
            "MOOSENG_CS_TIER_SIZES", SETTINGS["MOOSENG_CS_TIER_SIZES"].default)
        raise SettingError(f"MOOSENG_CS_TIER_SIZES={raw!r} has no size for tier "
                           f"{', '.join(missing)} of MOOSENG_CS_TIERS; expected "
                           f"{SETTINGS['MOOSENG_CS_TIER_SIZES'].expected()}")
    return {tier: int(sizes[tier]) for tier in tiers}


def markdown_table() -> str:
    """The README's settings table."""
    rows = ["| variable | default | scope | meaning |", "|---|---|---|---|"]
    for s in SETTINGS.values():
        rows.append(f"| `{s.name}` | `{s.default}` | {s.scope} | {s.doc} |")
    return "\n".join(rows)
