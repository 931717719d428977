"""Whether chunk copies sit where their storage class wants them, and counts per label and
class: pure functions over what MooseFS printed (standard library only).

Labels are per chunkserver in MooseFS 3.0 (``LABELS = A,F``). A storage class keeps a
chunk as one label expression per copy (``-K F,S``: one copy on a server labelled F, one
on a server labelled S). ``mfscli`` prints an expression as ``*`` (any server) or as
alternatives joined by ``+``, each a run of letters that must all be labels of the server
(``AB+C``: A and B, or C). A chunk matches its class when every expression gets its own
valid copy on a server that satisfies it, and no valid copy sits on a server that
satisfies none of them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

__all__: list[str] = []  # not an activity module

ANY = "*"


def satisfies(labels: Iterable[str], expression: str) -> bool:
    """Whether a server with ``labels`` satisfies one copy's label ``expression``."""
    expression = expression.strip()
    if expression == ANY:
        return True
    have = set(labels)
    return any(alternative and set(alternative) <= have
               for alternative in (a.strip() for a in expression.split("+")))


def assign(expressions: list[str], servers: list[set[str]]) -> list[int | None]:
    """For each expression, the index of a distinct server satisfying it (a maximum
    bipartite matching by augmenting paths); ``None`` where none is left."""
    owner: dict[int, int] = {}  # server index -> expression index

    def place(expression: int, seen: set[int]) -> bool:
        for server, labels in enumerate(servers):
            if server in seen or not satisfies(labels, expressions[expression]):
                continue
            seen.add(server)
            if server not in owner or place(owner[server], seen):
                owner[server] = expression
                return True
        return False

    for expression in range(len(expressions)):
        place(expression, set())
    found: list[int | None] = [None] * len(expressions)
    for server, expression in owner.items():
        found[expression] = server
    return found


def _describe(address: str, labels: Mapping[str, set[str]],
              names: Mapping[str, str | None]) -> str:
    have = labels.get(address)
    return (f"{names.get(address) or address} "
            f"[{','.join(sorted(have)) if have is not None else 'not connected'}]")


def chunk_problem(chunk: dict[str, Any], keep: list[str], labels: Mapping[str, set[str]],
                  names: Mapping[str, str | None], avoid: Iterable[str] = ()) -> str | None:
    """Why the valid copies of ``chunk`` do not match the ``keep`` expressions (``None``
    when they do). ``labels`` maps a chunkserver IP to its labels, ``names`` to its name;
    a valid copy on an IP of ``avoid`` is wrong too (and does not count)."""
    shunned = set(avoid)
    everywhere = [c["address"] for c in chunk["copies"] if c["status"] == "VALID"]
    valid = [a for a in everywhere if a not in shunned]
    servers = [labels.get(address, set()) for address in valid]
    where = ", ".join(_describe(a, labels, names) for a in everywhere) or "no valid copy"
    missing = [keep[i] for i, server in enumerate(assign(keep, servers)) if server is None]
    stray = [valid[i] for i, have in enumerate(servers)
             if not any(satisfies(have, e) for e in keep)]
    reasons = []
    avoided = [a for a in everywhere if a in shunned]
    if avoided:
        reasons.append(f"copies on {', '.join(_describe(a, labels, names) for a in avoided)}, "
                       "which should hold none")
    if missing:
        reasons.append(f"no copy left for {' , '.join(missing)}")
    if stray:
        reasons.append(f"copies on {', '.join(_describe(a, labels, names) for a in stray)} "
                       "satisfy no keep expression")
    return f"copies on {where}: {'; '.join(reasons)}" if reasons else None


def check(files: Mapping[str, dict[str, Any]], classes: Mapping[str, dict[str, Any]],
          labels: Mapping[str, set[str]], names: Mapping[str, str | None],
          storage_class: str = "", avoid: Iterable[str] = ()) -> dict[str, Any]:
    """Judge every file's chunks against its class's keep expressions (without copies on
    the IPs of ``avoid``).

    ``files`` as ``_mfs.walk`` returns them, ``classes`` as ``_mfs.storage_classes``.
    Returns ``{"ok", "files", "chunks", "by_class": {class: files}, "misplaced": [{"file",
    "chunk", "class", "keep", "why"}], "problems": [sentence]}``: a problem is a file that
    could not be read, a class MooseFS does not list, a file outside ``storage_class``
    (when given) or no file at all.
    """
    misplaced: list[dict[str, Any]] = []
    problems: list[str] = []
    by_class: dict[str, int] = {}
    chunks = 0
    for name, info in files.items():
        if info.get("error"):
            problems.append(f"{name}: {info['error']}")
            continue
        cls = info.get("class")
        by_class[str(cls)] = by_class.get(str(cls), 0) + 1
        if storage_class and cls != storage_class:
            problems.append(f"{name} is in storage class {cls!r}; expected {storage_class!r}")
            continue
        if cls not in classes:
            problems.append(f"{name} is in storage class {cls!r}, which mfscli -SSC does not "
                            f"list (it lists {', '.join(sorted(classes)) or 'none'})")
            continue
        keep = classes[cls]["keep"]
        for chunk in info.get("chunks", []):
            chunks += 1
            why = chunk_problem(chunk, keep, labels, names, avoid)
            if why:
                misplaced.append({"file": name, "chunk": chunk["chunk"], "class": cls,
                                  "keep": " , ".join(keep), "why": why})
    if not files:
        problems.append("no file to check")
    return {"ok": not misplaced and not problems, "files": len(files), "chunks": chunks,
            "by_class": by_class, "misplaced": misplaced, "problems": problems}


def per_label(servers: Iterable[dict[str, Any]]) -> dict[str, int]:
    """Chunk copies per label: each server's chunk count added to each of its labels
    (``-SCS`` rows as ``mooseng.mfs.cli.chunkservers`` returns them; no label: ``-``)."""
    counts: dict[str, int] = {}
    for server in servers:
        for label in [s for s in str(server.get("labels", "")).split(",") if s] or ["-"]:
            counts[label] = counts.get(label, 0) + int(server.get("chunks", 0))
    return dict(sorted(counts.items()))


def label_class_matrix(files: Mapping[str, dict[str, Any]],
                       labels: Mapping[str, set[str]]) -> dict[str, dict[str, int]]:
    """Valid chunk copies of ``files`` per storage class and server label:
    ``{class: {label: copies}}`` (a copy on a server without labels counts under ``-``)."""
    found: dict[str, dict[str, int]] = {}
    for info in files.values():
        row = found.setdefault(str(info.get("class")), {})
        for chunk in info.get("chunks", []):
            for copy in chunk["copies"]:
                if copy["status"] != "VALID":
                    continue
                for label in sorted(labels.get(copy["address"], set())) or ["-"]:
                    row[label] = row.get(label, 0) + 1
    return {cls: dict(sorted(row.items())) for cls, row in sorted(found.items())}
