"""``mooseng disk``: show, limit, removal and fail against a temporary chunkserver layout with
a fake mfschunkserver that behaves as 3.0.117 does on reload (a folder it may not enter is
dropped; one it may enter is taken up again)."""

from __future__ import annotations

import json
import os
import socket
import struct
import threading
from pathlib import Path

import pytest

from mooseng import cli, mfsconfig, tiers
from mooseng.mfs import disks
from mooseng.mfs.disks import ChunkserverError, DiskError, Disks, LocalChunkserver

GIB = 1024**3


class FakeChunkserver:
    """Flags of each folder's mfshdd.cfg line as 3.0.117 reports them after a reload: 0 when
    the folder is usable, damaged+invalid when it may not be entered, not listed (None) when
    it was refused because its removal was still running."""

    def __init__(self, modes: dict[Path, int], folders: list[Path]) -> None:
        self.modes = modes
        self.folders = folders
        self.running = True
        self.reloads = 0
        self.restarts = 0
        self.refuse_reloads = 0            # reloads that find the folder still being removed
        self.take_back_on_restart = True
        self.flags: dict[Path, int | None] = {folder: 0 for folder in folders}
        self.views: dict[Path, disks.FolderView] = {}  # none: the chunkserver does not answer

    def _usable(self, folder: Path) -> bool:
        return bool(self.modes.get(folder, 0o755) & 0o700)

    def reload(self) -> None:
        if not self.running:
            raise ChunkserverError("cannot reload: mfschunkserver is not running")
        self.reloads += 1
        for folder in self.folders:
            if not self._usable(folder):
                self.flags[folder] = disks.FLAG_DAMAGED | disks.FLAG_INVALID
            elif self.flags[folder] != 0:
                self.flags[folder] = None if self.refuse_reloads else 0
        self.refuse_reloads = max(0, self.refuse_reloads - 1)

    def folder_flags(self, folder: Path) -> int | None:
        return self.flags[folder]

    def folder_view(self, folder: Path) -> disks.FolderView | None:
        return self.views.get(folder)

    def restart(self) -> None:
        self.restarts += 1
        if self.take_back_on_restart:
            self.flags = {f: 0 if self._usable(f) else 10 for f in self.folders}


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture()
def lab(tmp_path):
    """(Disks, fake server, modes, mfshdd.cfg path) over tiers fast=1GiB, bulk=2GiB."""
    root = tmp_path / "data"
    configured = tiers.configured_tiers(root / "tiers", {})
    for tier in configured:
        (tier.path / "00").mkdir(parents=True)
    (configured[0].path / "00" / "chunk_0000000000000001_00000001.mfs").write_bytes(b"x" * 8192)
    hdd = tmp_path / "mfshdd.cfg"
    hdd.write_text(tiers.render_hdd_cfg(tiers.configured_hdd_lines(configured)))
    modes: dict[Path, int] = {}
    server = FakeChunkserver(modes, [t.path for t in configured])
    clock = Clock()
    d = Disks(configured, hdd, root, server, sleep=clock.sleep, clock=clock.time,
              chmod=lambda path, mode: modes.__setitem__(path, mode))
    return d, server, modes, hdd


def folder_lines(hdd: Path) -> list[str]:
    return [line for line in hdd.read_text().splitlines() if not line.startswith("#")]


def test_show_is_the_contract(lab):
    d, _, _, _ = lab
    body = d.show()
    fast, bulk = body["tiers"]
    assert list(body) == ["tiers"]
    assert list(fast) == ["tier", "path", "configured_limit", "limit", "used", "removal", "failed"]
    assert fast["tier"] == "fast" and fast["path"].endswith("/tiers/fast")
    assert (fast["configured_limit"], fast["limit"], fast["removal"], fast["failed"]) == (
        GIB, GIB, False, False)
    assert fast["used"] >= 8192 and bulk["used"] == 0
    assert (bulk["configured_limit"], bulk["limit"]) == (2 * GIB, 2 * GIB)
    json.dumps(body)  # plain JSON


def test_limit_rewrites_the_line_and_reloads_once(lab):
    d, server, _, hdd = lab
    body = d.limit("fast", 100 * 1024**2)
    assert body["tiers"][0]["limit"] == 100 * 1024**2
    assert folder_lines(hdd)[0].endswith("/tiers/fast 104857600")
    assert folder_lines(hdd)[1].endswith("/tiers/bulk 2147483648")
    assert server.reloads == 1
    d.limit("fast", 100 * 1024**2)  # the same again: nothing to write, no reload
    assert server.reloads == 1
    assert d.restore_limit("fast")["tiers"][0]["limit"] == GIB
    assert server.reloads == 2
    assert not list(hdd.parent.glob(".mfshdd.cfg.tmp*"))  # written by rename, no leftovers


@pytest.mark.parametrize(("tier", "nbytes", "message"), [
    ("fast", GIB + 1, "above its configured size 1073741824"),
    ("fast", 0, "below 1 byte"),
    ("archive", 100, "unknown tier 'archive'; expected one of fast, bulk"),
])
def test_a_bad_limit_changes_nothing(lab, tier, nbytes, message):
    d, server, _, hdd = lab
    before = hdd.read_text()
    with pytest.raises(DiskError, match=message):
        d.limit(tier, nbytes)
    assert hdd.read_text() == before and server.reloads == 0


def test_removal_is_the_star_prefix(lab):
    d, server, _, hdd = lab
    assert d.removal("bulk", True)["tiers"][1]["removal"] is True
    assert folder_lines(hdd)[1].startswith("*") and folder_lines(hdd)[1].endswith(" 2147483648")
    d.limit("bulk", GIB)  # a limit keeps the mark
    assert folder_lines(hdd)[1].startswith("*") and folder_lines(hdd)[1].endswith(" 1073741824")
    assert d.removal("bulk", False)["tiers"][1]["removal"] is False
    assert not folder_lines(hdd)[1].startswith("*")
    assert server.reloads == 3


def test_a_change_mfschunkserver_cannot_take_is_undone(lab):
    d, server, _, hdd = lab
    server.running = False
    before = hdd.read_text()
    with pytest.raises(ChunkserverError, match="not running"):
        d.limit("fast", 1000)
    assert hdd.read_text() == before


def test_foreign_lines_are_kept(lab):
    d, _, _, hdd = lab
    hdd.write_text(hdd.read_text() + "~/mnt/extra -5GiB\n")
    d.removal("fast", True)
    assert folder_lines(hdd)[-1] == "~/mnt/extra -5GiB"


def test_a_tier_missing_from_mfshdd_cfg_is_added(lab):
    d, _, _, hdd = lab
    hdd.write_text(folder_lines(hdd)[1] + "\n")
    assert d.show()["tiers"][0]["limit"] is None
    assert d.limit("fast", 1000)["tiers"][0]["limit"] == 1000
    assert folder_lines(hdd)[1].endswith("/tiers/fast 1000")


def test_fail_on_records_then_denies_the_folder_and_waits_for_moosefs_to_drop_it(lab):
    d, server, modes, _ = lab
    fast = d.tiers[0].path
    body = d.fail("fast", True)
    assert body["tiers"][0]["failed"] is True and body["tiers"][1]["failed"] is False
    assert modes[fast] == 0 and server.flags[fast] == 10 and server.reloads == 1
    state = json.loads((d.data_dir / disks.STATE_FILE).read_text())
    assert state["fast"]["mode"] == os.stat(fast).st_mode & 0o7777
    d.fail("fast", True)  # already failed: nothing more
    assert server.reloads == 1


def test_fail_off_gives_the_mode_back_and_moosefs_takes_the_folder_again(lab):
    d, server, modes, _ = lab
    fast = d.tiers[0].path
    mode = os.stat(fast).st_mode & 0o7777
    d.fail("fast", True)
    body = d.fail("fast", False)
    assert body["tiers"][0]["failed"] is False
    assert modes[fast] == mode and server.flags[fast] == 0
    assert (server.reloads, server.restarts) == (2, 0)
    assert d.faults() == {}
    d.fail("fast", False)  # not failed: nothing to do
    assert server.reloads == 2


def test_fail_off_reloads_again_while_moosefs_still_removes_the_folder(lab):
    d, server, _, _ = lab
    d.fail("fast", True)
    server.refuse_reloads = 1
    d.fail("fast", False)
    assert (server.reloads, server.restarts) == (3, 0) and server.flags[d.tiers[0].path] == 0


def test_fail_off_restarts_mfschunkserver_when_reloads_do_not_take_the_folder(lab):
    d, server, _, _ = lab
    d.fail("fast", True)
    server.refuse_reloads = 1000
    d.fail("fast", False)
    assert server.restarts == 1 and server.flags[d.tiers[0].path] == 0
    assert server.reloads == 1 + 4  # one round per 2.5 s during 10 s


def test_fail_off_says_so_when_mfschunkserver_never_takes_the_folder(lab):
    d, server, modes, _ = lab
    d.fail("fast", True)
    server.refuse_reloads, server.take_back_on_restart = 1000, False
    with pytest.raises(ChunkserverError, match="did not take .* back"):
        d.fail("fast", False)
    assert modes[d.tiers[0].path] & 0o700  # the folder is usable again all the same


def test_fail_on_without_a_running_mfschunkserver_is_undone(lab):
    d, server, modes, _ = lab
    fast = d.tiers[0].path
    server.running = False
    with pytest.raises(ChunkserverError):
        d.fail("fast", True)
    assert modes[fast] == os.stat(fast).st_mode & 0o7777 and d.faults() == {}


def test_a_container_start_heals_recorded_faults(lab):
    d, _, modes, _ = lab
    d.fail("bulk", True)
    assert disks.clear_faults(d.tiers, d.data_dir, chmod=lambda p, m: modes.__setitem__(p, m)) \
        == ["bulk"]
    assert modes[d.tiers[1].path] & 0o700 and d.faults() == {}
    assert disks.clear_faults(d.tiers, d.data_dir) == []


@pytest.mark.parametrize(("argv", "message"), [
    (["limit", "fast", "lots"], "bytes: 'lots' is not a size"),
    (["removal", "fast", "maybe"], "'maybe' is not on or off"),
    (["fail", "fast"], "bad arguments"),
    (["explode"], "bad arguments"),
    (["limit", "fast", "2GiB"], "above its configured size"),
])
def test_bad_requests_are_refused_before_anything_changes(lab, argv, message):
    d, server, _, hdd = lab
    before = hdd.read_text()
    with pytest.raises(DiskError, match=message):
        disks.run(argv, lambda: d)
    assert hdd.read_text() == before and server.reloads == 0


def test_run_dispatches_every_command(lab):
    d, _, _, _ = lab
    assert disks.run(["limit", "bulk", "512MiB"], lambda: d)["tiers"][1]["limit"] == 512 * 1024**2
    assert disks.run(["limit", "bulk", "--restore"], lambda: d)["tiers"][1]["limit"] == 2 * GIB
    assert disks.run(["removal", "bulk", "on"], lambda: d)["tiers"][1]["removal"] is True
    assert disks.run(["fail", "bulk", "on"], lambda: d)["tiers"][1]["failed"] is True
    assert disks.run(["show"], lambda: d)["tiers"][1]["failed"] is True


# --- the command: JSON on stdout, JSON errors on stderr, exit codes --------------------------
@pytest.fixture()
def container(tmp_path, monkeypatch):
    """This process as a chunkserver container without a running mfschunkserver."""
    data = tmp_path / "data"
    monkeypatch.setenv("MOOSENG_DATA_DIR", str(data))
    monkeypatch.setattr(mfsconfig, "HDD_CFG", tmp_path / "mfshdd.cfg")
    configured = tiers.configured_tiers(data / "tiers")
    for tier in configured:
        tier.path.mkdir(parents=True)
    (tmp_path / "mfshdd.cfg").write_text(tiers.render_hdd_cfg(tiers.configured_hdd_lines(configured)))
    return tmp_path


def test_disk_show_prints_json(container, capsys):
    assert cli.main(["disk", "show"]) == 0
    out, err = capsys.readouterr()
    assert [t["tier"] for t in json.loads(out)["tiers"]] == ["fast", "bulk"] and err == ""


def test_disk_errors_are_json_on_stderr_with_exit_2(container, capsys):
    assert cli.main(["disk", "limit", "nope", "5"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and json.loads(err) == {
        "error": "unknown tier 'nope'; expected one of fast, bulk"}


def test_disk_without_mfschunkserver_exits_1_and_changes_nothing(container, capsys):
    before = (container / "mfshdd.cfg").read_text()
    assert cli.main(["disk", "removal", "fast", "on"]) == 1
    out, err = capsys.readouterr()
    assert out == "" and "mfschunkserver is not running" in json.loads(err)["error"]
    assert (container / "mfshdd.cfg").read_text() == before


def test_disk_with_a_bad_setting_exits_2(container, capsys, monkeypatch):
    monkeypatch.setenv("MOOSENG_CS_TIER_SIZES", "fast=1GiB")
    assert cli.main(["disk", "show"]) == 2
    assert "no size for tier bulk" in json.loads(capsys.readouterr().err)["error"]


# --- the real mfschunkserver: pid file, /proc comm, its own folder list -------------------------
def entry(path: str, flags: int) -> bytes:
    """One folder of a CSTOCL_HDD_LIST answer, laid out as hdd_diskinfo_data writes it."""
    raw = path.encode()
    body = bytes([len(raw)]) + raw + struct.pack(">BQLQQL", flags, 0, 0, 1, 2, 3) + bytes(3 * 64)
    return struct.pack(">H", len(body)) + body


def flags_of(payload: bytes) -> dict[str, int]:
    return {path: view.flags for path, view in disks.parse_hdd_views(payload).items()}


def test_the_hdd_list_answer_gives_each_line_its_flags():
    payload = entry("/d/tiers/fast/", 0) + entry("/d/tiers/bulk/", 10)
    assert flags_of(payload) == {"/d/tiers/fast": 0, "/d/tiers/bulk": 10}
    assert flags_of(payload[:-5]) == {"/d/tiers/fast": 0, "/d/tiers/bulk": 10}
    assert flags_of(b"") == {}


def serve_hdd_list(payload: bytes) -> tuple[socket.socket, list[bytes]]:
    """A one-shot stand-in for the chunkserver's client port on 127.0.0.1."""
    server = socket.create_server(("127.0.0.1", 0))
    asked: list[bytes] = []

    def answer() -> None:
        conn, _ = server.accept()
        with conn:
            asked.append(conn.recv(8))
            conn.sendall(struct.pack(">LL", disks.CSTOCL_HDD_LIST, len(payload)) + payload)

    threading.Thread(target=answer, daemon=True).start()
    return server, asked


def test_local_chunkserver_asks_its_own_client_port(tmp_path):
    server, asked = serve_hdd_list(entry("/d/tiers/fast/", 0) + entry("/d/tiers/bulk/", 10))
    cfg = tmp_path / "mfschunkserver.cfg"
    cfg.write_text(f"CSSERV_LISTEN_HOST = 127.0.0.1\nCSSERV_LISTEN_PORT = {server.getsockname()[1]}\n")
    with server:
        flags = LocalChunkserver(tmp_path, cfg).folder_flags(Path("/d/tiers/bulk"))
    assert flags == 10 and asked == [struct.pack(">LL", 600, 0)]
    assert not disks.usable(flags) and disks.unusable(flags)
    assert disks.usable(0) and disks.usable(disks.FLAG_SCANNING) and not disks.usable(None)


def test_a_chunkserver_that_does_not_answer_lists_nothing(tmp_path):
    cfg = tmp_path / "mfschunkserver.cfg"
    with socket.create_server(("127.0.0.1", 0)) as closed:
        port = closed.getsockname()[1]
    cfg.write_text(f"CSSERV_LISTEN_HOST = 127.0.0.1\nCSSERV_LISTEN_PORT = {port}\n")
    assert LocalChunkserver(tmp_path, cfg, timeout=0.5).folder_flags(Path("/d/tiers/fast")) is None


def test_local_chunkserver_is_found_by_its_pid_file(tmp_path):
    data = tmp_path / "mfs"
    data.mkdir()
    (data / disks.PID_FILE).write_text("4242\n")
    proc = tmp_path / "proc"
    (proc / "4242").mkdir(parents=True)
    (proc / "4242" / "comm").write_text("mfschunkserver\n")
    assert LocalChunkserver(data, proc=proc).pid() == 4242
    (proc / "4242" / "comm").write_text("bash\n")  # the pid was reused
    server = LocalChunkserver(data, proc=proc)
    assert server.pid() is None
    with pytest.raises(ChunkserverError, match="not running"):
        server.reload()


def test_a_tier_moosefs_cannot_measure_yet_is_offered_its_room_until_it_can(lab, monkeypatch):
    """MooseFS counts a size-limited folder's use from statvfs (the host's disk) until its
    known-blocks pass counted a chunk (~60 s a pass): an empty tier is written as "leave N
    free" (MooseFS then offers the configured size minus its chunks) until it has held
    chunks for KNOWN_AFTER s, then gets its limit. A tier in its limit form that holds
    chunks is left alone (MooseFS measures it). fast holds a chunk, bulk is empty."""
    d, server, _, hdd = lab
    now = [0.0]
    d.clock = lambda: now[0]
    monkeypatch.setattr(Disks, "free_bytes", staticmethod(lambda folder: 50 * GIB))
    assert d.settle_empty_tiers() == ["bulk"]
    fast, bulk = folder_lines(hdd)
    assert fast.endswith(f"/tiers/fast {GIB}")  # holds a chunk: its limit stays
    assert bulk.endswith(f"/tiers/bulk -{50 * GIB - 2 * GIB}")
    assert server.reloads == 1
    assert d.show()["tiers"][1]["limit"] == 2 * GIB  # what the tier offers: its configured size
    now[0] = 10.0
    assert d.settle_empty_tiers() == [] and server.reloads == 1  # nothing drifted
    (d.tier("bulk").path / "00" / "chunk_0000000000000002_00000001.mfs").write_bytes(b"y" * 4096)
    assert d.settle_empty_tiers() == []  # bulk just got its first chunk: not measured yet
    now[0] += disks.KNOWN_AFTER - 1
    assert d.settle_empty_tiers() == []
    now[0] += 2
    assert d.settle_empty_tiers() == ["bulk"]  # counted by MooseFS now: its limit again
    assert folder_lines(hdd)[1].endswith(f"/tiers/bulk {2 * GIB}")
    for chunk in (d.tier("fast").path / "00").iterdir():
        chunk.unlink()
    assert d.settle_empty_tiers() == ["fast"]  # emptied: MooseFS would measure the host again
    fast_used = d.used(d.tier("fast").path)
    assert folder_lines(hdd)[0].endswith(f"/tiers/fast -{50 * GIB - (GIB - fast_used)}")


def test_a_tier_moosefs_reports_full_below_its_limit_is_offered_its_room(lab, monkeypatch):
    """The chunkserver's own view decides: a tier in its limit form that MooseFS reports full
    while its chunks fill far less (MooseFS measures the host's disk: its chunks are not
    counted yet, or the files on disk are not chunks it holds) gets "leave N free"; once
    MooseFS has held chunks there for KNOWN_AFTER s, its limit again. A tier MooseFS reports
    sanely, still scanning, or really full is left alone."""
    d, server, _, hdd = lab
    now = [0.0]
    d.clock = lambda: now[0]
    monkeypatch.setattr(Disks, "free_bytes", staticmethod(lambda folder: 50 * GIB))
    fast, bulk = d.tier("fast").path, d.tier("bulk").path
    server.views = {fast: disks.FolderView(0, 100 * 1024**2, GIB, 1500),
                    bulk: disks.FolderView(disks.FLAG_SCANNING, 40, 0, 0)}
    assert d.settle_empty_tiers() == [] and server.reloads == 0  # measured; scanning
    server.views[fast] = disks.FolderView(0, GIB, GIB, 0)  # stale files, no chunk counted
    assert d.settle_empty_tiers() == ["fast"]
    assert folder_lines(hdd)[0].endswith(f"/tiers/fast -{50 * GIB - (GIB - d.used(fast))}")
    server.views[fast] = disks.FolderView(0, 10, 50 * GIB, 3)  # leave-free form, chunks held
    now[0] = disks.KNOWN_AFTER - 1
    assert d.settle_empty_tiers() == []
    now[0] += disks.KNOWN_AFTER
    assert d.settle_empty_tiers() == ["fast"] and folder_lines(hdd)[0].endswith(f"/tiers/fast {GIB}")
    server.views[fast] = disks.FolderView(0, GIB, GIB, 3)  # looks full, holding chunks:
    assert d.settle_empty_tiers() == []                     # MooseFS may still count them
    now[0] += disks.MISMEASURED_GRACE - 1
    assert d.settle_empty_tiers() == []
    now[0] += 2
    assert d.settle_empty_tiers() == ["fast"] and " -" in folder_lines(hdd)[0]  # it did not
    now[0] += 10
    server.views[fast] = disks.FolderView(0, 10, 50 * GIB, 3)
    assert d.settle_empty_tiers() == []  # its KNOWN_AFTER counts from the switch back
    monkeypatch.setattr(d, "used", lambda folder: 2 * GIB - 1024)
    server.views[bulk] = disks.FolderView(0, 2 * GIB, 2 * GIB, 900)
    assert "bulk" not in d.settle_empty_tiers()  # really full: MooseFS is right


def test_the_hdd_list_answer_gives_each_line_its_view():
    payload = entry("/d/tiers/fast/", 0) + entry("/d/tiers/bulk/", 10)
    assert disks.parse_hdd_views(payload) == {"/d/tiers/fast": disks.FolderView(0, 1, 2, 3),
                                              "/d/tiers/bulk": disks.FolderView(10, 1, 2, 3)}
    assert list(disks.parse_hdd_views(payload[:-200])) == ["/d/tiers/fast"]


def test_a_fault_on_an_unmeasured_tier_is_left_alone(lab, monkeypatch):
    """A filled (lowered limit) or marked tier must keep looking as the fault made it."""
    d, _, _, hdd = lab
    monkeypatch.setattr(Disks, "free_bytes", staticmethod(lambda folder: 50 * GIB))
    d.limit("bulk", 1)
    assert "bulk" not in d.settle_empty_tiers() and folder_lines(hdd)[1].endswith("/tiers/bulk 1")
    d.restore_limit("bulk")
    d.removal("bulk", True)
    assert "bulk" not in d.settle_empty_tiers() and folder_lines(hdd)[1].startswith("*")
    d.removal("bulk", False)
    assert "bulk" in d.settle_empty_tiers()
    assert folder_lines(hdd)[1].endswith(f"/tiers/bulk -{48 * GIB}")
