"""Bounded tiers: size settings, mfshdd.cfg lines, the chunkserver's tier metrics and the
leader's view of every folder (mfscli -SHD)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mooseng import mfsconfig, settings, tiers
from mooseng.mfs import cli
from mooseng.promtext import render

DATA = Path(__file__).parent / "data" / "mfscli"
GIB = 1024**3
MIB = 1024**2


# --- sizes ---------------------------------------------------------------------------
@pytest.mark.parametrize(("raw", "value"), [
    ("1GiB", GIB), ("1.5 GiB", GIB * 3 // 2), ("512MiB", 512 * MIB), ("64mib", 64 * MIB),
    ("1073741824", GIB), ("2TiB", 2 * 1024 * GIB), ("10KiB", 10240), ("7B", 7)])
def test_sizes_take_binary_units(raw, value):
    assert settings.parse_size(raw) == value


@pytest.mark.parametrize("raw", ["1GB", "1 G", "", "GiB", "-1GiB", "1,5GiB"])
def test_sizes_refuse_other_units_and_shapes(raw):
    with pytest.raises(ValueError):
        settings.parse_size(raw)


def test_tier_sizes_default_bounds_fast_and_bulk():
    assert settings.tier_sizes({}) == {"fast": GIB, "bulk": 2 * GIB}


@pytest.mark.parametrize(("raw", "names"), [
    ("fast=10MiB,bulk=1GiB", "'fast=10MiB' is below 64MiB"),
    ("fast=1GiB,bulk=2GB", "'bulk=2GB'"),
    ("fast=1GiB,bulk", "'bulk' is not tier=size"),
    ("fast=1GiB,fast=2GiB", "repeats tier fast"),
    ("fa st=1GiB", "is not tier=size"),
])
def test_a_bad_tier_size_entry_is_named(raw, names):
    with pytest.raises(settings.SettingError) as err:
        settings.read("MOOSENG_CS_TIER_SIZES", {"MOOSENG_CS_TIER_SIZES": raw})
    assert str(err.value).startswith("MOOSENG_CS_TIER_SIZES=") and names in str(err.value)


def test_every_tier_needs_a_size_and_a_chunkserver_refuses_to_start_without():
    env = {"MOOSENG_CS_TIERS": "fast,bulk,archive", "MOOSENG_CS_TIER_SIZES": "fast=1GiB,bulk=2GiB"}
    with pytest.raises(settings.SettingError, match="no size for tier archive of MOOSENG_CS_TIERS"):
        settings.tier_sizes(env)
    [error] = settings.validate("chunkserver", env)
    assert "no size for tier archive" in error
    assert settings.validate("client", env) == []  # a client does not read tiers


def test_extra_sizes_are_ignored_and_order_follows_the_tiers():
    env = {"MOOSENG_CS_TIERS": "bulk,fast", "MOOSENG_CS_TIER_SIZES": "fast=1GiB,bulk=2GiB,x=1GiB"}
    assert list(settings.tier_sizes(env)) == ["bulk", "fast"]


@pytest.mark.parametrize(("raw", "value"), [("A", "A"), ("a, f", "A,F"), ("", ""), ("C,S", "C,S"),
                                            ("B;F", "B,F")])
def test_labels_are_letters_separated_by_commas(raw, value):
    assert settings.parse_labels(raw) == value


@pytest.mark.parametrize("raw", ["AF", "A F", "A,A", "1", "A,,F", "A,"])
def test_labels_moosefs_would_reject_are_refused(raw):
    with pytest.raises(ValueError):
        settings.parse_labels(raw)


# --- mfshdd.cfg ------------------------------------------------------------------------
def test_configured_tiers_live_under_the_data_dir():
    found = tiers.configured_tiers(environ={"MOOSENG_DATA_DIR": "/d"})
    assert found == [tiers.Tier("fast", Path("/d/tiers/fast"), GIB),
                     tiers.Tier("bulk", Path("/d/tiers/bulk"), 2 * GIB)]


def test_hdd_cfg_lines_carry_the_limit_in_bytes():
    body = tiers.render_hdd_cfg(tiers.configured_hdd_lines(
        tiers.configured_tiers(Path("/d/tiers"), {})))
    folder_lines = [line for line in body.splitlines() if not line.startswith("#")]
    assert folder_lines == ["/d/tiers/fast 1073741824", "/d/tiers/bulk 2147483648"]


@pytest.mark.parametrize(("line", "parsed"), [
    ("/d/tiers/fast 1073741824", tiers.HddLine("/d/tiers/fast", GIB)),
    ("*/d/tiers/fast/ 12", tiers.HddLine("/d/tiers/fast/", 12, removal=True)),
    ("/d/tiers/fast", tiers.HddLine("/d/tiers/fast")),
    ("~*/d/x -1GiB", tiers.HddLine("/d/x", None, True, "~", "-1GiB")),
    ("/d/x 0", tiers.HddLine("/d/x", None, other_size="0")),
    ("/d/x\t5GiB", tiers.HddLine("/d/x", 5 * GIB)),
    ("/d/x 5GB", tiers.HddLine("/d/x", None, other_size="5GB")),
])
def test_hdd_lines_parse_as_moosefs_reads_them(line, parsed):
    assert tiers.parse_hdd_line(line) == parsed


@pytest.mark.parametrize("line", ["/d/tiers/fast 1073741824", "*/d/tiers/fast 12", "*~/d/x -1GiB",
                                  "/d/x 5GB", "/d/x"])
def test_hdd_lines_are_written_back_unchanged(line):
    assert tiers.parse_hdd_line(line).render() == line


def test_comments_and_blank_lines_are_not_folders():
    assert tiers.parse_hdd_cfg("# c\n\n  \n/a 100\n#/b\n") == [tiers.HddLine("/a", 100)]


def test_write_chunkserver_configs_bounds_every_tier(tmp_path, monkeypatch):
    monkeypatch.setattr(mfsconfig, "CHUNKSERVER_CFG", tmp_path / "etc" / "mfschunkserver.cfg")
    monkeypatch.setattr(mfsconfig, "HDD_CFG", tmp_path / "etc" / "mfshdd.cfg")
    monkeypatch.setenv("MOOSENG_CS_TIER_SIZES", "fast=128MiB,bulk=1GiB")
    layout = mfsconfig.Layout(tmp_path / "data")
    (layout.tiers / "fast" / "0A").mkdir(parents=True)  # fast holds a chunk, bulk is empty
    (layout.tiers / "fast" / "0A" / "chunk_000000000000000A_00000001.mfs").write_bytes(b"c")
    monkeypatch.setattr(tiers.os, "statvfs", lambda path: type(
        "S", (), {"f_bavail": 10 * GIB // 4096, "f_frsize": 4096})())
    folders = mfsconfig.write_chunkserver_configs(layout, "10.0.0.2", "10.0.0.2")
    assert folders == [layout.tiers / "fast", layout.tiers / "bulk"]
    assert all(folder.is_dir() for folder in folders)
    lines = tiers.parse_hdd_cfg((tmp_path / "etc" / "mfshdd.cfg").read_text())
    # a tier that holds chunks starts with its limit (MooseFS measures a limited folder it
    # scans at once); an empty one as "leave N free", offering its configured size
    assert lines == [tiers.HddLine(str(layout.tiers / "fast"), 128 * MIB),
                     tiers.HddLine(str(layout.tiers / "bulk"), None, other_size=f"-{9 * GIB}")]
    cfg = (tmp_path / "etc" / "mfschunkserver.cfg").read_text()
    assert "ALLOW_STARTING_WITH_INVALID_DISKS = 1\n" in cfg
    assert f"HDD_CONF_FILENAME = {tmp_path / 'etc' / 'mfshdd.cfg'}\n" in cfg


# --- the chunkserver's own view ------------------------------------------------------------
def chunk(folder: Path, name: str, size: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(b"x" * size)


def samples(text: str) -> dict[str, float]:
    """{'name{labels}': value} of an exposition."""
    return {line.rpartition(" ")[0]: float(line.rpartition(" ")[2])
            for line in text.splitlines() if line and not line.startswith("#")}


def test_chunk_bytes_count_chunk_files_by_their_blocks(tmp_path):
    chunk(tmp_path / "00", "chunk_0000000000000001_00000001.mfs", 100_000)
    chunk(tmp_path / "AB", "chunk_00000000000000AB_00000002.mfs", 5000)
    chunk(tmp_path / "AB", "not_a_chunk.txt", 900_000)
    (tmp_path / ".lock").write_text("")
    expected = sum(f.stat().st_blocks * 512 for f in tmp_path.glob("*/chunk_*.mfs"))
    assert expected >= 105_000
    assert tiers.chunk_bytes(tmp_path) == expected
    assert tiers.chunk_bytes(tmp_path / "missing") == 0


def test_tier_metrics_use_the_limit_in_force(tmp_path):
    fast, bulk = tmp_path / "tiers" / "fast", tmp_path / "tiers" / "bulk"
    chunk(fast / "01", "chunk_0000000000000001_00000001.mfs", 200_000)
    bulk.mkdir(parents=True)
    hdd = tmp_path / "mfshdd.cfg"
    hdd.write_text(f"# mooseng\n*{fast} 1000000\n{bulk}\n")
    configured = [tiers.Tier("fast", fast, GIB), tiers.Tier("bulk", bulk, 2 * GIB)]
    clock = [0.0]
    collector = tiers.TierUsageCollector(configured, hdd, clock=lambda: clock[0])
    used = tiers.chunk_bytes(fast)
    assert collector.read() == [tiers.TierUsage("fast", 1_000_000, used, True),
                                tiers.TierUsage("bulk", 2 * GIB, 0, False)]
    got = samples(render([collector]))
    assert got['mooseng_tier_total_bytes{tier="fast"}'] == 1_000_000
    assert got['mooseng_tier_used_bytes{tier="fast"}'] == used
    assert got['mooseng_tier_free_bytes{tier="fast"}'] == 1_000_000 - used
    assert got['mooseng_tier_marked_for_removal{tier="fast"}'] == 1
    assert got['mooseng_tier_free_bytes{tier="bulk"}'] == 2 * GIB
    # used is cached: a new chunk shows only after scan_every seconds
    chunk(bulk / "02", "chunk_0000000000000002_00000001.mfs", 50_000)
    assert collector.read()[1].used == 0
    clock[0] = 16.0
    assert collector.read()[1].used > 0


def test_over_the_limit_leaves_no_negative_free():
    assert tiers.TierUsage("fast", 100, 150, False).free == 0


# --- the leader's view: mfscli -SHD --------------------------------------------------------
def test_disks_from_real_output():
    found = cli.disks((DATA / "SHD.txt").read_text())
    assert len(found) == 6
    assert found[0] == {"address": "172.18.0.5:9422", "path": "/var/lib/mooseng/tiers/bulk/",
                        "tier": "bulk", "chunks": 4, "last_error": None, "status": "ok",
                        "damaged": False, "marked_for_removal": False, "scan_progress": None,
                        "used_bytes": 12820688896, "total_bytes": 97572749312}
    assert {d["tier"] for d in found} == {"fast", "bulk"}


# Rows in mfscli 3.0.117's plain layout (mfscli.py.in, section "HD", non-tty branch):
# ip:port:path, chunks, last error (Unix time), status, 8 I/O figures, used, total.
IO_NONE = ["-"] * 8
SHD_FAULTS = "\n".join("\t".join(fields) for fields in [
    ["disks:", "172.18.0.5:9422:/var/lib/mooseng/tiers/fast/", "0", "no errors", "invalid",
     *IO_NONE, "0", "0"],
    ["disks:", "172.18.0.6:9422:/var/lib/mooseng/tiers/fast/", "1 203", "1732590642", "damaged",
     "1048576", "0", "812 us", "0 us", "0 us", "12", "0", "0", "335 544 320", "1 073 741 824"],
    ["disks:", "172.18.0.7:9422:/var/lib/mooseng/tiers/bulk/", "17", "no errors",
     "marked for removal (ready)", *IO_NONE, "1114112", "2147483648"],
    ["disks:", "172.18.0.7:9422:/var/lib/mooseng/tiers/fast/", "3", "no errors", "scanning",
     *IO_NONE, "progress:", "42"],
    ["disks:", "short", "row"],
])


def test_disks_report_faults_removal_and_scans():
    invalid, damaged, removal, scanning = cli.disks(SHD_FAULTS)
    assert invalid["damaged"] and invalid["status"] == "invalid" and invalid["total_bytes"] == 0
    assert damaged["damaged"] and damaged["chunks"] == 1203 and damaged["last_error"] == 1732590642
    assert (damaged["used_bytes"], damaged["total_bytes"]) == (335544320, GIB)
    assert removal["marked_for_removal"] and not removal["damaged"] and removal["tier"] == "bulk"
    assert scanning["scan_progress"] == 42 and scanning["used_bytes"] is None


def test_no_disks_section_gives_no_disks():
    assert cli.disks("Working master servers not found !!!\n") == []
