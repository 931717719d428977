"""mfscli parsing on captured real output, and the DATA_PATH file helpers."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from mooseng.mfs import MfsController, MfsPaths, PromotionError, cli, files

DATA = Path(__file__).parent / "data"


def test_chunkservers_from_real_output() -> None:
    servers = cli.chunkservers((DATA / "mfscli" / "SCS.txt").read_text())
    assert len(servers) == 3
    assert servers[0] == {"address": "172.18.0.5:9422", "id": 1, "labels": "C", "version": "3.0.117",
                          "chunks": 8, "used_bytes": 25639788544, "total_bytes": 195145498624}


def test_removal_states_from_real_output() -> None:
    text = (DATA / "mfscli" / "SCS.txt").read_text()
    assert set(cli.removal_states(text).values()) == {"-"}
    marked = text.replace("\t-\t0\t0\t0", "\tNOT READY\t3301\t1\t2", 1)
    assert list(cli.removal_states(marked).values()) == ["NOT READY", "-", "-"]


def test_chunk_loop_from_real_output() -> None:
    assert cli.chunk_loop((DATA / "mfscli" / "SIL.txt").read_text()) == {
        "start": 1796007825, "end": 1796007885, "work": {
            "deletions invalid": "0/0", "deletions unused": "0/0", "deletions disk clean": "0/0",
            "deletions over goal": "129/129", "replications under goal": "0/0",
            "replications wrong labels": "0/0/0", "replications rebalance": "129",
            "locked unused": "9", "locked used": "0"}}
    assert cli.chunk_loop((DATA / "mfscli" / "SIL-no-data.txt").read_text()) is None


def test_chunk_matrix_from_real_output() -> None:
    assert cli.chunk_matrix((DATA / "mfscli" / "SIC.txt").read_text()) == {
        "missing": 0, "endangered": 0, "undergoal": 0, "stable": 14, "overgoal": 0, "pending_deletion": 0}
    assert cli.chunk_matrix((DATA / "mfscli-SIC-empty.txt").read_text())["stable"] == 0


def test_numbers_and_sizes() -> None:
    assert cli.number("348 208") == 348208
    assert cli.size_bytes("1.5 GiB") == 1610612736
    assert cli.size_bytes("512 B") == 512
    assert cli.size_bytes("25639788544") == 25639788544


def test_change_number_reads_every_changelog(tmp_path: Path) -> None:
    assert files.change_number(tmp_path) == 0
    header = b"MFSM 2.0" + struct.pack(">Q", 41000) + b"\0" * 8
    (tmp_path / "metadata_ml.mfs").write_bytes(header)
    assert files.change_number(tmp_path) == 41000
    (tmp_path / "changelog_ml.1.mfs").write_text("41200: 1|ACCESS(1)\n")
    (tmp_path / "changelog_ml.0.mfs").write_text("41232: 1|ACCESS(1)\n41233: 2|CREATE(1,x)\n41234: 3|AC")
    assert files.change_number(tmp_path) == 41233
    # a master's own changelog counts the same way (a fenced leader holds the newest changes)
    (tmp_path / "changelog.0.mfs").write_text("41300: 9|CREATE(1,y)\n")
    assert files.change_number(tmp_path) == 41300


def test_lineage_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "lineage"
    assert files.read_lineage(path) == 0
    files.write_lineage(path, 7)
    assert files.read_lineage(path) == 7


def test_set_aside_keeps_only_the_newest_folders(tmp_path: Path) -> None:
    for second in range(8):
        (tmp_path / "metadata.mfs").write_text("x")
        files.set_aside(tmp_path, now=second)
    assert len(list((tmp_path / "aside").iterdir())) == files.KEEP_ASIDE


def test_set_aside_moves_master_files_only(tmp_path: Path) -> None:
    for name in ("metadata.mfs", "metadata.mfs.back.1", "changelog.0.mfs", "changelog.3.mfs",
                 "metadata_ml.mfs", "changelog_ml.0.mfs", "stats.mfs"):
        (tmp_path / name).write_text("x")
    assert files.has_metadata(tmp_path)
    where = files.set_aside(tmp_path, now=0)
    assert where == tmp_path / "aside" / "19700101T000000Z"
    assert sorted(p.name for p in where.iterdir()) == ["changelog.0.mfs", "changelog.3.mfs",
                                                       "metadata.mfs", "metadata.mfs.back.1"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["aside", "changelog_ml.0.mfs", "metadata_ml.mfs",
                                                          "stats.mfs"]
    assert files.set_aside(tmp_path) is None


CHANGELOG_WITH_A_WRITE_IN_FLIGHT = (
    "890: 1000|ACQUIRE(1,148)\n"
    "891: 1000|WRITE(148,0,1,0):147\n"
    "892: 1000|LENGTH(148,29,0)\n"
    "893: 1000|UNLOCK(147)\n"
    "894: 1001|WRITE(149,0,1,0):150\n"   # never ended: the leader died
    "895: 1001|WRITE(151,2,0,1):152\n"   # ended below
    "896: 1002|UNLOCK(152)\n"
)


def test_stale_write_locks_are_writes_without_unlock(tmp_path: Path) -> None:
    (tmp_path / "changelog_ml_back.0.mfs").write_text("10: 900|WRITE(5,0,1,0):6\n")  # expired lock
    (tmp_path / "changelog_ml.0.mfs").write_text(CHANGELOG_WITH_A_WRITE_IN_FLIGHT)
    assert files.stale_write_locks(tmp_path, now=1050) == [150]
    assert files.stale_write_locks(tmp_path, now=1001 + files.LOCK_TIMEOUT_S) == []


def test_unlocks_follow_the_newest_change_and_can_be_undone(tmp_path: Path) -> None:
    older = tmp_path / "changelog_ml_back.0.mfs"
    older.write_text("10: 900|WRITE(5,0,1,0):6\n")
    newest = tmp_path / "changelog_ml.0.mfs"
    newest.write_text(CHANGELOG_WITH_A_WRITE_IN_FLIGHT)
    target, size = files.append_unlocks(tmp_path, [150, 160], now=1050.7)
    assert target == newest
    assert newest.read_text().splitlines()[-2:] == ["897: 1050|UNLOCK(150)", "898: 1050|UNLOCK(160)"]
    assert files.change_number(tmp_path) == 898
    files.undo_append(target, size)
    assert newest.read_text() == CHANGELOG_WITH_A_WRITE_IN_FLIGHT


def test_no_unlock_appended_after_an_incomplete_line(tmp_path: Path) -> None:
    (tmp_path / "changelog_ml.0.mfs").write_text(CHANGELOG_WITH_A_WRITE_IN_FLIGHT + "897: 10")
    assert files.append_unlocks(tmp_path, [150], now=1050) is None


def test_own_master_change_reads_only_the_masters_changelogs(tmp_path: Path) -> None:
    """After a demotion the metalogger may already hold the new leader's changes under the
    same numbers: only mfsmaster's own changelog says what this node wrote."""
    assert files.own_master_change(tmp_path) == 0
    (tmp_path / "changelog_ml.0.mfs").write_text("500: 1|ACCESS(1)\n")
    assert files.own_master_change(tmp_path) == 0
    (tmp_path / "changelog.1.mfs").write_text("300: 1|ACCESS(1)\n")
    (tmp_path / "changelog.0.mfs").write_text("301: 1|ACCESS(1)\n420: 2|CREATE(1,x)\n421: 3|AC")
    assert files.own_master_change(tmp_path) == 420
    assert files.own_master_change(tmp_path / "missing") == 0


def test_bootstrap_never_overwrites_existing_metadata(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.write_bytes(b"MFSM NEW")
    data = tmp_path / "mfs"
    data.mkdir()
    (data / "changelog_ml.0.mfs").write_text("41: x\n")
    controller = MfsController(MfsPaths(data_path=data, empty_metadata=empty), "127.0.0.1")
    with pytest.raises(PromotionError, match="already holds metadata"):
        controller.bootstrap()
    assert not (data / "metadata.mfs").exists()
    (data / "changelog_ml.0.mfs").unlink()
    controller.bootstrap()
    assert (data / "metadata.mfs").read_bytes() == b"MFSM NEW"
