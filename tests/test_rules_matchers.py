"""Label matchers have Alertmanager's semantics: equality, anchored RE2 regexes in linear time, bounded length."""

from __future__ import annotations

import re
import time
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rules_helpers import T0, engine_for, rule_settings, write_rule

from monitorkit.rules.errors import MatcherError
from monitorkit.rules.silences import MAX_MATCHER_CHARS, Matcher, create_silence, parse_matcher
from monitorkit.store import Store

LABELS = st.dictionaries(st.sampled_from(["host", "env", "component"]), st.text("ab-", max_size=6), max_size=3)
VALUES = st.text("ab", max_size=10)


def patterns() -> st.SearchStrategy[str]:
    """Regexes both Python's re and RE2 read the same way: literals, ., classes, groups, | and quantifiers."""
    atoms = st.sampled_from(["a", "b", ".", "[ab]", "[^a]", "a-b", ""])
    return st.recursive(
        atoms,
        lambda inner: st.one_of(
            st.tuples(inner, inner).map("".join),
            st.tuples(inner, inner).map(lambda t: f"{t[0]}|{t[1]}"),
            st.tuples(inner, st.sampled_from(["*", "+", "?", "{1,2}"])).map(lambda t: f"({t[0]}){t[1]}"),
        ),
        max_leaves=6,
    )


@given(labels=LABELS, label=st.sampled_from(["host", "env", "component"]), value=st.text("ab-", max_size=6))
def test_equality_matchers_compare_the_whole_value_and_a_missing_label_is_empty(
        labels: dict[str, str], label: str, value: str) -> None:
    have = labels.get(label, "")
    assert Matcher(label, "=", value).matches(labels) == (have == value)
    assert Matcher(label, "!=", value).matches(labels) == (have != value)


@settings(max_examples=300)
@given(pattern=patterns(), value=VALUES)
def test_regex_matchers_are_anchored_at_both_ends_like_alertmanager(pattern: str, value: str) -> None:
    expected = re.fullmatch(pattern, value) is not None  # Alertmanager compiles "^(?:" + pattern + ")$"
    assert Matcher("host", "=~", pattern).matches({"host": value}) == expected
    assert Matcher("host", "!~", pattern).matches({"host": value}) == (not expected)
    assert parse_matcher(f"host=~{pattern}") == Matcher("host", "=~", pattern)


def test_a_regex_matches_the_whole_value_not_a_part() -> None:
    assert not Matcher("host", "=~", "web").matches({"host": "web1"})
    assert Matcher("host", "=~", "web.*").matches({"host": "web1"})
    assert not Matcher("host", "=~", "b|c").matches({"host": "abc"})  # ^(?:b|c)$, not ^b|c$
    assert Matcher("host", "!~", "web").matches({})  # a missing label is "", which is not "web"


def _best_of(fn: object, repeat: int = 7) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        fn()  # type: ignore[operator]
        best = min(best, time.perf_counter() - started)
    return best


@settings(max_examples=20, deadline=None)
@given(n=st.integers(24, 40), evil=st.sampled_from(["(a+)+b", "(a*)*b", "(a|aa)+b", "(a|a?)+b", "(.*a){12}b"]))
def test_evaluation_time_is_linear_in_the_input_for_nested_quantifiers(n: int, evil: str) -> None:
    # Backtracking takes about 2**n steps on "aaa...a" (24 characters: a second; 40: days).
    # RE2 takes time linear in n: compare against a plain pattern on the same input, at the same moment.
    value = {"component": "a" * n}
    nested, plain = Matcher("component", "=~", evil), Matcher("component", "=~", "a+b")
    assert not nested.matches(value)
    assert _best_of(lambda: [nested.matches(value) for _ in range(100)]) < \
        50 * _best_of(lambda: [plain.matches(value) for _ in range(100)]) + 0.001


@pytest.mark.parametrize(("text", "message"), [
    ("host=~(a)\\1", "backreferences"),  # RE2 has none: refused with the reason, not accepted and ignored
    ("host=~(?=a)", "lookarounds"),
    ("host=~(", "missing )"),
    ("host=~" + "a" * MAX_MATCHER_CHARS, "over the limit"),
])
def test_regexes_re2_cannot_run_and_overlong_matchers_are_refused_with_the_reason(text: str, message: str) -> None:
    with pytest.raises(MatcherError, match=re.escape(message)):
        parse_matcher(text)


@pytest.mark.timeout(60)
def test_a_silence_with_a_nested_quantifier_costs_a_pass_nothing(tmp_path: Path) -> None:
    sql = "SELECT repeat('a', 40) AS component, 1 AS value"
    write_rule(tmp_path / "rules", "evil", sql)
    with Store(tmp_path / "m.duckdb", settings=rule_settings(tmp_path / "rules")) as store, \
            engine_for(store) as engine:
        store.submit(lambda con: create_silence(
            con, [parse_matcher("component=~(a+)+b")], starts_at=T0, duration=timedelta(hours=1),
            created_by="test", comment="an evil regex", now=T0)).result()
        report = engine.run(T0 + timedelta(seconds=1))  # 2**40 steps with a backtracking matcher
        assert [e.event for e in report.events] == ["pending", "firing"]  # not silenced: no match
        assert store.query("SELECT silenced_by FROM alerts") == [(None,)]
