"""The loss bound of a cut-off leader, judged from ledger, serving histories and lost writes."""

from __future__ import annotations

from chaosmoose.network import _loss

TIMING = {"ttl": 1.5, "safety_margin": 0.3, "freeze_after": 0.4, "contact_check_interval": 0.05}
CUT = {"id": "f1", "t": 100.0, "applied_t": 100.1,
       "cut_off": [{"service": "master-1", "role": "leader"}]}


def history(frozen_at: float | None, fenced_at: float | None) -> list[dict]:
    freezes = [{"frozen_at": frozen_at, "thawed_at": None}] if frozen_at else []
    return [{"epoch": 3, "node": "master-1", "served_from": 50.0, "freezes": freezes,
             "fenced_at": fenced_at, "stepped_down_at": None}]


def lost(*acked: float) -> list[dict]:
    """Lost writes acknowledged at ``acked``, each invoked 10 ms before."""
    return [{"client": "client-1", "seq": i, "f": "append", "invoked_t": t - 0.01,
             "acked_t": t} for i, t in enumerate(acked)]


def test_the_bound_follows_the_reported_timing():
    assert abs(_loss.bound_s(TIMING) - 0.55) < 1e-9
    assert abs(_loss.bound_s({**TIMING, "freeze_after": None}) - 1.25) < 1e-9


def test_writes_lost_between_the_cut_and_the_freeze_are_within_the_bound():
    result = _loss.judge([CUT], {"master-1": history(100.5, 101.3)}, {"master-1": TIMING},
                         lost(100.2, 100.45))
    assert result["valid"] is True and result["outside"] == 0
    (window,) = result["windows"]
    assert window["stopped_by"] == "frozen" and window["window_s"] == 0.4


def test_a_write_lost_after_the_freeze_or_long_before_the_cut_is_outside():
    result = _loss.judge([CUT], {"master-1": history(100.5, 101.3)}, {"master-1": TIMING},
                         lost(100.6, 99.0, 100.3))
    assert result["valid"] is False and result["outside"] == 2


def test_a_freeze_later_than_the_bound_fails_even_without_loss():
    result = _loss.judge([CUT], {"master-1": history(100.9, 101.3)}, {"master-1": TIMING}, [])
    assert result["valid"] is False and "expected within 0.550 s" in result["problems"][0]


def test_without_a_freeze_the_fence_ends_the_window():
    result = _loss.judge([CUT], {"master-1": history(None, 101.2)},
                         {"master-1": {**TIMING, "freeze_after": None}}, lost(101.0))
    assert result["valid"] is True and result["windows"][0]["stopped_by"] == "fenced"


def test_no_history_of_the_cut_off_leader_makes_a_loss_unknown_not_valid():
    result = _loss.judge([CUT], {}, {}, lost(100.2))
    assert result["valid"] is False  # the lost write lies outside every (known) window
    assert _loss.judge([CUT], {}, {}, [])["valid"] is True
    assert _loss.judge([CUT], {"master-1": []}, {"master-1": TIMING}, [])["unknown_because"]


def test_a_write_in_flight_at_the_freeze_and_acknowledged_later_is_inside():
    """Invoked before the freeze, stuck, resent by the mount to the new leader and
    acknowledged seconds later: the old leader may have done part of it."""
    late = [{"client": "client-1", "seq": 147, "f": "write-file", "invoked_t": 100.45,
             "acked_t": 105.3}]
    result = _loss.judge([CUT], {"master-1": history(100.5, 101.3)}, {"master-1": TIMING}, late)
    assert result["valid"] is True and result["outside"] == 0
    after = [{**late[0], "invoked_t": 100.6}]  # invoked once the old leader was frozen
    assert _loss.judge([CUT], {"master-1": history(100.5, 101.3)}, {"master-1": TIMING},
                       after)["outside"] == 1


def test_a_write_acknowledged_just_before_the_cut_counts_as_in_flight_but_not_earlier():
    """Its changelog line may still have been on its way to the followers when the cut
    dropped it; a write acknowledged well before the cut had reached them."""
    just_before = 100.0 - _loss.IN_FLIGHT_S + 0.02
    long_before = 100.0 - _loss.IN_FLIGHT_S - 0.02
    result = _loss.judge([CUT], {"master-1": history(100.5, 101.3)}, {"master-1": TIMING},
                         lost(just_before, long_before))
    assert result["outside"] == 1
    (placed,) = result["outside_ops"]
    assert placed["acked_t"] == long_before and placed["fault"] == "f1"
    assert placed["acked_minus_cut_s"] == round(long_before - 100.0, 3)
