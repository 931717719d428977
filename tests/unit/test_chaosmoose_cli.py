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
    assert "undone container.kill on master-1: started" in out  # found again by labels
    assert "undone container.pause on master-2: unpaused" in out
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
    assert "FAILED container.pause on master-2" in capsys.readouterr().err
    (still,) = Ledger(tmp_path / "run").open_faults()
    assert still["target"]["service"] == "master-2"


def test_ledger_listing(tmp_path, fake_docker, capsys):
    leave_faults(tmp_path / "run", fake_docker)
    assert cli.main(["ledger", "--open", "--run-dir", str(tmp_path / "run")]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 2


def test_settings_table(capsys):
    assert cli.main(["settings"]) == 0
    assert "CHAOSMOOSE_RUN_DIR" in capsys.readouterr().out
