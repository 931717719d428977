"""The game day's live view: the dashboard's rows, plain lines when not on a terminal, and
the session state the dashboard is drawn from (no cluster, no real terminal needed)."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest

from chaosmoose.gameday import live, session
from chaosmoose.gameday.live import LiveState, rows
from chaosmoose.gameday.plan import parse_plan
from chaosmoose.gameday.watch import Reading, Watcher


class Terminal(io.StringIO):
    """A stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


def test_rows_show_experiment_activity_leader_clients_faults_and_time():
    state = LiveState("storage day", "[2/5] follower loss", "action kill-a-follower",
                      serving=("master-2",), gaps={"client-2": 0.4, "client-1": 0.25,
                                                   "client-3": 12.34},
                      faults=("container.kill on master-3 (4 s)",), elapsed_s=75.2,
                      run_elapsed_s=12.9, writing_within_s=5.0,
                      done=("1 leader loss PASSED 100",))
    assert rows(state) == [
        ("experiment", "[2/5] follower loss"),
        ("activity", "action kill-a-follower"),
        ("leader", "master-2"),
        ("clients writing",
         "2 of 3 writing (client-1 0.2 s, client-2 0.4 s, client-3 STALLED 12.3 s)"),
        ("open faults", "container.kill on master-3 (4 s)"),
        ("elapsed", "01:15 (this run 00:12)"),
        ("done", "1 leader loss PASSED 100"),
    ]


@pytest.mark.parametrize("serving, text", [
    (None, "unknown (not polled)"),
    ((), "NONE serving /leader"),
    (("master-1", "master-3"), "2 serving /leader: master-1, master-3"),
])
def test_the_leader_row_says_none_several_or_unknown(serving, text):
    assert dict(rows(LiveState("t", serving=serving)))["leader"] == text


def test_between_runs_and_halting():
    got = dict(rows(LiveState("t", gaps={}, faults=(), elapsed_s=3725, halt="Ctrl-C")))
    assert got["experiment"] == "(between runs)" and got["activity"] == "-"
    assert got["clients writing"] == "no workload running" and got["open faults"] == "none"
    assert got["elapsed"] == "1:02:05" and got["HALTING"] == "Ctrl-C"
    assert dict(rows(LiveState("t")))["clients writing"] == "unknown (histories not read)"


def test_not_a_terminal_gives_plain_lines():
    out = io.StringIO()
    view = live.make_view(stream=out)
    assert isinstance(view, live.PlainView) and view.live is False
    view.start(lambda: LiveState("t"))
    view.say("[1/1] a: chaos run a.json")
    view.stop()
    assert out.getvalue() == "[1/1] a: chaos run a.json\n"


def test_a_terminal_gets_the_dashboard_unless_plain(monkeypatch):
    monkeypatch.setenv("TERM", "xterm")
    assert isinstance(live.make_view(stream=Terminal()), live.LiveView)
    assert isinstance(live.make_view(plain=True, stream=Terminal()), live.PlainView)
    monkeypatch.setenv("TERM", "dumb")
    assert isinstance(live.make_view(stream=Terminal()), live.PlainView)


def test_the_dashboard_draws_the_rows_and_the_lines_above_it(monkeypatch):
    monkeypatch.setenv("TERM", "xterm")
    out = Terminal()
    view = live.make_view(stream=out)
    assert view.live is True
    view.start(lambda: LiveState("storage day", "[1/2] leader loss", "probe wait-for-leader",
                                 serving=("master-2",), faults=("container.kill on master-1",)))
    view.say("    3.0 s  action kill-the-leader")
    view.stop()
    text = out.getvalue()
    for expected in ("game day: storage day", "[1/2] leader loss", "probe wait-for-leader",
                     "master-2", "container.kill on master-1",
                     "3.0 s  action kill-the-leader"):
        assert expected in text


def test_the_watcher_keeps_the_latest_reading_and_leader_changes():
    from chaosmoose.gameday.watch import Judge

    readings = iter([Reading(1.0, serving=("master-1",)), Reading(2.0, serving=()),
                     Reading(3.0, serving=("master-2",)), Reading(4.0, serving=("master-2",))])
    now = iter([1.0, 2.0, 3.0, 4.0])
    watcher = Watcher(Judge(()), lambda t: next(readings), lambda why: None,
                      clock=lambda: next(now))
    for _ in range(4):
        watcher.poll_once()
    assert watcher.latest == Reading(4.0, serving=("master-2",))
    assert watcher.leader_changes == [(1.0, "master-1"), (3.0, "master-2")]


SLOW_CHAOS = '''#!{python}
import time
print("[2026-11-29 06:00:00 INFO] Action: kill-the-leader", flush=True)
time.sleep(1.5)
'''


def test_the_session_feeds_the_view_its_state(tmp_path):
    """The session's state, sampled while a run goes on, names the run, its activity and
    what the watcher saw; the sampled lines went to the view."""
    chaos = tmp_path / "chaos"
    chaos.write_text(SLOW_CHAOS.format(python=sys.executable))
    chaos.chmod(0o755)
    (tmp_path / "a.json").write_text("{}")
    plan = parse_plan({"title": "t", "pause_between": 0, "experiments": [
        {"path": "a.json", "name": "leader loss"}]}, tmp_path)
    seen: list[LiveState] = []

    class Recorder(live.PlainView):
        def start(self, state):
            import threading

            self.stopped = threading.Event()

            def sample() -> None:
                while not self.stopped.wait(0.1):
                    seen.append(state())
            threading.Thread(target=sample, daemon=True).start()

        def stop(self):
            self.stopped.set()

    lines: list[str] = []
    game = session.Session(plan, tmp_path / "runs", str(chaos), offline=True,
                           view=Recorder(lines.append),
                           reader=lambda run_dir: lambda t: Reading(
                               t, serving=("master-1",), gaps={"client-1": 0.5}, faults=()),
                           watch_interval=0.05)
    game.run()
    during = [s for s in seen if s.activity == "action kill-the-leader"]
    assert during, f"no state sampled during the run: {seen}"
    assert during[-1].step == "[1/1] leader loss" and during[-1].serving == ("master-1",)
    assert during[-1].gaps == {"client-1": 0.5} and during[-1].run_elapsed_s is not None
    assert any("action kill-the-leader" in line for line in lines)
    assert game.results[0].leader_changes[0][1] == "master-1"
    assert (Path(game.dir) / "gameday-timeline.svg").exists()
