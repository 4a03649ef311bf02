import optuna
import pytest

from evaluators.data import load_dataset
from evaluators.devices import LocalDevice
from search.config import SearchConfig
from search.pipeline import latency_protocol
from search.trial import FrontMember, TrialContext, Verdict, evaluate
from space.sampling import params_of
from space.spec import uniform
from studies.front import DICE_RESOLUTION
from studies.storage import open_storage
from studies.store import ResultStore

FAST = FrontMember(1, [0.30, 0.50, 0.60, 0.70], {"latency_ms": 5.0, "size_kb": 100.0})
SMALL = FrontMember(2, [0.10, 0.40, 0.55, 0.65], {"latency_ms": 8.0, "size_kb": 50.0})
FRONT = [FAST, SMALL]
COSTLY = {"latency_ms": 10.0, "size_kb": 200.0}  # no cheaper than either member


def verdict(front=FRONT, costs=COSTLY, epochs=4) -> Verdict:
    return Verdict(front, epochs, lambda: costs)


def test_by_default_below_every_front_member_stops_whatever_the_costs():
    judge = Verdict(FRONT, 4)
    assert judge(1, 0.39) and judge.ahead == [1, 2]
    assert not Verdict(FRONT, 4)(1, 0.41)  # beats one front member


def test_below_every_cheaper_front_member_at_that_epoch_stops_and_names_them():
    judge = verdict()
    assert judge(1, 0.39) and judge.ahead == [1, 2]
    assert not verdict()(1, 0.41)  # beats one front member


def test_a_candidate_cheaper_than_the_front_members_explores_unstopped():
    assert not verdict(costs={"latency_ms": 4.0, "size_kb": 200.0})(1, 0.0)  # faster than both
    assert not verdict(costs={"latency_ms": 6.0, "size_kb": 200.0})(1, 0.0)  # only FAST is no slower and no larger
    assert not verdict(costs={"size_kb": 75.0})(1, 0.0)  # latency not an objective; only SMALL is no larger


def test_judged_only_on_the_objectives_given():
    assert verdict(costs={"latency_ms": 9.0})(1, 0.0)  # size not an objective: both members are faster


def test_a_candidate_level_with_the_front_within_its_tie_trains_on():
    # isbi2012: the stored history is rounded to 4 digits; a constant mask scored 0.87368 against 0.8737
    level = [FrontMember(n, [0.8737, 0.8737, 0.8737], COSTLY) for n in (1, 2)]
    assert not Verdict(level, 4)(1, 0.87368)
    assert not Verdict(level, 4)(1, 0.8737 - DICE_RESOLUTION / 2)
    assert Verdict(level, 4)(1, 0.8737 - 2 * DICE_RESOLUTION)


def test_never_after_the_first_or_the_last_epoch():
    assert not verdict()(0, 0.0)
    assert not verdict()(3, 0.0)


def test_needs_two_cheaper_front_members_that_reached_the_epoch():
    assert not verdict(front=FRONT[:1])(1, 0.0)
    short = FrontMember(3, [0.5, 0.6], {"latency_ms": 1.0, "size_kb": 1.0})
    assert not verdict(front=[short, FAST])(2, 0.0)


def test_costs_are_asked_for_only_when_two_members_are_ahead():
    asked = []
    judge = Verdict(FRONT, 4, lambda: asked.append(1) or COSTLY)
    assert not judge(1, 0.45) and not asked  # ahead of SMALL: no conversion needed
    assert judge(1, 0.0) and asked == [1]


def test_a_trial_behind_two_cheaper_front_members_is_pruned_with_its_untrained_costs(tmp_path):
    url = f"sqlite:///{tmp_path / 'studies.db'}"
    config = SearchConfig(storage=url, data_limit=40, image_size=32, epochs=3, batch_size=8, depths=(3,), widths=(4,),
                          threads=1, quant_modes=("float32",), early_stop="cheaper", rungs="off")
    context = TrialContext(config, load_dataset("synthetic", 32, 3, seed=0, limit=40), LocalDevice(threads=1),
                           ResultStore(url), latency_protocol(1))
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(study_name="s", storage=open_storage(url), directions=config.directions)
    study.enqueue_trial(params_of(uniform("standard", depth=3, base_width=4, input_size=32), config.space))
    trial = study.ask()
    perfect = [FrontMember(n, [1.0, 1.0, 1.0], {"latency_ms": 1e-6, "size_kb": 1e-6}) for n in (7, 8)]

    with pytest.raises(optuna.TrialPruned, match=r"after epoch 2 .*\(#7, #8\)"):
        evaluate(trial, context, lambda: perfect)
    attrs = study.trials[0].user_attrs
    assert len(attrs["dice_history"]) == 2 and "after epoch 2" in attrs["stopped_early"]
    assert attrs["latency_ms"] > 0 and attrs["size_bytes"] > 1000  # the untrained model, converted and timed
    seconds = attrs["seconds"]  # timed inside training, counted once
    assert seconds["train"] + seconds["convert"] + seconds["latency"] <= seconds["total"] + 0.005


def test_unknown_rule_is_refused():
    with pytest.raises(ValueError, match="early-stop: unknown 'sometimes'; choose one of front, cheaper, off"):
        SearchConfig(early_stop="sometimes")


def test_front_members_are_the_feasible_front_whatever_form_the_constraints_took():
    from search.trial import front_members
    from tests.studies.helpers import attrs, make_study

    study = make_study(None, "s", [(0.9, 100.0, 300.0), (0.85, 20.0, 200.0)])
    study.add_trial(optuna.trial.create_trial(  # Optuna 5's form only: infeasible to best_trials too
        values=[0.99, 1.0, 10.0], user_attrs=attrs(0.99, 1.0, 10.0), constraints={"max_latency_ms": 0.5}))
    study.add_trial(optuna.trial.create_trial(  # nas-lite's older form only, which best_trials never read
        values=[0.98, 2.0, 20.0], user_attrs=attrs(0.98, 2.0, 20.0, constraints=[1.0])))
    members = front_members(study)
    assert [m.number for m in members] == [0, 1]
    assert members[1].costs == {"latency_ms": 20.0, "size_kb": 200.0}


def test_constraint_values_are_stored_where_optuna_5_reads_them():
    from search.trial import _record_constraints

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(directions=["maximize", "minimize", "minimize"])
    config = SearchConfig(max_latency_ms=10.0, min_dice=0.5)
    for latency in (12.0, 8.0):
        trial = study.ask()
        _record_constraints(trial, config, {"dice": 0.8, "latency_ms": latency, "size_kb": 100.0})
        study.tell(trial, [0.8, latency, 100.0])
    assert study.trials[0].constraints == pytest.approx({"max_latency_ms": 2.0, "min_dice": -0.3})
    assert [t.number for t in study.best_trials] == [1]
