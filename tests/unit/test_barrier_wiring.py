"""The reply barrier wired into the cluster (docs/reply-barrier.md): with MOOSENG_BARRIER off
every config and command is today's; on, the new ports, daemons and promotion steps. Plus
the torn-line fix of the restore, which applies either way."""

from __future__ import annotations

import json
import socket
import struct
import sys
import time
from pathlib import Path

import pytest

from mooseng import links, mfsconfig, router, settings
from mooseng.agent import load_config
from mooseng.mfs import MfsController, MfsPaths, files
from mooseng.mfs.barrier import BarrierConfig
from mooseng.supervisor import Daemon

ROOT = Path(__file__).resolve().parents[2]
ON = {"MOOSENG_BARRIER": "true"}


def lines(first: int, last: int) -> str:
    return "".join(f"{v}: 1700000000|ACCESS(1)\n" for v in range(first, last + 1))


# --- torn last lines (always, barrier on or off) --------------------------------------------

def test_trim_torn_lines_cuts_only_the_incomplete_tail(tmp_path: Path) -> None:
    (tmp_path / "changelog_ml.0.mfs").write_text(lines(1, 3) + "4: 17000")  # killed mid-line
    (tmp_path / "changelog.1.mfs").write_text(lines(5, 6))  # complete: untouched
    (tmp_path / "changelog_ml_back.100.mfs").write_text("7: 1700")  # no complete line at all
    (tmp_path / "metadata.mfs").write_bytes(b"MFSM 2.0 not a changelog")  # never touched
    cut = files.trim_torn_lines(tmp_path)
    assert sorted((p.name, n) for p, n in cut) == [("changelog_ml.0.mfs", 8),
                                                   ("changelog_ml_back.100.mfs", 7)]
    assert (tmp_path / "changelog_ml.0.mfs").read_text() == lines(1, 3)
    assert (tmp_path / "changelog.1.mfs").read_text() == lines(5, 6)
    assert (tmp_path / "changelog_ml_back.100.mfs").read_bytes() == b""
    assert (tmp_path / "metadata.mfs").read_bytes() == b"MFSM 2.0 not a changelog"
    assert files.trim_torn_lines(tmp_path) == []  # idempotent


def test_trim_torn_lines_finds_a_newline_far_back(tmp_path: Path) -> None:
    body = lines(1, 2) + "3: " + "x" * (3 * files.TAIL_BYTES)
    (tmp_path / "changelog_ml.0.mfs").write_text(body)
    files.trim_torn_lines(tmp_path)
    assert (tmp_path / "changelog_ml.0.mfs").read_text() == lines(1, 2)


def test_promotion_trims_torn_lines_with_the_barrier_off(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    data = tmp_path / "mfs"
    data.mkdir()
    (data / "changelog_ml.0.mfs").write_text(lines(1, 3) + "4: 17")
    ctl = MfsController(MfsPaths(data_path=data), "127.0.0.1", client_port=free_port())
    restored: list[str] = []
    monkeypatch.setattr(ctl, "_restore", lambda: restored.append(
        (data / "changelog_ml.0.mfs").read_text()))
    ctl.master = Daemon("mfsmaster", [sys.executable, "-c", "import sys; sys.exit(3)"])
    with pytest.raises(Exception, match="exited with code 3"):
        ctl.promote(lambda: True)
    assert restored == [lines(1, 3)]  # the restore saw the file without its torn line
    assert ctl.barrier_proxy is None and ctl.tap is None


# --- tap segments count and are linked only where a restore can use them -------------------

def metadata(version: int) -> bytes:
    return b"MFSM 2.0" + struct.pack(">Q", version) + b"\0" * 8


def test_tap_segments_continue_what_data_path_covers(tmp_path: Path) -> None:
    data, tap = tmp_path / "mfs", tmp_path / "tap"
    data.mkdir()
    tap.mkdir()
    (data / "metadata_ml.mfs").write_bytes(metadata(11))  # covers changes up to 10
    (tap / "changelog_ml_back.100.mfs").write_text(lines(8, 20))  # overlaps: fine
    (tap / "changelog_ml_back.101.mfs").write_text(lines(21, 25))
    (tap / "changelog_ml_back.102.mfs").write_text(lines(40, 44))  # after a hole: unusable
    (tap / "changelog_ml_back.1.mfs").write_text(lines(50, 60))  # not a tap file
    usable, reached = files.tap_segments(data, tap)
    assert [p.name for p in usable] == ["changelog_ml_back.100.mfs", "changelog_ml_back.101.mfs"]
    assert reached == 25
    assert files.change_number(data) == 11  # the barrier off never looks at the tap
    assert files.change_number(data, tap) == 25


def test_tap_segment_after_a_hole_does_not_count(tmp_path: Path) -> None:
    data, tap = tmp_path / "mfs", tmp_path / "tap"
    data.mkdir()
    tap.mkdir()
    (data / "changelog_ml.0.mfs").write_text(lines(1, 10))
    (tap / "changelog_ml_back.100.mfs").write_text(lines(15, 30))  # 11-14 missing
    assert files.tap_segments(data, tap) == ([], 0)
    assert files.change_number(data, tap) == 10


def test_link_tap_segments_places_restore_ready_files(tmp_path: Path) -> None:
    data, tap = tmp_path / "mfs", tmp_path / "tap"
    data.mkdir()
    tap.mkdir()
    (data / "changelog_ml.0.mfs").write_text(lines(1, 10))
    (tap / "changelog_ml_back.100.mfs").write_text(lines(9, 12))
    (data / "changelog_ml_back.100.mfs").write_text(lines(1, 2))  # stale, same name
    placed = files.link_tap_segments(data, tap)
    assert [p.name for p in placed] == ["changelog_ml_back.100.mfs"]
    assert (data / "changelog_ml_back.100.mfs").samefile(tap / "changelog_ml_back.100.mfs")
    assert files.link_tap_segments(data, tap) == placed  # again: nothing changes
    assert files.change_number(data) == 12
    assert not list(data.glob(".*tmp"))


# --- settings -------------------------------------------------------------------------------

def test_barrier_settings_default_off_and_validated() -> None:
    assert settings.read("MOOSENG_BARRIER", {}) is False
    assert BarrierConfig.from_settings("master-1", {}) is None
    errors = settings.validate("master", {"MOOSENG_BARRIER": "maybe",
                                          "MOOSENG_BARRIER_TAP_SYNC": "sometimes",
                                          "MOOSENG_BARRIER_HOLD_TIMEOUT": "-1",
                                          "MOOSENG_BARRIER_QUORUM": "0"})
    assert len(errors) == 4
    assert any(e.startswith("MOOSENG_BARRIER='maybe'") for e in errors)


def test_agent_rejects_a_barrier_that_can_never_release() -> None:
    base = {"MOOSENG_NODE": "master-1", "MOOSENG_RAFT_PASSWORD": "x", **ON}
    _config, values = load_config(base)
    assert values["barrier"] == BarrierConfig(node="master-1")
    with pytest.raises(settings.SettingError, match="MOOSENG_BARRIER_QUORUM=3 is more than the 2"):
        load_config({**base, "MOOSENG_BARRIER_QUORUM": "3"})
    with pytest.raises(settings.SettingError, match="three different ports"):
        load_config({**base, "MOOSENG_MFSMASTER_CLIENT_PORT": "9421"})
    assert load_config({**base, "MOOSENG_BARRIER": "false"})[1]["barrier"] is None


# --- configs and commands -------------------------------------------------------------------

def test_mfsmaster_config_unchanged_when_off_and_internal_when_on(
        monkeypatch: pytest.MonkeyPatch) -> None:
    layout = mfsconfig.Layout(Path("/d"))
    off = mfsconfig.master_values(layout)
    assert off["MATOCL_LISTEN_PORT"] == 9421 and "MATOCL_LISTEN_HOST" not in off
    monkeypatch.setenv("MOOSENG_BARRIER", "true")
    on = mfsconfig.master_values(layout)
    assert on["MATOCL_LISTEN_HOST"] == "127.0.0.1" and on["MATOCL_LISTEN_PORT"] == 9423
    assert {k: v for k, v in on.items() if not k.startswith("MATOCL_")} == {
        k: v for k, v in off.items() if not k.startswith("MATOCL_")}


def test_barrier_and_tap_command_lines() -> None:
    config = BarrierConfig.from_settings("master-2", {**ON, "MOOSENG_BARRIER_TAP_SYNC": "write"})
    assert config is not None
    assert config.proxy_argv("10.0.0.1", 9421, 7) == [
        sys.executable, "-m", "mooseng.barrier", "proxy", "--master", "127.0.0.1:9423",
        "--listen", "10.0.0.1:9421", "--ack-listen", "10.0.0.1:9424", "--quorum", "1",
        "--hold-timeout", "10", "--max-in-flight", "4", "--epoch", "7"]
    assert config.tap_argv("10.0.0.2", Path("/v/tap"), Path("/v/mfs"), 7) == [
        sys.executable, "-m", "mooseng.barrier", "tap", "--master", "10.0.0.2:9519",
        "--ack", "10.0.0.2:9524", "--folder", "/v/tap", "--anchor-dir", "/v/mfs",
        "--node", "master-2", "--epoch", "7", "--sync", "write"]
    from mooseng.barrier.__main__ import parser
    assert parser().parse_args(config.proxy_argv("10.0.0.1", 9421, 7)[3:]).epoch == 7
    assert parser().parse_args(config.tap_argv("h", Path("/t"), Path("/m"), 7)[3:]).sync == "write"


# --- links and router -------------------------------------------------------------------------

def test_ack_links_add_proxies_without_moving_any() -> None:
    topology = links.Topology.from_settings({})
    assert links.KINDS.index("ack") == 5
    assert topology.port_of("master-2", "master-1", "ack") == 20105
    assert topology.dial("master-2", "master-1", "ack") == ("toxiproxy", 20105)
    assert topology.dial("master-1", "master-1", "ack") == ("master-1", 9424)
    names = {p.name: p.listen_port for p in topology.proxies()}
    assert {n for n in names if n.endswith(":ack")} == {
        f"master-{a}>master-{b}:ack" for a in (1, 2, 3) for b in (1, 2, 3) if a != b}
    assert names["client-2>master-1:cl"] == 20704  # unchanged
    committed = json.loads((ROOT / "toxiproxy" / "proxies.json").read_text())
    assert committed == topology.toxiproxy_config()


def test_router_acks_listener_only_with_the_barrier() -> None:
    topology = links.Topology.from_settings({})
    off = router.haproxy_config("10.0.0.2", "master-2", "master", topology, 250)
    assert "listen acks" not in off and ":ack" not in off
    assert off == router.haproxy_config("10.0.0.2", "master-2", "master", topology, 250,
                                        barrier=False)
    on = router.haproxy_config("10.0.0.2", "master-2", "master", topology, 250, barrier=True)
    section = on.split("listen acks\n", 1)[1].split("\n\n", 1)[0]
    assert section.splitlines() == [
        "    bind 10.0.0.2:9524",
        "    server master-1 toxiproxy:20105 track master-check/master-1",
        "    server master-2 master-2:9424 track master-check/master-2",
        "    server master-3 toxiproxy:20125 track master-check/master-3"]
    assert on.startswith(off.rstrip("\n"))  # the other listeners are unchanged
    client = router.haproxy_config("10.0.0.9", "client-1", "client", topology, 250, barrier=True)
    assert "acks" not in client


def test_chaosmoose_accepts_the_ack_kind() -> None:
    from chaosmoose.network._plan import link_kinds_of
    assert link_kinds_of("ml,ack") == ("ml", "ack")


# --- the controller with the barrier on ---------------------------------------------------------

def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def listening(port: int, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return True
        except OSError:
            time.sleep(0.05)
    return False


@pytest.fixture()
def barrier_controller(tmp_path: Path):
    data = tmp_path / "mfs"
    data.mkdir()
    config = BarrierConfig(node="master-2", ack_port=free_port(), internal_client_port=free_port(),
                           router_ml_port=free_port(), router_ack_port=free_port(),
                           tap_sync="write")
    ctl = MfsController(MfsPaths(data_path=data), "127.0.0.1", client_port=free_port(),
                        barrier=config)
    # mfsmaster stand-in: listens on the internal client port only
    ctl.master = Daemon("mfsmaster", [sys.executable, "-c", (
        "import socket, time; s = socket.socket(); "
        "s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); "
        f"s.bind(('127.0.0.1', {config.internal_client_port})); s.listen(); time.sleep(60)")])
    ctl.metalogger = Daemon("mfsmetalogger", [sys.executable, "-c", "import time; time.sleep(60)"])
    yield ctl
    for daemon in (ctl.master, ctl.metalogger, ctl.barrier_proxy, ctl.tap):
        daemon.stop("kill")


def test_promotion_with_the_barrier(barrier_controller: MfsController,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    ctl = barrier_controller
    data, tap = ctl.paths.data_path, ctl.tap_folder
    tap.mkdir()
    (data / "changelog_ml.0.mfs").write_text(lines(1, 10) + "11: 1700")  # torn
    (tap / "changelog_ml_back.100.mfs").write_text(lines(11, 15))  # what this node acked
    seen: list[list[str]] = []
    monkeypatch.setattr(ctl, "_restore", lambda: seen.append(sorted(
        p.name for p in data.iterdir() if p.is_file())))
    ctl.metalogger.start()
    assert not ctl.master_accepts_clients()
    _took, start = ctl.promote(lambda: True, min_version=15, epoch=7)
    assert start == 15  # the tap's changes count: the min_version check passed
    assert seen == [["changelog_ml.0.mfs", "changelog_ml_back.100.mfs"]]
    assert (data / "changelog_ml.0.mfs").read_text() == lines(1, 10)
    assert not ctl.metalogger.running()
    assert ctl.barrier_proxy.argv[-2:] == ["--epoch", "7"]
    assert f"127.0.0.1:{ctl.barrier.internal_client_port}" in ctl.barrier_proxy.argv
    assert ctl.master_accepts_clients()  # public port = the barrier
    ctl.barrier_proxy.stop("kill")
    assert not ctl.master_accepts_clients()  # a leader without its barrier is not ready
    assert ctl.ensure_barrier() and listening(ctl.client_port)
    assert ctl.master_accepts_clients()
    assert ctl.freeze_master()
    assert ctl.barrier_proxy.running()  # a frozen master keeps its barrier
    ctl.fence()
    assert not ctl.barrier_proxy.running() and not ctl.master.running()
    assert not ctl.ensure_barrier()  # never restarted after a fence


def test_follower_tap_follows_the_metalogger(barrier_controller: MfsController) -> None:
    ctl = barrier_controller
    ctl.tap_folder.mkdir()
    (ctl.tap_folder / "changelog_ml_back.100.mfs").write_text(lines(1, 3))
    ctl.set_lineage(4)
    assert ctl.ensure_metalogger()
    assert ctl.tap.running() and ctl.tap.argv[ctl.tap.argv.index("--epoch") + 1] == "4"
    ctl.tap.stop("kill")
    assert not ctl.ensure_metalogger()  # the metalogger runs; the tap is started again
    assert ctl.tap.running()
    ctl.restart_metalogger(9)
    assert ctl.tap.argv[ctl.tap.argv.index("--epoch") + 1] == "9"
    assert ctl.tap.running() and ctl.metalogger.running()
    assert not (ctl.tap_folder / "changelog_ml_back.100.mfs").exists()
    assert list((ctl.tap_folder / "aside").glob("*/changelog_ml_back.100.mfs"))
    ctl.stop_all()
    assert not ctl.tap.running() and not ctl.metalogger.running()


# --- the HA loop --------------------------------------------------------------------------------

def test_promotion_gets_the_lease_epoch_and_a_dead_barrier_is_restarted() -> None:
    from tests.unit.fakes import FakeClock, FakeDaemons, FakeStore, make_ha

    clock = FakeClock()
    store = FakeStore(clock)
    daemons = FakeDaemons(version=100)
    ha = make_ha("master-1", store, clock, daemons)
    assert ha.run_cycle().startswith("promoted self")
    assert daemons.promoted_epoch == 1  # the barrier serves (and checks taps against) it
    clock.advance(0.5)
    assert ha.run_cycle() == "no action: I am master-1, the leader with the lease"
    daemons.barrier_died = True
    clock.advance(0.5)
    assert ha.run_cycle() == ("restarted the reply barrier in front of mfsmaster (it had exited); "
                              "lease epoch 1")
    assert daemons.calls[-1] == "restart barrier"
    clock.advance(0.5)
    assert ha.run_cycle() == "no action: I am master-1, the leader with the lease"


def test_demoted_leader_starts_a_fresh_tap(barrier_controller: MfsController) -> None:
    ctl = barrier_controller
    ctl.tap_folder.mkdir()
    (ctl.tap_folder / "changelog_ml_back.100.mfs").write_text(lines(1, 3))
    ctl.set_lineage(6)
    ctl.master.start()
    ctl.demote()
    assert not ctl.master.running() and ctl.metalogger.running() and ctl.tap.running()
    assert ctl.tap.argv[ctl.tap.argv.index("--epoch") + 1] == "6"
    assert not (ctl.tap_folder / "changelog_ml_back.100.mfs").exists()
