"""The failover benchmark's per-node breakdown, on log lines recorded from a real kill."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))

import failover_breakdown as fb

# Round 2 of `scripts/failover_benchmark.py --kills 2` on the lab (master-1 killed at
# 23:04:54.051606 UTC, master-3 took over), lines as `docker logs -t` gives them.
KILLED_AT = 1795993494.0516062
DEAD_AT = KILLED_AT + 0.09
MASTER_3 = """\
2026-11-29T23:04:53.900000000Z mfsmetalogger[395]: connected to Master
2026-11-29T23:04:55.436321940Z 2026-11-29 23:04:55,435 INFO mooseng.ha: event=ha_decision decision='promoted self because the lease expired and my change number 41729 is highest (lease epoch 25)'
2026-11-29T23:04:55.940312490Z 2026-11-29 23:04:55,939 INFO mooseng.mfs: event=promotion_step step=restored took=0.50s
2026-11-29T23:04:56.354044719Z 2026-11-29 23:04:56,353 INFO mooseng.mfs: event=promotion_step step=mfsmaster_ready took=0.92s
2026-11-29T23:04:56.383752910Z 2026-11-29 23:04:56,383 INFO mooseng.ha: event=promoted epoch=25 took=0.92s start_version=41729
2026-11-29T23:04:56.490824450Z mfsmaster[336]: chunkserver register end (packet version: 6) - ip: 172.18.0.8 / port: 9422
2026-11-29T23:04:56.597736583Z mfsmaster[336]: chunkserver register end (packet version: 6) - ip: 172.18.0.10 / port: 9422
2026-11-29T23:04:56.626972943Z mfsmaster[336]: chunkserver register end (packet version: 6) - ip: 172.18.0.9 / port: 9422
""".splitlines()
CLIENT_2 = """\
2026-11-29T23:04:54.143536688Z mfsmount[13]: master: register error (read header: ECONNRESET (Connection reset by peer))
2026-11-29T23:04:55.600000000Z Server clients/master-1 is DOWN via leader-check/master-1. 0 active and 0 backup servers left.
2026-11-29T23:04:56.409404201Z Server clients/master-3 is UP via leader-check/master-3. 1 active and 0 backup servers online. 0 sessions requeued, 0 total in queue.
2026-11-29T23:04:56.416650024Z event=router_hold listener=clients waited_ms=260 routed=true
2026-11-29T23:04:56.418793912Z mfsmount[13]: registered to master
""".splitlines()
CHUNKSERVER_2 = """\
2026-11-29T23:04:55.001000000Z mfschunkserver[9]: connecting ...
2026-11-29T23:04:56.544511425Z Server chunkservers/master-3 is UP via leader-check/master-3. 1 active and 0 backup servers online. 0 sessions requeued, 0 total in queue.
""".splitlines()
HISTORY = [
    {"t": KILLED_AT - 0.039, "type": "invoke", "f": "write-file", "seq": 77},
    {"t": KILLED_AT - 0.032, "type": "ok", "f": "write-file", "seq": 77},
    {"t": KILLED_AT + 0.013, "type": "invoke", "f": "append", "seq": 78},
    {"t": KILLED_AT + 3.101, "type": "ok", "f": "append", "seq": 78},
    {"t": KILLED_AT + 3.102, "type": "invoke", "f": "write-file", "seq": 79},
    {"t": KILLED_AT + 3.179, "type": "ok", "f": "write-file", "seq": 79},
    {"t": KILLED_AT + 3.200, "type": "invoke", "f": "write-file", "seq": 81},
    {"t": KILLED_AT + 3.211, "type": "ok", "f": "write-file", "seq": 81},
]


def test_docker_timestamps_keep_their_fraction_and_lines_without_one_are_skipped():
    t, text = fb.parse_line("2026-11-29T23:04:56.418793912Z mfsmount[13]: registered to master")
    assert t == pytest.approx(KILLED_AT + 2.367187, abs=1e-5)
    assert text == "mfsmount[13]: registered to master"
    assert fb.parse_line("mfsmount[13]: registered to master") is None
    assert fb.parse_line("2026-11-29T23:04:56Z whole second")[0] == pytest.approx(KILLED_AT + 1.948394, abs=1e-5)
    assert len(fb.timed(["no stamp", *CLIENT_2])) == len(CLIENT_2)


def test_the_new_leaders_promotion_steps_come_from_its_agent_log():
    steps = fb.leader_steps(fb.timed(MASTER_3), KILLED_AT)
    assert steps == pytest.approx({"promotion": 1.3847, "restored": 1.8887,
                                   "mfsmaster_ready": 2.3024, "served": 2.3321}, abs=1e-3)


def test_each_client_and_chunkserver_gets_its_own_steps():
    result = fb.round_breakdown(
        KILLED_AT, DEAD_AT, "master-3",
        {"master-3": MASTER_3, "client-2": CLIENT_2, "chunkserver-2": CHUNKSERVER_2},
        {"172.18.0.10": "chunkserver-2", "172.18.0.8": "chunkserver-1"},
        {"client-2": HISTORY})
    assert result["leader"]["name"] == "master-3"
    client = result["clients"]["client-2"]
    assert client["router"] == pytest.approx(2.3578, abs=1e-3)
    assert client["registered"] == pytest.approx(2.3672, abs=1e-3)
    assert client["held_ms"] == 260
    # the append running at the kill completed at mfsmount's next retry, then the first file
    assert client["in_flight_done"] == pytest.approx(3.101)
    assert client["first_file"] == pytest.approx(3.179)
    chunkserver = result["chunkservers"]["chunkserver-2"]
    assert chunkserver["router"] == pytest.approx(2.4929, abs=1e-3)
    # registered: mfsmaster's line for chunkserver-2's address (172.18.0.10), not another's
    assert chunkserver["registered"] == pytest.approx(2.5461, abs=1e-3)


def test_the_routers_stderr_lines_give_the_same_steps():
    """HAProxy prints its notices on stderr with a level prefix (the routers have no log
    target): the router switch and the hold read from that form too."""
    stderr_form = [
        CLIENT_2[0],
        ("2026-11-29T23:04:56.409404201Z [WARNING]  (10) : Server clients/master-3 is UP via "
         "leader-check/master-3. 1 active and 0 backup servers online."),
        ("2026-11-29T23:04:56.416650024Z [warning] 333/230456 (10) : event=router_hold "
         "listener=clients waited_ms=260 routed=true"),
        CLIENT_2[-1]]
    lines = fb.timed(stderr_form)
    assert fb.router_switched(lines, "clients", "master-3", KILLED_AT) == pytest.approx(
        KILLED_AT + 2.3578, abs=1e-3)
    assert fb.held_ms(lines, "clients", KILLED_AT) == 260


def test_a_step_that_did_not_happen_is_left_out_not_invented():
    result = fb.round_breakdown(KILLED_AT, DEAD_AT, "master-2",
                                {"master-2": [], "client-1": CLIENT_2[:1]}, {}, {"client-1": []})
    assert set(result["leader"]) == {"name"}
    assert result["clients"]["client-1"] == {"held_ms": 0}
    # a hold that ended without a route does not count as held
    refused = ["2026-11-29T23:04:55.000000000Z event=router_hold listener=clients waited_ms=900 routed=false"]
    assert fb.held_ms(fb.timed(refused), "clients", KILLED_AT) == 0


def test_operations_before_the_kill_or_invoked_after_the_old_leader_died_are_not_in_flight():
    quiet = [r for r in HISTORY if r["seq"] != 78]
    assert "in_flight_done" not in fb.client_ops(quiet, KILLED_AT, DEAD_AT)
    # a file creation invoked before the container was gone is not the first file
    early = [{"t": KILLED_AT + 0.02, "type": "invoke", "f": "write-file", "seq": 90},
             {"t": KILLED_AT + 2.9, "type": "ok", "f": "write-file", "seq": 90}]
    assert fb.client_ops(early, KILLED_AT, DEAD_AT) == {"in_flight_done": pytest.approx(2.9)}


def test_summary_pools_every_round_and_describe_prints_a_line_per_node():
    one = fb.round_breakdown(KILLED_AT, DEAD_AT, "master-3",
                             {"master-3": MASTER_3, "client-2": CLIENT_2,
                              "chunkserver-2": CHUNKSERVER_2},
                             {"172.18.0.10": "chunkserver-2"}, {"client-2": HISTORY})
    summary = fb.summarize([one, one])
    assert summary["clients.first_file"]["p50"] == 3.18
    assert summary["leader.served"]["max"] == 2.33
    assert "clients.in_flight_done" in summary and "chunkservers.registered" in summary
    lines = fb.describe(one)
    assert lines[0].startswith("  master-3: promotion=+1.38")
    assert any(line.startswith("  client-2: router=+2.36 registered=+2.37") and "held=260ms" in line
               for line in lines)
