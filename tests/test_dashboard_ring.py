"""dashboard/ring.py: the feed's per-series cache keeps exactly the points at or after the cutoff, in order."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from monitorkit.dashboard.ring import Ring


def test_trim_keeps_points_from_the_cutoff_on_and_reclaims_the_front() -> None:
    ring = Ring()
    for i in range(10):
        ring.append(float(i), i * 1.5)
    ring.trim(3.0)
    assert ring.points() == ((3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0), (4.5, 6.0, 7.5, 9.0, 10.5, 12.0, 13.5))
    ring.trim(6.0)  # past half the buffer: the dead front is deleted
    assert len(ring.times) == len(ring) == 4 and ring.points()[0] == (6.0, 7.0, 8.0, 9.0)
    ring.trim(100.0)
    assert len(ring) == 0 and not ring and ring.points() == ((), ())
    ring.append(101.0, -0.0)
    assert ring.points() == ((101.0,), (-0.0,))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.floats(0, 1000)), max_size=80))
def test_matches_a_plain_list_under_any_appends_and_trims(ops: list[tuple[bool, float]]) -> None:
    ring, t = Ring(), 0.0
    model: list[tuple[float, float]] = []
    for is_trim, x in ops:
        if is_trim:
            ring.trim(x)
            model = [p for p in model if p[0] >= x]  # times rise: the front is what falls off
        else:
            t += 1.0
            ring.append(t, x)
            model.append((t, x))
        assert ring.points() == (tuple(p[0] for p in model), tuple(p[1] for p in model))
