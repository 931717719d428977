"""The serving history: append-only JSON lines, folded per epoch, surviving restarts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mooseng.history import RESTART_REASON, ServingHistory


def test_epochs_fold_and_survive_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "serving-history.jsonl"
    history = ServingHistory("master-1", path, now=100.0)
    history.served(3, 101.0)
    history.frozen(3, 102.0)
    history.thawed(3, 102.5)
    history.frozen(3, 103.0)
    history.ended(3, 103.4, "fenced", "could not renew the lease within ttl - safety margin")
    history.ended(3, 104.0, "stepped_down", "late")  # already ended: ignored
    history.ended(4, 104.0, "fenced", "fenced while promoting")  # never served: ignored
    history.served(5, 110.0)
    expected_3 = {"epoch": 3, "node": "master-1", "served_from": 101.0, "start_version": None,
                  "freezes": [{"frozen_at": 102.0, "thawed_at": 102.5},
                              {"frozen_at": 103.0, "thawed_at": None}],
                  "fenced_at": 103.4, "stepped_down_at": None,
                  "reason": "could not renew the lease within ttl - safety margin",
                  "diverged_changes": None, "diverged": None}
    assert history.entries()[0] == expected_3
    assert len(path.read_text().splitlines()) == 6  # one event a line, append-only

    with open(path, "a") as out:
        out.write('{"event": "frozen", "epo')  # a line cut short by a crash
    again = ServingHistory("master-1", path, now=120.0)
    assert again.entries() == [expected_3, {
        "epoch": 5, "node": "master-1", "served_from": 110.0, "start_version": None, "freezes": [],
        "fenced_at": None, "stepped_down_at": 120.0, "reason": RESTART_REASON,
        "diverged_changes": None, "diverged": None}]
    assert json.loads(path.read_text().splitlines()[-1])["event"] == "stepped_down"
    assert again.entries(limit=1)[0]["epoch"] == 5
    assert ServingHistory("master-1", path, now=130.0).entries() == again.entries()


def test_unknown_end_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown end 'gone'"):
        ServingHistory("master-1").ended(1, 1.0, "gone", "?")


def test_unwritable_history_does_not_stop_the_agent(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    history = ServingHistory("master-1", blocker / "history.jsonl")
    history.served(1, 1.0)  # logged, kept in memory
    assert history.entries()[0]["served_from"] == 1.0


def test_diverged_changes_are_recorded_on_the_old_epoch_and_survive_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "serving-history.jsonl"
    history = ServingHistory("master-1", path)
    history.served(3, 101.0, start_version=41000)
    history.ended(3, 103.0, "fenced", "lease lost")
    history.diverged(3, 110.0, 37, 41300, 41263, 4)  # after the epoch ended
    entry = ServingHistory("master-1", path, now=120.0).entries()[0]
    assert (entry["start_version"], entry["diverged_changes"]) == (41000, 37)
    assert entry["diverged"] == {"at": 110.0, "new_epoch": 4, "own_change": 41300,
                                 "start_version": 41263}
    history.diverged(9, 111.0, 1, 2, 1, 10)  # never served here: ignored
    assert [e["epoch"] for e in history.entries()] == [3]
