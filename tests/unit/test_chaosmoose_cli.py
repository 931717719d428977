"""``chaosmoose cleanup``: heals what a killed run left behind, using the ledger only."""

from chaosmoose import cli
from chaosmoose.ledger import Ledger
from tests.unit import chaosmoose_fakes as fakes

config = fakes.config  # fixture
fake_docker = fakes.fake_docker  # fixture



def leave_faults(run_dir, fake_docker):
    ledger = Ledger(run_dir)
    paused = fake_docker.containers["master-2"]
    ledger.open("container.pause", {"project": "mooseng", "service": "master-2",
                                    "container": paused.id}, "killed-run")
    paused.pause()
    killed = fake_docker.containers["master-1"]
    ledger.open("container.kill", {"project": "mooseng", "service": "master-1",
                                   "container": "gone-id"}, "killed-run")
    killed.kill()
    return ledger


def test_cleanup_undoes_every_open_fault(tmp_path, fake_docker, capsys):
    ledger = leave_faults(tmp_path / "run", fake_docker)
    assert cli.main(["cleanup", "--run-dir", str(tmp_path / "run"), "--dry-run"]) == 0
    assert "would undo container.pause on master-2" in capsys.readouterr().out
    assert len(ledger.open_faults()) == 2

    assert cli.main(["cleanup", "--run-dir", str(tmp_path / "run")]) == 0
    out = capsys.readouterr().out
    assert "undone container.kill on master-1 (run killed-run): started" in out  # by labels
    assert "undone container.pause on master-2 (run killed-run): unpaused" in out
    assert fake_docker.containers["master-2"].status == "running"
    assert fake_docker.containers["master-1"].status == "running"
    assert ledger.open_faults() == []
    assert cli.main(["cleanup", "--run-dir", str(tmp_path / "run")]) == 0
    assert "nothing open" in capsys.readouterr().out


def test_cleanup_uses_the_configured_run_dir(tmp_path, fake_docker, monkeypatch, capsys):
    monkeypatch.setenv("CHAOSMOOSE_RUN_DIR", str(tmp_path / "elsewhere"))
    leave_faults(tmp_path / "elsewhere", fake_docker)
    assert cli.main(["cleanup"]) == 0
    assert Ledger(tmp_path / "elsewhere").open_faults() == []


def test_cleanup_exits_1_when_a_fault_cannot_be_undone(tmp_path, fake_docker, capsys):
    import docker

    leave_faults(tmp_path / "run", fake_docker)
    fake_docker.containers["master-2"].unpause.side_effect = docker.errors.APIError("denied")
    assert cli.main(["cleanup", "--run-dir", str(tmp_path / "run")]) == 1
    assert "FAILED container.pause on master-2 (run killed-run)" in capsys.readouterr().err
    (still,) = Ledger(tmp_path / "run").open_faults()
    assert still["target"]["service"] == "master-2"


def test_ledger_listing(tmp_path, fake_docker, capsys):
    leave_faults(tmp_path / "run", fake_docker)
    assert cli.main(["ledger", "--open", "--run-dir", str(tmp_path / "run")]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 2


def test_settings_table(capsys):
    assert cli.main(["settings"]) == 0
    assert "CHAOSMOOSE_RUN_DIR" in capsys.readouterr().out


def test_cleanup_without_arguments_heals_every_run_under_runs(tmp_path, fake_docker,
                                                              monkeypatch, capsys):
    """A killed `make experiment` (runs/<exp>-<time>/) and a game-day run
    (runs/gameday-<time>/<nn>-<name>/) are found by a bare `chaosmoose cleanup`."""
    monkeypatch.chdir(tmp_path)
    for env in ("CHAOSMOOSE_RUN_DIR", "CHAOSMOOSE_RUNS_DIR"):
        monkeypatch.delenv(env, raising=False)
    experiment = Ledger(tmp_path / "runs" / "leader-pause-20261129T061538Z")
    experiment.open("container.pause", {"project": "mooseng", "service": "master-2",
                                        "container": "id-master-2"}, "make-run")
    fake_docker.containers["master-2"].pause()
    gameday = Ledger(tmp_path / "runs" / "gameday-20261129T0600Z" / "02-chunkserver-loss")
    gameday.open("container.kill", {"project": "mooseng", "service": "chunkserver-1",
                                    "container": "id-chunkserver-1"}, "gameday-run")
    fake_docker.containers["chunkserver-1"].kill()

    assert cli.main(["cleanup", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert ("would undo container.pause on master-2 (run dir "
            "runs/leader-pause-20261129T061538Z, run make-run, since") in out
    assert "would undo container.kill on chunkserver-1 (run dir runs/gameday-" in out
    assert "runs/current/faults.jsonl: nothing open" in out

    assert cli.main(["cleanup"]) == 0
    assert fake_docker.containers["master-2"].status == "running"
    assert fake_docker.containers["chunkserver-1"].status == "running"
    assert experiment.open_faults() == [] and gameday.open_faults() == []


MALFORMED = [
    {"event": "open", "id": "no-kind", "target": {"service": "master-1"}, "run": "r"},
    {"event": "open", "id": "str-target", "kind": "container.pause", "target": "master-1"},
    {"event": "open", "id": ["a", "list"], "kind": "container.pause", "target": {}},
    ["not", "an", "object"],
    {"event": "opened", "id": "x"},
]


def test_cleanup_reports_each_malformed_record_and_heals_the_others(tmp_path, fake_docker,
                                                                    capsys):
    import json

    ledger = Ledger(tmp_path / "run")
    ledger.run_dir.mkdir()
    with ledger.path.open("w") as f:
        for record in MALFORMED:
            f.write(json.dumps(record) + "\n")
        f.write("{garbled\n")
    # a valid open fault without `at` (dry run must not need it) after the bad ones
    with ledger.path.open("a") as f:
        f.write(json.dumps({"event": "open", "id": "good", "kind": "container.pause",
                            "target": {"project": "mooseng", "service": "master-2",
                                       "container": "id-master-2"}, "run": "r"}) + "\n")
    fake_docker.containers["master-2"].pause()
    (tmp_path / "dir-run" / "faults.jsonl").mkdir(parents=True)

    args = ["cleanup", "--run-dir", str(tmp_path / "dir-run"), "--run-dir", str(tmp_path / "run")]
    assert cli.main([*args, "--dry-run"]) == 1
    out, err = capsys.readouterr()
    assert "would undo container.pause on master-2 (run dir" in out and "since ?" in out
    assert "dir-run/faults.jsonl cannot be read (IsADirectoryError" in err
    for expected in ("line 1 (open no-kind) has kind None",
                     "line 2 (open str-target) has target 'master-1'", "line 3 (open) has id ['a', 'list']",
                     "line 4 is list, expected a JSON object", "line 5 has event 'opened'",
                     "line 6 is not JSON"):
        assert expected in err
    assert err.count("bad ledger record:") == 7

    assert cli.main(args) == 1  # the bad records remain: not everything is known healed
    out = capsys.readouterr().out
    assert "undone container.pause on master-2 (run r): unpaused" in out
    assert fake_docker.containers["master-2"].status == "running"
    assert ledger.open_faults() == []
