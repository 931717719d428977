"""scripts/idle_cost.py: Docker's stats readings, the window's figures, the memory target and
the sampling loop on a fake clock (no Docker)."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))

import idle_cost as idle

MIB = 1 << 20
GIB = 1 << 30


def stats(cpu_ns: int, usage: int, inactive: int = 0, v1: bool = False) -> dict:
    """A reading shaped like the Docker API's /containers/{id}/stats answer."""
    key = "total_inactive_file" if v1 else "inactive_file"
    return {"read": "2024-11-29T10:00:00.000000000Z",
            "cpu_stats": {"cpu_usage": {"total_usage": cpu_ns}, "online_cpus": 2,
                          "system_cpu_usage": 123456789000000},
            "memory_stats": {"usage": usage, "limit": 8 * GIB,
                             "stats": {key: inactive, "active_file": 1024}}}


def test_memory_is_usage_less_the_inactive_page_cache_in_both_cgroup_versions():
    assert idle.memory_bytes(stats(0, 300 * MIB, 100 * MIB)) == 200 * MIB
    assert idle.memory_bytes(stats(0, 300 * MIB, 100 * MIB, v1=True)) == 200 * MIB
    assert idle.memory_bytes(stats(0, 300 * MIB, 400 * MIB)) == 300 * MIB  # nonsense: usage
    assert idle.memory_bytes({"memory_stats": {}}) is None
    assert idle.memory_bytes({}) is None


def test_cpu_is_the_cumulative_total_usage():
    assert idle.cpu_ns(stats(5_000_000_000, 0)) == 5_000_000_000
    assert idle.cpu_ns({"cpu_stats": {}}) is None


def test_container_figures_from_first_and_last_reading():
    samples = [(0.0, 1_000_000_000, 100 * MIB), (5.0, 1_500_000_000, 120 * MIB),
               (10.0, 2_000_000_000, 110 * MIB)]
    figures = idle.container_figures(samples)
    assert figures["samples"] == 3
    assert figures["memory_mean_bytes"] == 110 * MIB and figures["memory_max_bytes"] == 120 * MIB
    assert figures["memory_mean_mib"] == 110.0
    assert figures["cpu_seconds"] == 1.0 and figures["window_s"] == 10.0
    assert figures["cpu_percent"] == 10.0  # 1 CPU second in 10 s: a tenth of one core


def test_one_reading_gives_memory_but_no_cpu():
    figures = idle.container_figures([(0.0, 10, 64 * MIB)])
    assert figures["memory_mean_bytes"] == 64 * MIB and figures["cpu_percent"] is None


def test_summary_totals_target_and_top_consumers():
    samples = {
        "master-1": [(0.0, 0, 600 * MIB), (60.0, 12_000_000_000, 600 * MIB)],   # 20 %
        "toxiproxy": [(0.0, 0, 20 * MIB), (60.0, 15_000_000_000, 22 * MIB)],   # 25 %
        "client-1": [(0.0, 0, 50 * MIB), (60.0, 600_000_000, 50 * MIB)],       # 1 %
    }
    result = idle.summarize(samples, cores=2)
    total = result["total"]
    assert total["containers"] == 3
    assert total["memory_bytes"] == 671 * MIB and total["memory_mib"] == 671.0
    assert total["cpu_percent"] == 46.0 and total["host_percent"] == 23.0
    assert result["target_memory_bytes"] == GIB and result["memory_met"] is True
    assert [t["service"] for t in result["top_memory"]] == ["master-1", "client-1",
                                                            "toxiproxy"]
    assert [t["service"] for t in result["top_cpu"]] == ["toxiproxy", "master-1", "client-1"]
    assert idle.summarize(samples, cores=2, target=512 * MIB)["memory_met"] is False
    lines = idle.summary_lines(result)
    assert "671.0 MiB (target <= 1024 MiB: met)" in lines[0]
    assert lines[2].startswith("top CPU: toxiproxy 25.0 %")


class FakeContainer:
    def __init__(self, service: str, per_second_ns: int, memory: int, broken_at=()):
        self.labels = {idle.SERVICE_LABEL: service}
        self.name = f"mooseng_{service}_1"
        self.per_second_ns, self.memory, self.broken_at = per_second_ns, memory, broken_at


def test_sampling_window_on_a_fake_clock():
    now = [0.0]
    containers = [FakeContainer("master-1", 200_000_000, 500 * MIB),
                  FakeContainer("client-1", 10_000_000, 40 * MIB, broken_at=(10.0,))]

    def read(container):
        if now[0] in container.broken_at:
            raise RuntimeError("stats: connection reset")
        return stats(int(container.per_second_ns * now[0]), container.memory)

    def sleep(seconds):
        now[0] += seconds

    samples = idle.sample_window(containers, seconds=30, interval=5, read=read,
                                 clock=lambda: now[0], sleep=sleep)
    assert [t for t, _, _ in samples["master-1"]] == [0, 5, 10, 15, 20, 25, 30]
    assert len(samples["client-1"]) == 6  # the reading at 10 s failed and was left out
    result = idle.summarize(samples, cores=2)
    assert result["containers"]["master-1"]["cpu_percent"] == 20.0
    assert result["containers"]["client-1"]["cpu_percent"] == 1.0
    assert result["total"]["memory_mib"] == 540.0


def test_make_up_figure_is_read_from_makes_line():
    found = idle.MAKE_UP_HEALTHY.search("==> starting the cluster\n==> all services healthy "
                                        "24s after 'up'\n")
    assert found and found.group(1) == "24"


def test_arguments():
    args = idle.parse_args([])
    assert args.seconds == 60 and args.interval == 5 and not args.make_up
    for bad in (["--seconds", "0"], ["--interval", "0.1"], ["--seconds", "5", "--interval",
                                                             "10"], ["--target", "0"]):
        with pytest.raises(SystemExit):
            idle.parse_args(bad)


def test_memory_by_process_sums_each_command_over_the_containers():
    tops = {"master-1": {"Titles": ["PID", "RSS", "COMMAND"],
                         "Processes": [["1", "470004", "mfsmaster"], ["2", "14828", "haproxy"],
                                       ["3", "x", "broken"]]},
            "chunkserver-1": {"Titles": ["PID", "RSS", "COMMAND"],
                              "Processes": [["1", "139048", "mfschunkserver"],
                                            ["2", "14672", "haproxy"]]},
            "logs": {"Titles": ["PID", "COMMAND"], "Processes": [["1", "rsyslogd"]]}}
    got = idle.memory_by_process(tops)
    assert list(got["by_command"]) == ["mfsmaster", "mfschunkserver", "haproxy"]
    assert got["by_command"]["haproxy"] == {"processes": 2, "rss_mib": 28.8,
                                            "containers": ["chunkserver-1", "master-1"]}
    assert got["largest_per_container"]["master-1"] == {"command": "mfsmaster",
                                                        "rss_mib": 459.0}
    assert "logs" not in got["largest_per_container"]  # no RSS column: nothing claimed
