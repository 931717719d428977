"""Game-day plans, the resilience score and observer notes (no cluster needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from chaosmoose import cli
from chaosmoose.gameday import session
from chaosmoose.gameday.plan import PlanError, load_plan, parse_plan
from chaosmoose.gameday.score import formula, run_score, session_score

REPO = Path(__file__).resolve().parents[2]


def test_the_shipped_plan_loads_with_every_experiment():
    plan = load_plan(REPO / "experiments" / "gameday.yaml")
    assert [s.name for s in plan.steps][:2] == ["leader loss", "follower loss"]
    assert all(s.path.is_file() and s.path.suffix == ".json" for s in plan.steps)
    assert [s.index for s in plan.steps] == list(range(1, len(plan.steps) + 1))


def test_repeat_and_defaults(tmp_path):
    (tmp_path / "a.json").write_text("{}")
    plan = parse_plan({"experiments": ["a.json", {"path": "a.json", "repeat": 2, "name": "again"}]},
                      tmp_path)
    assert [(s.index, s.name) for s in plan.steps] == [(1, "a"), (2, "again"), (3, "again")]
    assert plan.title == "Game day" and plan.pause_between == 10 and plan.stop_on_failure is False


@pytest.mark.parametrize("data, message", [
    ([], "a plan is a mapping"),
    ({"experiments": []}, "non-empty list"),
    ({"experiments": ["missing.json"]}, "experiment 'missing.json' not found"),
    ({"experiments": ["a.json"], "pause_between": -1}, "pause_between=-1 is invalid"),
    ({"experiments": ["a.json"], "stop_on_failure": "yes"}, "stop_on_failure='yes' is invalid"),
    ({"experiments": [{"path": "a.json", "repeat": 0}]}, "repeat=0 is invalid"),
    ({"experiments": [{"path": "a.json", "times": 2}]}, "unknown keys times"),
    ({"experiments": ["a.json"], "titel": "x"}, "unknown plan keys: titel"),
])
def test_malformed_plans_name_the_problem(tmp_path, data, message):
    (tmp_path / "a.json").write_text("{}")
    with pytest.raises(PlanError, match=message):
        parse_plan(data, tmp_path)


def test_plan_that_is_not_yaml_fails_with_exit_2(tmp_path, capsys):
    bad = tmp_path / "plan.yaml"
    bad.write_text("experiments: [unclosed")
    assert cli.main(["gameday", "run", str(bad), "--runs-dir", str(tmp_path)]) == 2
    assert "is not valid YAML/JSON" in capsys.readouterr().err
    assert not list(tmp_path.glob("gameday-*")), "a malformed plan must not start a session"


@pytest.mark.parametrize("verdict, check, expected", [
    ("PASSED", {"lost": 0, "corrupt": 0, "unavailability": {"longest_s": 3.7}}, 100),
    ("PASSED", {"lost": 0, "corrupt": 0, "unavailability": {"longest_s": 11.0}}, 90),
    ("PASSED", {"lost": 0, "corrupt": 0, "unavailability": {"longest_s": 300.0}}, 0),
    ("PASSED", {"lost": 1, "corrupt": 0, "unavailability": {"longest_s": 0.1}}, 0),
    ("PASSED", {"lost": 0, "corrupt": 2}, 0),
    ("PASSED", {"lost": -1, "corrupt": -1}, 0),
    ("FAILED", {"lost": 0, "corrupt": 0}, 0),
    ("HALTED", {"lost": 0, "corrupt": 0}, None),
    ("PASSED", None, 100),
])
def test_run_score_follows_the_documented_formula(verdict, check, expected):
    assert run_score(verdict, check)[0] == expected


def test_recovery_and_detection_count_against_the_plan_targets():
    check = {"lost": 0, "corrupt": 0, "unavailability": {"longest_s": 2.0}}
    targets = {"recovery_s": 10.0, "detection_s": 20.0}
    assert run_score("PASSED", check, [("wait-for-leader", 5.0)], 10.0, targets)[0] == 100
    assert run_score("PASSED", check, [("wait-for-leader", 20.0)], 10.0, targets)[0] == 50
    assert run_score("PASSED", check, [("wait-for-leader", 5.0)], 40.0, targets)[0] == 50
    score, parts = run_score("PASSED", check, [], None, targets)  # no alert ever fired
    assert score == 50 and parts["detection"] == 0.5
    assert run_score("PASSED", check, [], None, {"detection_s": None})[0] == 100


def hung_client_histories() -> dict[str, list[dict]]:
    """client-1 and client-2 write every 0.5 s for 100 s; client-3 hangs after 10 s and never
    records an end (its runner is stuck)."""
    histories: dict[str, list[dict]] = {}
    for client in ("client-1", "client-2", "client-3"):
        records = [{"type": "start", "f": "workload", "t": 1000.0}]
        last = 10.0 if client == "client-3" else 100.0
        seq, t = 0, 0.5
        while t <= last:
            seq += 1
            op = {"f": "append", "client": client, "seq": seq}
            records += [{"type": "invoke", "t": 1000 + t - 0.1, **op},
                        {"type": "ok", "t": 1000 + t, **op}]
            t += 0.5
        if client == "client-3":
            records.append({"type": "invoke", "t": 1010.4, "f": "append", "client": client,
                            "seq": seq + 1})
        else:
            records.append({"type": "end", "f": "workload", "t": 1100.2})
        histories[client] = records
    return histories


def test_one_hung_client_scores_low_though_the_merged_stream_looks_fine():
    from chaosmoose.workload.checker import unavailability, unavailability_by_client

    histories = hung_client_histories()
    merged = unavailability(histories)["longest_s"]
    per_client = unavailability_by_client(histories)
    assert merged < 1.0, "the merged stream hides the hung client"
    assert per_client["client-3"]["longest_s"] == pytest.approx(90.2)
    assert per_client["client-1"]["longest_s"] < 1.0
    check = {"lost": 0, "corrupt": 0, "unavailability": {"longest_s": merged},
             "unavailability_by_client": per_client}
    score, parts = run_score("PASSED", check)
    assert score == 0 and parts["worst_client"] == "client-3"
    assert "client-3's longest write gap 90.2 s" in parts["why"]


def test_session_score_is_the_rounded_mean_of_scored_runs():
    assert session_score([100, 93, 0]) == 64 and session_score([]) == 0
    assert session_score([100, None, 80]) == 90 and session_score([None]) == 0


def test_the_formula_names_the_plan_targets():
    text = formula({"recovery_s": 12.0, "detection_s": 30.0})
    assert "worst client" in text and "12 s" in text and "30 s" in text
    assert "halted run is not scored" in text


def test_notes_are_timestamped_and_read_back(tmp_path):
    (tmp_path / session.NOTES).write_text("# Observer notes\n\nnot a note\n")
    line = session.add_note(tmp_path, "  clients stalled ~4 s  ", now=1795683600.0)
    assert line == "- 09:00:00 clients stalled ~4 s"
    assert session.read_notes(tmp_path) == [line]


def test_note_command_finds_the_newest_session(tmp_path, capsys):
    for name in ("gameday-20261126T080000Z", "gameday-20261126T090000Z"):
        (tmp_path / name).mkdir()
    assert cli.main(["gameday", "note", "--runs-dir", str(tmp_path), "leader", "came", "back"]) == 0
    assert "leader came back" in (tmp_path / "gameday-20261126T090000Z" / session.NOTES).read_text()
    assert cli.main(["gameday", "note", "--runs-dir", str(tmp_path / "none"), "x"]) == 2


# --- halt conditions: the plan syntax ------------------------------------------------------

def test_halt_conditions_and_targets_parse(tmp_path):
    (tmp_path / "a.json").write_text("{}")
    plan = parse_plan({"experiments": ["a.json"], "targets": {"recovery_s": 12},
                       "halt": [{"when": "no_leader", "for": 20},
                                {"when": "alert_firing", "alert": "MooseNGNoLeader", "for": 60},
                                {"when": "write_gap", "above": 30}, {"when": "write_lost"}]},
                      tmp_path)
    assert [h.describe() for h in plan.halts] == [
        "no leader for 20 s", "alert MooseNGNoLeader firing for 60 s",
        "a client without an acknowledged write for over 30 s",
        "an acknowledged write lost or corrupt"]
    assert plan.targets["recovery_s"] == 12 and plan.targets["write_gap_grace_s"] == 5
    assert parse_plan({"experiments": ["a.json"]}, tmp_path).halts == ()


@pytest.mark.parametrize("halt, message", [
    ({"when": "no_leader"}, r"halt #1 \(no_leader\): for=None is invalid; expected seconds > 0"),
    ({"when": "no_leader", "for": 0}, r"for=0 is invalid"),
    ({"when": "no_leader", "for": True}, r"for=True is invalid"),
    ({"when": "no_leaders", "for": 2}, (r"halt #1: when='no_leaders' is invalid; expected one "
                                        r"of no_leader, alert_firing, write_gap, write_lost")),
    ({"when": "alert_firing", "for": 60}, (r"\(alert_firing\): alert=None is invalid; expected "
                                           r"the name of a Prometheus alert")),
    ({"when": "write_gap", "for": 30}, r"\(write_gap\): unknown keys for; expected above"),
    ({"when": "write_lost", "above": 1}, r"unknown keys above; expected nothing besides when"),
    ("no_leader", r"halt #1: when='no_leader' is invalid"),
])
def test_bad_halt_entries_are_named(tmp_path, halt, message):
    (tmp_path / "a.json").write_text("{}")
    with pytest.raises(PlanError, match=message):
        parse_plan({"experiments": ["a.json"], "halt": [halt]}, tmp_path)


@pytest.mark.parametrize("data, message", [
    ({"halt": {"when": "no_leader"}}, "halt=.* is invalid; expected a list"),
    ({"targets": {"recovery": 3}}, "targets: unknown keys recovery"),
    ({"targets": {"recovery_s": 0}}, r"targets: recovery_s=0 is invalid; expected seconds > 0"),
    ({"targets": [1]}, "targets=.* is invalid; expected a mapping"),
])
def test_bad_halt_lists_and_targets_are_named(tmp_path, data, message):
    (tmp_path / "a.json").write_text("{}")
    with pytest.raises(PlanError, match=message):
        parse_plan({"experiments": ["a.json"], **data}, tmp_path)


# --- the watcher's decisions, with a fake clock and fake readers ----------------------------

def halts(*entries: dict):
    from chaosmoose.gameday.plan import parse_halts

    return parse_halts(list(entries))


def test_no_leader_halts_only_after_it_lasted_and_a_leader_resets_the_clock():
    from chaosmoose.gameday.watch import Judge, Reading

    judge = Judge(halts({"when": "no_leader", "for": 20}))
    assert judge.feed(Reading(100.0, leaders=0)) is None
    assert judge.feed(Reading(115.0, leaders=0)) is None
    assert judge.feed(Reading(116.0, leaders=1)) is None      # a leader: start again
    assert judge.feed(Reading(117.0, leaders=0)) is None
    assert judge.feed(Reading(130.0, leaders=None)) is None   # unknown holds the clock
    assert judge.feed(Reading(136.0, leaders=0)) is None
    assert judge.feed(Reading(137.0, leaders=0)) == (
        "no leader for 20 s: no master served /leader for 20.0 s (limit 20 s)")


def test_alert_and_write_gap_conditions():
    from chaosmoose.gameday.watch import Judge, Reading

    judge = Judge(halts({"when": "alert_firing", "alert": "MooseNGNoLeader", "for": 60},
                        {"when": "write_gap", "above": 30}))
    assert judge.feed(Reading(0.0, firing=frozenset({"Other"}), gaps={"client-1": 1.0})) is None
    assert judge.feed(Reading(10.0, firing=frozenset({"MooseNGNoLeader"}), gaps={})) is None
    assert judge.feed(Reading(50.0, firing=None, gaps={"client-1": 30.0})) is None
    assert judge.feed(Reading(70.0, firing=frozenset({"MooseNGNoLeader"}))) == (
        "alert MooseNGNoLeader firing for 60 s: MooseNGNoLeader firing for 60.0 s (limit 60 s)")
    judge = Judge(halts({"when": "write_gap", "above": 30}))
    assert judge.feed(Reading(1.0, gaps={"client-1": 2.0, "client-3": 30.5})) == (
        "a client without an acknowledged write for over 30 s: client-3 has had no "
        "acknowledged write for 30.5 s (limit 30 s)")


def test_detection_is_the_first_new_alert_after_the_fault():
    from chaosmoose.gameday.watch import Judge, Reading

    judge = Judge(())
    judge.feed(Reading(100.0, firing=frozenset({"AlwaysOn"})))
    judge.feed(Reading(112.0, firing=frozenset({"AlwaysOn", "MooseNGNoLeader"})))
    assert judge.detection_s(105.0) == 7.0
    assert judge.detection_s(None) is None and Judge(()).detection_s(105.0) is None


def test_watcher_polls_reports_once_and_survives_a_crashing_reader():
    from chaosmoose.gameday.watch import Judge, Reading, Watcher

    now = [0.0]
    readings = iter([RuntimeError("docker gone"), 0, 0, 0, 0])

    def read(t: float) -> Reading:
        value = next(readings)
        if isinstance(value, Exception):
            raise value
        return Reading(t, leaders=value)

    said: list[str] = []
    watcher = Watcher(Judge(halts({"when": "no_leader", "for": 2})), read, said.append,
                      clock=lambda: now[0])
    for _ in range(3):
        assert watcher.poll_once() is None
        now[0] += 1.0
    assert watcher.poll_once() == "no leader for 2 s: no master served /leader for 2.0 s (limit 2 s)"
    now[0] += 1.0
    watcher.poll_once()
    assert len(said) == 1


def test_write_lost_is_judged_on_the_checker_result():
    from chaosmoose.gameday.watch import lost_sentence

    lost = halts({"when": "write_lost"})
    assert lost_sentence(lost, {"lost": 2, "corrupt": 0, "acknowledged": 90}) == (
        "an acknowledged write lost or corrupt: the checker found 2 lost and 0 corrupt of 90 "
        "acknowledged writes")
    assert lost_sentence(lost, {"lost": 0, "corrupt": 0}) is None
    assert lost_sentence((), {"lost": 2}) is None


def test_gaps_are_read_from_the_tail_of_each_live_history(tmp_path, monkeypatch):
    import json

    from chaosmoose import _docker
    from chaosmoose.gameday import watch

    folder = tmp_path / "workload" / "run1"
    folder.mkdir(parents=True)
    (folder / "workload.json").write_text(json.dumps({"stopped": None, "clients": {
        "client-1": {"container": "c1", "state_dir": "/s"},
        "client-2": {"container": "c2", "state_dir": "/s"}}}))
    tails = {"c1": [{"type": "start", "t": 10.0}, {"type": "ok", "f": "append", "t": 95.0}],
             "c2": [{"type": "fail", "f": "append", "t": 60.0},
                    {"type": "fail", "f": "append", "t": 90.0}]}
    monkeypatch.setattr(_docker, "get_container", lambda cid, project, service: cid)
    monkeypatch.setattr(_docker, "exec_in", lambda c, cmd: (
        0, "\n".join(json.dumps(r) for r in tails[c]) + "\n{torn", ""))
    assert watch.read_gaps(tmp_path, 100.0) == {"client-1": 5.0, "client-2": 40.0}
    assert watch.read_gaps(tmp_path / "none", 100.0) == {}


# --- halting a session: a halt condition, and SIGTERM ---------------------------------------

FAKE_CHAOS = '''#!{python}
"""A stand-in for `chaos run`: records one fault in the run's ledger, starts a grandchild,
writes both pids, then waits to be stopped (default signal handling: nothing ignored)."""
import os, subprocess, sys, time
from chaosmoose.ledger import Ledger
run_dir = os.environ["CHAOSMOOSE_RUN_DIR"]
Ledger(run_dir).open("test.fake", {{"service": "fake-1"}}, "run-1")
grandchild = subprocess.Popen(["sleep", "300"])
with open(os.path.join(run_dir, "pids"), "w") as f:
    f.write(f"{{os.getpid()}} {{grandchild.pid}}\\n")
print("Action: fake-fault", flush=True)
time.sleep(300)
'''


def fake_chaos(tmp_path: Path) -> Path:
    import sys

    path = tmp_path / "chaos"
    path.write_text(FAKE_CHAOS.format(python=sys.executable))
    path.chmod(0o755)
    return path


def gone(pid: int, within: float = 5.0) -> bool:
    """True once ``pid`` has stopped running (a kill is delivered asynchronously)."""
    import time

    deadline = time.monotonic() + within
    while not _gone(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _gone(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"  # a zombie has stopped running


def wait_file(path: Path, timeout: float = 20.0) -> str:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().endswith("\n"):
            return path.read_text()
        time.sleep(0.05)
    raise AssertionError(f"{path} did not appear within {timeout} s")


@pytest.fixture
def fake_family():
    from chaosmoose import _families

    _families.register("tests.fakefamily", undo={"test.fake": lambda fault: "fake healed"})


def test_a_halt_condition_stops_the_run_heals_and_skips_the_rest(tmp_path, fake_family):
    from chaosmoose.gameday import report
    from chaosmoose.gameday.watch import Reading
    from chaosmoose.ledger import ledgers_under

    (tmp_path / "a.json").write_text("{}")
    plan = parse_plan({"title": "t", "pause_between": 0, "experiments": ["a.json", "a.json"],
                       "halt": [{"when": "no_leader", "for": 0.3}]}, tmp_path)
    said: list[str] = []
    game = session.Session(plan, tmp_path / "runs", str(fake_chaos(tmp_path)), offline=True,
                           say=said.append, reader=lambda run_dir: lambda t: Reading(
                               t, leaders=0 if (run_dir / "pids").exists() else 1),
                           watch_interval=0.05, int_grace=10, term_grace=5)
    results = game.run()
    pids = [int(p) for p in (game.dir / "01-a" / "pids").read_text().split()]
    assert all(gone(pid) for pid in pids)
    assert len(results) == 1 and results[0].verdict == "HALTED" and results[0].score is None
    assert game.halt_reason.startswith("halt condition: no leader for 0.3 s: no master served")
    assert game.halt_signal is None
    assert any("sending SIGINT" in line for line in said)
    assert all(ledger.open_faults() == [] for ledger in ledgers_under(game.dir))
    assert [h["how"] for h in game.healed] == ["fake healed"]
    md = report.markdown(game)
    assert "**HALTED: halt condition: no leader for 0.3 s" in md and "1 open faults undone" in md
    assert "| 1 | a | HALTED |" in md and "halted, not scored" in md


SESSION = '''
import sys
from chaosmoose import _families, cli
from chaosmoose.gameday import session
_families.register("tests.fakefamily", undo={{"test.fake": lambda fault: "fake healed"}})
session.chaos_binary = lambda: {chaos!r}
sys.exit(cli.main(["gameday", "run", {plan!r}, "--runs-dir", {runs!r}, "--offline"]))
'''


@pytest.mark.parametrize("signame", ["SIGTERM", "SIGHUP"])
def test_sigterm_and_sighup_stop_the_child_heal_and_write_the_report(tmp_path, signame):
    import signal
    import subprocess
    import sys

    from chaosmoose.ledger import ledgers_under

    (tmp_path / "a.json").write_text("{}")
    plan = tmp_path / "plan.yaml"
    plan.write_text("title: t\npause_between: 0\nexperiments: [a.json, a.json]\n")
    runs = tmp_path / "runs"
    script = SESSION.format(chaos=str(fake_chaos(tmp_path)), plan=str(plan), runs=str(runs))
    game = subprocess.Popen([sys.executable, "-c", script], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        pids_file = None
        for _ in range(400):
            pids_file = next(iter(runs.glob("gameday-*/01-a/pids")), None)
            if pids_file is not None:
                break
            __import__("time").sleep(0.05)
        assert pids_file is not None, "the fake experiment never started"
        pids = [int(p) for p in wait_file(pids_file).split()]
        game.send_signal(getattr(signal, signame))
        out, _ = game.communicate(timeout=60)
    finally:
        if game.poll() is None:
            game.kill()
    number = getattr(signal, signame)
    assert game.returncode == 128 + number, out
    assert "sending SIGTERM to the experiment" in out and "sending SIGINT" not in out
    assert all(gone(pid) for pid in pids), "the chaos run and its process group must be gone"
    folder = pids_file.parent.parent
    assert all(ledger.open_faults() == [] for ledger in ledgers_under(folder))
    md = (folder / "gameday.md").read_text()
    assert f"**HALTED: {signame}; 1 open faults undone; later runs skipped.**" in md
    assert "[2/2]" not in out and (folder / "gameday.html").exists()
    assert f'"halt_reason": "{signame}"' in (folder / "gameday.json").read_text()
