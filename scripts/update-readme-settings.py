"""Rewrite the settings tables in README.md from the code (the one source of each)."""

import re
from pathlib import Path

from chaosmoose._settings import markdown_table as chaosmoose_table
from mooseng.settings import markdown_table as mooseng_table

TABLES = {"settings-table": mooseng_table, "chaosmoose-settings": chaosmoose_table}

readme = Path(__file__).resolve().parents[1] / "README.md"
text = original = readme.read_text()
for marker, table in TABLES.items():
    begin, end = f"<!-- {marker} -->", f"<!-- /{marker} -->"
    text = re.sub(f"{begin}.*{end}", lambda _m, b=begin, e=end, t=table: f"{b}\n{t()}\n{e}", text,
                  flags=re.DOTALL)
readme.write_text(text)
print("README.md settings tables are current" if text == original else "README.md settings tables updated")
