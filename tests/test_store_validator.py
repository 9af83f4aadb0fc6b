"""The validator's series cache must never let a bad value, time or label through."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from monitorkit.errors import InvalidLabelError, InvalidValueError
from monitorkit.samples import Sample, SampleValidator

NOW = datetime(2026, 1, 5, tzinfo=UTC)
GOOD = Sample(NOW, "jobs_total", {"queue": "a"}, 1.0, "h")


@pytest.mark.parametrize(
    ("bad", "error"),
    [
        (GOOD._replace(value=float("nan")), InvalidValueError),
        (GOOD._replace(value=float("inf")), InvalidValueError),
        (GOOD._replace(value="1"), InvalidValueError),  # type: ignore[arg-type]
        (GOOD._replace(value=True), InvalidValueError),
        (GOOD._replace(time=NOW.replace(tzinfo=None)), InvalidValueError),
        (GOOD._replace(labels={"queue": 1}), InvalidLabelError),  # type: ignore[dict-item]
        (GOOD._replace(labels={"queue": ["a"]}), InvalidLabelError),  # type: ignore[dict-item]
        (GOOD._replace(labels=[("queue", "a")]), InvalidLabelError),  # type: ignore[arg-type]
    ],
)
def test_a_cached_series_still_refuses_bad_parts(bad: Sample, error: type[Exception]) -> None:
    check = SampleValidator()
    assert check(GOOD) == GOOD  # the series is now cached
    with pytest.raises(error):
        check(bad)


def test_cached_samples_are_copies_with_float_values() -> None:
    check = SampleValidator()
    check(GOOD)
    labels = {"queue": "a"}
    out = check(GOOD._replace(labels=labels, value=3))
    labels["queue"] = "changed"
    assert out.labels == {"queue": "a"}
    assert out.value == 3.0 and isinstance(out.value, float)
