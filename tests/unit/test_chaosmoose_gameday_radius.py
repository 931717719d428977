"""The game day's blast radius: the plan's limits, the static refusal of experiments that
exceed them, the limits handed to every run, and the watcher's live ledger check (no
cluster needed)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from chaosmoose import _families, _faults, _settings
from chaosmoose.gameday import radius, session
from chaosmoose.gameday.plan import PlanError, load_plan, parse_plan
from chaosmoose.gameday.watch import Judge, Reading, radius_sentence, read_ledgers
from chaosmoose.ledger import Ledger, ledgers_under

REPO = Path(__file__).resolve().parents[2]
MASTER, CHUNKSERVER = "chaosmoose.master.actions", "chaosmoose.chunkserver.actions"
NETWORK = "chaosmoose.network.actions"


@pytest.fixture(autouse=True)
def default_topology(monkeypatch: pytest.MonkeyPatch) -> None:
    """Three masters and three chunkservers, and the guard's defaults, whatever the shell
    says."""
    for name in ("CHAOSMOOSE_MASTERS", "CHAOSMOOSE_CHUNKSERVERS", "CHAOSMOOSE_CLIENTS",
                 "CHAOSMOOSE_MAX_MASTERS_DOWN", "CHAOSMOOSE_MAX_CHUNKSERVERS_DOWN"):
        monkeypatch.delenv(name, raising=False)


def action(name: str, module: str, func: str, background: bool = False,
           **arguments: Any) -> dict[str, Any]:
    activity = {"type": "action", "name": name,
                "provider": {"type": "python", "module": module, "func": func,
                             "arguments": arguments}}
    if background:
        activity["background"] = True
    return activity


def experiment(folder: Path, name: str, method: list[dict], rollbacks: list[dict] = (),
               configuration: dict | None = None, secrets: dict | None = None) -> Path:
    data: dict[str, Any] = {"title": name, "description": name, "method": list(method),
                            "rollbacks": list(rollbacks)}
    if configuration is not None:
        data["configuration"] = configuration
    if secrets is not None:
        data["secrets"] = secrets
    path = folder / f"{name}.json"
    path.write_text(json.dumps(data))
    return path


def plan_of(folder: Path, *paths: Path, blast_radius: dict | None = None):
    data: dict[str, Any] = {"experiments": [p.name for p in paths], "pause_between": 0}
    if blast_radius is not None:
        data["blast_radius"] = blast_radius
    return parse_plan(data, folder)


def refusal(folder: Path, *paths: Path, blast_radius: dict | None = None) -> str:
    with pytest.raises(PlanError) as caught:
        radius.check_plan(plan_of(folder, *paths, blast_radius=blast_radius), {})
    return str(caught.value)


KILL_LEADER = action("kill-the-leader", MASTER, "kill_master", target="leader")
RESTART = action("restart-killed", MASTER, "restart_killed")


# --- the plan format -----------------------------------------------------------------------

def test_blast_radius_defaults_and_overrides(tmp_path):
    (tmp_path / "a.json").write_text("{}")
    assert parse_plan({"experiments": ["a.json"]}, tmp_path).blast_radius == {
        "max_masters_down": 1, "max_chunkservers_down": 1}
    plan = parse_plan({"experiments": ["a.json"], "blast_radius": {"max_masters_down": 2}},
                      tmp_path)
    assert plan.blast_radius == {"max_masters_down": 2, "max_chunkservers_down": 1}
    assert parse_plan({"experiments": ["a.json"], "blast_radius": {"max_chunkservers_down": 0}},
                      tmp_path).blast_radius["max_chunkservers_down"] == 0


@pytest.mark.parametrize("value, message", [
    ([1], r"blast_radius=\[1\] is invalid; expected a mapping of max_masters_down, max_"),
    ({"max_master_down": 1}, r"unknown keys max_master_down; expected max_masters_down, max"),
    ({"max_masters_down": -1}, r"max_masters_down=-1 is invalid; expected a whole number >= 0"),
    ({"max_masters_down": True}, r"max_masters_down=True is invalid"),
    ({"max_chunkservers_down": 1.5}, r"max_chunkservers_down=1.5 is invalid"),
    ({"max_chunkservers_down": "1"}, r"max_chunkservers_down='1' is invalid"),
])
def test_bad_blast_radius_is_named(tmp_path, value, message):
    (tmp_path / "a.json").write_text("{}")
    with pytest.raises(PlanError, match=message):
        parse_plan({"experiments": ["a.json"], "blast_radius": value}, tmp_path)


def test_the_shipped_plan_and_every_shipped_experiment_fit_one_and_one():
    plan = load_plan(REPO / "experiments" / "gameday.yaml")
    assert plan.blast_radius == {"max_masters_down": 1, "max_chunkservers_down": 1}
    radius.check_plan(plan, {})
    everything = parse_plan({"experiments": sorted(
        str(p) for p in (REPO / "experiments").glob("*.json"))}, REPO)
    assert radius.plan_problems(everything, {}) == []
    strict = parse_plan({"experiments": ["leader-loss.json"],
                         "blast_radius": {"max_masters_down": 0}}, REPO / "experiments")
    assert "'kill-the-leader'" in radius.plan_problems(strict, {})[0]


# --- the static refusal -----------------------------------------------------------------

def test_a_second_master_down_is_refused_naming_experiment_activity_and_limit(tmp_path):
    path = experiment(tmp_path, "double-trouble", [
        KILL_LEADER, action("pause-a-follower", MASTER, "pause_master", target="master-3")],
        [RESTART])
    assert refusal(tmp_path, path) == (
        "blast radius: experiment 'double-trouble' (double-trouble.json): activity "
        "'pause-a-follower' (chaosmoose.master.actions.pause_master) in its method would "
        "leave 2 masters down at once (container.kill on leader by 'kill-the-leader'; "
        "container.pause on master-3 by 'pause-a-follower'); expected at most 1 "
        "(blast_radius.max_masters_down of the plan)")
    # the plan may allow it on purpose
    radius.check_plan(plan_of(tmp_path, path, blast_radius={"max_masters_down": 2}), {})


def test_the_session_refuses_before_its_folder_exists(tmp_path):
    path = experiment(tmp_path, "double", [KILL_LEADER, KILL_LEADER])
    plan = plan_of(tmp_path, path)
    with pytest.raises(PlanError, match="activity 'kill-the-leader'"):
        session.Session(plan, tmp_path / "runs", "chaos", say=lambda line: None)
    assert not (tmp_path / "runs").exists()


def test_the_cli_exits_2_on_a_refused_plan(tmp_path, capsys):
    from chaosmoose import cli

    experiment(tmp_path, "double", [KILL_LEADER, KILL_LEADER])
    plan = tmp_path / "plan.yaml"
    plan.write_text("experiments: [double.json]\n")
    assert cli.main(["gameday", "run", str(plan), "--runs-dir", str(tmp_path / "runs"),
                     "--offline"]) == 2
    assert "would leave 2 masters down at once" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists(), "a refused plan must not start a session"


def test_heals_transient_faults_and_one_named_target(tmp_path):
    fine = [
        experiment(tmp_path, "heal-between", [KILL_LEADER, RESTART, KILL_LEADER], [RESTART]),
        experiment(tmp_path, "held-pause", [
            action("pause", MASTER, "pause_master", target="leader", duration=5), KILL_LEADER]),
        experiment(tmp_path, "same-master-twice", [
            action("stop", MASTER, "stop_master", target="master-2"),
            action("kill", MASTER, "kill_master", target="master-2")]),
        experiment(tmp_path, "undo-all", [
            KILL_LEADER, action("undo", "chaosmoose.faults.actions", "undo_all_faults"),
            KILL_LEADER]),
        experiment(tmp_path, "switchover-is-harmless", [
            KILL_LEADER, action("switch", MASTER, "switchover")]),
        experiment(tmp_path, "restart-is-brief", [
            action("restart", MASTER, "restart_master", target="leader"), KILL_LEADER]),
    ]
    radius.check_plan(plan_of(tmp_path, *fine), {})


@pytest.mark.parametrize("method, activity", [
    ([action("pause", MASTER, "pause_master", target="leader"), KILL_LEADER],
     "'kill-the-leader'"),
    ([action("pause", MASTER, "pause_master", background=True, target="leader", duration=5),
      KILL_LEADER], "'kill-the-leader'"),
    ([KILL_LEADER, action("unpause", MASTER, "unpause_paused"), KILL_LEADER],
     "'kill-the-leader'"),  # unpausing heals no kill
    ([action("isolate", NETWORK, "isolate", node="leader"),
      action("kill-follower", MASTER, "kill_master", target="random-follower")],
     "'kill-follower'"),
    ([action("halves", NETWORK, "partition_halves", nodes="masters", minority="master-1"),
      action("kill-2", MASTER, "kill_master", target="master-2")], "'kill-2'"),
])
def test_what_stays_down_is_counted(tmp_path, method, activity):
    path = experiment(tmp_path, "exp", method)
    assert f"activity {activity}" in refusal(tmp_path, path)


def test_a_partition_that_cuts_nobody_off_counts_nothing(tmp_path):
    ring = experiment(tmp_path, "ring", [
        action("ring", NETWORK, "partition_majorities_ring"), KILL_LEADER])
    clients = experiment(tmp_path, "clients", [
        action("cut", NETWORK, "cut", a="clients", b="leader"), KILL_LEADER])
    held = experiment(tmp_path, "held", [
        action("isolate", NETWORK, "isolate", node="leader", duration=3), KILL_LEADER])
    radius.check_plan(plan_of(tmp_path, ring, clients, held), {})
    healed = experiment(tmp_path, "healed", [
        action("isolate", NETWORK, "isolate", node="leader"),
        action("heal", NETWORK, "heal"), KILL_LEADER])
    radius.check_plan(plan_of(tmp_path, healed), {})


def test_a_partition_counts_its_worst_resolution_of_roles(tmp_path, monkeypatch):
    monkeypatch.setenv("CHAOSMOOSE_MASTERS", ",".join(
        f"master-{i}=http://127.0.0.1:{9430 + i}" for i in range(1, 6)))
    # the leader and master-5 cut from the other three: two masters without a majority,
    # unless master-5 itself leads (then only one)
    two = experiment(tmp_path, "two", [action("isolate-two", NETWORK, "isolate",
                                              node="leader,master-5")])
    assert "activity 'isolate-two' (chaosmoose.network.actions.isolate) in its method would " \
           "leave 2 masters down at once" in refusal(tmp_path, two)
    # a resolution the action would refuse (the leader outside ``nodes``) is not counted
    some = experiment(tmp_path, "some", [action("isolate-in-two", NETWORK, "isolate",
                                                node="leader", nodes="master-1,master-2")])
    radius.check_plan(plan_of(tmp_path, some), {})
    never = experiment(tmp_path, "never", [action("isolate-none", NETWORK, "isolate",
                                                  node="master-1", nodes="master-1")])
    assert "activity 'isolate-none' (chaosmoose.network.actions.isolate) in its method " \
           "cannot be judged: isolating master-1 leaves no other node" in refusal(tmp_path, never)


def test_chunkservers_and_rollbacks_count_too(tmp_path):
    random_twice = experiment(tmp_path, "cs", [
        action("kill-1", CHUNKSERVER, "kill_chunkserver"),
        action("kill-2", CHUNKSERVER, "stop_chunkserver", target="random")])
    message = refusal(tmp_path, random_twice)
    assert "activity 'kill-2' (chaosmoose.chunkserver.actions.stop_chunkserver) in its " \
           "method would leave 2 chunkservers down at once" in message
    assert "(blast_radius.max_chunkservers_down of the plan)" in message
    in_rollbacks = experiment(tmp_path, "rb", [KILL_LEADER], [KILL_LEADER])
    assert "activity 'kill-the-leader' (chaosmoose.master.actions.kill_master) in its " \
           "rollbacks" in refusal(tmp_path, in_rollbacks)
    started_again = experiment(tmp_path, "ok", [
        action("kill-1", CHUNKSERVER, "kill_chunkserver"),
        action("start", CHUNKSERVER, "start_chunkservers"),
        action("kill-2", CHUNKSERVER, "kill_chunkserver")])
    radius.check_plan(plan_of(tmp_path, started_again), {})


def test_substitutions_and_references_are_resolved(tmp_path):
    named = experiment(tmp_path, "named", [
        {**action("kill-victim", MASTER, "kill_master", target="${victim}")},
        {"ref": "kill-victim"}], configuration={"victim": "master-2"})
    radius.check_plan(plan_of(tmp_path, named), {})  # the same master twice is one
    by_role = experiment(tmp_path, "by-role", [
        {**action("kill-victim", MASTER, "kill_master", target="${victim}")},
        {"ref": "kill-victim"}], configuration={"victim": "leader"})
    assert "would leave 2 masters down" in refusal(tmp_path, by_role)


def test_an_experiment_that_sets_looser_limits_is_refused(tmp_path):
    looser = experiment(tmp_path, "looser", [KILL_LEADER],
                        configuration={"max_masters_down": 2})
    assert refusal(tmp_path, looser) == (
        "blast radius: experiment 'looser' (looser.json): its configuration sets "
        "max_masters_down=2, looser than the plan's blast_radius.max_masters_down=1; lower "
        "it to 1 or raise the plan's limit")
    secret = experiment(tmp_path, "secret", [KILL_LEADER],
                        secrets={"mooseng": {"max_chunkservers_down": "3"}})
    assert "its secrets sets max_chunkservers_down=3, looser" in refusal(tmp_path, secret)
    garbled = experiment(tmp_path, "garbled", [KILL_LEADER],
                         configuration={"max_masters_down": "lots"})
    assert "its configuration sets max_masters_down='lots' is invalid" in \
        refusal(tmp_path, garbled)
    # the same as the plan, from the environment the run will get, or stricter: kept
    same = experiment(tmp_path, "same", [KILL_LEADER], configuration={
        "max_masters_down": {"type": "env", "key": "CHAOSMOOSE_MAX_MASTERS_DOWN"}})
    radius.check_plan(plan_of(tmp_path, same), {})
    stricter = experiment(tmp_path, "stricter", [KILL_LEADER],
                          configuration={"max_masters_down": 0})
    assert refusal(tmp_path, stricter).endswith(
        "expected at most 0 (max_masters_down in the experiment's configuration)")


def test_every_action_of_the_fault_families_is_classified():
    import importlib

    classified = {*radius.CONTAINER_FAULTS, *radius.HEALS,
                  *((NETWORK, name) for name in radius.PARTITIONS),
                  *((module, name) for module, names in radius.NEUTRAL.items()
                    for name in names)}
    for module in (MASTER, CHUNKSERVER, NETWORK):
        for name in importlib.import_module(module).__all__:
            assert (module, name) in classified, (
                f"{module}.{name} is not classified in chaosmoose.gameday.radius: say whether "
                "it takes a service down, heals, or neither")
    _families.load_all()
    assert {f.kind for f in radius.CONTAINER_FAULTS.values()} <= _families.TAKES_DOWN


# --- the limits reach every run --------------------------------------------------------------

def test_limits_env_is_what_the_fault_guard_reads(monkeypatch, tmp_path):
    env = radius.limits_env({"max_masters_down": 0, "max_chunkservers_down": 2})
    assert env == {"CHAOSMOOSE_MAX_MASTERS_DOWN": "0", "CHAOSMOOSE_MAX_CHUNKSERVERS_DOWN": "2"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("CHAOSMOOSE_RUNS_DIR", str(tmp_path / "runs"))
    configuration = {"chaosmoose_run_dir": str(tmp_path / "run")}
    assert {k: v[0] for k, v in _settings.blast_radius_limits(configuration).items()} == {
        "max_masters_down": 0, "max_chunkservers_down": 2}
    problem = _faults.blast_radius_problem("container.kill", {"service": "master-1"}, {},
                                           configuration)
    assert problem is not None and "expected at most 0 (max_masters_down)" in problem


ENV_CHAOS = '''#!{python}
import json, os
run_dir = os.environ["CHAOSMOOSE_RUN_DIR"]
with open(os.path.join(run_dir, "env.json"), "w") as f:
    json.dump({{k: v for k, v in os.environ.items() if k.startswith("CHAOSMOOSE_")}}, f)
'''


def test_each_chaos_run_gets_the_plans_limits(tmp_path):
    chaos = tmp_path / "chaos"
    chaos.write_text(ENV_CHAOS.format(python=sys.executable))
    chaos.chmod(0o755)
    (tmp_path / "a.json").write_text("{}")
    plan = parse_plan({"experiments": ["a.json"], "pause_between": 0,
                       "blast_radius": {"max_masters_down": 2, "max_chunkservers_down": 0}},
                      tmp_path)
    game = session.Session(plan, tmp_path / "runs", str(chaos), offline=True,
                           say=lambda line: None, watch_interval=0.05)
    game.run()
    env = json.loads((game.dir / "01-a" / "env.json").read_text())
    assert env["CHAOSMOOSE_MAX_MASTERS_DOWN"] == "2"
    assert env["CHAOSMOOSE_MAX_CHUNKSERVERS_DOWN"] == "0"
    assert env["CHAOSMOOSE_RUN_DIR"] == str(game.dir / "01-a")


# --- the live ledger check ---------------------------------------------------------------------

@pytest.fixture
def down_family():
    """A fault kind that takes its target down and heals without Docker."""
    _families.register("tests.downfamily", undo={"test.down": lambda fault: "brought back"},
                       takes_down=["test.down"])


def test_the_judge_halts_when_open_faults_exceed_the_radius():
    judge = Judge((), {"max_masters_down": 1, "max_chunkservers_down": 1})
    assert judge.feed(Reading(1.0, down={"max_masters_down": ("master-1",)})) is None
    assert judge.feed(Reading(2.0, down=None)) is None  # unknown: nothing to say
    assert judge.feed(Reading(3.0, down={"max_masters_down": ("master-1",),
                                         "max_chunkservers_down": ("chunkserver-1",
                                                                   "chunkserver-3")})) == (
        "blast radius exceeded: the open faults leave 2 chunkservers down at once "
        "(chunkserver-1, chunkserver-3); the plan allows at most 1 "
        "(blast_radius.max_chunkservers_down)")
    assert radius_sentence({"max_masters_down": ("master-1", "master-2")},
                           {"max_masters_down": 2}) is None


def test_the_ledgers_are_folded_into_what_is_down(tmp_path, down_family):
    first, second = Ledger(tmp_path / "01-a"), Ledger(tmp_path / "02-b")
    first.open("test.down", {"service": "master-1"}, "r1")
    closed = first.open("test.down", {"service": "master-3"}, "r1")
    first.close(closed["id"], "brought back")
    second.open("network.partition", {"service": "isolate master-2"}, "r2",
                cut_off=[{"service": "master-2", "role": "leader"}])
    second.open("test.down", {"service": "chunkserver-2"}, "r2")
    second.open("workload.runner", {"service": "client-1"}, "r2")
    groups = {"max_masters_down": ["master-1", "master-2", "master-3"],
              "max_chunkservers_down": ["chunkserver-1", "chunkserver-2"]}
    down, lines = read_ledgers(ledgers_under(tmp_path), groups, now=1e12)
    assert down == {"max_masters_down": ("master-1", "master-2"),
                    "max_chunkservers_down": ("chunkserver-2",)}
    assert [line.split(" (")[0] for line in lines] == [
        "test.down on master-1", "network.partition on isolate master-2",
        "test.down on chunkserver-2"]


DOWN_CHAOS = '''#!{python}
"""Records two masters down in the run's ledger (as if the guard had been bypassed), then
waits to be stopped."""
import os, time
from chaosmoose.ledger import Ledger
ledger = Ledger(os.environ["CHAOSMOOSE_RUN_DIR"])
ledger.open("test.down", {{"service": "master-1"}}, "run-1")
time.sleep(0.3)
ledger.open("test.down", {{"service": "master-2"}}, "run-1")
print("Action: second-master", flush=True)
time.sleep(300)
'''


def test_the_watcher_halts_the_session_when_the_ledger_exceeds_the_radius(tmp_path,
                                                                         down_family):
    from chaosmoose.gameday import report

    chaos = tmp_path / "chaos"
    chaos.write_text(DOWN_CHAOS.format(python=sys.executable))
    chaos.chmod(0o755)
    (tmp_path / "a.json").write_text("{}")
    plan = parse_plan({"title": "t", "pause_between": 0, "experiments": ["a.json", "a.json"]},
                      tmp_path)
    said: list[str] = []
    game = session.Session(plan, tmp_path / "runs", str(chaos), offline=True, say=said.append,
                           watch_interval=0.05, int_grace=5, term_grace=5)
    results = game.run()
    assert game.halt_reason == (
        "halt condition: blast radius exceeded: the open faults leave 2 masters down at once "
        "(master-1, master-2); the plan allows at most 1 (blast_radius.max_masters_down)")
    assert len(results) == 1 and results[0].verdict == "HALTED"
    assert all(ledger.open_faults() == [] for ledger in ledgers_under(game.dir))
    assert sorted(h["service"] for h in game.healed) == ["master-1", "master-2"]
    assert "**HALTED: halt condition: blast radius exceeded" in report.markdown(game)
