"""Rewrite the settings table in README.md from mooseng.settings (the one source)."""

import re
from pathlib import Path

from mooseng.settings import markdown_table

readme = Path(__file__).resolve().parents[1] / "README.md"
text = readme.read_text()
begin, end = "<!-- settings-table -->", "<!-- /settings-table -->"
updated = re.sub(f"{begin}.*{end}", f"{begin}\n{markdown_table()}\n{end}", text, flags=re.DOTALL)
readme.write_text(updated)
print("README.md settings table is current" if updated == text else "README.md settings table updated")
