"""Game-day plans, the resilience score and observer notes (no cluster needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from chaosmoose import cli
from chaosmoose.gameday import session
from chaosmoose.gameday.plan import PlanError, load_plan, parse_plan
from chaosmoose.gameday.score import run_score, session_score

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


@pytest.mark.parametrize("passed, check, expected", [
    (True, {"lost": 0, "corrupt": 0, "unavailability": {"longest_s": 3.7}}, 100),
    (True, {"lost": 0, "corrupt": 0, "unavailability": {"longest_s": 12.0}}, 93),
    (True, {"lost": 0, "corrupt": 0, "unavailability": {"longest_s": 300.0}}, 50),
    (True, {"lost": 1, "corrupt": 0, "unavailability": {"longest_s": 0.1}}, 0),
    (True, {"lost": 0, "corrupt": 2}, 0),
    (False, {"lost": 0, "corrupt": 0}, 0),
    (True, None, 100),
])
def test_run_score_follows_the_documented_formula(passed, check, expected):
    assert run_score(passed, check) == expected


def test_session_score_is_the_rounded_mean():
    assert session_score([100, 93, 0]) == 64 and session_score([]) == 0


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
