"""Feasibility in every form a trial's constraint values were stored, and the one front on a real study."""

from __future__ import annotations

import dataclasses

import numpy as np
import optuna
import pytest

from studies import front, storage
from tests.studies.helpers import attrs, make_study

COMPLETE = optuna.trial.TrialState.COMPLETE
METRICS3 = ("dice", "latency_ms", "size_kb")


def trial(**stored) -> optuna.trial.FrozenTrial:
    return optuna.trial.create_trial(state=COMPLETE, values=[0.9, 5.0, 50.0], **stored)


@pytest.mark.parametrize("stored, feasible", [
    ({}, True),
    ({"constraints": {"max_latency_ms": 0.5}}, False),  # Optuna 5: trial.set_constraint / create_trial(constraints=)
    ({"constraints": {"max_latency_ms": -0.5, "min_dice": 0.0}}, True),
    ({"system_attrs": {"constraints": [0.5]}}, False),  # Optuna < 5: what a sampler's constraints_func wrote
    ({"system_attrs": {"constraints": [-0.5]}}, True),
    ({"user_attrs": {"constraints": [-1.0, 2.0]}}, False),  # nas-lite before Optuna 5's form (random sampler: only here)
    ({"user_attrs": {"constraints": [None]}}, False),  # an infinite value, stored as JSON null
    ({"user_attrs": {"constraints": [-1.0]}}, True),
    ({"user_attrs": {"infeasible": "latency 5 > 1"}}, False),
])
def test_feasible_reads_every_stored_form(stored, feasible):
    assert front.feasible(trial(**stored)) is feasible


def test_constraint_values_from_the_study_limits():
    values = {"dice": 0.7, "latency_ms": 12.0, "size_kb": 300.0}
    limits = {"max_latency_ms": 10.0, "max_size_kb": 500.0, "min_dice": 0.8}
    assert front.limit_constraints(limits, values) == pytest.approx(
        {"max_latency_ms": 2.0, "max_size_kb": -200.0, "min_dice": 0.1})


def test_a_trial_only_optuna_5_knows_is_infeasible_is_off_both_fronts(tmp_path):
    opened = storage.open_storage(f"sqlite:///{tmp_path / 'studies.db'}")
    study = make_study(opened, "s", [(0.9, 100.0, 300.0), (0.85, 20.0, 200.0)])
    study.add_trial(optuna.trial.create_trial(
        values=[0.99, 1.0, 10.0], user_attrs=attrs(0.99, 1.0, 10.0), constraints={"max_latency_ms": 0.5}))
    study.add_trial(optuna.trial.create_trial(  # infeasible to nas-lite only: Optuna never saw this form
        values=[0.8, 10.0, 100.0], user_attrs=attrs(0.8, 10.0, 100.0, constraints=[1.0])))
    assert {t.number for t in study.best_trials} == {0, 1, 3}
    members = front.front_trials(study.get_trials(deepcopy=False), front.objective_names(study), study.study_name)
    assert [t.number for t in members] == [0, 1]
    assert [p.number for p in front.front(front.study_points(study))] == [0, 1]


def test_study_limits_from_the_config_or_the_older_constraints_attribute():
    def study(**user_attrs):
        return type("Study", (), {"user_attrs": user_attrs})()

    config = {"max_latency_ms": 20, "min_dice": None, "max_size_kb": 500.0, "budget": 50}
    assert front.study_limits(study(config=config)) == {"max_latency_ms": 20.0, "max_size_kb": 500.0}
    assert front.study_limits(study(constraints={"min_dice": 0.7})) == {"min_dice": 0.7}
    assert front.study_limits(study()) == {}


def point(number, dice, latency, size=100.0, ci=None, cv=None):
    extra = {"dice_ci95": ci} if ci else {}
    extra |= {"latency_cv": cv, "latency_runs": 50} if cv else {}
    return front.TrialPoint(number, number, "COMPLETE", {"dice": dice, "latency_ms": latency, "size_kb": size}, attrs=extra)


def test_near_ties_within_the_dice_interval_are_ties_and_the_faster_dominates():
    """The new user's case: #19 0.5979869 at 0.6 ms and #37 0.5979793 at 0.3 ms were two front members."""
    slow, fast = point(19, 0.5979869, 0.6, ci=[0.55, 0.64]), point(37, 0.5979793, 0.3, ci=[0.55, 0.64])
    assert not front.dominates(fast, slow, ["dice", "latency_ms"], ties=False)  # exact: each is better in one
    assert front.dominates(fast, slow, ["dice", "latency_ms"])
    assert [p.number for p in front.front([fast, slow], ["dice", "latency_ms"])] == [37]
    # a Dice gain beyond the interval is no tie: both stay
    better = point(40, 0.70, 0.6, ci=[0.66, 0.74])
    assert {p.number for p in front.front([fast, better], ["dice", "latency_ms"])} == {37, 40}


def test_latencies_within_their_standard_error_are_ties():
    noisy_fast, noisy_slow = point(1, 0.80, 1.00, cv=1.5), point(2, 0.81, 1.05, cv=1.5)  # CV 150%: se of the median ~27%
    assert front.uncertainty(noisy_fast, "latency_ms") == pytest.approx(1.2533 * 1.5 / 50 ** 0.5)
    assert front.dominates(noisy_slow, noisy_fast, ["dice", "latency_ms"])  # 5% faster is noise; Dice decides
    steady_fast, steady_slow = point(1, 0.80, 1.00, cv=0.01), point(2, 0.81, 1.05, cv=0.01)
    assert not front.dominates(steady_slow, steady_fast, ["dice", "latency_ms"])
    assert front.uncertainty(point(3, 0.8, 1.0), "latency_ms") == 0.0  # older trials: exact, as before


def test_members_within_each_others_uncertainty_in_every_objective_are_tied_and_both_stay():
    a, b = point(1, 0.720, 10.0, ci=[0.70, 0.74], cv=0.1), point(2, 0.715, 10.05, ci=[0.70, 0.74], cv=0.1)
    metrics = ["dice", "latency_ms", "size_kb"]
    assert front.tied(a, b, metrics) and not front.dominates(a, b, metrics) and not front.dominates(b, a, metrics)
    assert [p.number for p in front.front([a, b], metrics)] == [1, 2]
    assert not front.tied(a, point(3, 0.715, 10.05, size=99.0, ci=[0.70, 0.74], cv=0.1), metrics)  # size is exact


def test_latencies_within_the_spread_of_their_attempts_are_ties():
    """On a busy machine the medians of a model's attempts differ by far more than one attempt's standard error."""
    fast, slow = point(1, 0.80, 1.00, cv=0.15), point(2, 0.81, 1.10, cv=0.15)
    assert not front.dominates(slow, fast, ["dice", "latency_ms"])  # 10% apart beyond a 2.7% standard error
    fast.attrs["latency_attempts_ms"] = [1.00, 1.25, 0.95]
    assert front.uncertainty(fast, "latency_ms") == pytest.approx(0.1607, abs=1e-4)  # their standard deviation
    assert front.dominates(slow, fast, ["dice", "latency_ms"])  # within it: a tie, and Dice decides
    fast.attrs["latency_attempts_ms"] = [1.00]  # one attempt (a steady model): its standard error alone
    assert not front.dominates(slow, fast, ["dice", "latency_ms"])


def per_image(number, dice, latency, images, study="s"):
    """A point of ``study`` with its per-image Dice and the unpaired 95% interval those images give."""
    from evaluators.accuracy import bootstrap_interval

    ci = list(bootstrap_interval(images))
    return dataclasses.replace(point(number, dice, latency, ci=ci), study=study,
                               attrs={"dice_ci95": ci, "dice_per_image": [round(float(d), 4) for d in images]})


def test_a_dice_gain_on_nearly_every_image_is_no_tie_even_inside_both_intervals():
    """The recorded case: a 0.549 model 'dominated' a 0.591 one because their intervals overlap."""
    hard = np.random.default_rng(0).uniform(0.2, 0.9, 26)  # per-image difficulty, shared by both models
    better = hard + 0.042 + np.random.default_rng(1).normal(0, 0.02, 26)
    slow, fast = per_image(1, better.mean(), 2.0, better), per_image(2, hard.mean(), 1.0, hard)
    metrics = ["dice", "latency_ms"]
    assert abs(slow.values["dice"] - fast.values["dice"]) < front.uncertainty(fast, "dice")  # unpaired: a tie
    assert front.tolerance(slow, fast, "dice") < 0.015
    assert not front.dominates(fast, slow, metrics) and [p.number for p in front.front([slow, fast], metrics)] == [1, 2]
    # scored on other images (another study: another split), nothing pairs them and the intervals decide
    other = dataclasses.replace(fast, study="t")
    assert front.tolerance(slow, other, "dice") == front.uncertainty(slow, "dice")
    assert front.dominates(other, slow, metrics)


def test_the_front_of_a_studys_trials_pairs_their_dice_as_the_front_of_its_points(tmp_path):
    """``front_trials`` (the progress line, the summary, early stopping) is ``front(study_points)``: the
    slower model's gain on every image is no tie there either, though within both intervals."""
    hard = np.random.default_rng(0).uniform(0.2, 0.9, 26)
    better = hard + 0.042 + np.random.default_rng(1).normal(0, 0.02, 26)
    study = make_study(storage.open_storage(f"sqlite:///{tmp_path / 's.db'}"), "s", [])
    for scores, latency in ((better, 2.0), (hard, 1.0)):
        dice = float(scores.mean())
        study.add_trial(optuna.trial.create_trial(values=[dice, latency, 100.0], user_attrs=attrs(
            dice, latency, 100.0, dice_per_image=scores.tolist(), dice_ci95=[dice - 0.08, dice + 0.08])))
    members = front.front_trials(study.get_trials(deepcopy=False), front.objective_names(study), study.study_name)
    assert [t.number for t in members] == [p.number for p in front.front(front.study_points(study))] == [0, 1]


def test_paired_differences_nobody_can_see_are_still_ties():
    """#19 0.5979869 and #37 0.5979793: the same on every image but one, by 0.0002; the faster dominates."""
    images = np.random.default_rng(2).uniform(0.3, 0.9, 26)
    nudged = images.copy()
    nudged[3] -= 0.0002
    slow, fast = per_image(19, images.mean(), 0.6, images), per_image(37, nudged.mean(), 0.3, nudged)
    assert front.tolerance(slow, fast, "dice") == front.DICE_RESOLUTION
    assert front.dominates(fast, slow, ["dice", "latency_ms"]) and front.tied(slow, fast, ["dice"])


def test_a_chain_of_ties_does_not_drop_the_best_dice_from_the_front():
    """Recorded at 64x64 on dsb2018: #20 (0.682) was dominated by #15 (0.668, a tie, smaller), and the
    0.70 presets only by #20 and its like, so the front kept two members and nine candidates that no
    member dominates. C dominates B, B dominates A, C does not dominate A: A stays."""
    a, b, c = point(1, 0.70, 3.0, ci=[0.68, 0.72]), point(2, 0.685, 2.0, ci=[0.665, 0.705]), point(3, 0.67, 1.0, ci=[0.65, 0.69])
    metrics = ["dice", "latency_ms"]
    assert front.dominates(c, b, metrics) and front.dominates(b, a, metrics) and not front.dominates(c, a, metrics)
    members = front.front([a, b, c], metrics)
    assert [p.number for p in members] == [1, 3]
    assert all(any(front.dominates(m, p, metrics) for m in members) for p in [b])  # what is left out, a member beats
    assert front.dominance([a, b, c], metrics).tolist() == [[False, False, False], [True, False, False], [False, True, False]]


def test_one_studys_trials_carry_its_name_and_pair_their_per_image_dice(tmp_path):
    opened = storage.open_storage(f"sqlite:///{tmp_path / 's.db'}")
    study = make_study(opened, "paired", [(0.6, 2.0, 100.0), (0.55, 1.0, 100.0)], dice_per_image=[0.5, 0.7])
    a, b = front.study_points(study)
    assert a.study == b.study == "paired" and a.dice_per_image.tolist() == [0.5, 0.7]
    assert front.tolerance(a, b, "dice") == front.DICE_RESOLUTION  # identical per-image lists: no spread


def test_preset_verdicts_name_the_searched_member_that_dominates_each_preset():
    unet = dataclasses.replace(point(0, 0.80, 20.0, 7000.0), preset="unet")
    fire = dataclasses.replace(point(1, 0.60, 3.0, 50.0), preset="fire")
    searched = [point(2, 0.82, 10.0, 200.0), point(3, 0.81, 5.0, 150.0), point(4, 0.50, 1.0, 40.0)]
    verdicts = front.preset_verdicts([unet, fire, *searched], METRICS3)
    assert [(p.preset, best.number if best else None) for p, best in verdicts] == [("unet", 2), ("fire", None)]
