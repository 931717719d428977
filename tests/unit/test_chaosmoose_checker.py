"""The acknowledged-write checker: intact / lost / corrupt, unknown never passes."""

import pytest

from chaosmoose.workload.checker import UNKNOWN, acknowledged_ops, check, combine, unavailability
from chaosmoose.workload.runner import record_sum


def op(t, kind, f, seq, client="client-1", **extra):
    rec = {"t": t, "type": kind, "f": f, "seq": seq, "client": client, **extra}
    if f == "write-file":
        rec.setdefault("path", f"files/{client}/{seq:08d}.dat")
        rec.setdefault("sha256", f"sum{seq}")
    return rec


def history(client="client-1"):
    return [
        {"t": 0.0, "type": "start", "f": "workload", "client": client},
        op(1.0, "invoke", "write-file", 1, client), op(1.1, "ok", "write-file", 1, client),
        op(2.0, "invoke", "append", 2, client, data="aa"),
        op(2.1, "ok", "append", 2, client, data="aa"),
        op(3.0, "invoke", "write-file", 3, client), op(8.0, "info", "write-file", 3, client),
        op(9.0, "invoke", "write-file", 5, client), op(9.1, "fail", "write-file", 5, client),
        {"t": 10.0, "type": "end", "f": "workload", "client": client},
    ]


def digest(client="client-1", files=None, records=None):
    return {"files": files if files is not None else {
                f"files/{client}/00000001.dat": {"sha256": "sum1", "size": 1}},
            "records": records if records is not None else {client: {"2": "intact"}},
            "garbled_lines": 0}


def test_combine_false_beats_unknown_beats_true():
    assert combine([True, True]) is True
    assert combine([True, UNKNOWN]) == UNKNOWN
    assert combine([UNKNOWN, False, True]) is False
    assert combine([]) is True


def test_acknowledged_are_ok_ops_and_late_oks():
    hist = history() + [op(8.5, "info", "write-file", 3, late=True, late_outcome="ok")]
    acked, unknown = acknowledged_ops(hist)
    assert sorted(o["seq"] for o in acked) == [1, 2, 3]
    assert unknown == []
    acked, unknown = acknowledged_ops(history())
    assert sorted(o["seq"] for o in acked) == [1, 2] and [o["seq"] for o in unknown] == [3]


def test_all_intact_is_valid():
    result = check({"client-1": history()}, {"client-1": digest(), "client-2": digest()})
    assert result["valid"] is True
    assert (result["acknowledged"], result["intact"], result["lost"], result["corrupt"]) == \
        (2, 2, 0, 0)
    assert result["indeterminate"] == 1 and result["ops"]["fail"] == 1


def test_missing_file_on_one_reader_is_lost():
    bad = digest(files={})
    result = check({"client-1": history()}, {"client-1": digest(), "client-2": bad})
    assert result["valid"] is False
    assert result["lost"] == 1 and result["intact"] == 1
    assert result["readers"]["client-2"]["lost"] == 1
    assert result["examples"][0]["verdict"] == "lost"


def test_wrong_checksum_is_corrupt_and_beats_lost():
    files = {"files/client-1/00000001.dat": {"sha256": "other", "size": 1}}
    result = check({"client-1": history()},
                   {"client-1": digest(files=files), "client-2": digest(files={})})
    assert result["corrupt"] == 1 and result["lost"] == 0 and result["valid"] is False


def test_corrupt_or_missing_record():
    result = check({"client-1": history()},
                   {"client-1": digest(records={"client-1": {"2": "corrupt"}})})
    assert result["corrupt"] == 1
    result = check({"client-1": history()}, {"client-1": digest(records={})})
    assert result["lost"] == 1


def test_counts_are_split_into_file_creations_and_appends():
    result = check({"client-1": history()}, {"client-1": digest(files={})})
    assert result["by_f"] == {
        "write-file": {"acknowledged": 1, "intact": 0, "lost": 1, "corrupt": 0},
        "append": {"acknowledged": 1, "intact": 1, "lost": 0, "corrupt": 0}}
    result = check({"client-1": history()},
                   {"client-1": digest(records={"client-1": {"2": "corrupt"}})})
    assert result["by_f"]["append"]["corrupt"] == 1
    assert result["by_f"]["write-file"]["intact"] == 1


def test_unknown_verdict_makes_the_split_counts_negative_too():
    result = check({"client-1": history()},
                   {"client-1": digest(files={}), "client-2": RuntimeError("exec failed")})
    assert result["valid"] is False  # a loss seen by one reader is a loss
    result = check({"client-1": history()},
                   {"client-1": digest(), "client-2": RuntimeError("exec failed")})
    assert result["by_f"]["write-file"]["lost"] == -1
    assert result["by_f"]["append"]["corrupt"] == -1
    assert result["by_f"]["write-file"]["lost_seen"] == 0


def test_unknown_outcome_present_is_recovered_and_never_lost():
    files = {"files/client-1/00000001.dat": {"sha256": "sum1"},
             "files/client-1/00000003.dat": {"sha256": "sum3"},
             "files/ghost/1.dat": {"sha256": "x"}}
    result = check({"client-1": history()}, {"client-1": digest(files=files)})
    assert result["recovered"] == 1 and result["unexpected"] == 1 and result["valid"] is True


def test_a_reader_that_could_not_read_makes_the_verdict_unknown_and_counts_negative():
    result = check({"client-1": history()},
                   {"client-1": digest(), "client-2": RuntimeError("exec failed")})
    assert result["valid"] == UNKNOWN
    assert result["lost"] == -1 and result["corrupt"] == -1
    assert "client-2" in result["reader_errors"]


def test_a_blocked_read_of_an_unacknowledged_file_leaves_the_verdict_definite():
    files = {"files/client-1/00000001.dat": {"sha256": "sum1", "size": 1},
             "files/client-1/00000003.dat": {"error": "TimeoutError: read blocked"}}
    result = check({"client-1": history()},
                   {"client-1": {**digest(files=files), "blocked": ["files/client-1/00000003.dat"]}})
    assert result["valid"] is True and result["lost"] == 0 and result["unreadable"] == 0
    assert result["blocked_reads"] == {"client-1": ["files/client-1/00000003.dat"]}


def test_a_blocked_read_of_an_acknowledged_file_makes_the_verdict_unknown():
    files = {"files/client-1/00000001.dat": {"error": "TimeoutError: read blocked"}}
    result = check({"client-1": history()},
                   {"client-1": {**digest(files=files), "blocked": ["files/client-1/00000001.dat"]}})
    assert result["valid"] == UNKNOWN and result["lost"] == -1
    assert result["unreadable"] == 1


def test_false_beats_unknown_reader():
    result = check({"client-1": history()},
                   {"client-1": digest(files={}), "client-2": {"error": "timed out"}})
    assert result["valid"] is False and result["lost"] == 1


def test_a_crashing_checker_gives_unknown():
    result = check({"client-1": [{"type": "invoke", "f": "write-file", "seq": 1}]},
                   {"client-1": digest()})
    assert result["valid"] == UNKNOWN and result["lost"] == -1
    assert "checker crashed" in result["error"]


def test_longest_window_without_a_successful_write():
    hist = history() + history("client-2")
    window = unavailability({"c1": history(), "c2": [
        {"t": 0.5, "type": "start"}, op(9.5, "ok", "append", 9, "client-2"),
        {"t": 10.0, "type": "end"}]})
    assert window["longest_s"] == pytest.approx(7.4)  # 2.1 -> 9.5
    assert window["from"] == 2.1 and window["to"] == 9.5
    assert unavailability({})["longest_s"] == 0.0
    assert hist  # both clients' histories are plain lists


def test_record_checksum_binds_client_seq_and_data():
    assert record_sum("c", 1, "aa") != record_sum("c", 2, "aa")
    assert record_sum("c", 1, "aa") != record_sum("d", 1, "aa")


def test_every_lost_and_corrupt_write_is_listed_with_its_acknowledgement_time():
    lost = check({"client-1": history()},
                 {"client-1": digest(files={}, records={"client-1": {"2": "intact"}})})
    assert lost["lost_ops"] == [{"client": "client-1", "seq": 1, "f": "write-file",
                                 "invoked_t": 1.0, "acked_t": 1.1}]
    bad = {"files/client-1/00000001.dat": {"sha256": "other", "size": 1}}
    corrupt = check({"client-1": history()}, {"client-1": digest(files=bad)})
    assert [(o["seq"], o["acked_t"]) for o in corrupt["corrupt_ops"]] == [(1, 1.1)]
    assert corrupt["lost_ops"] == []
