"""Test data sets: the plan (pure), the in-container generator run for real on a temp
folder, the classification, and the activities and ``chaosmoose data`` over a faked Docker
whose exec runs the shipped generator locally (every client "mounts" the same folder)."""

from __future__ import annotations

import io
import json
import os
import posixpath
import subprocess
import sys
import tarfile
import time
from pathlib import Path
from typing import Any

import pytest
from chaoslib.exceptions import ActivityFailed
from docker.models.containers import ExecResult

from chaosmoose import cli
from chaosmoose._settings import SettingError
from chaosmoose.data import _datasets, _progress, _stream, actions, check, generator, plan, probes
from tests.unit import chaosmoose_fakes as fakes
from tests.unit.chaosmoose_fakes import CLIENTS

config = fakes.config  # fixture
fake_docker = fakes.fake_docker  # fixture

GENERATOR = [sys.executable, generator.__file__]
MIB = plan.MIB


def file_entries(p: dict) -> list[dict]:
    return [e for e in p["entries"] if e["kind"] in ("file", "sparse")]


# --- the plan ------------------------------------------------------------------------------

def test_same_seed_same_plan_and_checksums_other_seed_differs():
    a = plan.make_plan(7, 32 * MIB, 120)
    b = plan.make_plan(7, 32 * MIB, 120)
    c = plan.make_plan(8, 32 * MIB, 120)
    assert a == b
    assert a["entries"] != c["entries"]
    sums_a = {e["path"]: generator.entry_sha256(7, e) for e in file_entries(a)}
    sums_b = {e["path"]: generator.entry_sha256(7, e) for e in file_entries(b)}
    assert sums_a == sums_b
    # the bytes depend on the seed too: the same entry under another seed differs
    some = next(e for e in file_entries(a) if e["size"] > 0)
    assert generator.entry_sha256(8, some) != sums_a[some["path"]]


def test_plan_is_stable_across_processes():
    """No hash randomisation or process state leaks in: another interpreter agrees."""
    code = ("import json; from chaosmoose.data import plan; "
            "print(json.dumps(plan.make_plan(3, 5 << 20, 40), sort_keys=True))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env={**os.environ, "PYTHONHASHSEED": "123"},
                         cwd=Path(__file__).resolve().parents[2]).stdout
    assert json.loads(out) == plan.make_plan(3, 5 << 20, 40)


@pytest.mark.parametrize("seed, total, files", [(1, 256 * MIB, 200), (2, 1 << 30, 200),
                                                (3, 64 * MIB, 100), (4, 10, 100),
                                                (5, 0, 5), (6, 1, 1), (7, 128 * MIB, 2)])
def test_sizes_add_up_within_bounds(seed, total, files):
    p = plan.make_plan(seed, total, files)
    sizes = [e["size"] for e in file_entries(p)]
    totals = plan.totals(p["entries"])
    assert totals["bytes"] == sum(sizes) == total
    assert totals["files"] == files
    assert max(sizes) <= plan.MAX_FILE_SIZE
    if len(sizes) >= 2 and total <= (len(sizes) - 1) * plan.MAX_FILE_SIZE:
        assert min(sizes) == 0, "a few files are empty (when the others have room)"


def test_a_typical_set_mixes_sizes_kinds_and_depths():
    p = plan.make_plan(1, 256 * MIB, 200)
    sizes = sorted(e["size"] for e in file_entries(p))
    assert sizes[0] == 0 and any(0 < s < 4096 for s in sizes)
    assert sizes[-1] >= 10 * MIB, "tens of MiB at the top"
    kinds = plan.totals(p["entries"])
    assert kinds["sparse"] >= 1 and kinds["hardlink"] >= 1 and kinds["symlink"] >= 1
    assert kinds["dir"] >= 10
    depths = [e["path"].count("/") + 1 for e in p["entries"] if e["kind"] == "dir"]
    assert 3 <= max(depths) <= plan.MAX_DEPTH
    paths = [e["path"] for e in p["entries"]]
    assert len(paths) == len(set(paths))
    by_path = {e["path"]: e for e in p["entries"]}
    for entry in p["entries"]:
        parent = posixpath.dirname(entry["path"])
        assert parent == "" or by_path[parent]["kind"] == "dir"
        assert paths.index(parent) < paths.index(entry["path"]) if parent else True
        if entry["kind"] == "hardlink":
            assert by_path[entry["target"]]["kind"] == "file"
            assert entry["size"] == by_path[entry["target"]]["size"]
        if entry["kind"] == "symlink":
            resolved = posixpath.normpath(posixpath.join(parent, entry["target"]))
            assert resolved == entry["points_to"] and by_path[resolved]["kind"] in ("file",
                                                                                   "sparse")
        if entry["kind"] == "sparse":
            assert entry["holes"] and all(o % plan.BLOCK == 0 and 0 < n < entry["size"]
                                          for o, n in entry["holes"])


@pytest.mark.parametrize("text, expected", [
    ("256MiB", 256 * MIB), ("1GiB", 1 << 30), ("1 GiB", 1 << 30), ("1.5GiB", 3 << 29),
    ("10MB", 10_000_000), ("64M", 64 * MIB), ("12", 12), (12, 12), ("0", 0), ("4KiB", 4096)])
def test_parse_size(text, expected):
    assert plan.parse_size(text) == expected


@pytest.mark.parametrize("text", ["1 GB x", "-1MiB", -5, "lots", "", "1  GiB", "1XB", True,
                                  None])
def test_parse_size_rejects_garbage(text):
    with pytest.raises(SettingError, match="size=.* is invalid; expected a size"):
        plan.parse_size(text)


@pytest.mark.parametrize("seed, total, files, message", [
    (1, 1 * MIB, 0, "files=0 is invalid; expected a whole number >= 1"),
    (1, -1, 10, "size=-1 is invalid"),
    (-1, 1, 10, "seed=-1 is invalid"),
    (1, 10 << 30, 100, "does not fit in 100 files of at most 64.0 MiB"),
])
def test_plan_rejects_bad_counts(seed, total, files, message):
    with pytest.raises(SettingError, match=message):
        plan.make_plan(seed, total, files)


# --- the generator, for real on a temp folder ----------------------------------------------

def run_generator(*args: str, timeout: float = 120) -> tuple[int, list[dict]]:
    done = subprocess.run([*GENERATOR, *args], capture_output=True, text=True,
                          timeout=timeout, check=False)
    return done.returncode, [json.loads(line) for line in done.stdout.splitlines()]


@pytest.fixture
def written(tmp_path: Path):
    """A small set generated into tmp_path/mnt/data; returns (root, plan, manifest)."""
    p = plan.make_plan(11, 3 * MIB, 60, max_file_size=MIB)
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(json.dumps(p))
    root = tmp_path / "mnt" / "data"
    code, events = run_generator("generate", "--plan", str(plan_file), "--root", str(root),
                                 "--interval", "0.05")
    assert code == 0, events[-1]
    assert not plan_file.exists(), "the plan is consumed"
    assert events[0]["event"] == "start" and events[-1]["event"] == "done"
    entries = [{k: v for k, v in e.items() if k != "event"} for e in events
               if e["event"] == "entry"]
    return root, p, {"entries": [next(e for e in entries if e["path"] == x["path"])
                                 for x in p["entries"]]}


def verify_locally(tmp_path: Path, root: Path, manifest: dict, *extra: str) -> dict:
    path = tmp_path / "verify-input.json"
    path.write_text(json.dumps(manifest))
    code, events = run_generator("verify", "--manifest", str(path), "--root", str(root),
                                 *extra)
    assert code == 0, events[-1]
    done = events[-1]
    seen = [e for e in events if e["event"] == "entry"]
    return check.classify(manifest["entries"], seen, done["unexpected"],
                          done["unexpected_paths"])


def test_generator_writes_what_the_host_computes(written):
    root, p, manifest = written
    assert (root / generator.MARKER).exists()
    for entry in manifest["entries"]:
        path = root / entry["path"]
        if entry["kind"] in ("file", "sparse"):
            assert path.stat().st_size == entry["size"]
            assert entry["sha256"] == generator.entry_sha256(p["seed"], entry)
        elif entry["kind"] == "hardlink":
            assert path.stat().st_ino == (root / entry["target"]).stat().st_ino
            assert entry["sha256"] == generator.entry_sha256(
                p["seed"], next(e for e in p["entries"] if e["path"] == entry["target"]))
        elif entry["kind"] == "symlink":
            assert os.readlink(path) == entry["target"]
            assert path.resolve() == (root / entry["points_to"]).resolve()
        else:
            assert path.is_dir()
    sparse = [e for e in manifest["entries"] if e["kind"] == "sparse"]
    assert sparse
    data = (root / sparse[0]["path"]).read_bytes()
    offset, length = sparse[0]["holes"][0]
    assert data[offset:offset + length] == bytes(length), "holes read as zeros"


def test_generating_twice_writes_identical_checksums(tmp_path, written):
    _, p, manifest = written
    again = tmp_path / "again.json"
    again.write_text(json.dumps(p))
    code, events = run_generator("generate", "--plan", str(again), "--root",
                                 str(tmp_path / "other"))
    assert code == 0
    sums = {e["path"]: e.get("sha256") for e in events if e["event"] == "entry"}
    assert sums == {e["path"]: e.get("sha256") for e in manifest["entries"]}


def test_untouched_set_verifies_intact(tmp_path, written):
    root, _, manifest = written
    report = verify_locally(tmp_path, root, manifest)
    assert report["valid"] is True
    assert report["intact"] == report["entries"] == len(manifest["entries"])
    assert (report["missing"], report["corrupt"], report["unexpected"]) == (0, 0, 0)


def test_verify_classifies_every_kind_of_damage(tmp_path, written):
    root, _, manifest = written
    entries = {e["path"]: e for e in manifest["entries"]}
    files = [e for e in manifest["entries"] if e["kind"] == "file" and e["size"] > 10
             and e["path"] not in {x.get("target") for x in manifest["entries"]}
             and e["path"] not in {x.get("points_to") for x in manifest["entries"]}]
    flipped, deleted, truncated = files[0], files[1], files[2]
    with open(root / flipped["path"], "r+b") as f:  # one flipped byte
        f.seek(5)
        byte = f.read(1)
        f.seek(5)
        f.write(bytes([byte[0] ^ 0x01]))
    (root / deleted["path"]).unlink()
    os.truncate(root / truncated["path"], truncated["size"] - 1)
    hard = next(e for e in manifest["entries"] if e["kind"] == "hardlink")
    copy = (root / hard["path"]).read_bytes()
    (root / hard["path"]).unlink()
    (root / hard["path"]).write_bytes(copy)  # same bytes, but no longer the same file
    sym = next(e for e in manifest["entries"] if e["kind"] == "symlink")
    (root / sym["points_to"]).rename(root / "moved-away")  # dangling now
    (root / "extra.txt").write_text("not in the manifest")

    report = verify_locally(tmp_path, root, manifest)
    states = {p["path"]: (p["state"], p["reason"]) for p in report["problems"]}
    assert states[flipped["path"]] == ("corrupt", ("content differs from what was written "
                                                  "(SHA-256 mismatch)"))
    assert states[deleted["path"]] == ("missing", "absent")
    assert states[truncated["path"]] == ("corrupt", (f"size {truncated['size'] - 1}, expected "
                                                    f"{truncated['size']}"))
    assert states[hard["path"]] == ("corrupt", (f"not a hard link of {hard['target']} "
                                               "(another inode)"))
    assert states[sym["path"]][0] == "corrupt"
    assert states[sym["path"]][1].startswith("broken symlink")
    assert states[sym["points_to"]] == ("missing", "absent")
    assert report["missing"] == 2 and report["corrupt"] == 4 and report["lost"] == 6
    assert report["intact"] == len(entries) - 6 and report["valid"] is False
    assert report["unexpected"] == 2 and set(report["unexpected_paths"]) == {"extra.txt",
                                                                              "moved-away"}


def test_a_missing_folder_makes_every_entry_missing(tmp_path, written):
    _, _, manifest = written
    report = verify_locally(tmp_path, tmp_path / "nowhere", manifest)
    assert report["missing"] == report["entries"] and report["intact"] == 0


def test_classify_pure_cases():
    entries = [{"path": "d", "kind": "dir"},
               {"path": "d/f", "kind": "file", "size": 3, "sha256": "abc"},
               {"path": "h", "kind": "hardlink", "size": 3, "sha256": "abc", "target": "d/f"},
               {"path": "l", "kind": "symlink", "target": "d/f", "points_to": "d/f"},
               {"path": "u", "kind": "file", "size": 1, "sha256": "x"},
               {"path": "never", "kind": "file", "size": 1, "sha256": "x"}]
    seen = [{"path": "d", "type": "file", "size": 0},
            {"path": "d/f", "type": "file", "size": 3, "sha256": "abc", "ino": 1, "dev": 1},
            {"path": "h", "type": "file", "size": 3, "sha256": "abc", "ino": 1, "dev": 1},
            {"path": "l", "type": "symlink", "link": "elsewhere", "resolves": True},
            {"path": "u", "type": None, "error": "read timed out after 5 s"}]
    report = check.classify(entries, seen)
    states = {p["path"]: (p["state"], p["reason"]) for p in report["problems"]}
    assert states == {"d": ("corrupt", "is a file, expected a folder"),
                      "l": ("corrupt", "points to 'elsewhere', expected 'd/f'"),
                      "u": ("missing", "unreadable: read timed out after 5 s"),
                      "never": ("missing", "not looked at (the reader stopped before it)")}
    assert report["intact"] == 2 and report["by_kind"]["hardlink"]["intact"] == 1
    # a hard link whose target is gone is judged by its own content
    alone = check.classify(entries[1:3], [seen[2]])
    assert alone["by_kind"]["hardlink"] == {"intact": 1, "missing": 0, "corrupt": 0}


def test_a_read_that_blocks_is_reported_and_the_next_file_is_read(monkeypatch, capsys):
    entries = [{"path": "slow", "kind": "file", "size": 1},
               {"path": "fast", "kind": "file", "size": 1}]

    def observe(root, entry, meter=None):
        if entry["path"] == "slow":
            time.sleep(5)
        return {"path": entry["path"], "type": "file", "size": 1, "sha256": "x"}

    monkeypatch.setattr(generator, "observe", observe)
    meter = generator.Meter(2, 2, 60, 0)
    began = time.monotonic()
    assert generator.Reader("/nowhere", entries, meter, 0.3).run() == 1
    assert time.monotonic() - began < 3
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert lines[0] == {"event": "entry", "path": "slow", "type": None,
                        "error": "read timed out after 0.3 s"}
    assert lines[1]["path"] == "fast" and lines[1]["type"] == "file"


def test_generator_refuses_a_folder_it_did_not_write_and_a_missing_mount(tmp_path):
    p = tmp_path / "plan.json"
    p.write_text(json.dumps(plan.make_plan(1, 1000, 5)))
    root = tmp_path / "precious"
    root.mkdir()
    (root / "keep.txt").write_text("mine")
    code, events = run_generator("generate", "--plan", str(p), "--root", str(root),
                                 "--keep-input")
    assert code == 2 and events[-1]["reason"] == "exists"
    code, events = run_generator("generate", "--plan", str(p), "--root", str(root),
                                 "--replace", "--keep-input")
    assert code == 2 and events[-1]["reason"] == "not-ours"
    assert (root / "keep.txt").read_text() == "mine" and sorted(os.listdir(root)) == [
        "keep.txt"]
    code, events = run_generator("generate", "--plan", str(p), "--root",
                                 str(tmp_path / "x"), "--mount", str(tmp_path), "--keep-input")
    assert code == 2 and events[-1]["reason"] == "no-mount"
    assert not (tmp_path / "x").exists()
    code, events = run_generator("remove", "--root", str(root))
    assert code == 2 and events[-1]["reason"] == "not-ours" and root.exists()


# --- streaming and the progress bar ---------------------------------------------------------

def test_stream_lines_are_reassembled_across_chunks():
    chunks = [(b'{"a": ', None), (None, b"warn"), (b'1}\n{"b"', None), (None, b"ing\n"),
              (b": 2}\n", None), (b"tail", None)]
    assert list(_stream.lines(iter(chunks))) == [
        ("out", '{"a": 1}'), ("err", "warning"), ("out", '{"b": 2}'), ("out", "tail")]


def test_progress_bar_redraws_on_a_terminal_and_prints_lines_otherwise():
    events = [{"event": "progress", "done": n, "total": 10, "bytes": n * MIB,
               "bytes_total": 10 * MIB, "elapsed": n * 0.5 or 0} for n in range(11)]
    plain = io.StringIO()
    bar = _progress.Bar("generating", plain, tty=False)
    for event in events:
        bar(event)
    bar.close()
    lines = plain.getvalue().splitlines()
    assert len(lines) == 11 and "\r" not in plain.getvalue()
    assert lines[-1].startswith("generating [" + "#" * 30 + "] 100%  10/10 entries  "
                                "10.0 MiB of 10.0 MiB  2.0 MiB/s")
    term = io.StringIO()
    bar = _progress.Bar("verifying", term, tty=True)
    bar(events[3])
    bar.close()
    assert term.getvalue().startswith("\rverifying [#########") and term.getvalue().endswith(
        "\n")


# --- activities and the command line over a faked Docker ----------------------------------

class LocalExec:
    """Docker exec and put_archive for one client container, run on this machine: /tmp is
    ``tmp_root`` (one per container), every client's /mnt/<client> is the shared ``mount``;
    ``--mount`` is dropped (a temp folder is no mount point)."""

    def __init__(self, tmp_root: Path, mount: Path, client: str) -> None:
        self.tmp_root, self.mount, self.client = tmp_root, mount, client
        self.commands: list[list[str]] = []

    def path(self, arg: str) -> str:
        if arg.startswith("/tmp/"):
            return str(self.tmp_root / arg.removeprefix("/tmp/"))
        prefix = f"/mnt/{self.client}"
        if arg == prefix or arg.startswith(prefix + "/"):
            return str(self.mount) + arg.removeprefix(prefix)
        return arg

    def put_archive(self, directory: str, data: bytes) -> bool:
        target = Path(self.path(directory.rstrip("/") + "/"))
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            tar.extractall(target, filter="data")
        return True

    def exec_run(self, cmd: list[str], stream: bool = False, **_: Any) -> ExecResult:
        self.commands.append(cmd)
        args = [sys.executable if a == "python3" else self.path(a) for a in cmd]
        if "--mount" in args:
            at = args.index("--mount")
            del args[at:at + 2]
        if not stream:
            done = subprocess.run(args, capture_output=True, timeout=60, check=False)
            return ExecResult(done.returncode, (done.stdout, done.stderr))
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

        def chunks():
            for line in proc.stdout:
                yield line, None
            err = proc.stderr.read()
            proc.wait()
            if err:
                yield None, err
        return ExecResult(None, chunks())


@pytest.fixture
def cluster(fake_docker, tmp_path):
    """Every client container runs the generator locally against one shared mount."""
    mount = tmp_path / "moosefs"
    mount.mkdir()
    execs = {}
    for client in CLIENTS:
        execs[client] = LocalExec(tmp_path / f"{client}-tmp", mount, client)
        (tmp_path / f"{client}-tmp").mkdir()
        container = fake_docker.containers[client]
        container.put_archive.side_effect = execs[client].put_archive
        container.exec_run.side_effect = execs[client].exec_run
    return {"mount": mount, "execs": execs}


def test_generate_then_verify_from_another_client(config, cluster):
    summary = actions.data_generate(directory="sets/a", size="2MiB", files=30, seed=5,
                                    configuration=config)
    manifest = Path(config["chaosmoose_run_dir"]) / "datasets" / "sets" / "a" / "manifest.json"
    assert summary["manifest"] == str(manifest) and summary["client"] == "client-1"
    assert summary["bytes"] == 2 * MIB and summary["files"] == 30
    data = json.loads(manifest.read_text())
    assert data["seed"] == 5 and data["client"] == "client-1" and data["directory"] == "sets/a"
    assert data["root"] == "/mnt/client-1/sets/a"
    assert {e["path"] for e in data["entries"]} == {
        e["path"] for e in plan.make_plan(5, 2 * MIB, 30)["entries"]}
    assert (cluster["mount"] / "sets" / "a" / generator.MARKER).exists()
    generate_cmd = cluster["execs"]["client-1"].commands[0]
    assert generate_cmd[:3] == ["python3", "/tmp/chaosmoose/datagen.py", "generate"]
    assert generate_cmd[generate_cmd.index("--mount") + 1] == "/mnt/client-1"
    assert not list((cluster["execs"]["client-1"].tmp_root / "chaosmoose").glob("data-*"))

    report = probes.data_intact(directory="sets/a", configuration=config)
    assert report["client"] == "client-2", "read through another client than the writer"
    assert report["valid"] is True and report["intact"] == report["entries"] == len(
        data["entries"])
    assert report["lost"] == 0 and report["bytes_read"] >= 2 * MIB
    assert json.loads((manifest.parent / "verify.json").read_text())["intact"] == \
        report["intact"]


def test_probe_before_any_data_set_is_vacuously_valid_and_raise_on_loss(config, cluster):
    empty = probes.data_intact(configuration=config)
    assert empty["valid"] is True and empty["lost"] == 0 and "no data set" in empty["note"]
    actions.data_generate(directory="d", size="1MiB", files=12, configuration=config)
    with pytest.raises(SettingError, match="no manifest for data set 'typo'.*has manifests "
                                           "for d"):
        probes.data_intact(directory="typo", configuration=config)
    victim = next(p for p in (cluster["mount"] / "d").rglob("f*.bin") if p.stat().st_size)
    victim.unlink()
    report = probes.data_intact(directory="d", client="client-3", configuration=config)
    assert report["missing"] >= 1 and report["lost"] >= 1 and report["valid"] is False
    with pytest.raises(ActivityFailed, match=r"data set d through client-3: \d+ missing, 0 "
                                             "corrupt of .*expected every entry intact"):
        probes.data_intact(directory="d", client="client-3", raise_on_loss=True,
                           configuration=config)


def test_generate_twice_needs_replace(config, cluster):
    actions.data_generate(directory="d", size="1MiB", files=10, configuration=config)
    with pytest.raises(SettingError, match="already generated in this run directory"):
        actions.data_generate(directory="d", size="1MiB", files=10, configuration=config)
    # another run directory, same folder on the mount: the generator refuses the folder
    other = {**config, "chaosmoose_run_dir": config["chaosmoose_run_dir"] + "-2"}
    with pytest.raises(SettingError, match="already holds .* entries"):
        actions.data_generate(directory="d", size="1MiB", files=10, configuration=other)
    again = actions.data_generate(directory="d", size="2MiB", files=20, seed=9, replace=True,
                                  configuration=config)
    assert again["bytes"] == 2 * MIB
    assert probes.data_intact(directory="d", configuration=config)["intact"] == 20 + \
        again["dirs"]


def test_cli_generate_and_verify(config, cluster, capsys):
    run = config["chaosmoose_run_dir"]
    assert cli.main(["data", "generate", "--dir", "demo", "--size", "1MiB", "--files", "15",
                     "--run", run]) == 0
    out, err = capsys.readouterr()
    assert "generated demo through client-1: " in out
    assert f"manifest: {run}/datasets/demo/manifest.json" in out
    assert "generating [" in err and "100%" in err  # plain progress lines (not a TTY)
    assert cli.main(["data", "verify", "--dir", "demo", "--client", "client-3", "--run",
                     run]) == 0
    out, _ = capsys.readouterr()
    assert "verified demo through client-3 (written by client-1;" in out
    assert "missing 0, corrupt 0, unexpected 0" in out

    target = next(p for p in (cluster["mount"] / "demo").rglob("f*.bin") if p.stat().st_size)
    target.write_bytes(b"x" + target.read_bytes()[1:])
    assert cli.main(["data", "verify", "--manifest", f"{run}/datasets/demo/manifest.json",
                     "--json"]) == 1
    result = json.loads(capsys.readouterr().out)
    assert result["corrupt"] == 1 and result["missing"] == 0 and result["client"] == "client-2"
    assert result["problems"][0]["path"] == str(target.relative_to(cluster["mount"] / "demo"))


def test_cli_verify_without_a_manifest_fails_clearly_and_changes_nothing(config, cluster,
                                                                        capsys, tmp_path):
    run = tmp_path / "some-run"
    assert cli.main(["data", "verify", "--dir", "nothing-here", "--run", str(run)]) == 2
    err = capsys.readouterr().err
    assert (f"chaosmoose data: no manifest for data set 'nothing-here': looked for "
            f"{run}/datasets/nothing-here/manifest.json; this run directory has no data set"
            in err)
    assert cli.main(["data", "verify", "--manifest", str(tmp_path / "nope.json")]) == 2
    assert f"no manifest at {tmp_path / 'nope.json'}" in capsys.readouterr().err
    bad = tmp_path / "bad.json"
    bad.write_text('{"entries": [{"path": "a", "kind": "file"}]}')
    assert cli.main(["data", "verify", "--manifest", str(bad)]) == 2
    assert "is malformed: entry 'a' has no size or sha256" in capsys.readouterr().err
    assert not run.exists()
    for execs in cluster["execs"].values():
        assert execs.commands == []
    assert not any(cluster["mount"].iterdir())


@pytest.mark.parametrize("args, message", [
    (["--size", "-1MiB"], "size='-1MiB' is invalid; expected a size >= 0"),
    (["--size", "1 GB x"], "size='1 GB x' is invalid"),
    (["--files", "0"], "files='0' is invalid; expected a whole number >= 1"),
    (["--files", "many"], "files='many' is invalid"),
    (["--dir", "../escape"], "directory='../escape' is invalid"),
    (["--dir", "/"], "directory='/' is invalid"),
    (["--client", "client-9"], "client='client-9' is not a configured client"),
    (["--size", "10GiB", "--files", "10"], "does not fit in 10 files"),
])
def test_cli_generate_rejects_bad_input_before_touching_anything(config, cluster, capsys,
                                                                 args, message):
    run = config["chaosmoose_run_dir"]
    argv = ["data", "generate", "--run", run, *args]
    if "--size" in args:
        at = argv.index("--size")
        argv[at:at + 2] = [f"--size={args[args.index('--size') + 1]}"]
    assert cli.main(argv) == 2
    assert message in capsys.readouterr().err
    assert not Path(run).exists()
    assert all(e.commands == [] for e in cluster["execs"].values())
    assert not any(cluster["mount"].iterdir())


def test_remove_deletes_only_a_generated_folder(config, cluster):
    actions.data_generate(directory="gone", size="64KiB", files=5, configuration=config)
    assert _datasets.remove("gone", configuration=config)["how"].startswith("deleted")
    assert not (cluster["mount"] / "gone").exists()
    assert _datasets.remove("gone", configuration=config)["how"] == "absent"
    (cluster["mount"] / "mine").mkdir()
    with pytest.raises(SettingError, match="refusing to remove .* no .chaosmoose-data.json"):
        _datasets.remove("mine", configuration=config)


def test_a_generator_that_dies_without_a_result_fails_the_action(config, cluster,
                                                                fake_docker):
    def dead(cmd, stream=False, **_):
        return ExecResult(None, iter([(b'{"event": "start", "pid": 4242}\n', None),
                                      (None, b"Killed\n")]))

    fake_docker.containers["client-1"].exec_run.side_effect = dead
    with pytest.raises(ActivityFailed, match="ended without a result: Killed"):
        actions.data_generate(directory="d", size="1MiB", files=10, configuration=config)
    assert not (Path(config["chaosmoose_run_dir"]) / "datasets").exists()


def test_an_interrupted_host_stops_the_generator_in_its_container(config, cluster,
                                                                  fake_docker):
    calls = []

    def interrupted(cmd, stream=False, **_):
        calls.append(cmd)
        if not stream:
            return ExecResult(0, (b"", b""))

        def chunks():
            yield b'{"event": "start", "pid": 4242}\n', None
            raise KeyboardInterrupt

        return ExecResult(None, chunks())

    fake_docker.containers["client-1"].exec_run.side_effect = interrupted
    with pytest.raises(KeyboardInterrupt):
        actions.data_generate(directory="d", size="1MiB", files=10, configuration=config)
    assert calls[-1] == ["kill", "4242"]


def test_a_broken_stream_or_a_missing_mount_is_a_failure_not_bad_input(config, cluster,
                                                                       fake_docker, capsys):
    def broken(cmd, stream=False, **_):
        if not stream:
            return ExecResult(0, (b"", b""))

        def chunks():
            yield b'{"event": "start", "pid": 7}\n', None
            raise ConnectionError("Read timed out")

        return ExecResult(None, chunks())

    fake_docker.containers["client-1"].exec_run.side_effect = broken
    with pytest.raises(ActivityFailed, match="lost the data generator's output "
                                             r"\(ConnectionError: Read timed out\)"):
        actions.data_generate(directory="d", size="1MiB", files=10, configuration=config)
    no_mount = b'{"event": "error", "reason": "no-mount", "error": "/mnt/client-1 is not ' \
               b'a mount point (is the MooseFS mount up?)"}\n'
    fake_docker.containers["client-1"].exec_run.side_effect = \
        lambda cmd, stream=False, **_: ExecResult(None, iter([(no_mount, None)]))
    assert cli.main(["data", "generate", "--dir", "d", "--size", "1MiB", "--files", "10",
                     "--run", config["chaosmoose_run_dir"]]) == 1
    assert "/mnt/client-1 is not a mount point" in capsys.readouterr().err
    assert not (Path(config["chaosmoose_run_dir"]) / "datasets").exists()


def test_remove_sets_the_trash_time_to_zero_first_on_moosefs(tmp_path):
    p = tmp_path / "plan.json"
    p.write_text(json.dumps(plan.make_plan(1, 1000, 5)))
    root = tmp_path / "set"
    assert run_generator("generate", "--plan", str(p), "--root", str(root))[0] == 0
    tools = tmp_path / "bin"
    tools.mkdir()
    tool = tools / "mfssettrashtime"
    tool.write_text(f"#!/bin/sh\necho \"$@\" > {tmp_path / 'called'}\n")
    tool.chmod(0o755)
    done = subprocess.run([*GENERATOR, "remove", "--root", str(root)], capture_output=True,
                          text=True, timeout=60, check=False,
                          env={**os.environ, "PATH": f"{tools}:{os.environ['PATH']}"})
    assert json.loads(done.stdout.splitlines()[-1])["how"] == "deleted, trash skipped"
    assert (tmp_path / "called").read_text().split() == ["-r", "0", str(root)]
    assert not root.exists()


def test_probe_with_a_manifest_path_reads_the_folder_it_records(config, cluster):
    made = actions.data_generate(directory="elsewhere", size="256KiB", files=8,
                                 configuration=config)
    report = probes.data_intact(manifest=made["manifest"], configuration=config)
    assert report["directory"] == "elsewhere" and report["valid"] is True
    with pytest.raises(SettingError, match="no manifest at"):
        probes.data_intact(manifest=made["manifest"] + ".missing", configuration=config)
