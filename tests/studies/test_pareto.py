"""Fronts, hypervolume, knee and pick on hand-made points with known answers."""

from __future__ import annotations

import dataclasses

import pytest

from studies import front, pareto, storage
from studies.front import TrialPoint
from tests.studies.helpers import make_study


def point(number, dice, latency, size=100.0, state="COMPLETE", feasible=True):
    return TrialPoint(number=number, trial_id=number + 100, state=state,
                      values={"dice": dice, "latency_ms": latency, "size_kb": size}, feasible=feasible)


POINTS = [
    point(0, 0.90, 100.0),  # best dice
    point(1, 0.85, 20.0),   # knee
    point(2, 0.50, 10.0),   # fastest
    point(3, 0.80, 50.0),   # dominated by 1
    point(4, 0.95, 5.0, state="FAIL"),
    point(5, 0.99, 1.0, feasible=False),
    point(6, 0.85, 20.0),   # equal to 1: kept on the front
]
DL = ("dice", "latency")


def test_front_keeps_complete_feasible_non_dominated():
    assert [p.number for p in front.front(POINTS, DL)] == [0, 1, 2, 6]
    assert [p.number for p in front.front(POINTS, ("dice", "latency_ms", "size_kb"))] == [0, 1, 2, 6]


def test_hypervolume_two_dims_known_value():
    pts = [point(0, 0.8, 10.0), point(1, 0.6, 5.0), point(2, 0.5, 15.0)]
    reference = {"dice": 0.0, "latency": 20.0}
    # losses (0.2, 0.5) and (0.4, 0.25) in a unit box: 0.4 + 0.45 - 0.3
    assert pareto.hypervolume(pts, DL, reference) == pytest.approx(0.55)
    assert pareto.hypervolume([], DL, reference) == 0.0
    # a point beyond the reference adds nothing
    assert pareto.hypervolume([point(0, 0.8, 30.0)], DL, reference) == 0.0


def test_hypervolume_three_dims_known_value():
    reference = {"dice": 0.0, "latency": 10.0, "size": 10.0}
    one = [point(0, 0.5, 5.0, 5.0)]
    assert pareto.hypervolume(one, None, reference) == pytest.approx(0.125)
    two = one + [point(1, 0.75, 5.0, 5.0)]  # dominates the first: 0.75 * 0.5 * 0.5
    assert pareto.hypervolume(two, None, reference) == pytest.approx(0.1875)


def test_default_reference_and_history_never_decrease():
    reference = pareto.default_reference(POINTS, DL)
    assert reference == {"dice": 0.0, "latency_ms": pytest.approx(110.0)}
    history = pareto.hypervolume_history(POINTS, DL)
    assert [n for n, _ in history] == [0, 1, 2, 3, 4, 5, 6]
    values = [v for _, v in history]
    assert values == sorted(values) and values[0] > 0
    assert values[-1] == pytest.approx(pareto.hypervolume(POINTS, DL))
    assert values[3] == values[2]  # a dominated trial changes nothing


def test_history_ends_at_the_studys_hypervolume_when_a_promotion_supersedes_its_rung():
    reference = {"dice": 0.0, "latency": 20.0}
    rung = point(0, 0.80, 10.0)
    promoted = dataclasses.replace(point(1, 0.70, 10.0), attrs={"parent": 0})  # scored lower at its next rung
    history = pareto.hypervolume_history([rung, promoted], DL, reference)
    assert [v for _, v in history] == pytest.approx([0.4, 0.35])  # the candidate's highest rung counts, not its best
    assert history[-1][1] == pytest.approx(pareto.hypervolume([rung, promoted], DL, reference))


def test_knee_is_closest_to_utopia_after_normalising():
    assert front.knee(POINTS, DL).number == 1
    assert front.knee([point(9, 0.7, 7.0)], DL).number == 9
    with pytest.raises(LookupError, match="no complete feasible trial"):
        front.knee([point(0, 0.9, 1.0, state="FAIL")], DL)


@pytest.mark.parametrize("rule, expected", [
    ("knee", 1), ("max-dice", 0), ("min-latency", 2), ("min-size", 0),  # all sizes equal: ties go to the best dice
    ("dice>=0.8,min:latency", 1), ("latency<=20,max:dice", 1), ("latency < 20, max:dice", 2),
    ("dice>0.85,knee", 0), ("DICE >= 0.6, min:latency_ms", 1), ("min:size,dice<=0.6", 2),
])
def test_pick(rule, expected):
    assert pareto.pick(POINTS, rule, DL).number == expected


@pytest.mark.parametrize("rule, message", [
    ("", "empty pick rule"),
    ("fastest", "cannot read 'fastest'"),
    ("accuracy>=0.8,min:latency", "unknown metric 'accuracy'"),
    ("dice>=0.8", "has no goal"),
    ("max:dice,min:latency", "has 2 goals"),
    ("dice=>0.8,min:latency", "cannot read"),
    ("dice>=abc,min:latency", "cannot read"),
])
def test_pick_rejects_bad_rules(rule, message):
    with pytest.raises(ValueError, match=message) as error:
        pareto.pick(POINTS, rule, DL)
    assert "max:METRIC" in str(error.value) or "dice, latency" in str(error.value)


def test_pick_nobody_satisfies_names_condition_and_closest():
    with pytest.raises(LookupError) as error:
        pareto.pick(POINTS, "dice>=0.8,latency<=15,max:dice", DL)
    text = str(error.value)
    assert "4 trial(s) meet dice>=0.8 but none of them also meets latency<=15" in text
    assert "closest is trial 1 (dice 0.850, latency 20.00 ms, size 100.0 KB)" in text
    with pytest.raises(LookupError, match="no complete feasible trial meets dice>=0.97"):
        pareto.pick(POINTS, "dice>=0.97,knee", DL)
    with pytest.raises(LookupError, match="no complete feasible trial to pick"):
        pareto.pick([point(0, 0.9, 1.0, state="FAIL")], "knee", DL)


def test_points_from_a_real_study(tmp_path):
    import optuna

    opened = storage.open_storage(f"sqlite:///{tmp_path / 'studies.db'}")
    study = make_study(opened, "s", [(0.9, 100.0, 300.0), (0.85, 20.0, 200.0)])
    study.add_trial(optuna.trial.create_trial(values=[0.0, 5.0, 50.0], user_attrs={"infeasible": "latency 5 > 1"}))
    study.add_trial(optuna.trial.create_trial(values=[0.9, 5.0, 50.0], system_attrs={"constraints": [0.5]}))
    study.add_trial(optuna.trial.create_trial(state=optuna.trial.TrialState.FAIL, user_attrs={"error": "NaN loss"}))
    points = front.study_points(study)
    assert [p.state for p in points] == ["COMPLETE"] * 4 + ["FAIL"]
    assert [p.feasible for p in points] == [True, True, False, False, True]
    assert points[0].values == {"dice": 0.9, "latency_ms": 100.0, "size_kb": 300.0}
    assert points[0].objectives == ("dice", "latency_ms", "size_kb")
    assert points[0].trial_id == study.trials[0]._trial_id and points[0].summary
    assert points[2].infeasible == "latency 5 > 1"
    assert [p.number for p in front.front(points)] == [0, 1]


@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
def test_two_objective_study_takes_size_from_attrs(tmp_path):
    import optuna

    from studies import status
    from tests.studies.helpers import attrs

    opened = storage.open_storage(f"sqlite:///{tmp_path / 'studies.db'}")
    study = optuna.create_study(storage=opened, study_name="two", directions=["maximize", "minimize"])
    study.set_metric_names(["dice", "latency_ms"])
    for dice, latency, size in [(0.9, 30.0, 100.0), (0.8, 10.0, 50.0), (0.7, 20.0, 10.0)]:
        study.add_trial(optuna.trial.create_trial(values=[dice, latency], user_attrs=attrs(dice, latency, size)))
    points = front.study_points(study)
    assert points[2].objectives == ("dice", "latency_ms") and points[2].values["size_kb"] == pytest.approx(10.0)
    assert [p.number for p in front.front(points)] == [0, 1]  # trial 2 is dominated on (dice, latency)
    assert pareto.pick(points, "min-size").number == 2
    result = status.study_status(study)
    assert result.objectives == ("dice", "latency_ms") and set(result.reference) == {"dice", "latency_ms"}
