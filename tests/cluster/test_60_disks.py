"""Disk faults and storage-class placement against the compose cluster.

Each disk fault is applied and undone through chaosmoose, and its effect is read from
MooseFS itself with the MooseFS tools, parsed here independently of chaosmoose's parsers:
``mfscli -SHD`` shows the lowered total of a filled tier, the mark of a tier marked for
removal, the damage of a failed tier, and their return to normal after the undo. The three
disk experiments pass under strict mode; a directory of the tiered class is checked with
``mfsgetsclass``, ``mfsfileinfo`` and ``mfscli -SCS``; bad input changes nothing.
"""

from __future__ import annotations

import json
import re
import subprocess
import time

import pytest

from chaosmoose.chunkserver import actions
from chaosmoose.ledger import Ledger
from tests.cluster.conftest import wait_for
from tests.cluster.test_30_experiments import BIN, EXPERIMENTS, REPO, chaos_run, variant

pytestmark = pytest.mark.cluster

CHUNKSERVERS = ("chunkserver-1", "chunkserver-2", "chunkserver-3")
MIB = 1 << 20


def config(run_dir, name: str) -> dict:
    """Activities called from the test: their own run directory and run id."""
    return {"chaosmoose_run_dir": str(run_dir), "chaosmoose_run_id": f"test60-{name}"}


def addresses(cluster) -> dict[str, str]:
    """``{IP: chunkserver}`` from each chunkserver container."""
    return {cluster.sh(cs, "hostname -i").out.split()[0]: cs for cs in CHUNKSERVERS}


def moosefs_disks(cluster) -> dict[tuple[str, str], dict]:
    """``mfscli -SHD`` as MooseFS prints it: ``{(chunkserver, tier): {"status", "chunks",
    "used", "total"}}`` (sizes None while a folder is scanned)."""
    names = addresses(cluster)
    found = {}
    for row in cluster.mfscli("HD"):
        if row[0] != "disks:" or len(row) < 15:
            continue
        ip, _, path = row[1].split(":", 2)
        scanning = row[13] == "progress:"
        found[(names.get(ip, ip), path.rstrip("/").rsplit("/", 1)[-1])] = {
            "status": row[4], "chunks": int(row[2]),
            "used": None if scanning else int(row[13].replace(" ", "")),
            "total": None if scanning else int(row[14].replace(" ", ""))}
    return found


def moosefs_servers(cluster) -> dict[str, dict]:
    """``mfscli -SCS``: ``{chunkserver: {"labels": set, "total": bytes}}``."""
    names = addresses(cluster)
    return {names.get(row[1], row[1]): {"labels": set(row[4].split(",")) - {"-"},
                                        "total": int(row[10].replace(" ", ""))}
            for row in cluster.mfscli("CS") if row[0] == "chunk servers:" and len(row) > 10}


def settled_disks(cluster, timeout: float = 300) -> dict[tuple[str, str], dict]:
    """``moosefs_disks`` once every tier shows its configured limit. A chunkserver started in
    the last few minutes offers its tiers as "leave N free" (the volume's total) until MooseFS
    can count their chunks (mooseng/mfs/disks.py), then switches to the limit on its own: a
    "nothing changed" comparison must not start in that form."""
    from mooseng.settings import SETTINGS, parse_tier_sizes  # the defaults CI runs with
    configured = parse_tier_sizes(SETTINGS["MOOSENG_CS_TIER_SIZES"].default)

    def limits_shown():
        seen = moosefs_disks(cluster)
        return seen if all(seen.get((cs, tier), {}).get("total") == size for cs in CHUNKSERVERS
                           for tier, size in configured.items()) else False

    return wait_for("mfscli -SHD totals equal to the configured sizes", limits_shown,
                    timeout=timeout, interval=5)


def disk_of(cluster, chunkserver: str, tier: str) -> dict:
    return moosefs_disks(cluster)[(chunkserver, tier)]


def cleanup(run_dir) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "chaosmoose"), "cleanup", "--run-dir", str(run_dir)],
                          cwd=REPO, capture_output=True, text=True, timeout=180, check=False)


def measured_by_moosefs(cluster, chunkserver: str, tier: str) -> dict:
    """The tier once MooseFS shows its limit as its total: a tier MooseFS cannot measure yet
    (empty, or its chunks not counted) is offered as "leave N free" first (mooseng/mfs/disks.py)."""
    from mooseng.settings import SETTINGS, parse_tier_sizes
    size = parse_tier_sizes(SETTINGS["MOOSENG_CS_TIER_SIZES"].default)[tier]
    return wait_for(f"{chunkserver} {tier} measured by MooseFS (total = its limit)",
                    lambda: (d := disk_of(cluster, chunkserver, tier))["total"] == size and d,
                    timeout=300, interval=5)


def test_fill_lowers_the_total_moosefs_reports_and_cleanup_restores_it(run_dir, cluster):
    before = measured_by_moosefs(cluster, "chunkserver-2", "fast")
    server_before = moosefs_servers(cluster)["chunkserver-2"]["total"]
    done = actions.fill_disk("chunkserver-2", "fast", leave_bytes=0,
                             configuration=config(run_dir, "fill"))
    (filled,) = done["filled"]
    (fault,) = Ledger(run_dir).open_faults()
    assert (fault["kind"], fault["tier"], fault["limit"]) == ("disk.fill", "fast",
                                                              filled["limit"])
    assert fault["limit_before"] == filled["limit_before"] and fault["applied_t"]
    # MooseFS itself: the tier's total is the new limit, the chunkserver's total shrank.
    # MooseFS takes a new limit at the folder's next refresh: a chunk operation there, or 60 s.
    now = wait_for("-SHD to show the lowered limit",
                   lambda: (d := disk_of(cluster, "chunkserver-2", "fast"))["total"]
                   == filled["limit"] and d, timeout=75)
    assert now["used"] <= now["total"] and now["total"] - now["used"] < 64 * MIB
    shrink = before["total"] - filled["limit"]
    wait_for("-SCS to show chunkserver-2's total shrunk by the fill",
             lambda: moosefs_servers(cluster)["chunkserver-2"]["total"]
             == server_before - shrink, timeout=15)
    print(f"fill: chunkserver-2 fast total {before['total']} -> {filled['limit']} bytes")

    healed = cleanup(run_dir)
    assert healed.returncode == 0, healed.stderr
    assert re.search(r"undone disk\.fill on chunkserver-2 \(run [^)]*\): fast limit restored "
                     rf"to {filled['limit_before']} bytes", healed.stdout), healed.stdout
    wait_for("-SHD to show the configured limit again",
             lambda: disk_of(cluster, "chunkserver-2", "fast")["total"] == before["total"],
             timeout=75)
    assert Ledger(run_dir).open_faults() == []


def test_mark_for_removal_shows_in_moosefs_and_the_undo_takes_it_away(run_dir, cluster):
    cfg = config(run_dir, "removal")
    assert disk_of(cluster, "chunkserver-2", "bulk")["status"] == "ok"
    done = actions.mark_disk_for_removal("chunkserver-2", "bulk", configuration=cfg)
    assert Ledger(run_dir).open_faults()[0]["id"] == done["fault"]
    marked = wait_for("-SHD to show the mark", lambda: (
        d := disk_of(cluster, "chunkserver-2", "bulk"))["status"].startswith(
            "marked for removal") and d, timeout=60)
    print(f"removal: chunkserver-2 bulk {marked}")
    (undone,) = actions.undo_disk_faults(configuration=cfg)
    assert undone["how"] == "bulk no longer marked for removal"
    wait_for("-SHD to show the tier ok again",
             lambda: disk_of(cluster, "chunkserver-2", "bulk")["status"] == "ok", timeout=60)
    assert Ledger(run_dir).open_faults() == []


def test_a_failed_tier_is_damaged_for_moosefs_and_comes_back_after_the_undo(run_dir, cluster):
    cfg = config(run_dir, "fail")
    actions.fail_disk("chunkserver-2", "bulk", configuration=cfg)
    began = time.monotonic()
    def damaged_row() -> dict | None:
        row = disk_of(cluster, "chunkserver-2", "bulk")
        parts = [p.strip() for p in row["status"].split(",")]
        return row if "damaged" in parts or "invalid" in parts else None

    # mooseng disk fail returns once the chunkserver lists the folder unusable; -SHD shows
    # it invalid (MooseFS dropped the folder) or damaged.
    damaged = wait_for("-SHD to show the tier damaged", damaged_row, timeout=60, interval=2)
    print(f"fail: chunkserver-2 bulk {damaged} after {time.monotonic() - began:.0f} s")
    (undone,) = actions.undo_disk_faults(configuration=cfg)
    assert undone["how"] == "bulk readable again"
    wait_for("-SHD to show the rescanned tier ok",
             lambda: disk_of(cluster, "chunkserver-2", "bulk")["status"] == "ok",
             timeout=180, interval=2)
    assert Ledger(run_dir).open_faults() == []


def placement_by_moosefs_tools(cluster, folder: str) -> list[str]:
    """Every chunk of every file under ``folder`` (in client-1's mount) must have a valid
    copy on an F server and another on an S server; the folder must be in class tiered.
    Returns what is wrong, one line each (read with the MooseFS tools only)."""
    labels = {cs: info["labels"] for cs, info in moosefs_servers(cluster).items()}
    names = addresses(cluster)
    mount = f"/mnt/client-1/{folder}"
    wrong = []
    sclass = cluster.sh("client-1", f"mfsgetsclass {mount}").out
    if "'tiered'" not in sclass:
        wrong.append(f"{folder} is not in class tiered: {sclass.strip()}")
    out = cluster.sh("client-1", f"find {mount} -type f -print0 | xargs -0 -r mfsfileinfo").out
    chunks = re.split(r"\n\s*chunk \d+: ", out)
    for text in chunks[1:]:
        name = text.split()[0]
        valid = [names.get(ip, ip) for ip in
                 re.findall(r"copy \d+: ([0-9.]+):\d+ \(status:VALID\)", text)]
        fast = [cs for cs in valid if "F" in labels.get(cs, set())]
        bulk = [cs for cs in valid if "S" in labels.get(cs, set())]
        if not any(f != b for f in fast for b in bulk):  # keep F,S: two servers
            wrong.append(f"chunk {name}: valid copies on {valid} (labels {labels})")
    if len(chunks) < 2:
        wrong.append(f"no chunk under {folder}: {out[:300]}")
    return wrong


# The input checks and the size check run before the experiments: tier-placement kills
# and restarts a chunkserver, whose tiers then take minutes to show their limits again
# (settled_disks waited 140 s for them in CI when these came after it).


def _set(path: list, value):
    """An experiment edit: set the value at ``path`` (keys and list indexes)."""
    def edit(experiment: dict) -> None:
        target = experiment
        for key in path[:-1]:
            target = target[key] if not isinstance(key, str) or not key.startswith("@") \
                else next(a for a in target if a["name"] == key[1:])
        target[path[-1]] = value
    return edit


@pytest.mark.parametrize("name, edit, message", [
    ("disk-full", _set(["configuration", "fill_percent"], 150),
     "percent=150 is invalid; expected a number with 0 < percent <= 100"),
    ("disk-full", _set(["configuration", "fill_percent"], -5),
     "percent=-5 is invalid; expected a number with 0 < percent <= 100"),
    ("disk-full", _set(["method", "@fill-every-tier-of-one-chunkserver", "provider",
                        "arguments", "tier"], "ssd"),
     "tier='ssd' is not a configured tier; expected one of fast, bulk"),
    ("disk-removal", _set(["configuration", "removal_tier"], "nvme"),
     "tier='nvme' is not a configured tier"),
    ("tier-placement", _set(["configuration", "storage_class"], "fast and bulk"),
     "storage_class='fast and bulk' is invalid; expected a storage class name"),
])
def test_bad_disk_input_fails_before_touching_anything(name, edit, message, run_dir, tmp_path,
                                                       cluster):
    before = {k: (v["total"], v["status"]) for k, v in settled_disks(cluster).items()}
    code, journal, _, tail = chaos_run(variant(tmp_path, name, edit), run_dir)
    assert code == 1, tail
    assert journal["status"] == "interrupted" and journal["run"] == []
    assert message in tail
    assert Ledger(run_dir).faults() == []
    assert {k: (v["total"], v["status"]) for k, v in moosefs_disks(cluster).items()} == before


def test_a_tier_the_chunkserver_lacks_stops_the_run_with_no_disk_fault(run_dir, tmp_path,
                                                                        cluster):
    """Configured (so the preflight lets it through) but absent on the chunkserver: the
    fill fails before its ledger entry, strict mode stops the run, nothing stays open."""
    before = {k: v["total"] for k, v in settled_disks(cluster).items()}
    edit = _set(["method", "@fill-every-tier-of-one-chunkserver", "provider", "arguments",
                 "tier"], "ssd")
    code, _, _, tail = chaos_run(variant(tmp_path, "disk-full", edit), run_dir,
                                 MOOSENG_CS_TIERS="fast,bulk,ssd")
    assert code == 1, tail
    assert "chunkserver-1 has no tier 'ssd'; it has fast, bulk" in tail
    assert Ledger(run_dir).faults(kinds=["disk.fill", "disk.removal", "disk.fail"]) == []
    assert Ledger(run_dir).open_faults() == []
    assert {k: v["total"] for k, v in moosefs_disks(cluster).items()} == before


TIER_METRIC = re.compile(r'^mooseng_tier_(total|used|free)_bytes\{[^}]*tier="(\w+)"[^}]*\} (\S+)$')


def test_tier_sizes_are_the_configured_limits_in_the_metrics_and_in_moosefs(cluster):
    """Every chunkserver's exporter reports each tier's total as its configured size
    (MOOSENG_CS_TIER_SIZES, the defaults here), used + free = total, and MooseFS's own
    ``mfscli -SHD`` shows the same totals: the limit is MooseFS's, not only ours."""
    from mooseng.settings import SETTINGS, parse_tier_sizes  # the defaults CI runs with
    configured = parse_tier_sizes(SETTINGS["MOOSENG_CS_TIER_SIZES"].default)

    seen_by_moosefs = settled_disks(cluster)
    for cs in CHUNKSERVERS:
        text = cluster.sh(cs, "python3 -c \"import urllib.request; print(urllib.request."
                              "urlopen('http://127.0.0.1:9450/metrics', timeout=5).read().decode())\"").out
        values: dict[str, dict[str, float]] = {}
        for line in text.splitlines():
            found = TIER_METRIC.match(line)
            if found:
                values.setdefault(found[2], {})[found[1]] = float(found[3])
        assert set(values) == set(configured), (cs, values)
        for tier, size in configured.items():
            assert values[tier]["total"] == size, (cs, tier, values[tier])
            assert values[tier]["used"] + values[tier]["free"] == size, (cs, tier, values[tier])
            assert seen_by_moosefs[(cs, tier)]["total"] == size, (cs, tier)


@pytest.mark.parametrize("name", ["disk-full", "disk-removal", "tier-placement"])
def test_disk_experiment_passes(name, run_dir, cluster):
    disks_before = moosefs_disks(cluster)
    code, journal, wall, tail = chaos_run(EXPERIMENTS / f"{name}.json", run_dir, timeout=1200)
    print(f"{name}: exit {code} in {wall:.1f} s")
    assert code == 0, tail
    assert journal["status"] == "completed" and journal["deviated"] is False
    assert journal["chaosmoose"]["strict"]["violations"] == []
    report = next(p["output"] for p in journal["steady_states"]["after"]["probes"]
                  if p["activity"]["provider"]["func"] == "check_acknowledged_writes")
    print(f"{name}: checker " + json.dumps({k: report.get(k) for k in (
        "acknowledged", "intact", "lost", "corrupt", "unavailability")}))
    assert report["acknowledged"] > 0 and report["lost"] == 0 and report["corrupt"] == 0
    assert Ledger(run_dir).open_faults() == []
    runs = {r["activity"]["name"]: r["output"] for r in journal["run"]}
    if name == "disk-full":
        filled = runs["fill-every-tier-of-one-chunkserver"]["filled"]
        assert {f["tier"] for f in filled} == {"fast", "bulk"}
        counted = runs["moosefs-counts-the-tiers-full"]
        print(f"disk-full: MooseFS counted the lowered limits after {counted['waited_s']} s, "
              f"the configured ones after "
              f"{runs['moosefs-counts-the-configured-limits-again']['waited_s']} s")
        seen = {row["tier"]: row for row in counted["tiers"]}
        for tier in filled:  # MooseFS reported the lowered limits while the fault held
            assert seen[tier["tier"]]["total"] == tier["limit"], (seen, filled)
        server = counted["servers"]["chunkserver-1"]
        assert server["master_total"] == sum(t["limit"] for t in filled) == \
            server["disks_total"]
        avoided = runs["new-chunks-avoid-the-full-chunkserver"]
        again = runs["new-chunks-reach-the-chunkserver-again"]
        print(f"disk-full: new copies while full {avoided['copies']}, after {again['copies']}")
        assert "chunkserver-1" not in avoided["copies"] and avoided["chunks"] > 0
        assert again["copies"].get("chunkserver-1", 0) > 0
        faults = Ledger(run_dir).faults(kinds=["disk.fill"])
        assert len(faults) == 2 and all(f["state"] == "undone" for f in faults)
        for tier in ("fast", "bulk"):  # and MooseFS sees the configured limits again
            assert moosefs_disks(cluster)[("chunkserver-1", tier)]["total"] == \
                disks_before[("chunkserver-1", tier)]["total"]
    if name == "disk-removal":
        assert runs["moosefs-shows-the-mark"]["removal"] is True
        took = runs["chunks-copied-away-goal-never-violated"]
        print(f"disk-removal: regular matrix back to goal after {took} s, extra copies gone "
              f"after {runs['extra-copies-go']} s")
        assert isinstance(took, float) and took >= 0
        ready = runs["moosefs-says-the-tier-can-go"]
        print(f"disk-removal: MooseFS called the tier ready {ready['waited_s']} s later")
        assert ready["ok"] is True and ready["status"] == "marked for removal (ready)"
        assert runs["moosefs-shows-the-tier-ok"]["status"] == "ok"
        assert disk_of(cluster, "chunkserver-1", "fast")["status"] == "ok"
    if name == "tier-placement":
        for step in ("placement-follows-the-class", "placement-kept-during-the-loss",
                     "placement-kept-after-the-recovery"):
            assert runs[step]["ok"] is True and runs[step]["chunks"] > 0, runs[step]
        assert runs["placement-kept-after-the-recovery"]["by_class"] == {
            "tiered": runs["placement-kept-after-the-recovery"]["files"]}
        assert placement_by_moosefs_tools(cluster, "chaosmoose/tiered") == []
