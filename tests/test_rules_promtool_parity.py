"""monitorkit's alerts agree with the real promtool (Debian's prometheus 2.42) at every evaluation.

Each case of tests/promtool_cases/ runs through ``promtool test rules`` with a PromQL rule and
through monitorkit with the same rule in SQL (tests/promtool_harness.py); promtool compares the
states, labels, annotations and ActiveAt of every alert at every evaluation.
"""

from __future__ import annotations

import subprocess
from collections import Counter
from pathlib import Path

import pytest
from promtool_harness import PROMTOOL, ParityCase, check, load_cases, promtool_files, run_monitorkit, run_promtool

CASES = load_cases()
FAMILIES = {"for": 6, "keep_firing_for": 6, "label_sets": 6, "templates": 10, "no_for": 4, "staleness": 7}


def test_promtool_is_the_real_one() -> None:
    done = subprocess.run([PROMTOOL, "--version"], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, "promtool is missing: apt-get install prometheus (.ci/run does)"
    assert "promtool, version 2." in done.stdout + done.stderr


def test_the_cases_cover_every_family() -> None:
    assert Counter(c.family for c in CASES) == FAMILIES
    assert len(CASES) >= 30
    assert len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_monitorkit_agrees_with_promtool(case: ParityCase, tmp_path: Path) -> None:
    report = check(case, tmp_path)
    assert report is None, report


def _one(name: str) -> ParityCase:
    return next(c for c in CASES if c.name == name)


@pytest.mark.parametrize(
    ("change", "shows"),
    [
        # monitorkit's threshold differs: the alerts promtool finds are not on the expected side
        ({"sql": "SELECT host, value FROM instant('m', eval_time()) WHERE value > 65"}, 'host="web1"'),
        # the same alerts, another annotation text
        ({"mk_annotations": {"summary": "{{ host }} is at {{ value }} %"}}, "web1 is at 60 %"),
    ],
)
def test_the_harness_reports_a_disagreement(change: dict[str, object], shows: str, tmp_path: Path) -> None:
    case = _one("labels and an integer value")._replace(**change)  # type: ignore[arg-type]
    report = check(case, tmp_path)
    assert report is not None and "promtool disagrees" in report and shows in report, report


def test_keep_firing_for_counted_from_the_last_true_evaluation_would_disagree(tmp_path: Path) -> None:
    # The old engine resolved `every: 1m, keep_firing_for: 1m` at the first quiet evaluation, as
    # monitorkit without keep_firing_for does; promtool keeps it firing one evaluation longer.
    case = _one("1m evaluations with keep_firing_for 1m keep it one more evaluation")
    early = run_monitorkit(case._replace(keep_firing_for="0s"))
    passed, output = run_promtool(promtool_files(case, early, tmp_path))
    assert not passed and "time: 4m" in output, output
