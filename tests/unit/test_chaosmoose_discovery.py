"""Discovery is documentation: every activity is exported, documented and typed."""

import importlib
import inspect
import json
import subprocess
import sys
from pathlib import Path

import pytest
from chaoslib.experiment import ensure_experiment_is_valid

import chaosmoose

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "chaosmoose"


def activity_modules_on_disk():
    return sorted(
        ".".join(p.relative_to(REPO).with_suffix("").parts)
        for p in PACKAGE.rglob("*.py") if p.stem in ("actions", "probes"))


def test_discover_names_every_activity_module():
    assert sorted(chaosmoose.ACTIVITY_MODULES) == activity_modules_on_disk()


def test_discover_lists_every_exported_function_with_doc_and_arguments():
    discovery = chaosmoose.discover(discover_system=False)
    assert discovery["extension"] == {"name": "chaosmoose", "version": chaosmoose.__version__}
    found = {(a["mod"], a["name"]) for a in discovery["activities"]}
    for module in chaosmoose.ACTIVITY_MODULES:
        mod = importlib.import_module(module)
        for name in mod.__all__:
            assert (module, name) in found
    for activity in discovery["activities"]:
        assert activity["doc"], f"{activity['name']} has no docstring"
        names = [a["name"] for a in activity["arguments"]]
        assert names[-2:] == ["configuration", "secrets"], activity["name"]
        assert "return_type" in activity, activity["name"]
        assert activity["type"] == ("action" if activity["mod"].endswith("actions") else "probe")


@pytest.mark.parametrize("module", chaosmoose.ACTIVITY_MODULES)
def test_every_public_function_is_exported_and_annotated(module):
    mod = importlib.import_module(module)
    public = {n for n, f in inspect.getmembers(mod, inspect.isfunction)
              if f.__module__ == module and not n.startswith("_")}
    assert public == set(mod.__all__)
    for name in mod.__all__:
        sig = inspect.signature(getattr(mod, name))
        for param in sig.parameters.values():
            assert param.kind is param.POSITIONAL_OR_KEYWORD, (name, param.name)
            if param.name in ("configuration", "secrets"):
                assert param.default is None, (name, param.name)
            assert param.annotation is not param.empty, (name, param.name)
            assert not isinstance(param.annotation, str), (name, param.name)
        assert sig.return_annotation is not sig.empty, name
        first_line = inspect.getdoc(getattr(mod, name)).splitlines()[0]
        assert first_line.endswith("."), name


@pytest.mark.parametrize("name", ["leader-loss", "follower-loss", "leader-pause",
                                  "chunkserver-loss", "chunk-corruption"])
def test_experiments_are_valid_and_strict(name):
    experiment = json.loads((REPO / "experiments" / f"{name}.json").read_text())
    ensure_experiment_is_valid(experiment)
    modules = [c["provider"]["module"] for c in experiment["controls"]]
    assert "chaosmoose.controls.strict" in modules
    ssh = [p["provider"]["func"] for p in experiment["steady-state-hypothesis"]["probes"]]
    assert {"masters_agree_on_leader", "has_quorum", "cluster_healthy",
            "file_readable_from_all_clients", "clients_can_write",
            "check_acknowledged_writes"} <= set(ssh)
    assert experiment["rollbacks"], "every fault experiment heals itself"


def test_documented_chaos_discover_command_writes_our_activities(tmp_path):
    """The README's `chaos discover chaosmoose --no-install`, through the real CLI."""
    chaos = Path(sys.executable).with_name("chaos")
    out = tmp_path / "discovery.json"
    proc = subprocess.run(
        [str(chaos), "--no-version-check", "--log-file", str(tmp_path / "chaos.log"),
         "discover", "chaosmoose", "--no-install", "--no-system-info",
         "--discovery-path", str(out)],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False)
    assert out.exists(), (f"no discovery file (exit {proc.returncode}); stderr: "
                          f"{proc.stderr.strip()[-500:]}; is packaging/chaosmoose installed "
                          "(make venv)?")
    discovery = json.loads(out.read_text())
    assert discovery["extension"]["name"] == "chaosmoose"
    found = {(a["mod"], a["name"]) for a in discovery["activities"]}
    for module in chaosmoose.ACTIVITY_MODULES:
        for name in importlib.import_module(module).__all__:
            assert (module, name) in found
