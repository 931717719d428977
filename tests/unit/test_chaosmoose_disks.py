"""Disk faults, placement and replication probes of chaosmoose.chunkserver, over a faked
Docker exec: ``mooseng disk`` in the chunkserver containers is a small state machine, the
MooseFS tools in the client containers print text captured from MooseFS 3.0.117's
``mfscli.py`` (non-tty mode), ``mfsfileinfo`` and ``mfsgetsclass``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from chaoslib.exceptions import ActivityFailed
from chaoslib.experiment import ensure_experiment_is_valid
from docker.models.containers import ExecResult

from chaosmoose import _families, _faults
from chaosmoose.chunkserver import _disks, _mfs, _placement, actions, probes
from chaosmoose.controls import strict
from chaosmoose.ledger import Ledger
from tests.unit import chaosmoose_fakes as fakes

config = fakes.config  # fixture
fake_docker = fakes.fake_docker  # fixture

REPO = Path(__file__).resolve().parents[2]
GIB = 1 << 30
IPS = {"chunkserver-1": "172.18.0.5", "chunkserver-2": "172.18.0.6",
       "chunkserver-3": "172.18.0.7"}
TIERS = "/var/lib/mooseng/tiers"

# --- MooseFS text, as the tools print it with stdout not a terminal --------------------------

IO = ["-"] * 8


def rows(title: str, *lines: list) -> str:
    """Tab-separated rows, each starting with the section title."""
    return "".join("\t".join([title, *map(str, fields)]) + "\n" for fields in lines)


SHD = rows("disks:",
           [f"172.18.0.5:9422:{TIERS}/bulk/", 10, "no errors", "ok", *IO, 1048576, 2 * GIB],
           [f"172.18.0.5:9422:{TIERS}/fast/", 12, "no errors", "ok", *IO, 3145728, 3145728],
           [f"172.18.0.6:9422:{TIERS}/fast/", 7, "no errors", "marked for removal (ready)", *IO,
            524288, GIB],
           [f"172.18.0.7:9422:{TIERS}/bulk/", 0, 1700000000, "damaged", *IO, 0, 0],
           [f"172.18.0.7:9422:{TIERS}/fast/", 3, "no errors", "scanning", *IO, "progress:", 45])
SCS = rows("chunk servers:",
           *([ip, 9422, n, labels, "3.0.117", 0, "maintenance_off", chunks, 4194304, 3 * GIB,
              "-", 0, 0, 0]
             for n, (ip, labels, chunks) in enumerate([("172.18.0.5", "A,F", 22),
                                                       ("172.18.0.6", "B,F", 20),
                                                       ("172.18.0.7", "C,S", 30)], 1)))
SSC = rows("storage classes:",
           [2, "2", "NO", "STD", 30, 5, "-", 40, "-", "-", 0, "-", "YES", 2, "* , *", "YES", 2,
            "* , *", "YES", 2, "* , *", "-"],
           [10, "tiered", "NO", "STD", 2, 1, 1, 1, "-", "-", 0, "-", "YES", 2, "F , F", "YES", 2,
            "F , S", "YES", 2, "S , *", "1d"],
           [11, "fast_and_bulk", "NO", "STD", 0, 0, "-", 0, "-", "-", 0, "-", "YES", 2, "F , S",
            "YES", 2, "F , S", "YES", 2, "F , S", "-"])


def sic(which: str = "all", **counts: int) -> str:
    states = {"missing": 0, "endangered": 0, "undergoal": 0, "stable": 40, "overgoal": 0,
              "pending deletion": 0, "to be removed": 0}
    states.update({k.replace("_", " "): v for k, v in counts.items()})
    return (f"{which} chunks matrix:\t2\t0\t0\t40\t0\t0\t0\t0\t0\t0\t0\t0\t40\n"
            + "".join(f"{which} chunks matrix:\tchunkclass {state}:\t{n}\n"
                      for state, n in states.items()))


def chunk(number: int, *copies: str) -> str:
    lines = [f"\tchunk 0: {number:016X}_00000001 / (id:{number} ver:1)"]
    for i, copy in enumerate(copies, 1):
        ip, _, status = copy.partition(" ")
        lines.append(f"\t\tcopy {i}: {ip}:9422 (status:{status or 'VALID'})")
    return "\n".join(lines) + "\n"


WALK_TIERED = ("chaosmoose/tiered/r/1.dat: 'tiered'\nchaosmoose/tiered/r/2.dat: 'tiered'\n"
               f"{_mfs.FILEINFO_MARK}\n"
               "chaosmoose/tiered/r/1.dat:\n" + chunk(0x1B0, "172.18.0.5", "172.18.0.7")
               + "chaosmoose/tiered/r/2.dat:\n"
               + chunk(0x1B1, "172.18.0.6", "172.18.0.7", "172.18.0.5"))


# --- fakes ----------------------------------------------------------------------------------

class MoosengDisk:
    """``mooseng disk`` of one chunkserver: tiers with limits, marks and failures. Every
    change also records which faults the run's ledger held open at that moment."""

    def __init__(self, ledger: Ledger, used: dict[str, int] | None = None) -> None:
        self.ledger = ledger
        self.tiers = {t: {"tier": t, "path": f"{TIERS}/{t}", "configured_limit": 10 * GIB,
                          "limit": 10 * GIB, "used": u, "removal": False, "failed": False}
                      for t, u in (used or {"fast": 3 * GIB, "bulk": 1000}).items()}
        self.changes: list[tuple[list[str], list[dict]]] = []
        self.refuse: set[str] = set()  # tiers whose limit command fails

    def __call__(self, cmd: list[str], **_: Any) -> ExecResult:
        assert cmd[:2] == ["mooseng", "disk"], cmd
        args = cmd[2:]
        if args != ["show"]:
            self.changes.append((args, self.ledger.open_faults()))
            verb, tier = args[0], args[1]
            if tier not in self.tiers or (verb == "limit" and tier in self.refuse):
                return ExecResult(2, (b"", b"2024 INFO mooseng: starting\n"
                                      + json.dumps({"error": f"cannot change {tier}"}).encode()))
            state = self.tiers[tier]
            if verb == "limit":
                state["limit"] = (state["configured_limit"] if args[2] == "--restore"
                                  else int(args[2]))
            else:
                state["removal" if verb == "removal" else "failed"] = args[2] == "on"
        body = json.dumps({"tiers": list(self.tiers.values())}).encode() + b"\n"
        return ExecResult(0, (body, b""))


class Client:
    """MooseFS tools in a client container: answers by the script it is asked to run."""

    def __init__(self) -> None:
        self.mfscli = {("-SHD",): SHD, ("-SCS", "-SSC"): SCS + "\n" + SSC, ("-SSC",): SSC,
                       ("-SIC",): [sic()], ("-SIC", "-m", "1"): [sic("regular")]}
        self.walk = WALK_TIERED
        self.placed = ""
        self.calls: list[list[str]] = []

    def __call__(self, cmd: list[str], **_: Any) -> ExecResult:
        assert cmd[:1] == ["timeout"] and cmd[2:4] == ["bash", "-c"], cmd
        script, args = cmd[4], cmd[6:]
        self.calls.append(args)
        if script == _mfs.MFSCLI:
            answer = self.mfscli[tuple(args)]
            if isinstance(answer, list):  # a sequence of answers, the last one repeats
                answer = answer.pop(0) if len(answer) > 1 else answer[0]
            return ExecResult(0, (answer.encode(), b""))
        if script == _mfs.WALK:
            return ExecResult(0, (self.walk.encode(), b""))
        if script == probes.PLACE:
            return ExecResult(0, (self.placed.encode(), b""))
        if script == actions.SETSCLASS:
            return ExecResult(0, (f"{args[1]}: '{args[2]}'\n".encode(), b""))
        raise AssertionError(cmd)


@pytest.fixture(autouse=True)
def default_tiers(monkeypatch: pytest.MonkeyPatch) -> None:
    """The tiers are the default ones (fast, bulk) unless a test configures others."""
    monkeypatch.delenv("MOOSENG_CS_TIERS", raising=False)


@pytest.fixture
def lab(config, fake_docker):
    """Chunkservers with ``mooseng disk`` and addresses; client-1 with the MooseFS tools."""
    ledger = Ledger(config["chaosmoose_run_dir"])
    disks = {}
    for name, ip in IPS.items():
        container = fake_docker.containers[name]
        container.attrs = {"NetworkSettings": {"Networks": {"mooseng": {"IPAddress": ip}}}}
        disks[name] = MoosengDisk(ledger)
        container.exec_run.side_effect = disks[name]
    client = Client()
    fake_docker.containers["client-1"].exec_run.side_effect = client
    return {"disks": disks, "client": client, "ledger": ledger, "docker": fake_docker}


# --- the size limit of a fill ---------------------------------------------------------------

def tier(used: int, size: int = 10 * GIB) -> dict:
    return {"tier": "fast", "used": used, "configured_limit": size, "limit": size}


@pytest.mark.parametrize("used, percent, leave, limit", [
    (3000, 100, None, 3000),       # 100 %: the limit is what is used
    (3000, 50, None, 6000),
    (3, 40, None, 8),              # ceil(7.5): never a byte more room than asked
    (1, 3, None, 34),              # ceil(33.33...)
    (0, 100, None, 1),             # a limit of 0 would mean "the whole volume" to MooseFS
    (3000, None, 0, 3000),
    (3000, None, 500, 3500),
    (0, None, 0, 1),
    (GIB, 33.3, None, 3224449922),  # decimal percent, exact arithmetic
])
def test_fill_limit_makes_the_tier_as_full_as_asked(used, percent, leave, limit):
    assert _disks.fill_limit("chunkserver-1", tier(used), percent, leave) == limit


@pytest.mark.parametrize("percent, leave", [(10, None), (None, 10 * GIB)])
def test_a_tier_already_fuller_than_asked_is_refused(percent, leave):
    with pytest.raises(ActivityFailed, match="chunkserver-1 tier fast holds 2147483648 bytes of "
                       "its 10737418240-byte size; .* above its size: the tier is already "
                       "fuller than asked"):
        _disks.fill_limit("chunkserver-1", tier(2 * GIB), percent, leave)


def test_a_tier_without_a_used_size_cannot_be_filled_but_shows():
    state = _disks._tiers_of({"tiers": [{"tier": "bulk", "configured_limit": 5, "limit": 5,
                                         "used": None, "failed": True}]}, "reading")
    with pytest.raises(ActivityFailed, match="chunkserver-1 tier bulk reports used=None"):
        _disks.fill_limit("chunkserver-1", state["bulk"], 100, None)
    with pytest.raises(ActivityFailed, match='reading: mooseng disk answered {"tiers": '
                                             r'\[{"tier": 3'):
        _disks._tiers_of({"tiers": [{"tier": 3}]}, "reading")


@pytest.mark.parametrize("percent, leave, message", [
    (None, None, "or leave_bytes (>= 0); got neither"),
    (50, 0, "got both percent=50 and leave_bytes=0"),
    (150, None, "percent=150 is invalid; expected a number with 0 < percent <= 100"),
    (-5, None, "percent=-5 is invalid; expected a number with 0 < percent <= 100"),
    (0, None, "percent=0 is invalid"),
    ("lots", None, "percent='lots' is invalid; expected a number"),
    (None, -1, "leave_bytes=-1 is invalid; expected a whole number >= 0"),
])
def test_fill_requests_need_exactly_one_bound_in_range(percent, leave, message):
    with pytest.raises(ActivityFailed) as caught:
        _disks.fill_request(percent, leave)
    assert message in str(caught.value)


def test_tiers_come_from_the_configuration_then_the_environment(monkeypatch):
    monkeypatch.delenv("MOOSENG_CS_TIERS", raising=False)
    assert _disks.tiers() == ["fast", "bulk"]
    monkeypatch.setenv("MOOSENG_CS_TIERS", "ssd,hdd")
    assert _disks.tiers() == ["ssd", "hdd"]
    assert _disks.tiers({"mooseng_tiers": "nvme"}) == ["nvme"]
    with pytest.raises(ActivityFailed, match="expected folder names"):
        _disks.tiers({"mooseng_tiers": "fast,all"})


# --- the strict preflight -------------------------------------------------------------------

def step(name: str, func: str, arguments: dict, kind: str = "actions") -> dict:
    return {"type": "action" if kind == "actions" else "probe", "name": name,
            "provider": {"type": "python", "module": f"chaosmoose.chunkserver.{kind}",
                         "func": func, "arguments": arguments}}


def test_preflight_rejects_bad_disk_and_placement_arguments(config):
    experiment = {"method": [
        step("over", "fill_disk", {"chunkserver": "chunkserver-1", "tier": "fast",
                                   "percent": 150}),
        step("under", "fill_disk", {"chunkserver": "chunkserver-1", "tier": "fast",
                                    "percent": -1}),
        step("both", "fill_disk", {"chunkserver": "chunkserver-1", "tier": "all",
                                   "percent": 90, "leave_bytes": 0}),
        step("ssd", "mark_disk_for_removal", {"chunkserver": "chunkserver-1", "tier": "ssd"}),
        step("cs9", "fail_disk", {"chunkserver": "chunkserver-9", "tier": "bulk"}),
        step("spaces", "set_storage_class", {"path": "d", "storage_class": "fast and bulk"}),
        step("avoid", "place_new_chunks", {"path": "d", "avoid": "chunkserver-1,cs-7"},
             "probes"),
        step("abs", "placement_matches_class", {"path": "/etc"}, "probes"),
        step("status", "wait_for_tier_status", {"chunkserver": "chunkserver-1", "tier": "fast",
                                                "status": "fine"}, "probes"),
        step("ok-fill", "fill_disk", {"chunkserver": "random", "tier": "all",
                                      "leave_bytes": "${keep}"}),
        step("ok-space", "tier_space", {}, "probes"),
        step("ok-place", "placement_matches_class", {"path": "d", "storage_class": ""},
             "probes"),
        step("ok-rate", "chunks_per_label_and_class", {"path": ""}, "probes"),
    ]}
    problems = strict.preflight_problems(experiment, {**config, "keep": 0},
                                         require_masters_reachable=False)
    assert problems == [
        "activity 'over': percent=150 is invalid; expected a number with 0 < percent <= 100",
        "activity 'under': percent=-1 is invalid; expected a number with 0 < percent <= 100",
        ("activity 'both': a fill needs exactly one of percent (0 < percent <= 100) or "
         "leave_bytes (>= 0); got both percent=90 and leave_bytes=0"),
        ("activity 'ssd': tier='ssd' is not a configured tier; expected one of fast, bulk "
         "(mooseng_tiers)"),
        ("activity 'cs9': chunkserver='chunkserver-9' is not a configured chunkserver; "
         "expected one of chunkserver-1, chunkserver-2, chunkserver-3, random"),
        ("activity 'spaces': storage_class='fast and bulk' is invalid; expected a storage "
         "class name of letters, digits, _ and - (no spaces)"),
        ("activity 'avoid': avoid='chunkserver-1,cs-7' names cs-7, not a configured "
         "chunkserver; expected some of chunkserver-1, chunkserver-2, chunkserver-3"),
        "activity 'abs': path '/etc' is invalid; expected a relative path on the mount",
        ("activity 'status': status='fine' is invalid; expected one of ok, damaged, invalid, "
         "scanning, marked for removal, ready"),
    ]
    assert Ledger(config["chaosmoose_run_dir"]).faults() == []


@pytest.mark.parametrize("name", ["disk-full", "disk-removal", "tier-placement"])
def test_disk_experiments_are_valid_strict_and_pass_the_preflight(name, config):
    experiment = json.loads((REPO / "experiments" / f"{name}.json").read_text())
    ensure_experiment_is_valid(experiment)
    assert "chaosmoose.controls.strict" in [c["provider"]["module"]
                                            for c in experiment["controls"]]
    hypothesis = {p["provider"]["func"] for p in experiment["steady-state-hypothesis"]["probes"]}
    assert {"masters_agree_on_leader", "has_quorum", "cluster_healthy", "clients_can_write",
            "file_readable_from_all_clients", "check_acknowledged_writes"} <= hypothesis
    assert experiment["runtime"]["rollbacks"]["strategy"] == "always"
    rollbacks = {r["provider"]["func"] for r in experiment["rollbacks"]}
    assert "undo_all_faults" in rollbacks
    funcs = [a["provider"]["func"] for a in experiment["method"]]
    assert funcs[0] == "start_workload" and "stop_workload" in funcs
    cfg = {**config, **experiment["configuration"]}
    assert strict.preflight_problems(experiment, cfg, require_masters_reachable=False) == []


def test_disk_fault_kinds_are_registered_with_their_undo():
    _families.load_all()
    for kind, undo in _disks.UNDO.items():
        assert _families.undo_for(kind) is undo
        assert kind in _families.FAMILIES["chaosmoose.chunkserver"].kinds
        assert kind not in _families.TAKES_DOWN


# --- fill, mark, fail and their undo --------------------------------------------------------

def test_fill_records_each_tier_before_lowering_its_limit_and_rollback_restores(config, lab):
    disk = lab["disks"]["chunkserver-2"]
    result = actions.fill_disk("chunkserver-2", "all", percent=100, configuration=config)
    assert [f["tier"] for f in result["filled"]] == ["fast", "bulk"]
    assert disk.tiers["fast"]["limit"] == 3 * GIB and disk.tiers["bulk"]["limit"] == 1000
    for (args, open_then), filled in zip(disk.changes, result["filled"], strict=True):
        assert args == ["limit", filled["tier"], str(filled["limit"])]
        ledgered = [f for f in open_then if f["tier"] == filled["tier"]]
        assert len(ledgered) == 1 and ledgered[0]["kind"] == "disk.fill"
        assert ledgered[0]["limit_before"] == ledgered[0]["configured_limit"] == 10 * GIB
        assert ledgered[0]["target"]["service"] == "chunkserver-2"
    assert all(not lab["disks"][n].changes for n in ("chunkserver-1", "chunkserver-3"))

    undone = actions.undo_disk_faults(configuration=config)
    assert [u["how"] for u in undone] == [
        f"bulk limit restored to {10 * GIB} bytes (was 1000)",
        f"fast limit restored to {10 * GIB} bytes (was {3 * GIB})"]
    assert all(t["limit"] == 10 * GIB for t in disk.tiers.values())
    assert lab["ledger"].open_faults() == []
    # Idempotent: a second undo (cleanup after a rollback) finds nothing to do.
    fault = lab["ledger"].faults()[0]
    assert _disks.restore_limit(fault) == f"fast already at its configured limit of {10 * GIB} bytes"


def test_fill_with_leave_bytes_and_cleanup_heal_through_the_registered_undo(config, lab):
    disk = lab["disks"]["chunkserver-1"]
    actions.fill_disk("chunkserver-1", "fast", leave_bytes=4096, configuration=config)
    assert disk.tiers["fast"]["limit"] == 3 * GIB + 4096 and disk.tiers["bulk"]["limit"] == 10 * GIB
    (fault,) = lab["ledger"].open_faults()
    assert (fault["percent"], fault["leave_bytes"], fault["used"]) == (None, 4096, 3 * GIB)
    results = _faults.undo_open(lab["ledger"])  # what `chaosmoose cleanup` runs
    assert results[0]["undone"] is True and disk.tiers["fast"]["limit"] == 10 * GIB


def test_a_failed_tier_of_all_restores_the_tiers_filled_before(config, lab):
    disk = lab["disks"]["chunkserver-3"]
    disk.refuse.add("bulk")
    with pytest.raises(ActivityFailed, match="cannot change bulk"):
        actions.fill_disk("chunkserver-3", "all", percent=90, configuration=config)
    assert all(t["limit"] == 10 * GIB for t in disk.tiers.values())
    faults = lab["ledger"].faults()
    assert [(f["tier"], f["state"]) for f in faults] == [("fast", "undone"), ("bulk", "undone")]


@pytest.mark.parametrize("kwargs, message", [
    ({"tier": "fast", "percent": 101}, "percent=101 is invalid"),
    ({"tier": "fast", "percent": 50, "leave_bytes": 1}, "got both"),
    ({"tier": "ssd", "percent": 50}, "tier='ssd' is not a configured tier"),
])
def test_bad_fill_arguments_fail_before_touching_anything(config, lab, kwargs, message):
    with pytest.raises(ActivityFailed, match=message):
        actions.fill_disk("chunkserver-1", configuration=config, **kwargs)
    lab["docker"].containers["chunkserver-1"].exec_run.assert_not_called()
    assert lab["ledger"].faults() == []


def test_a_tier_the_chunkserver_lacks_or_too_full_changes_nothing(config, lab):
    cfg = {**config, "mooseng_tiers": "fast,bulk,ssd"}
    with pytest.raises(ActivityFailed, match="chunkserver-1 has no tier 'ssd'; it has fast, bulk"):
        actions.fill_disk("chunkserver-1", "ssd", percent=50, configuration=cfg)
    with pytest.raises(ActivityFailed, match="already fuller than asked"):
        actions.fill_disk("chunkserver-1", "all", percent=20, configuration=config)
    disk = lab["disks"]["chunkserver-1"]
    assert disk.changes == [] and lab["ledger"].faults() == []


@pytest.mark.parametrize("action, flag, how", [
    (actions.mark_disk_for_removal, "removal", "bulk no longer marked for removal"),
    (actions.fail_disk, "failed", "bulk readable again"),
])
def test_mark_and_fail_are_ledgered_first_and_undone(config, lab, action, flag, how):
    disk = lab["disks"]["chunkserver-2"]
    result = action("chunkserver-2", "bulk", configuration=config)
    assert disk.tiers["bulk"][flag] is True and disk.tiers["fast"][flag] is False
    (args, open_then), = disk.changes
    assert args == [{"removal": "removal", "failed": "fail"}[flag], "bulk", "on"]
    assert [f["id"] for f in open_then] == [result["fault"]]
    with pytest.raises(ActivityFailed, match=f"chunkserver-2 tier bulk already has {flag}=true"):
        action("chunkserver-2", "bulk", configuration=config)
    assert len(lab["ledger"].faults()) == 1
    (undone,) = actions.undo_disk_faults(configuration=config)
    assert undone["how"] == how and disk.tiers["bulk"][flag] is False
    fault = lab["ledger"].faults()[0]
    assert _disks.UNDO[fault["kind"]](fault).startswith("bulk already")


def test_undo_of_a_stopped_chunkserver_keeps_the_fault_open_saying_why(config, lab):
    actions.mark_disk_for_removal("chunkserver-1", "fast", configuration=config)
    lab["docker"].containers["chunkserver-1"].status = "exited"
    with pytest.raises(ActivityFailed, match="chunkserver-1 container is exited; start it to "
                                             "undo disk.removal of tier fast"):
        actions.undo_disk_faults(configuration=config)
    (fault,) = lab["ledger"].open_faults()
    assert "container is exited" in fault["undo_errors"][0]


# --- MooseFS's text -------------------------------------------------------------------------

def test_disks_parse_every_status_and_the_scanning_row():
    rows = {(r["address"], r["tier"]): r for r in _mfs.disks(SHD)}
    bulk = rows[("172.18.0.5", "bulk")]
    assert (bulk["path"], bulk["chunks"], bulk["used"], bulk["total"], bulk["free"]) == (
        f"{TIERS}/bulk/", 10, 1048576, 2 * GIB, 2 * GIB - 1048576)
    assert rows[("172.18.0.5", "fast")]["free"] == 0
    assert rows[("172.18.0.5", "fast")]["used_percent"] == 100.0
    assert rows[("172.18.0.6", "fast")]["removal"] is True
    assert rows[("172.18.0.7", "bulk")]["damaged"] is True
    assert rows[("172.18.0.7", "bulk")]["used_percent"] is None
    assert rows[("172.18.0.7", "fast")]["total"] is None  # scanning: progress, no sizes
    assert _mfs.status_matches("marked for removal (ready)", "ready")
    assert not _mfs.status_matches("marked for removal (not ready)", "ready")
    assert _mfs.status_matches("damaged, marked for removal", "marked for removal")
    assert not _mfs.status_matches("marked for removal", "ok")
    # A failed tier whose folder MooseFS dropped is listed invalid: damaged for us too.
    assert _mfs.status_matches("invalid", "damaged") and _mfs.status_matches("damaged", "damaged")
    assert not _mfs.status_matches("damaged", "invalid")


def test_storage_classes_matrices_and_labels_parse():
    classes = _mfs.storage_classes(SSC)
    assert classes["tiered"]["keep"] == ["F", "S"] and classes["tiered"]["create"] == ["F", "F"]
    assert classes["tiered"]["archive"] == ["S", "*"]
    assert classes["tiered"]["chunks"] == {"under": 1, "exact": 1, "over": 0}
    assert classes["2"]["keep"] == ["*", "*"] and classes["2"]["files"] == 30
    assert _mfs.matrix(sic("regular", undergoal=4), "regular")["undergoal"] == 4
    assert _mfs.matrix(sic(missing=1))["to_be_removed"] == 0
    with pytest.raises(ActivityFailed, match="no complete regular chunks matrix"):
        _mfs.matrix(sic("all"), "regular")
    assert _mfs.labels_by_address(SCS) == {"172.18.0.5": {"A", "F"}, "172.18.0.6": {"B", "F"},
                                           "172.18.0.7": {"C", "S"}}


def test_fileinfo_and_sclass_of_many_files():
    text = ("d/a.dat:\n" + chunk(1, "172.18.0.5", "172.18.0.6 MARKED FOR REMOVAL")
            + "d/b.dat:\n\tno chunks - empty file\n"
            + "d/c.dat: No such file or directory\n"
            + "d/e.dat:\n\tchunk 0: 0000000000000009_00000001 / (id:9 ver:1)\n"
              "\t\tno valid copies !!!\n")
    files = _mfs.fileinfo_many(text)
    assert files["d/a.dat"]["chunks"][0]["copies"] == [
        {"address": "172.18.0.5", "status": "VALID"},
        {"address": "172.18.0.6", "status": "MARKED FOR REMOVAL"}]
    assert files["d/b.dat"] == {"chunks": [], "error": None}
    assert files["d/c.dat"]["error"] == "No such file or directory"
    assert files["d/e.dat"]["chunks"][0]["copies"] == []
    classes = _mfs.sclasses_many("d/a.dat: 'tiered'\nd/b.dat: 2\nd/c.dat: no such file\n")
    assert {k: v["class"] for k, v in classes.items()} == {"d/a.dat": "tiered", "d/b.dat": "2",
                                                           "d/c.dat": None}


# --- placement ------------------------------------------------------------------------------

@pytest.mark.parametrize("labels, expression, ok", [
    ({"A", "F"}, "F", True), ({"A", "F"}, "S", False), (set(), "*", True),
    ({"A", "F"}, "AF", True), ({"A"}, "AF", False), ({"C"}, "AB+C", True),
])
def test_label_expressions(labels, expression, ok):
    assert _placement.satisfies(labels, expression) is ok


def test_assignment_moves_a_wildcard_out_of_the_way():
    # Greedy would give "*" the F server and leave F without one.
    assert _placement.assign(["*", "F"], [{"A", "F"}, {"C", "S"}]) == [1, 0]
    assert _placement.assign(["F", "F"], [{"A", "F"}, {"C", "S"}]) == [0, None]


def test_chunk_placement_reasons():
    labels = _mfs.labels_by_address(SCS)
    names = {ip: name for name, ip in IPS.items()}
    good = {"chunk": "X", "copies": [{"address": "172.18.0.5", "status": "VALID"},
                                     {"address": "172.18.0.7", "status": "VALID"}]}
    assert _placement.chunk_problem(good, ["F", "S"], labels, names) is None
    create_only = {"chunk": "Y", "copies": [{"address": "172.18.0.5", "status": "VALID"},
                                            {"address": "172.18.0.6", "status": "VALID"},
                                            {"address": "172.18.0.7", "status": "INVALID"}]}
    assert _placement.chunk_problem(create_only, ["F", "S"], labels, names) == (
        "copies on chunkserver-1 [A,F], chunkserver-2 [B,F]: no copy left for S")
    stray = {"chunk": "Z", "copies": [{"address": "172.18.0.7", "status": "VALID"}]}
    assert _placement.chunk_problem(stray, ["F"], labels, names) == (
        "copies on chunkserver-3 [C,S]: no copy left for F; copies on chunkserver-3 [C,S] "
        "satisfy no keep expression")


def test_check_reports_class_mismatch_unknown_class_and_no_files():
    classes = _mfs.storage_classes(SSC)
    labels, names = _mfs.labels_by_address(SCS), {}
    files = {"a": {"class": "tiered", "chunks": [], "error": None},
             "b": {"class": "2", "chunks": [], "error": None},
             "c": {"class": "gone", "chunks": [], "error": None},
             "d": {"class": None, "chunks": [], "error": "no such file"}}
    result = _placement.check(files, classes, labels, names, "tiered")
    assert result["ok"] is False and result["misplaced"] == []
    assert result["problems"] == ["b is in storage class '2'; expected 'tiered'",
                                  "c is in storage class 'gone'; expected 'tiered'",
                                  "d: no such file"]
    assert _placement.check({}, classes, labels, names)["problems"] == ["no file to check"]


# --- probes ---------------------------------------------------------------------------------

def test_tier_space_names_chunkservers_and_filters(config, lab):
    rows = probes.tier_space(chunkserver="chunkserver-1", configuration=config)
    assert [(r["chunkserver"], r["tier"], r["free"]) for r in rows] == [
        ("chunkserver-1", "bulk", 2 * GIB - 1048576), ("chunkserver-1", "fast", 0)]
    with pytest.raises(ActivityFailed, match="mfscli -SHD lists no disk of chunkserver-2 tier "
                                             "bulk; it lists chunkserver-1:bulk"):
        probes.tier_space(chunkserver="chunkserver-2", tier="bulk", configuration=config)
    with pytest.raises(ActivityFailed, match="tier='ssd' is not a configured tier"):
        probes.tier_space(tier="ssd", configuration=config)


def test_mfscli_without_a_master_fails_clearly(config, lab):
    lab["client"].mfscli[("-SHD",)] = "Working master servers not found !!!\n"
    with pytest.raises(ActivityFailed, match="mfscli -SHD on client-1: Working master servers "
                                             "not found"):
        probes.tier_space(configuration=config)


def test_wait_for_tier_status_polls_until_moosefs_shows_it(config, lab, monkeypatch):
    clock = Clock(monkeypatch)
    marked = SHD.replace(f"{TIERS}/bulk/\t10\tno errors\tok\t",
                         f"{TIERS}/bulk/\t10\tno errors\tmarked for removal (not ready)\t")
    lab["client"].mfscli[("-SHD",)] = [SHD, SHD, marked]
    row = probes.wait_for_tier_status("chunkserver-1", "bulk", "marked for removal",
                                      timeout=10, configuration=config)
    assert row["ok"] is True and row["waited_s"] == 2.0 and clock.slept == [1.0, 1.0]
    assert row["status"] == "marked for removal (not ready)" and row["removal"] is True
    # Waiting for "ready" also watches the master's chunk loops and removal states: the
    # first look shows a loop that ended before the wait, two more end during it.
    not_ready = SCS.replace("maintenance_off\t22\t4194304\t3221225472\t-\t0\t0\t0",
                            "maintenance_off\t22\t4194304\t3221225472\tNOT READY\t10\t1048576"
                            "\t2147483648")
    assert not_ready != SCS
    lab["client"].mfscli[("-SIL", "-SCS")] = [loop_text(1000, 1060) + not_ready,
                                             loop_text(1060, 1120) + not_ready,
                                             loop_text(1120, 1180) + not_ready]
    with pytest.raises(ActivityFailed, match=r"chunkserver-1 tier bulk is not ready after 3 s "
                                             r"\(MooseFS says: marked for removal \(not "
                                             r"ready\)\); 2 master chunk loops ended during the "
                                             r"wait \(MooseFS needs two in a row .*\); the "
                                             r"master's removal state: chunkserver-1 NOT READY, "
                                             r"chunkserver-2 -, chunkserver-3 -; the last loop "
                                             r"did: replications under goal 0/4, deletions disk "
                                             r"clean 0/0, locked used 2; chunks under goal by "
                                             r"class: tiered 1; expected ready"):
        probes.wait_for_tier_status("chunkserver-1", "bulk", "ready", timeout=3,
                                    configuration=config)
    # Other statuses do not ask for loops; an unanswered loop question is said, not fatal.
    lab["client"].mfscli[("-SIL", "-SCS")] = "Working master servers not found !!!\n"
    with pytest.raises(ActivityFailed, match=r"0 master chunk loops ended .* removal state: "
                                             r"unknown; last mfscli error: mfscli -SIL -SCS"):
        probes.wait_for_tier_status("chunkserver-1", "bulk", "ready", timeout=2,
                                    configuration=config)


def loop_text(start: int, end: int) -> str:
    """``mfscli -SIL``'s chunk loop lines, as MooseFS 3.0.117 prints them."""
    return (rows("chunk loop", ["start:", start]) + rows("chunk loop", ["end:", end])
            + rows("chunk loop", ["replications", "under goal:", "0/4"])
            + rows("chunk loop", ["deletions", "disk clean:", "0/0"])
            + rows("chunk loop", ["locked", "used:", 2]))


class Clock:
    """Patched time for the polling probes: sleeping advances the clock."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.now, self.slept = 100.0, []
        monkeypatch.setattr(probes.time, "monotonic", lambda: self.now)
        monkeypatch.setattr(probes.time, "sleep", self.sleep)

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_replication_converged_returns_the_seconds_it_took(config, lab, monkeypatch):
    Clock(monkeypatch)
    lab["client"].mfscli[("-SIC",)] = [sic(undergoal=3), sic(endangered=1), sic()]
    assert probes.replication_converged(timeout=60, configuration=config) == 2.0
    lab["client"].mfscli[("-SIC",)] = [sic(overgoal=2), sic()]
    assert probes.replication_converged(configuration=config) == 0.0  # overgoal not counted
    lab["client"].mfscli[("-SIC",)] = [sic(overgoal=2), sic()]
    assert probes.replication_converged(include_overgoal=True, configuration=config) == 1.0
    lab["client"].mfscli[("-SIC",)] = [sic(missing=1)]
    with pytest.raises(ActivityFailed, match=r"all chunk matrix still has \{'missing': 1\} "
                                             "after 5 s"):
        probes.replication_converged(timeout=5, configuration=config)
    assert probes.replication_converged(timeout=2, raise_on_timeout=False,
                                        configuration=config) == -1.0


def test_replication_converged_rides_out_a_master_that_misses_a_poll(config, lab, monkeypatch):
    """One unanswered mfscli poll is asked again (seen in a cluster run while chunks moved);
    polls that stay unanswered for MATRIX_UNREADABLE_FOR s fail, naming the error."""
    Clock(monkeypatch)
    gone = "Working master servers not found !!!\n"
    lab["client"].mfscli[("-SIC",)] = [sic(undergoal=3), gone, sic()]
    assert probes.replication_converged(timeout=60, configuration=config) == 2.0
    lab["client"].mfscli[("-SIC",)] = [gone]
    with pytest.raises(ActivityFailed, match=r"Working master servers not found.*unreadable for 15 s"):
        probes.replication_converged(timeout=60, configuration=config)


def test_copied_away_under_a_goal_guard(config, lab, monkeypatch):
    Clock(monkeypatch)
    lab["client"].mfscli[("-SIC", "-m", "1")] = [sic("regular", undergoal=5), sic("regular")]
    assert probes.replication_converged(matrix="regular", never_below_goal=True,
                                        configuration=config) == 1.0
    lab["client"].mfscli[("-SIC", "-m", "1")] = [sic("regular", undergoal=5)]
    lab["client"].mfscli[("-SIC",)] = [sic(), sic(undergoal=1)]
    with pytest.raises(ActivityFailed, match=r"goal violated while the regular matrix converged: "
                                             r"all copies matrix has \{'undergoal': 1\}"):
        probes.replication_converged(matrix="regular", never_below_goal=True, timeout=30,
                                     configuration=config)
    with pytest.raises(ActivityFailed, match="never_below_goal needs matrix='regular'"):
        probes.replication_converged(never_below_goal=True, configuration=config)


def limits_text(fast: int, bulk: int, master: int) -> str:
    """-SHD and -SCS of chunkserver-1 with these totals (and the other servers as before)."""
    shd = rows("disks:", [f"172.18.0.5:9422:{TIERS}/bulk/", 10, "no errors", "ok", *IO, 1000,
                          bulk],
               [f"172.18.0.5:9422:{TIERS}/fast/", 12, "no errors", "ok", *IO, 3 * GIB, fast])
    scs = SCS.replace(f"\t22\t4194304\t{3 * GIB}\t", f"\t22\t4194304\t{master}\t")
    return shd + "\n" + scs


def test_wait_for_tier_limits_waits_until_the_chunkserver_and_the_master_count_them(
        config, lab, monkeypatch):
    with pytest.raises(ActivityFailed, match="this run filled no tier"):
        probes.wait_for_tier_limits(configuration=config)
    clock = Clock(monkeypatch)
    actions.fill_disk("chunkserver-1", "fast", percent=100, configuration=config)
    configured = 10 * GIB
    lab["client"].mfscli[("-SHD", "-SCS")] = [
        limits_text(configured, configured, 2 * configured),  # not refreshed yet
        limits_text(3 * GIB, configured, 2 * configured),     # the folder, not yet the master
        limits_text(3 * GIB, configured, 3 * GIB + configured)]
    seen = probes.wait_for_tier_limits(timeout=30, configuration=config)
    assert seen["ok"] is True and seen["waited_s"] == 2.0 and clock.slept == [1.0, 1.0]
    assert seen["tiers"] == [{"chunkserver": "chunkserver-1", "tier": "fast",
                              "expected": 3 * GIB, "total": 3 * GIB, "status": "ok"}]
    assert seen["servers"] == {"chunkserver-1": {"master_total": 3 * GIB + configured,
                                                 "disks_total": 3 * GIB + configured}}
    actions.undo_disk_faults(configuration=config)  # now the configured limit is expected
    with pytest.raises(ActivityFailed, match=f"after 3 s: chunkserver-1 fast total {3 * GIB} "
                                             rf"\(expected {configured}\)"):
        probes.wait_for_tier_limits(timeout=3, configuration=config)
    lab["client"].mfscli[("-SHD", "-SCS")] = [limits_text(configured, configured,
                                                          2 * configured)]
    assert probes.wait_for_tier_limits(timeout=3, configuration=config)["ok"] is True


def test_chunk_health_reads_the_asked_matrix(config, lab):
    lab["client"].mfscli[("-SIC", "-m", "1")] = [sic("regular", undergoal=7)]
    health = probes.chunk_health(matrix="regular", configuration=config)
    assert (health["matrix"], health["undergoal"], health["missing"]) == ("regular", 7, 0)


def test_placement_matches_class_waits_for_the_keep_labels(config, lab, monkeypatch):
    Clock(monkeypatch)
    result = probes.placement_matches_class("chaosmoose/tiered", "tiered",
                                            configuration=config)
    assert (result["ok"], result["files"], result["chunks"]) == (True, 2, 2)
    assert lab["client"].calls[0] == ["/mnt/client-1", "chaosmoose/tiered"]
    created = WALK_TIERED.replace("172.18.0.7:9422 (status:VALID)",
                                  "172.18.0.6:9422 (status:VALID)", 1)
    lab["client"].walk = created
    with pytest.raises(ActivityFailed, match=r"chaosmoose/tiered: 1 of 2 chunks misplaced, 0 "
                                             r"problems after 4 s; first: chaosmoose/tiered/r/"
                                             r"1.dat chunk 00000000000001B0_00000001 \(class "
                                             r"tiered, keep F , S\): copies on chunkserver-1 "
                                             r"\[A,F\], chunkserver-2 \[B,F\]: no copy left for S"):
        probes.placement_matches_class("chaosmoose/tiered", timeout=4, configuration=config)
    report = probes.placement_matches_class("chaosmoose/tiered", "fast_and_bulk",
                                            raise_on_mismatch=False, configuration=config)
    assert report["ok"] is False and len(report["problems"]) == 2


def test_placement_without_a_lost_chunkserver(config, lab, monkeypatch):
    Clock(monkeypatch)
    report = probes.placement_matches_class("chaosmoose/tiered", avoid="chunkserver-1",
                                            raise_on_mismatch=False, configuration=config)
    assert report["ok"] is False and [m["why"] for m in report["misplaced"]] == [
        ("copies on chunkserver-1 [A,F], chunkserver-3 [C,S]: copies on chunkserver-1 [A,F], "
         "which should hold none; no copy left for F"),
        ("copies on chunkserver-2 [B,F], chunkserver-3 [C,S], chunkserver-1 [A,F]: copies on "
         "chunkserver-1 [A,F], which should hold none")]
    replicated = WALK_TIERED.replace("chunk 0: 00000000000001B0_00000001 / (id:432 ver:1)\n"
                                     "\t\tcopy 1: 172.18.0.5:9422",
                                     "chunk 0: 00000000000001B0_00000001 / (id:432 ver:1)\n"
                                     "\t\tcopy 1: 172.18.0.6:9422")
    replicated = replicated.replace("\t\tcopy 3: 172.18.0.5:9422 (status:VALID)\n", "")
    lab["client"].walk = replicated
    assert probes.placement_matches_class("chaosmoose/tiered", avoid="chunkserver-1",
                                          configuration=config)["ok"] is True


def test_chunks_per_label_and_class(config, lab):
    counts = probes.chunks_per_label_and_class(path="chaosmoose/tiered", configuration=config)
    assert counts["labels"] == {"A": 22, "B": 20, "C": 30, "F": 42, "S": 30}
    assert counts["servers"]["chunkserver-3"] == {"labels": "C,S", "chunks": 30}
    assert counts["classes"]["tiered"]["keep"] == ["F", "S"]
    assert counts["matrix"] == {"tiered": {"A": 2, "B": 1, "C": 2, "F": 3, "S": 2}}
    assert "matrix" not in probes.chunks_per_label_and_class(configuration=config)


def test_place_new_chunks_reports_and_checks_where_copies_went(config, lab):
    lab["client"].placed = ("chaosmoose/full/run-1/x/1.dat:\n" + chunk(5, "172.18.0.6",
                                                                        "172.18.0.7")
                            + "chaosmoose/full/run-1/x/2.dat:\n" + chunk(6, "172.18.0.7",
                                                                          "172.18.0.6"))
    result = probes.place_new_chunks("chaosmoose/full", files=2, avoid="chunkserver-1",
                                     configuration=config)
    assert result["copies"] == {"chunkserver-2": 2, "chunkserver-3": 2} and result["ok"]
    mount, folder, files, size = lab["client"].calls[-1]
    assert (mount, files, size) == ("/mnt/client-1", "2", "65536")
    assert folder.startswith("chaosmoose/full/run-1/")
    with pytest.raises(ActivityFailed, match="chunkserver-1 holds no new copy; expected some"):
        probes.place_new_chunks("chaosmoose/full", files=2, expect_on="chunkserver-1",
                                configuration=config)
    with pytest.raises(ActivityFailed, match="chunkserver-2 holds 2 new copies; expected none"):
        probes.place_new_chunks("chaosmoose/full", files=2, avoid="chunkserver-2",
                                configuration=config)


def test_set_storage_class_checks_that_moosefs_has_the_class(config, lab):
    assert actions.set_storage_class("chaosmoose/tiered", "tiered", configuration=config) == {
        "path": "chaosmoose/tiered", "storage_class": "tiered", "client": "client-1"}
    assert lab["client"].calls[-1] == ["/mnt/client-1", "chaosmoose/tiered", "tiered"]
    calls = len(lab["client"].calls)
    with pytest.raises(ActivityFailed, match="MooseFS has no storage class 'tierd'; it has 2, "
                                             "fast_and_bulk, tiered"):
        actions.set_storage_class("chaosmoose/tiered", "tierd", configuration=config)
    with pytest.raises(ActivityFailed, match="storage_class='a b' is invalid"):
        actions.set_storage_class("chaosmoose/tiered", "a b", configuration=config)
    assert len(lab["client"].calls) == calls + 1  # only the -SSC read of the unknown class


def test_placement_polling_rides_out_a_master_that_does_not_answer(config, lab, monkeypatch):
    """Seen in CI: mfscli found no working master for a moment while a chunkserver was down;
    a probe with a timeout polls on, one without fails at once, naming mfscli's answer."""
    clock = Clock(monkeypatch)
    gone = "Working master servers not found !!!\n"
    good = SCS + "\n" + SSC
    lab["client"].mfscli[("-SCS", "-SSC")] = [gone, gone, good]
    result = probes.placement_matches_class("chaosmoose/tiered", "tiered", timeout=30,
                                            configuration=config)
    assert result["ok"] is True and clock.slept == [2.0, 2.0]
    lab["client"].mfscli[("-SCS", "-SSC")] = [gone]
    with pytest.raises(ActivityFailed, match="mfscli -SCS -SSC on client-1: Working master "
                                             "servers not found"):
        probes.placement_matches_class("chaosmoose/tiered", "tiered", configuration=config)
    with pytest.raises(ActivityFailed, match="Working master servers not found"):
        probes.placement_matches_class("chaosmoose/tiered", "tiered", timeout=5,
                                       configuration=config)
