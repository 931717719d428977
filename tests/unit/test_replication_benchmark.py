"""scripts/replication_benchmark.py: parsing, the phase decisions, the statistics, and whole
rounds against a scripted cluster on a fake clock (no Docker, no MooseFS)."""

import sys
from pathlib import Path

import pytest
from chaoslib.exceptions import ActivityFailed

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))

import replication_benchmark as rb

GIB = 1 << 30
MIB = 1 << 20
CS = ("chunkserver-1", "chunkserver-2", "chunkserver-3")
NAMES = {"172.18.0.5": "chunkserver-1", "172.18.0.6": "chunkserver-2",
         "172.18.0.7": "chunkserver-3"}


# --- MooseFS text, as the tools print it with stdout not a terminal -------------------------

def rows(title: str, *lines: list) -> str:
    return "".join("\t".join([title, *map(str, fields)]) + "\n" for fields in lines)


def sic(**counts: int) -> str:
    states = {"missing": 0, "endangered": 0, "undergoal": 0, "stable": 40, "overgoal": 0,
              "pending deletion": 0}
    states.update({k.replace("_", " "): v for k, v in counts.items()})
    return (rows("all chunks matrix:", [2, 0, 0, 40, 0, 0, 0, 0, 0, 0, 0, 0, 40])
            + "".join(f"all chunks matrix:\tchunkclass {state}:\t{n}\n"
                      for state, n in states.items()))


def scs(*servers: tuple) -> str:
    return rows("chunk servers:", *([ip, 9422, n, "A", "3.0.117", 0, "maintenance_off", chunks,
                                     used, 3 * GIB, "-", 0, 0, 0]
                                    for n, (ip, chunks, used) in enumerate(servers, 1)))


DIRINFO = """./bench-replication:
 inodes:                          231
  directories:                     30
  files:                          201
 chunks:                           97
 length:                   1073741824
 size:                     1075838976
 realsize:                 2151677952
"""


# --- samples -------------------------------------------------------------------------------

def server(chunks: int, used_mib: float, total: int = 3 * GIB) -> dict:
    return {"chunks": chunks, "used": int(used_mib * MIB), "total": total}


def sample(t: float = 0.0, servers: dict | None = None, **counts: int) -> rb.Sample:
    matrix = {"missing": 0, "endangered": 0, "undergoal": 0, "stable": 150, "overgoal": 0,
              "pending_deletion": 0}
    matrix.update(counts)
    if servers is None:
        servers = {name: server(100, 700) for name in CS}
    return rb.Sample(t=t, matrix=matrix, servers=servers)


def without(name: str, chunks: int = 150, used_mib: float = 1050) -> dict:
    return {n: server(chunks, used_mib) for n in CS if n != name}


# ------------------------------------------------------------------------ parsing


def test_parse_sample_reads_the_matrix_and_names_the_servers():
    text = sic(endangered=3, overgoal=1) + scs(("172.18.0.5", 20, 600 * MIB),
                                               ("172.18.0.9", 7, 100 * MIB))
    got = rb.parse_sample(text, NAMES, t=1.5)
    assert got.t == 1.5 and got.error is None
    assert got.matrix["endangered"] == 3 and got.matrix["overgoal"] == 1
    assert got.servers == {"chunkserver-1": {"chunks": 20, "used": 600 * MIB, "total": 3 * GIB},
                           "172.18.0.9:9422": {"chunks": 7, "used": 100 * MIB,
                                               "total": 3 * GIB}}


def test_parse_sample_fails_without_a_complete_matrix():
    with pytest.raises(ActivityFailed, match="no complete all chunks matrix"):
        rb.parse_sample("can't connect to master\n", NAMES)


def test_parse_dirinfo_reads_every_figure():
    got = rb.parse_dirinfo(DIRINFO)
    assert got == {"inodes": 231, "directories": 30, "files": 201, "chunks": 97,
                   "length": GIB, "size": 1075838976, "realsize": 2151677952}


def test_parse_dirinfo_fails_on_missing_figures():
    with pytest.raises(ActivityFailed, match="no chunks, length"):
        rb.parse_dirinfo(" inodes: 3\n directories: 1\n files: 2\n size: 5\n realsize: 10\n")


def test_compact_sample_keeps_counts_and_usage():
    got = sample(2.345, endangered=4).compact()
    assert got["t"] == 2.35 and got["endangered"] == 4 and got["overgoal"] == 0
    assert got["servers"]["chunkserver-1"] == {"chunks": 100, "used_pct": 22.786}
    assert rb.Sample(t=1, error="boom").compact() == {"t": 1, "error": "boom"}


# ------------------------------------------------------------------------ figures


def test_below_goal_and_live_chunks():
    matrix = {"missing": 1, "endangered": 2, "undergoal": 3, "stable": 10, "overgoal": 4,
              "pending_deletion": 100}
    assert rb.below_goal(matrix) == 6
    assert rb.live_chunks(matrix) == 20


def test_usage_spread_is_max_minus_min_in_percentage_points():
    servers = {"a": server(1, 0.3 * 3 * 1024), "b": server(1, 0.2 * 3 * 1024),
               "c": server(1, 0.25 * 3 * 1024)}
    assert rb.usage_spread(servers) == pytest.approx(10.0)
    assert rb.usage_spread(servers, only=("b", "c")) == pytest.approx(5.0)
    assert rb.usage_spread({"a": servers["a"]}) is None
    assert rb.usage_spread({"a": servers["a"], "b": server(1, 0, total=0)}) is None


def test_chunk_ratio():
    assert rb.chunk_ratio({"a": server(150, 1), "b": server(100, 1)}) == 1.5
    assert rb.chunk_ratio({"a": server(150, 1), "b": server(0, 0)}) is None


def test_rate_and_mib():
    assert rb.rate_mib_s(700 * MIB, 35.0) == 20.0
    assert rb.rate_mib_s(700 * MIB, None) is None
    assert rb.rate_mib_s(None, 3.0) is None
    assert rb.mib(3 * MIB) == 3.0 and rb.mib(None) is None


# ------------------------------------------------------------------------ decisions


def test_baseline_problem_names_what_is_not_quiet():
    assert rb.baseline_problem(sample(), CS) is None
    assert rb.baseline_problem(sample(servers=without("chunkserver-2")), CS) == \
        "chunkserver-2 not connected"
    assert rb.baseline_problem(sample(endangered=2), CS) == "2 endangered"
    assert rb.baseline_problem(sample(overgoal=5), CS) == "5 overgoal"
    assert rb.baseline_problem(rb.Sample(error="no master"), CS) == "poll failed: no master"


def test_settled_needs_every_server_no_chunk_off_goal_and_a_small_spread():
    even = {n: server(100, 700) for n in CS}
    assert rb.settled(sample(servers=even), CS, 1.0) == (
        True, "usage spread 0.00 pp <= 1, no chunk below or over goal")
    assert rb.settled(sample(servers=without("chunkserver-3")), CS, 1.0) == (
        False, "chunkserver-3 not connected")
    assert rb.settled(sample(servers=even, undergoal=1, overgoal=2), CS, 1.0) == (
        False, "1 undergoal, 2 overgoal")
    skewed = {**even, "chunkserver-3": server(60, 700 - 0.02 * 3 * 1024)}
    assert rb.settled(sample(servers=skewed), CS, 1.0) == (
        False, "usage spread 2.00 pp > 1")
    assert rb.settled(sample(servers=skewed), CS, 2.5)[0] is True


def test_streak_reports_its_start_once_it_held():
    streak = rb.Streak(hold=10)
    assert streak.update(0, True) is None
    assert streak.update(5, False) is None
    assert streak.update(6, True) is None
    assert streak.update(15.9, True) is None
    assert streak.update(16, True) == 6
    assert rb.Streak(hold=0).update(3, True) == 3


def test_loss_notices_a_dropped_server_before_any_chunk_counts():
    loss = rb.LossTracker("chunkserver-3", held_chunks=100, expected_copies=300)
    assert loss.update(sample(0.5)) == [] and loss.noticed_s is None
    events = loss.update(sample(1.0, servers=without("chunkserver-3", 100)))
    assert loss.noticed_s == 1.0 and loss.gone_s == 1.0
    assert events[0] == "the master dropped chunkserver-3 from its chunkserver list after 1.0 s"
    # gone, matrix not yet updated, copies not restored: not re-replicated
    assert not loss.done


def test_loss_is_re_replicated_once_chunks_below_goal_are_gone_again():
    loss = rb.LossTracker("chunkserver-3", held_chunks=100, expected_copies=300)
    loss.update(sample(0.5, endangered=60))  # noticed by the matrix, server still listed
    assert loss.noticed_s == 0.5 and loss.gone_s is None
    loss.update(sample(1.0, servers=without("chunkserver-3", 100), endangered=100))
    loss.update(sample(20.0, servers=without("chunkserver-3", 140), endangered=10))
    assert not loss.done
    events = loss.update(sample(31.0, servers=without("chunkserver-3", 140)))
    assert loss.done and loss.re_replicated_s == 31.0
    assert loss.peak == {"missing": 0, "endangered": 100, "undergoal": 0}
    assert events == ["re-replicated after 31.0 s: no chunk below goal (peak 100 endangered)"]


def test_loss_needs_the_server_gone_from_the_list():
    loss = rb.LossTracker("chunkserver-3", held_chunks=100, expected_copies=300)
    loss.update(sample(1.0, endangered=5))
    loss.update(sample(2.0))  # below goal seen and cleared, but the master still lists it
    assert not loss.done


def test_loss_falls_back_to_restored_copies_when_no_poll_saw_chunks_below_goal():
    loss = rb.LossTracker("chunkserver-3", held_chunks=100, expected_copies=300)
    loss.update(sample(1.0, servers=without("chunkserver-3", 149)))
    assert not loss.done
    loss.update(sample(1.5, servers=without("chunkserver-3", 150)))
    assert loss.done and loss.re_replicated_s == 1.5


def test_loss_of_an_empty_server_is_done_once_it_is_gone():
    loss = rb.LossTracker("chunkserver-3", held_chunks=0, expected_copies=200)
    loss.update(sample(0.5, servers=without("chunkserver-3", 50)))
    assert loss.done and loss.re_replicated_s == 0.5


def test_loss_ignores_failed_polls_and_says_where_it_stands():
    loss = rb.LossTracker("chunkserver-3", held_chunks=100, expected_copies=300)
    assert loss.status() == "no answer from the master yet"
    assert loss.update(rb.Sample(t=1, error="no master")) == []
    loss.update(sample(12.2, servers=without("chunkserver-3"), endangered=7))
    assert loss.status() == ("12 s after the kill: 7 endangered; chunkserver-3 gone from the "
                             "master's list")


def test_return_counts_nothing_before_the_server_registered():
    back = rb.ReturnTracker("chunkserver-3", CS, tolerance=1.0, hold=0)
    assert back.update(sample(1.0, servers=without("chunkserver-3", 100, 700))) == []
    assert back.registered_s is None and back.overgoal_cleared_s is None and not back.done
    assert back.status() == "1 s after the start: chunkserver-3 not connected"


def test_return_times_registration_overgoal_and_rebalance():
    back = rb.ReturnTracker("chunkserver-3", CS, tolerance=1.0, hold=10)
    skewed = {**without("chunkserver-3", 150, 1050), "chunkserver-3": server(100, 700)}
    even = {n: server(100, 700) for n in CS}
    assert back.update(sample(2.0, servers=skewed, overgoal=50)) == [
        "chunkserver-3 registered after 2.0 s (100 chunks)"]
    back.update(sample(8.0, servers=skewed))
    back.update(sample(17.0, servers=skewed))
    assert back.overgoal_cleared_s is None  # not held 10 s yet
    back.update(sample(18.0, servers=even))
    assert back.overgoal_cleared_s == 8.0 and back.overgoal_peak == 50
    back.update(sample(25.0, servers=even, overgoal=1))  # a rebalance copy: starts over
    back.update(sample(26.0, servers=even))
    assert not back.done
    events = back.update(sample(36.0, servers=even))
    assert back.done and back.rebalanced_s == 26.0
    assert events[-1] == ("rebalanced 26.0 s after the start (held 10 s): usage spread 0.00 pp"
                          " <= 1, no chunk below or over goal")
    assert back.overgoal_cleared_s == 8.0  # the first streak stays the figure
    assert back.best_spread == 0.0


def test_return_failed_polls_break_the_streaks():
    back = rb.ReturnTracker("chunkserver-3", CS, tolerance=1.0, hold=5)
    even = {n: server(100, 700) for n in CS}
    back.update(sample(1.0, servers=even))
    back.update(rb.Sample(t=3.0, error="no master"))
    back.update(sample(6.5, servers=even))
    assert not back.done
    back.update(sample(11.5, servers=even))
    assert back.rebalanced_s == 6.5


LABELS = {"chunkserver-1": {"A", "F"}, "chunkserver-2": {"B", "F"}, "chunkserver-3": {"C", "S"}}


def sclass(keep: list, chunks: int = 10, mode: str = "STD", archive: list | None = None,
           archived: int = 0) -> dict:
    return {"keep": keep, "mode": mode, "chunks": {"under": 0, "exact": chunks, "over": 0},
            "archive": archive or [],
            "archived_chunks": {"undergoal": 0, "exact": archived, "overgoal": 0}}


def test_stuck_classes_finds_labels_only_the_killed_server_has():
    left = [LABELS["chunkserver-1"], LABELS["chunkserver-2"]]
    classes = {"two_copies": sclass(["*", "*"]), "fast_and_bulk": sclass(["F", "S"], 12),
               "fast_only": sclass(["F", "F"])}
    assert rb.stuck_classes(classes, left, "chunkserver-3") == [
        ("storage class fast_and_bulk (12 chunks) keeps copies as F, S, which the 2 "
         "chunkservers left without chunkserver-3 cannot all hold")]


def test_stuck_classes_counts_copies_even_for_any_server():
    left = [LABELS["chunkserver-1"], LABELS["chunkserver-2"]]
    found = rb.stuck_classes({"3": sclass(["*", "*", "*"])}, left, "chunkserver-3")
    assert len(found) == 1 and "storage class 3 (10 chunks)" in found[0]


def test_stuck_classes_skips_empty_classes_unless_asked_and_loose_ones():
    left = [LABELS["chunkserver-1"], LABELS["chunkserver-2"]]
    empty = {"fast_and_bulk": sclass(["F", "S"], chunks=0)}
    assert rb.stuck_classes(empty, left, "chunkserver-3") == []
    assert len(rb.stuck_classes(empty, left, "chunkserver-3", include=["fast_and_bulk"])) == 1
    assert rb.stuck_classes({"l": sclass(["F", "S"], mode="LOOSE")}, left, "x") == []


def test_stuck_classes_checks_archive_labels_only_with_archived_chunks():
    left = [LABELS["chunkserver-1"], LABELS["chunkserver-2"]]
    kept = {"tiered": sclass(["F", "F"], archive=["S", "*"])}
    assert rb.stuck_classes(kept, left, "chunkserver-3") == []
    kept["tiered"] = sclass(["F", "F"], archive=["S", "*"], archived=3)
    assert rb.stuck_classes(kept, left, "chunkserver-3") == [
        ("storage class tiered (13 chunks) archives copies as S, *, which the 2 chunkservers "
         "left without chunkserver-3 cannot all hold")]


# ------------------------------------------------------------------------ statistics


def record(number: int, again: float | None = 30.0, rebalanced: float | None = 40.0) -> dict:
    return {"round": number, "killed": "chunkserver-3", "data_mib": 1026.0, "set_chunks": 97,
            "cluster_chunks": 150, "on_killed": {"chunks": 100, "bytes": 700 * MIB},
            "noticed_s": 1.1, "re_replicated_s": again,
            "re_replicated_mib_s": rb.rate_mib_s(700 * MIB, again), "registered_s": 2.0,
            "overgoal_cleared_s": 8.0, "rebalanced_s": rebalanced, "spread_pp": 0.5,
            "not_reached": [] if rebalanced else ["not rebalanced after 900 s: spread 3 pp"]}


def test_summarize_counts_rounds_within_the_target():
    rounds = [record(1, 30.0), record(2, 60.0), record(3, 61.0), record(4, None)]
    got = rb.summarize(rounds, target=60.0)
    assert got["rounds"] == 4 and got["within_target"] == 2 and got["ok_rounds"] == 2
    assert got["re_replicated_s"] == {"p50": 60.0, "p95": 61.0, "max": 61.0}
    assert got["rebalanced"] == 4


def test_summarize_leaves_out_measures_no_round_reached():
    got = rb.summarize([record(1, None, None)], target=60.0)
    assert "re_replicated_s" not in got and "rebalanced_s" not in got
    assert got["ok_rounds"] == 0 and got["rebalanced"] == 0
    assert not rb.round_ok(record(1, 30.0, None), 60.0)
    assert rb.round_ok(record(1, 30.0, 40.0), 60.0)


def test_markdown_has_a_row_per_round_and_says_what_was_not_reached():
    rounds = [record(1), record(2, 70.0, None)]
    text = rb.markdown(rounds, rb.summarize(rounds, 60.0))
    lines = text.splitlines()
    assert lines[0].count("|") == lines[1].count("|") == lines[2].count("|") == 13
    assert lines[2] == ("| 1 | chunkserver-3 | 1026.0 | 97 / 150 | 100 / 700.0 | 1.1 | 30.0 | "
                        "23.3 | 2.0 | 8.0 | 40.0 | 0.50 |")
    assert "| 70.0 | 10.0 | 2.0 | 8.0 | - |" in lines[3]
    assert "- round 2: not rebalanced after 900 s: spread 3 pp" in lines
    assert "re-replicated within 60 s in 1 of 2 rounds; rebalanced in 1." in lines
    assert "re_replicated_s: p50 50.0, p95 70.0, max 70.0" in lines


# ------------------------------------------------------------------------ whole rounds


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


class ScriptedCluster:
    """The lab as a function of seconds since the kill (``loss``) and the start (``back``);
    every poll takes 0.1 s."""

    def __init__(self, clock: FakeClock, loss, back) -> None:
        self.clock, self.scripts = clock, {"loss": loss, "return": back}
        self.phase, self.since = "baseline", clock.now
        self.kills: list[str] = []
        self.starts: list[str] = []

    def sample(self) -> rb.Sample:
        self.clock.now += 0.1
        if self.phase == "baseline":
            return sample()
        return self.scripts[self.phase](self.clock.now - self.since)

    def kill(self, name: str) -> None:
        self.kills.append(name)
        self.phase, self.since = "loss", self.clock.now

    def start(self, name: str) -> None:
        self.starts.append(name)
        self.phase, self.since = "return", self.clock.now

    def running(self, name: str) -> bool:
        return self.phase != "loss"


def losing(t: float) -> rb.Sample:
    """chunkserver-3 dropped after 1 s; its 100 chunks endangered until 30 s."""
    if t < 1:
        return sample()
    if t < 30:
        return sample(servers=without("chunkserver-3", 100 + int(50 * t / 30)),
                      endangered=100 - int(100 * t / 30))
    return sample(servers=without("chunkserver-3"))


def returning(t: float) -> rb.Sample:
    """Registered after 2 s with 50 overgoal chunks until 8 s; usage even from 20 s."""
    if t < 2:
        return sample(servers=without("chunkserver-3"))
    spread = 0.05 if t < 20 else 0.003
    servers = {"chunkserver-1": server(120, 3 * 1024 * (0.23 + spread)),
               "chunkserver-2": server(120, 3 * 1024 * 0.23),
               "chunkserver-3": server(60, 3 * 1024 * 0.23)}
    return sample(servers=servers, overgoal=50 if t < 8 else 0)


def run(cluster: ScriptedCluster, clock: FakeClock, *argv: str) -> dict:
    args = rb.parse_args(["--hold", "10", *argv])
    return rb.run_round(1, args, cluster, CS, clock=clock, sleep=clock.sleep)


def test_run_round_times_every_phase():
    clock = FakeClock()
    cluster = ScriptedCluster(clock, losing, returning)
    got = run(cluster, clock)
    assert cluster.kills == cluster.starts == ["chunkserver-3"]
    # polls answer 0.1 s after they are asked, every 0.5 s: t = 0.1, 0.6, 1.1, ...
    assert got["noticed_s"] == pytest.approx(1.1)
    assert got["re_replicated_s"] == pytest.approx(30.1)
    assert got["re_replicated_mib_s"] == pytest.approx(700 / 30.1, abs=0.05)
    assert got["on_killed"] == {"chunks": 100, "bytes": 700 * MIB}
    assert got["peak_below_goal"]["endangered"] == 97
    assert got["registered_s"] == pytest.approx(2.1)
    assert got["overgoal_cleared_s"] == pytest.approx(8.1)
    assert got["rebalanced_s"] == pytest.approx(20.1)
    assert got["spread_pp"] == pytest.approx(0.3)
    assert got["chunk_ratio"] == 2.0
    assert got["not_reached"] == []
    assert got["cluster_chunks"] == 150
    assert got["timeline"]["loss"][0]["servers"]["chunkserver-3"]["chunks"] == 100
    assert got["timeline"]["return"][-1]["t"] == pytest.approx(30.1)


def test_run_round_reports_what_a_timed_out_phase_reached_and_starts_the_server():
    clock = FakeClock()
    def stuck(t: float) -> rb.Sample:
        return sample(servers=without("chunkserver-3", 140), endangered=10)

    cluster = ScriptedCluster(clock, stuck, returning)
    got = run(cluster, clock, "--timeout", "5", "--rebalance-timeout", "15")
    assert cluster.starts == ["chunkserver-3"]
    assert got["re_replicated_s"] is None and got["re_replicated_mib_s"] is None
    assert got["noticed_s"] == pytest.approx(0.1)
    assert got["rebalanced_s"] is None and got["registered_s"] == pytest.approx(2.1)
    assert got["not_reached"] == [
        ("not re-replicated after 5 s: 5 s after the kill: 10 endangered; chunkserver-3 gone "
         "from the master's list"),
        ("not rebalanced after 15 s: 15 s after the start: usage spread 5.00 pp > 1 (best "
         "spread 5.00 pp)")]


def test_run_round_starts_the_server_when_interrupted():
    clock = FakeClock()

    def interrupted(t: float) -> rb.Sample:
        raise KeyboardInterrupt

    cluster = ScriptedCluster(clock, interrupted, returning)
    with pytest.raises(KeyboardInterrupt):
        run(cluster, clock)
    assert cluster.starts == ["chunkserver-3"]


def test_wait_baseline_times_out_naming_the_problem():
    clock = FakeClock()
    cluster = ScriptedCluster(clock, losing, returning)
    cluster.phase, cluster.scripts["baseline"] = "baseline", None
    cluster.sample = lambda: (clock.sleep(0.1), sample(undergoal=3))[1]
    with pytest.raises(rb.Timeout, match="no quiet baseline after 3 s: 3 undergoal"):
        rb.wait_baseline(cluster, CS, timeout=3, interval=0.5, clock=clock, sleep=clock.sleep)


# ------------------------------------------------------------------------ command line


def test_parse_args_defaults():
    args = rb.parse_args([])
    assert args.size == GIB and args.chunkserver == "chunkserver-3" and args.rounds == 1
    assert args.timeout == 600 and args.rebalance_timeout == 900 and args.target == 60
    assert args.tolerance == 1.0 and args.directory == "bench-replication"
    assert args.storage_class == "two_copies" and not args.reuse


@pytest.mark.parametrize("argv", [["--size", "lots"], ["--rounds", "0"], ["--interval", "0.05"],
                                  ["--timeout", "0"], ["--tolerance", "0"], ["--hold", "-1"],
                                  ["--directory", "../x"], ["--storage-class", "a b"]])
def test_parse_args_rejects_bad_values(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        rb.parse_args(argv)
    assert exc.value.code == 2


def test_the_rate_counts_the_bytes_the_servers_left_gained():
    before = sample(servers={"chunkserver-1": server(100, 700), "chunkserver-2": server(100, 700),
                             "chunkserver-3": server(100, 700)})
    after = sample(servers={"chunkserver-1": server(150, 1000), "chunkserver-2": server(150, 1100)})
    assert rb.created_bytes(before, after, "chunkserver-3") == 700 * MIB
    assert rb.created_bytes(before, None, "chunkserver-3") is None


def test_no_baseline_while_a_server_reports_its_host_volume_instead_of_its_tiers():
    """A server with a tier in the leave-free form looks nearly full to the master:
    data written or a kill timed then measures the wrong thing (1 GiB re-replicated in
    1.7 s because the restarted server held 181 of 2094 chunks)."""
    fresh = {"chunkserver-1": server(100, 700), "chunkserver-2": server(100, 700),
             "chunkserver-3": server(10, 190_000, total=195 * GIB)}
    problem = rb.baseline_problem(sample(servers=fresh), CS)
    assert problem and problem.startswith("chunkserver-3 reports") and "leave N free" in problem
    settled = {**fresh, "chunkserver-3": server(10, 70)}
    assert rb.baseline_problem(sample(servers=settled), CS) is None
