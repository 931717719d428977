"""Host side of disk faults: the tiers a chunkserver has, the size limit a fill asks for,
and ``mooseng disk`` run inside chunkserver containers, with the undo of each disk fault.

A chunkserver stores chunks in one folder per storage tier (``MOOSENG_CS_TIERS``, default
``fast,bulk``), each a line of its ``mfshdd.cfg`` with a size limit. ``mooseng disk`` (in
the chunkserver container) shows and changes them:

- ``mooseng disk show`` prints ``{"tiers": [{"tier", "path", "configured_limit", "limit",
  "used", "removal", "failed"}, ...]}``; ``used`` is MooseFS's own accounting of its chunk
  data on the tier;
- ``mooseng disk limit TIER BYTES`` / ``mooseng disk limit TIER --restore``, ``mooseng disk
  removal TIER on|off`` (the ``*`` prefix in mfshdd.cfg, then a reload) and ``mooseng disk
  fail TIER on|off`` (the tier made unreadable, so MooseFS marks it damaged) print the same
  JSON afterwards;
- an error is ``{"error": ...}`` on stderr with exit code 2.

**Full is MooseFS's accounting, not a kernel ENOSPC.** With a size limit in mfshdd.cfg,
MooseFS 3.0.117 reports a tier's total as the limit and its used space as its own chunk
data (``hddspacemgr.c``, ``hdd_refresh_usage``): a filler file would not count. So a fill
lowers the limit to what the tier should hold: for ``percent`` p the limit becomes
``max(1, ceil(used * 100 / p))``, for ``leave_bytes`` b it becomes ``max(1, used + b)``,
never above the tier's configured size. The master then treats the space as taken: it
creates no new chunk on a chunkserver with 64 MiB or less free over all its tiers, and
replicates none to one with 1 % or less free (``matocsserv.c``). Writes to chunks already
there go on (the folder's real file system has room).
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
from fractions import Fraction
from typing import Any

from chaoslib.exceptions import ActivityFailed

from chaosmoose import _container, _docker, _settings
from chaosmoose._settings import Configuration, Secrets

logger = logging.getLogger("chaostoolkit")

__all__: list[str] = []  # not an activity module

FILL, REMOVAL, FAIL = "disk.fill", "disk.removal", "disk.fail"
KINDS = (FILL, REMOVAL, FAIL)
ALL_TIERS = "all"

TIERS_KEY = "mooseng_tiers"  # experiment configuration / secrets key
TIERS_ENV = "MOOSENG_CS_TIERS"  # the variable the chunkserver containers read too
TIERS_DEFAULT = "fast,bulk"
TIER_NAME = re.compile(r"[A-Za-z0-9_.-]+")
TOOL = ["mooseng", "disk"]


def tiers(configuration: Configuration = None, secrets: Secrets = None) -> list[str]:
    """The configured tier names: ``mooseng_tiers`` from the secrets or the configuration,
    else the environment's ``MOOSENG_CS_TIERS``, else ``fast,bulk``."""
    value = _settings.raw(TIERS_KEY, configuration, secrets)
    if value is None:
        value = os.environ.get(TIERS_ENV) or TIERS_DEFAULT
    names = _settings.parse_name_list(TIERS_KEY, value)
    bad = [n for n in names if not TIER_NAME.fullmatch(n) or n == ALL_TIERS]
    if bad:
        raise _settings.SettingError(f"{TIERS_KEY}={value!r} is invalid: {', '.join(bad)}; "
                                     "expected folder names (letters, digits, . _ -), not "
                                     f"{ALL_TIERS!r}")
    return names


def tier_problem(tier: Any, configuration: Configuration, secrets: Secrets,
                 extra: tuple[str, ...] = ()) -> str | None:
    """Why ``tier`` names no configured tier (``None`` when it does or is one of ``extra``)."""
    known = tiers(configuration, secrets)
    if tier in known or tier in extra:
        return None
    allowed = ", ".join([*known, *(repr(e) if e == "" else e for e in extra)])
    return f"tier={tier!r} is not a configured tier; expected one of {allowed} ({TIERS_KEY})"


def check_tier(tier: Any, configuration: Configuration, secrets: Secrets,
               extra: tuple[str, ...] = ()) -> str:
    """``tier`` when it is a configured tier (or one of ``extra``); SettingError otherwise."""
    problem = tier_problem(tier, configuration, secrets, extra)
    if problem:
        raise _settings.SettingError(problem)
    return str(tier)


def fill_request(percent: Any, leave_bytes: Any) -> tuple[float | None, int | None]:
    """``(percent, leave_bytes)`` parsed, exactly one of them set; SettingError otherwise.

    ``percent`` must be 0 < percent <= 100 (how full the tier is to be), ``leave_bytes`` a
    whole number >= 0 (how much space it is to keep free).
    """
    given = {k: v for k, v in (("percent", percent), ("leave_bytes", leave_bytes))
             if v is not None}
    if len(given) != 1:
        got = ("neither" if not given else
               "both " + " and ".join(f"{k}={v!r}" for k, v in given.items()))
        raise _settings.SettingError(f"a fill needs exactly one of percent (0 < percent <= "
                                     f"100) or leave_bytes (>= 0); got {got}")
    if "percent" in given:
        value = _settings.parse_float("percent", percent, minimum=None)
        if not 0 < value <= 100:
            raise _settings.SettingError(f"percent={percent!r} is invalid; expected a number "
                                         "with 0 < percent <= 100")
        return value, None
    return None, _settings.parse_int("leave_bytes", leave_bytes, minimum=0)


def fill_problem(percent: Any, leave_bytes: Any) -> str | None:
    """What is wrong with a fill's ``percent`` / ``leave_bytes`` (``None`` when fine)."""
    try:
        fill_request(percent, leave_bytes)
    except _settings.SettingError as exc:
        return str(exc)
    return None


def fill_limit(service: str, state: dict[str, Any], percent: float | None,
               leave_bytes: int | None) -> int:
    """The size limit that makes tier ``state`` as full as asked, as MooseFS counts it.

    ``percent`` p: ``max(1, ceil(used * 100 / p))``; ``leave_bytes`` b: ``max(1, used +
    b)`` (a limit of 0 would mean "the whole volume" to MooseFS). Fails when that limit is
    above the tier's configured size: the tier is already fuller than asked.
    """
    if not isinstance(state.get("used"), int) or not isinstance(state.get("configured_limit"),
                                                                 int):
        raise ActivityFailed(f"{service} tier {state['tier']} reports used="
                             f"{state.get('used')!r}, configured_limit="
                             f"{state.get('configured_limit')!r}; expected byte counts (a "
                             "failed tier cannot be filled)")
    used, size = state["used"], state["configured_limit"]
    if percent is not None:
        limit = max(1, math.ceil(Fraction(used) * 100 / Fraction(str(percent))))
        asked = f"{percent:g} % full"
    else:
        limit = max(1, used + int(leave_bytes or 0))
        asked = f"{leave_bytes} bytes free"
    if limit > size:
        raise ActivityFailed(f"{service} tier {state['tier']} holds {used} bytes of its "
                             f"{size}-byte size; {asked} needs a limit of {limit} bytes, above "
                             "its size: the tier is already fuller than asked")
    return limit


# --- mooseng disk inside a chunkserver container ------------------------------------------

def _error_of(err: str) -> str | None:
    """The ``error`` of the last JSON object on stderr, if any."""
    for line in reversed(err.strip().splitlines()):
        try:
            obj = json.loads(line)
        except ValueError:
            continue
        if isinstance(obj, dict) and obj.get("error"):
            return str(obj["error"])
    return None


def _size(value: Any) -> bool:
    """A byte count as ``mooseng disk`` prints it (``None`` when it cannot tell, e.g. the
    used space of a failed tier)."""
    return value is None or (isinstance(value, int) and not isinstance(value, bool))


def _tiers_of(result: Any, what: str) -> dict[str, dict[str, Any]]:
    """``{tier: state}`` from ``mooseng disk``'s JSON; fails on an unexpected shape."""
    items = result.get("tiers") if isinstance(result, dict) else None
    state: dict[str, dict[str, Any]] = {}
    for item in items if isinstance(items, list) else [None]:
        if (not isinstance(item, dict) or not isinstance(item.get("tier"), str)
                or not all(_size(item.get(k)) for k in ("configured_limit", "limit", "used"))):
            raise ActivityFailed(f"{what}: mooseng disk answered {json.dumps(result)[:200]}; "
                                 'expected {"tiers": [{"tier", "configured_limit", "limit", '
                                 '"used", "removal", "failed", ...}]}')
        state[item["tier"]] = item
    return state


def disk(container: Any, args: list[str], what: str) -> dict[str, dict[str, Any]]:
    """Run ``mooseng disk ARGS`` in ``container``; its tiers as ``{tier: state}``.

    Fails with the tool's own ``error`` (its JSON on stderr) when it exits non-zero.
    """
    code, out, err = _docker.exec_in(container, [*TOOL, *args])
    if code != 0:
        reason = (_error_of(err) or (err.strip() or out.strip() or "no output").splitlines()[-1])
        raise ActivityFailed(f"{what}: mooseng disk {' '.join(args)} exited {code}: "
                             f"{reason[:300]}")
    lines = [line for line in out.splitlines() if line.strip()]
    try:
        result = json.loads(lines[-1]) if lines else None
    except ValueError:
        result = None
    return _tiers_of(result, what)


def show(container: Any, service: str) -> dict[str, dict[str, Any]]:
    """``{tier: state}`` of the chunkserver in ``container`` (``mooseng disk show``)."""
    return disk(container, ["show"], f"reading the tiers of {service}")


def tier_state(state: dict[str, dict[str, Any]], service: str, tier: str) -> dict[str, Any]:
    """The state of ``tier``; fails naming the tiers the chunkserver has."""
    if tier not in state:
        raise ActivityFailed(f"{service} has no tier {tier!r}; it has "
                             f"{', '.join(state) or 'none'}")
    return state[tier]


def _running(fault: dict[str, Any], doing: str) -> Any:
    """The fault's chunkserver container, which must be running to run ``mooseng disk``."""
    container = _container.container_of(fault)
    state = _docker.container_state(container)
    if state != "running":
        raise ActivityFailed(f"{fault['target']['service']} container is {state}; start it to "
                             f"{doing} of tier {fault['tier']}")
    return container


def restore_limit(fault: dict[str, Any]) -> str:
    """Restore the tier's configured size limit (``mooseng disk limit TIER --restore``).

    A tier already at its configured limit is left alone (a restarted chunkserver, an
    earlier undo).
    """
    service, tier = fault["target"]["service"], fault["tier"]
    container = _running(fault, "restore the limit")
    before = tier_state(show(container, service), service, tier)
    if before["limit"] == before["configured_limit"]:
        return f"{tier} already at its configured limit of {before['limit']} bytes"
    after = tier_state(disk(container, ["limit", tier, "--restore"],
                            f"restoring the limit of {service} tier {tier}"), service, tier)
    if after["limit"] != after["configured_limit"]:
        raise ActivityFailed(f"{service} tier {tier} has limit {after['limit']} after the "
                             f"restore; expected its configured {after['configured_limit']}")
    return f"{tier} limit restored to {after['limit']} bytes (was {before['limit']})"


def _switch_off(fault: dict[str, Any], flag: str, command: str, done: str, already: str) -> str:
    """Turn ``command`` (removal, fail) off for the fault's tier unless ``flag`` is off."""
    service, tier = fault["target"]["service"], fault["tier"]
    container = _running(fault, f"undo {fault['kind']}")
    if not tier_state(show(container, service), service, tier).get(flag):
        return f"{tier} {already}"
    after = tier_state(disk(container, [command, tier, "off"],
                            f"undoing {fault['kind']} on {service} tier {tier}"), service, tier)
    if after.get(flag):
        raise ActivityFailed(f"{service} tier {tier} still has {flag}=true after "
                             f"mooseng disk {command} {tier} off")
    return f"{tier} {done}"


def unmark_removal(fault: dict[str, Any]) -> str:
    """Take the tier's mark for removal away (``mooseng disk removal TIER off``)."""
    return _switch_off(fault, "removal", "removal", "no longer marked for removal",
                       "already not marked for removal")


def unfail(fault: dict[str, Any]) -> str:
    """Make the failed tier readable again (``mooseng disk fail TIER off``); MooseFS
    rescans it after the reload."""
    return _switch_off(fault, "failed", "fail", "readable again", "already readable")


UNDO = {FILL: restore_limit, REMOVAL: unmark_removal, FAIL: unfail}
