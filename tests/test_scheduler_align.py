"""Sample timestamps snap to the tick they jittered past (Prometheus-style alignment), never further."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from monitorkit.owner.scheduler import align

T0 = datetime(2026, 11, 27, 12, 0, 0, tzinfo=UTC)


def test_a_few_milliseconds_late_is_stamped_at_the_tick() -> None:
    assert align(T0 + timedelta(microseconds=276), 1.0) == T0
    assert align(T0 + timedelta(milliseconds=20), 1.0) == T0  # the tolerance itself: 2 % of a tick
    assert align(T0 + timedelta(milliseconds=90), 5.0) == T0  # 1.8 % of a 5 s tick
    assert align(T0 + timedelta(milliseconds=150), 5.0) == T0 + timedelta(milliseconds=150)  # 3 %: kept


def test_far_from_a_tick_the_time_is_kept() -> None:
    late = T0 + timedelta(milliseconds=21)
    assert align(late, 1.0) == late
    early = T0 - timedelta(microseconds=1)  # never moved forward
    assert align(early, 1.0) == early
    assert align(T0 + timedelta(milliseconds=329), 1.0) == T0 + timedelta(milliseconds=329)


@given(st.integers(min_value=0, max_value=10**15), st.sampled_from([0.5, 1.0, 2.0, 10.0]))
def test_alignment_moves_back_by_at_most_the_tolerance_onto_a_boundary(micros: int, tick: float) -> None:
    now = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=micros)
    out = align(now, tick)
    moved = now - out
    assert timedelta(0) <= moved <= timedelta(seconds=0.02 * tick)
    if moved:
        assert (out - datetime(1970, 1, 1, tzinfo=UTC)) % timedelta(seconds=tick) == timedelta(0)
    assert out.tzinfo is not None
