"""The one table of storage tiers: what each holds, its bucket, its retention setting and the ranges it serves."""

from __future__ import annotations

from typing import NamedTuple


class Tier(NamedTuple):
    """One tier: ``table`` with time column ``time_col``, buckets of ``step`` seconds (0: raw samples)."""

    name: str
    table: str
    time_col: str
    step: int
    retention_key: str
    serves_up_to: float  # longest range (seconds) read from this tier; the next tier serves longer ones


TIERS: tuple[Tier, ...] = (
    Tier("raw", "samples_raw", "time", 0, "retention.raw", 6 * 3600),
    Tier("1m", "samples_1m", "bucket", 60, "retention.1m", 30 * 86400),
    Tier("1h", "samples_1h", "bucket", 3600, "retention.1h", float("inf")),
)
BY_NAME = {tier.name: tier for tier in TIERS}
ROLLUPS = tuple(tier for tier in TIERS if tier.step)


def tier_for(span_seconds: float) -> str:
    """Return the tier that serves a range of ``span_seconds``: raw up to 6 h, 1m up to 30 days, else 1h."""
    return next(tier.name for tier in TIERS if span_seconds <= tier.serves_up_to)


def tier_case_sql(span: str) -> str:
    """Return a SQL CASE choosing the tier for an INTERVAL expression ``span`` (the same thresholds as ``tier_for``)."""
    whens = " ".join(
        f"WHEN {span} <= INTERVAL {int(t.serves_up_to)} SECOND THEN '{t.name}'" for t in TIERS if t.serves_up_to != float("inf")
    )
    return f"CASE {whens} ELSE '{TIERS[-1].name}' END"
