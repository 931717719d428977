"""Fault families are plug-ins: a new package registers its kinds, undo and argument checks,
and cleanup, the strict preflight and discovery find it without any core change."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

import chaosmoose
from chaosmoose import _families, _faults, cli
from chaosmoose.controls import strict
from chaosmoose.ledger import Ledger

FAMILY = '''
    """A fault family that exists only in this test: widgets, undone by unfaking them."""

    from chaosmoose import _families

    HEALED = []


    def unfake(fault):
        HEALED.append(fault["target"]["service"])
        return "unfaked"


    def check(module, func, arguments, configuration, secrets):
        widget = arguments.get("widget", "gizmo")
        return [] if widget == "gizmo" else [f"widget={widget!r} is unknown; expected gizmo"]


    _families.register(__package__, undo={"widget.fake": unfake}, checks=[check])
'''

ACTIONS = '''
    """Actions on widgets."""

    from chaoslib.types import Configuration, Secrets

    __all__ = ["poke"]


    def poke(widget: str = "gizmo", configuration: Configuration = None,
             secrets: Secrets = None) -> str:
        """Poke a widget."""
        return widget
'''


@pytest.fixture
def plugin_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An extra folder on ``chaosmoose.__path__``; registry and modules restored afterwards."""
    root = tmp_path / "plugins"
    root.mkdir()
    _families.load_all()  # the shipped families register once per process: keep them
    monkeypatch.setattr(chaosmoose, "__path__", [*chaosmoose.__path__, str(root)])
    monkeypatch.setattr(_families, "FAMILIES", dict(_families.FAMILIES))
    monkeypatch.setattr(_families, "UNDO", dict(_families.UNDO))
    monkeypatch.setattr(_families, "LOAD_ERRORS", {})
    yield root
    for name in [m for m in sys.modules if m.startswith(("chaosmoose.widget",
                                                         "chaosmoose.broken"))]:
        del sys.modules[name]


def add_package(root: Path, name: str, **modules: str) -> None:
    folder = root / name
    folder.mkdir()
    (folder / "__init__.py").write_text(f'"""The {name} family."""\n')
    for module, text in modules.items():
        (folder / f"{module}.py").write_text(textwrap.dedent(text))


def test_a_new_family_package_is_found_by_cleanup_preflight_and_discovery(
        plugin_root, tmp_path, capsys):
    add_package(plugin_root, "widget", _family=FAMILY, actions=ACTIONS)
    assert "chaosmoose.widget._family" in _families.family_modules()
    # cleanup heals its fault from the ledger alone (a fresh process would not have imported it)
    ledger = Ledger(tmp_path / "run")
    ledger.open("widget.fake", {"service": "widget-1"}, "killed-run")
    assert cli.main(["cleanup", "--run-dir", str(tmp_path / "run")]) == 0
    assert "undone widget.fake on widget-1 (run killed-run): unfaked" in capsys.readouterr().out
    assert sys.modules["chaosmoose.widget._family"].HEALED == ["widget-1"]
    assert ledger.open_faults() == []
    # the strict preflight runs its argument check on its activities only
    experiment = {"method": [
        {"type": "action", "name": "bad", "provider": {
            "type": "python", "module": "chaosmoose.widget.actions", "func": "poke",
            "arguments": {"widget": "${which}"}}},
        {"type": "action", "name": "good", "provider": {
            "type": "python", "module": "chaosmoose.widget.actions", "func": "poke"}},
        {"type": "action", "name": "other", "provider": {
            "type": "python", "module": "os", "func": "getcwd",
            "arguments": {"widget": "sprocket"}}}]}
    config = {"chaosmoose_run_dir": str(tmp_path / "run"), "which": "sprocket"}
    assert strict.preflight_problems(experiment, config, require_masters_reachable=False) == [
        "activity 'bad': widget='sprocket' is unknown; expected gizmo"]
    # and its activity module is discovered
    assert "chaosmoose.widget.actions" in chaosmoose._activity_modules()


def test_a_family_that_fails_to_load_is_reported_and_the_others_still_work(
        plugin_root, tmp_path, capsys):
    add_package(plugin_root, "broken", _family="import no_such_module_anywhere\n")
    ledger = Ledger(tmp_path / "run")
    ledger.open("broken.thing", {"service": "b-1"}, "r1")
    ledger.open("test.other", {"service": "o-1"}, "r1")
    _families.register("tests.other", undo={"test.other": lambda fault: "fine"})
    results = _faults.undo_open(ledger)
    assert [r["undone"] for r in results] == [True, False]
    assert "cannot undo" in results[1]["error"]
    assert "chaosmoose.broken._family failed to load (ModuleNotFoundError" in results[1]["error"]
    problems = strict.preflight_problems({}, {"chaosmoose_run_dir": str(tmp_path / "other")},
                                         require_masters_reachable=False)
    assert problems == [("fault family chaosmoose.broken._family failed to load "
                        "(ModuleNotFoundError: No module named 'no_such_module_anywhere'); "
                        "expected it to import")]


def test_one_undo_per_kind(plugin_root):
    def first(fault):
        return "one"

    def second(fault):
        return "two"

    _families.register("tests.a", undo={"test.kind": first})
    _families.register("tests.b", undo={"test.kind": first})  # shared, like container.*
    with pytest.raises(ValueError, match="fault kind test.kind of tests.c is already "
                                         "registered with undo .*first, not .*second"):
        _families.register("tests.c", undo={"test.kind": second})


def test_the_shipped_families_register_their_kinds():
    _families.load_all()
    assert {"container.kill", "container.stop", "container.pause", "container.restart",
            "chunk.corrupt", "workload.runner", "network.partition",
            "network.toxic"} <= set(_families.UNDO)
    packages = {f.package for f in _families.FAMILIES.values() if f.checks}
    assert {"chaosmoose.master", "chaosmoose.chunkserver", "chaosmoose.network"} <= packages


def test_the_core_names_no_family():
    core = ["_faults.py", "_families.py", "ledger.py", "cli.py", "controls/strict.py"]
    families = [p.name for p in Path(chaosmoose.__file__).parent.iterdir()
                if (p / "_family.py").exists()]
    assert {"master", "chunkserver", "workload", "network"} <= set(families)
    for name in core:
        text = (Path(chaosmoose.__file__).parent / name).read_text()
        for family in families:
            assert f"chaosmoose.{family}" not in text, (name, family)
            assert f"chaosmoose import {family}" not in text, (name, family)
