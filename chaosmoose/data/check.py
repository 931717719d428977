"""Classify what a client read back against a data set's manifest (pure).

Each manifest entry is ``intact``, ``missing`` or ``corrupt``; the rule is "reading this
name gives what was written, and names that should share a file do":

- absent, or unreadable (an I/O error or a read that timed out: the data cannot be had)
  -> ``missing``;
- a folder that is not a folder, a file that is not a regular file, a size or SHA-256 that
  differs -> ``corrupt``;
- a hard link: as a file, and when its target exists too, both names must be the same
  inode (a copy is ``corrupt``); with the target gone, the link alone is judged by its
  content (the target counts as missing);
- a symbolic link: it must be a symbolic link, hold the written text and resolve (a
  dangling link is a broken symlink -> ``corrupt``).

``valid`` is true when nothing is missing or corrupt. Entries found in the folder that the
manifest does not list are counted as ``unexpected`` (not a loss).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__: list[str] = []  # not an activity module

STATES = ("intact", "missing", "corrupt")
MAX_PROBLEMS = 100


def _state(entry: Mapping[str, Any], seen: Mapping[str, Any] | None,
           observed: Mapping[str, Mapping[str, Any]]) -> tuple[str, str]:
    """(state, reason) of one entry."""
    if seen is None:
        return "missing", "not looked at (the reader stopped before it)"
    if seen.get("type") is None:
        return "missing", ("unreadable: " + seen["error"]) if seen.get("error") else "absent"
    if seen.get("error"):
        return "missing", f"unreadable: {seen['error']}"
    kind, found = entry["kind"], seen["type"]
    if kind == "dir":
        if found != "dir":
            return "corrupt", f"is a {found}, expected a folder"
        return "intact", ""
    if kind == "symlink":
        if found != "symlink":
            return "corrupt", f"is a {found}, expected a symbolic link"
        if seen.get("link") != entry["target"]:
            return "corrupt", f"points to {seen.get('link')!r}, expected {entry['target']!r}"
        if not seen.get("resolves"):
            return "corrupt", f"broken symlink: {entry['target']} does not resolve"
        return "intact", ""
    if found != "file":
        return "corrupt", f"is a {found}, expected a regular file"
    if seen.get("size") != entry["size"]:
        return "corrupt", f"size {seen.get('size')}, expected {entry['size']}"
    if seen.get("sha256") != entry.get("sha256"):
        return "corrupt", "content differs from what was written (SHA-256 mismatch)"
    if kind == "hardlink":
        other = observed.get(entry["target"])
        if other is not None and other.get("type") == "file" and \
                (other.get("ino"), other.get("dev")) != (seen.get("ino"), seen.get("dev")):
            return "corrupt", f"not a hard link of {entry['target']} (another inode)"
    return "intact", ""


def classify(entries: list[Mapping[str, Any]], observations: list[Mapping[str, Any]],
             unexpected: int = 0, unexpected_paths: list[str] | None = None) -> dict[str, Any]:
    """The verdict over ``entries`` (the manifest's) given what a reader ``observations`` saw
    (the generator's ``verify`` lines, matched by path; an entry never seen is missing).

    Returns ``{"valid", "entries", "intact", "missing", "corrupt", "lost", "by_kind":
    {kind: {state: n}}, "problems": [{"path", "kind", "state", "reason"}] (the first 100),
    "unexpected", "unexpected_paths"}``; ``lost`` is missing + corrupt.
    """
    observed = {str(o["path"]): o for o in observations if "path" in o}
    counts = dict.fromkeys(STATES, 0)
    by_kind: dict[str, dict[str, int]] = {}
    problems = []
    for entry in entries:
        state, reason = _state(entry, observed.get(entry["path"]), observed)
        counts[state] += 1
        kinds = by_kind.setdefault(entry["kind"], dict.fromkeys(STATES, 0))
        kinds[state] += 1
        if state != "intact" and len(problems) < MAX_PROBLEMS:
            problems.append({"path": entry["path"], "kind": entry["kind"], "state": state,
                             "reason": reason})
    lost = counts["missing"] + counts["corrupt"]
    return {"valid": lost == 0, "entries": len(entries), **counts, "lost": lost,
            "by_kind": by_kind, "problems": problems, "unexpected": unexpected,
            "unexpected_paths": list(unexpected_paths or [])}
