"""Rewrite the generated tables of docs/chaosmoose.md from the code and the experiment files.

Each table sits between ``<!-- name -->`` and ``<!-- /name -->`` markers; the text between
them is replaced. ``tests/unit/test_docs_tables.py`` fails when a table has drifted.
Run it with ``make docs-tables``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "chaosmoose.md"


def _names(activities: list[dict]) -> str:
    return ", ".join(f"`{a.get('name') or a.get('ref')}`" for a in activities) or "(none)"


def experiments_table(folder: Path = ROOT / "experiments") -> str:
    """One row per experiment file: its title, method and rollbacks (activity names)."""
    rows = ["| file | title | method | rollbacks |", "|---|---|---|---|"]
    for path in sorted(folder.glob("*.json")):
        experiment = json.loads(path.read_text())
        rows.append(f"| `{path.name}` | {experiment.get('title', '').strip()} | "
                    f"{_names(experiment.get('method', []))} | "
                    f"{_names(experiment.get('rollbacks', []))} |")
    return "\n".join(rows)


def configuration_table(folder: Path = ROOT / "experiments") -> str:
    """Every experiment configuration key: its default(s) and the experiments declaring it."""
    keys: dict[str, dict[str, list[str]]] = {}
    for path in sorted(folder.glob("*.json")):
        for key, value in (json.loads(path.read_text()).get("configuration") or {}).items():
            shown = json.dumps(value) if not isinstance(value, dict) else "(from the environment)"
            keys.setdefault(key, {}).setdefault(shown, []).append(path.stem)
    rows = ["| key | default | declared by |", "|---|---|---|"]
    for key in sorted(keys):
        defaults = "; ".join(f"`{v}`" + (f" ({', '.join(files)})" if len(keys[key]) > 1 else "")
                             for v, files in keys[key].items())
        files = sorted({f for fs in keys[key].values() for f in fs})
        rows.append(f"| `{key}` | {defaults} | {', '.join(files)} |")
    return "\n".join(rows)


def tables() -> dict[str, str]:
    """Marker name -> generated text."""
    from chaosmoose._families import markdown_kinds
    from chaosmoose._settings import markdown_table

    return {"experiments-table": experiments_table(),
            "experiment-configuration": configuration_table(),
            "chaosmoose-settings": markdown_table(),
            "fault-kinds": markdown_kinds()}


def render(text: str) -> str:
    """``text`` with every marked table replaced by its generated version."""
    for marker, table in tables().items():
        begin, end = f"<!-- {marker} -->", f"<!-- /{marker} -->"
        if begin not in text or end not in text:
            raise SystemExit(f"{DOC}: markers {begin} ... {end} are missing")
        text = re.sub(f"{re.escape(begin)}.*?{re.escape(end)}",
                      lambda _m, b=begin, e=end, t=table: f"{b}\n{t}\n{e}", text, flags=re.DOTALL)
    return text


if __name__ == "__main__":
    original = DOC.read_text()
    updated = render(original)
    DOC.write_text(updated)
    print(f"{DOC.relative_to(ROOT)} tables are current" if updated == original
          else f"{DOC.relative_to(ROOT)} tables updated")
