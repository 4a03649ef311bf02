"""The promotion rule of the rungs, on hand-made points."""

import pytest

from search.rungs import Rungs, child_attrs, promotions
from studies import front

METRICS = ("dice", "latency_ms", "size_kb")


def point(number, dice, latency, size=100.0, rung=0, parent=None, state="COMPLETE"):
    attrs = {"rung": rung} | ({"parent": parent, "candidate": parent} if parent is not None else {})
    return front.TrialPoint(number, number, state, {"dice": dice, "latency_ms": latency, "size_kb": size}, attrs=attrs)


def test_rungs_are_checked_and_stage_their_epochs():
    rungs = Rungs((2, 6, 18))
    assert rungs.horizon == 18 and [rungs.stage(r) for r in range(3)] == [(0, 2), (2, 4), (6, 12)]
    for bad in [(), (6, 2), (2, 2), (0, 3)]:
        with pytest.raises(ValueError, match="increasing epochs"):
            Rungs(bad)
    with pytest.raises(ValueError, match="eta"):
        Rungs((2, 6), eta=1)


def test_the_best_third_of_a_rung_by_non_dominated_sorting_is_promoted_once():
    rung0 = [point(0, 0.80, 10.0), point(1, 0.60, 2.0), point(2, 0.50, 9.0), point(3, 0.40, 8.0),
             point(4, 0.70, 11.0), point(5, 0.30, 12.0)]
    due = promotions(rung0, Rungs((2, 6)), METRICS)
    # front of rung 0: #0 (best Dice) and #1 (fastest); 6 // 3 = 2 promotions, the higher Dice first
    assert [p.number for p in due] == [0, 1]
    claimed = rung0 + [point(6, 0.85, 10.0, rung=1, parent=0, state="RUNNING")]
    assert [p.number for p in promotions(claimed, Rungs((2, 6)), METRICS)] == [1]
    assert promotions(rung0[:2], Rungs((2, 6)), METRICS) == []  # 2 // 3 = 0: too few to judge


def test_higher_rungs_promote_first_and_a_candidate_shows_its_highest_rung():
    rungs = Rungs((1, 3, 9))
    points = [point(n, 0.5 + n / 100, 5.0 - n / 10) for n in range(9)]
    points += [point(9 + k, 0.9 - k / 100, 5.0 + k, rung=1, parent=8 - k) for k in range(3)]
    due = promotions(points, rungs, METRICS)
    assert due[0].number == 9 and rungs.stage(2) == (3, 6)  # rung 1's best goes first
    on_front = {p.number for p in front.front(points, METRICS)}
    assert not on_front & {8, 7, 6}  # superseded by their completed rung-1 trials
    assert child_attrs(due[0]) == {"rung": 2, "parent": 9, "candidate": 8}
