"""Storage classes: their definitions, the client's idempotent ensure, the leader's view of them
(mfscli -SSC, with -SHD in GET /cluster) and ``mooseng status``'s lines."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import pytest

from mooseng import ctl, storageclasses
from mooseng.api import ClusterProbe
from mooseng.mfs import cli
from mooseng.storageclasses import CLASSES, SclassKeeper, StorageClass, StorageClassError

DATA = Path(__file__).parent / "data" / "mfscli"
README = Path(__file__).resolve().parents[2] / "README.md"
MOUNT = Path("/mnt/client-1")


# --- definitions -------------------------------------------------------------------------
def test_the_lab_classes():
    by_name = {sc.name: sc for sc in CLASSES}
    assert {"two_copies", "fast_and_bulk", "tiered"} <= set(by_name)
    assert by_name["fast_and_bulk"].keep == "F,S"
    assert by_name["tiered"].create_argv(MOUNT) == [
        "mfsscadmin", "/mnt/client-1", "create", "-C", "F,F", "-K", "F,S", "-A", "S,*", "-d", "1",
        "tiered"]
    assert by_name["two_copies"].create_argv(MOUNT) == [
        "mfsscadmin", "/mnt/client-1", "create", "-K", "*,*", "two_copies"]


@pytest.mark.parametrize("name", ["hot data", "", "a/b", "é", "x" * 256])
def test_class_names_are_letters_digits_underscore_and_dash(name):
    with pytest.raises(StorageClassError, match="name"):
        StorageClass(name, keep="*,*", purpose="-")


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"keep": "F S"}, "not a label expression"),
    ({"keep": "F,S", "archive": "S"}, "go together"),
    ({"keep": "F,S", "archive": "S", "archive_days": 0}, "not 1..49710"),
    ({"keep": "F,S", "mode": "fast"}, "mode 'fast'"),
])
def test_definitions_moosefs_would_refuse_are_refused(kwargs, message):
    with pytest.raises(StorageClassError, match=message):
        StorageClass("x", purpose="-", **kwargs)


def test_strict_mode_is_passed_as_m_s():
    sc = StorageClass("strict_fs", keep="F,S", purpose="-", mode="strict")
    assert sc.create_argv(MOUNT)[3:5] == ["-m", "s"]


def test_readme_carries_the_current_classes_table():
    assert storageclasses.markdown_table() in README.read_text(), (
        "README's storage class table is stale: paste storageclasses.markdown_table() between "
        "the storage-classes markers")


# --- ensure ------------------------------------------------------------------------------
class FakeAdmin:
    """mfsscadmin: answers list with ``existing`` and records creates (mfstools.c wording)."""

    def __init__(self, existing: list[str], answers: dict[str, tuple[int, str]] | None = None,
                 list_answer: tuple[int, str] | None = None) -> None:
        self.existing = list(existing)
        self.answers = answers or {}
        self.list_answer = list_answer
        self.calls: list[list[str]] = []

    def __call__(self, argv: list[str]) -> tuple[int, str]:
        self.calls.append(argv)
        assert argv[:2] == ["mfsscadmin", str(MOUNT)]
        if argv[2] == "list":
            return self.list_answer or (0, "".join(f"{n}\n" for n in self.existing))
        name = argv[-1]
        if name in self.answers:
            return self.answers[name]
        if name in self.existing:
            return 1, f"storage class make {name}: error: Class name already in use\n"
        self.existing.append(name)
        return 0, f"storage class make {name}: ok\n"


def test_ensure_creates_only_the_missing_classes():
    admin = FakeAdmin([str(i) for i in range(1, 10)] + ["two_copies", "tiered"])
    result = storageclasses.ensure(MOUNT, admin)
    assert result.ok and result.present == ["two_copies", "tiered"]
    assert result.created == ["fast_only", "fast_and_bulk"]
    assert [c[-1] for c in admin.calls if c[2] == "create"] == ["fast_only", "fast_and_bulk"]
    again = storageclasses.ensure(MOUNT, admin)
    assert again.created == [] and len(again.present) == len(CLASSES)


def test_a_class_another_client_created_meanwhile_counts_as_present():
    race = (1, "storage class make tiered: error: Class name already in use\n")
    result = storageclasses.ensure(MOUNT, FakeAdmin([], {"tiered": race}))
    assert result.ok and result.raced == ["tiered"] and "tiered" not in result.created


def test_a_refused_create_is_reported_and_the_others_still_made():
    refused = (1, "storage class make tiered: error: Operation not permitted\n")
    result = storageclasses.ensure(MOUNT, FakeAdmin([], {"tiered": refused}))
    assert not result.ok
    assert result.failed == {"tiered": "storage class make tiered: error: Operation not permitted"}
    assert len(result.created) == len(CLASSES) - 1


def test_no_master_means_a_failed_listing_and_no_create():
    admin = FakeAdmin([], list_answer=(-1, "mfsscadmin did not answer within 10 s"))
    result = storageclasses.ensure(MOUNT, admin)
    assert result.failed == {"listing": "mfsscadmin did not answer within 10 s"}
    assert len(admin.calls) == 1


def test_the_keeper_logs_one_line_per_event(caplog):
    caplog.set_level(logging.INFO, logger="mooseng.storageclasses")
    up = [False]
    admin = FakeAdmin(["two_copies"])
    keeper = SclassKeeper(MOUNT, 30.0, run=admin, ready=lambda: up[0])
    assert keeper.check() is None and admin.calls == []  # no mount yet: no tool runs
    up[0] = True
    assert keeper.check().ok
    messages = [r.getMessage() for r in caplog.records]
    assert "event=sclass_created name=tiered mount=/mnt/client-1" in messages
    assert messages[-1] == ("event=sclass_ensured classes=two_copies,fast_only,fast_and_bulk,"
                            "tiered created=fast_only,fast_and_bulk,tiered")
    caplog.clear()
    assert keeper.check().ok
    assert caplog.records == []  # all present: a quiet check
    admin.existing.remove("tiered")  # lost in a failover
    keeper.check()
    assert [r.getMessage() for r in caplog.records][-1].endswith("created=tiered")


def test_the_keeper_thread_stops(tmp_path):
    admin = FakeAdmin([])
    keeper = SclassKeeper(MOUNT, 0.05, run=admin, ready=lambda: True)
    keeper.start()
    keeper.stop()
    keeper._thread.join(2)
    assert not keeper._thread.is_alive()


# --- the leader's view: mfscli -SSC ----------------------------------------------------------
def test_storage_classes_from_real_output():
    found = cli.storage_classes((DATA / "SSC.txt").read_text())
    assert [c["name"] for c in found] == [str(i) for i in range(1, 10)]
    two = found[1]
    assert (two["id"], two["mode"], two["files"], two["dirs"], two["admin_only"]) == (
        2, "STD", 17, 1, False)
    assert two["keep"] == {"can_be_fulfilled": "YES", "labels": ["*", "*"]}
    assert two["chunks"] == {"undergoal": 0, "exact": 17, "overgoal": 0}
    assert two["archived_chunks"] is None and two["archive_delay_days"] is None
    assert found[3]["keep"]["can_be_fulfilled"] == "NO"


# The plain layout of mfscli 3.0.117 (section "SC", non-tty branch, 22 columns) for the lab's
# tiered class with one archived chunk under goal, and a strict class that cannot be met.
SSC_LAB = "\n".join("\t".join(fields) for fields in [
    ["storage classes:", "10", "tiered", "NO", "STD", "1 204", "3", "-", "1 200", "-", "1", "3",
     "-", "YES", "2", "F , F", "YES", "2", "F , S", "YES", "2", "S , *", "1d"],
    ["storage classes:", "11", "strict_ss", "YES", "STRICT", "0", "0", "-", "0", "-", "-", "-",
     "-", "NO", "2", "S , S", "NO", "2", "S , S", "NO", "2", "S , S", "-"],
])


def test_storage_classes_with_labels_archive_and_thousands_separators():
    tiered, strict = cli.storage_classes(SSC_LAB)
    assert tiered["files"] == 1204 and tiered["chunks"]["exact"] == 1200
    assert tiered["archived_chunks"] == {"undergoal": 1, "exact": 3, "overgoal": 0}
    assert tiered["create"]["labels"] == ["F", "F"] and tiered["keep"]["labels"] == ["F", "S"]
    assert tiered["archive"]["labels"] == ["S", "*"] and tiered["archive_delay_days"] == 1
    assert strict["admin_only"] and strict["mode"] == "STRICT"
    assert strict["keep"]["can_be_fulfilled"] == "NO"


# --- GET /cluster: ClusterProbe ---------------------------------------------------------------
class FakeMfscli:
    def __init__(self, texts: dict[str, str | Exception]) -> None:
        self.texts = texts
        self.calls: list[str] = []

    def __call__(self, host: str, port: int, section: str) -> str:
        self.calls.append(section)
        answer = self.texts[section]
        if isinstance(answer, Exception):
            raise answer
        return answer


def probe_texts() -> dict[str, str | Exception]:
    return {section: (DATA / f"S{section}.txt").read_text() for section in ("CS", "IC", "SC", "HD")}


def test_cluster_carries_storage_classes_and_disks():
    run = FakeMfscli(probe_texts())
    probe = ClusterProbe(resolve=lambda name: "10.0.0.2", run=run)
    body = probe.read("master-1")
    assert len(body["chunkservers"]) == 3 and body["chunks"]["stable"] >= 0
    assert [c["name"] for c in body["storage_classes"]][:2] == ["1", "2"]
    assert len(body["disks"]) == 6 and body["disks"][0]["tier"] == "bulk"
    assert "disks_error" not in body and "storage_classes_error" not in body
    probe.read("master-1")
    assert sorted(run.calls) == ["CS", "HD", "IC", "SC"]  # cached: read once


def test_a_failing_disk_view_does_not_hide_the_rest():
    texts = probe_texts()
    texts["HD"] = cli.MfscliError("mfscli -SHD via 10.0.0.2:9421: timed out")
    body = ClusterProbe(resolve=lambda name: "10.0.0.2", run=FakeMfscli(texts)).read("master-1")
    assert body["disks"] is None and body["disks_error"].endswith("timed out")
    assert body["storage_classes"] and body["chunkservers"] and body["chunks"]


def test_a_slow_layout_never_holds_up_cluster():
    texts = probe_texts()
    release = threading.Event()
    run = FakeMfscli(texts)

    def slow(host: str, port: int, section: str) -> str:
        if section == "HD":
            release.wait(5)
        return run(host, port, section)

    probe = ClusterProbe(resolve=lambda name: "10.0.0.2", run=slow, layout_max_age=0.0,
                         layout_wait=0.05)
    began = time.monotonic()
    first = probe.read("master-1")  # nothing read yet: waits layout_wait, then says so
    assert first["chunks"] and first["disks"] is None and "being read" in first["disks_error"]
    release.set()
    probe._layout_reader.join(2)
    second = probe.read("master-1")  # stale at once (max age 0): answered, refreshed behind
    assert len(second["disks"]) == 6 and time.monotonic() - began < 2
    probe._layout_reader.join(2)
    assert run.calls.count("HD") == 2


def test_without_a_leader_every_part_says_why():
    body = ClusterProbe(run=FakeMfscli({})).read(None)
    assert body["storage_classes"] is None and body["disks"] is None
    assert body["disks_error"] == body["storage_classes_error"] == "no leader holds the lease"


# --- mooseng status ----------------------------------------------------------------------------
def test_status_prints_our_classes_and_space_per_tier():
    from tests.unit.test_tiers import SHD_FAULTS

    cluster = {"storage_classes": cli.storage_classes((DATA / "SSC.txt").read_text() + "\n"
                                                      + SSC_LAB),
               "disks": cli.disks((DATA / "SHD.txt").read_text() + "\n" + SHD_FAULTS)}
    lines = ctl.layout_lines(cluster)
    assert lines[0] == ("storage class tiered: create=F,F keep=F,S archive=S,* after 1d "
                        "mode=STD files=1204 fulfilled=YES")
    assert any(line.startswith("tier fast: ") and "damaged=2" in line for line in lines)
    assert any("status=invalid" in line and "/tiers/fast/" in line for line in lines)
    assert not any(line.startswith("storage class 2:") for line in lines)


def test_status_says_when_the_layout_is_unknown():
    lines = ctl.layout_lines({"storage_classes": None, "storage_classes_error": "no leader",
                              "disks": None, "disks_error": "no leader"})
    assert lines == ["storage classes: unknown (no leader)", "tiers: unknown (no leader)"]
