"""docs/chaosmoose.md's experiments, configuration, settings and fault-kinds tables are
generated from the code and the experiment files; this fails when they drift."""

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def load_script():
    spec = importlib.util.spec_from_file_location("update_docs_tables",
                                                  ROOT / "scripts" / "update-docs-tables.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_docs_tables_are_current():
    script = load_script()
    text = script.DOC.read_text()
    assert script.render(text) == text, "docs/chaosmoose.md has drifted: run `make docs-tables`"


def test_every_experiment_file_and_fault_kind_is_in_the_docs():
    from chaosmoose import _families

    text = (ROOT / "docs" / "chaosmoose.md").read_text()
    _families.load_all()
    for path in (ROOT / "experiments").glob("*.json"):
        assert f"| `{path.name}` |" in text
    for family in _families.FAMILIES.values():
        if family.package.startswith("chaosmoose."):
            for kind in family.kinds:
                assert f"| `{kind}` |" in text


def test_docs_name_only_test_files_that_exist():
    import re

    text = (ROOT / "docs" / "chaosmoose.md").read_text()
    for name in re.findall(r"tests/[\w/]+\.py", text):
        assert (ROOT / name).exists(), name
