"""Parsing and time windows of the aggregated logs (no Docker needed)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from chaoslib.exceptions import ActivityFailed

from chaosmoose.logs._collector import parse_line, service_of, to_utc

NOW = datetime(2026, 11, 26, 9, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize("container, service", [
    ("mooseng_master-1_1", "master-1"),          # Compose v1
    ("mooseng-chunkserver-2-1", "chunkserver-2"),  # Compose v2
    ("mooseng_prometheus_1", "prometheus"),
    ("other_thing", "other_thing"),
])
def test_service_of_container_names(container, service):
    assert service_of(container, "mooseng") == service


def test_parse_line_splits_time_container_message():
    line = parse_line("2026-11-26T09:00:00.123456+00:00 mooseng_master-2_1 event=ha_decision "
                      "decision='promoted self'", "mooseng")
    assert line.time == "2026-11-26T09:00:00.123456+00:00" and line.service == "master-2"
    assert line.message == "event=ha_decision decision='promoted self'"
    assert parse_line("", "mooseng") is None


@pytest.mark.parametrize("value, expected", [
    ("2026-11-26T08:00:00Z", "2026-11-26T08:00:00.000000+00:00"),
    ("2026-11-26T10:00:00+01:00", "2026-11-26T09:00:00.000000+00:00"),
    ("2026-11-26T08:00:00", "2026-11-26T08:00:00.000000+00:00"),
    ("90s", "2026-11-26T08:58:30.000000+00:00"),
    ("5m", "2026-11-26T08:55:00.000000+00:00"),
    ("2h", "2026-11-26T07:00:00.000000+00:00"),
    (1795683600.5, "2026-11-26T09:00:00.500000+00:00"),
    ("1795683600.5", "2026-11-26T09:00:00.500000+00:00"),
])
def test_time_bounds_compare_like_the_log_file(value, expected):
    assert to_utc(value, NOW) == expected


def test_time_bounds_sort_as_strings_in_time_order():
    times = [to_utc(v, NOW) for v in ("2h", "5m", "90s", "2026-11-26T09:00:00Z")]
    assert times == sorted(times)


@pytest.mark.parametrize("value", ["yesterday", "5 minutes", True, None])
def test_bad_time_bounds_say_what_is_expected(value):
    with pytest.raises(ActivityFailed, match="is invalid; expected"):
        to_utc(value, NOW)
