"""The one metric vocabulary: names, aliases, formatting, KB, limits and counts by state."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from search.config import OBJECTIVE_ALIASES, OBJECTIVES
from studies import metrics


def test_aliases_and_the_error_that_lists_the_choices():
    assert [metrics.metric_name(n) for n in ("latency", " Size ", "dice")] == ["latency_ms", "size_kb", "dice"]
    assert metrics.metric_names(["size", "size_kb", "dice"]) == ("size_kb", "dice")
    with pytest.raises(ValueError, match=r"unknown metric 'speed'; choose one of dice, latency \(ms\), size \(KB\)"):
        metrics.metric_name("speed")
    assert (OBJECTIVES, OBJECTIVE_ALIASES) == (metrics.METRICS, metrics.ALIASES)  # search reads the same vocabulary


def test_format_value_and_size_kb():
    assert metrics.format_value("dice", 0.8123) == "dice 0.812"
    assert metrics.format_value("latency_ms", 23.4) == "latency 23.40 ms"
    assert metrics.format_value("size_kb", metrics.size_kb(317645)) == "size 310.2 KB"
    assert metrics.format_value("size_kb", None) == "size ?"
    assert [metrics.size_kb(v) for v in (2048, None, "x", True, float("inf"))] == [2.0, None, None, None, None]
    assert metrics.trial_metrics({"dice": 0.5, "size_bytes": 1024, "latency_ms": None}) == {"dice": 0.5, "size_kb": 1.0}


def test_limits_are_named_after_their_metric():
    assert metrics.LIMITS == {"min_dice": "dice", "max_latency_ms": "latency_ms", "max_size_kb": "size_kb"}


def test_state_counts_tell_withdrawn_trials_from_failed_ones():
    trials = [SimpleNamespace(state=SimpleNamespace(name=name)) for name in ("COMPLETE", "FAIL", "COMPLETE")]
    withdrawn = SimpleNamespace(state=SimpleNamespace(name="FAIL"), system_attrs={metrics.WITHDRAWN: "the budget was lowered to 2"})
    assert metrics.state_counts(trials) == {"COMPLETE": 2, "FAIL": 1}
    assert metrics.state_counts([*trials, withdrawn]) == {"COMPLETE": 2, "FAIL": 1, "WITHDRAWN": 1}


def test_with_spread_is_the_one_text_of_a_value_and_its_uncertainty():
    assert metrics.with_spread("dice", 0.8123, 0.0214) == "0.812 ± 0.021"
    assert metrics.with_spread("test_dice", 0.69, 0.03) == "0.690 ± 0.030"
    assert metrics.with_spread("latency_ms", 3.587, 0.1234) == "3.59 ± 0.12"
    assert metrics.with_spread("dice", 0.8123, None) == metrics.with_spread("dice", 0.8123, 0.0) == "0.812"
    assert metrics.with_spread("dice", None, 0.02) == "–"
    assert metrics.half_width([0.70, 0.74]) == pytest.approx(0.02) and metrics.half_width([0.7, None]) is None
    assert "0.800" + metrics.plus_minus([0.75, 0.85]) == metrics.with_spread("dice", 0.8, 0.05)
    assert metrics.plus_minus(None) == ""
