"""The promotion rule of the rungs, on hand-made points."""

import dataclasses

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


def test_a_rung_never_promotes_more_than_its_share_and_a_late_best_waits_for_a_free_place():
    promoted = [point(0, 0.80, 10.0), point(1, 0.60, 2.0)]
    rung0 = [*promoted, point(2, 0.50, 9.0), point(3, 0.40, 8.0), point(4, 0.70, 11.0), point(5, 0.30, 12.0)]
    children = [point(10, 0.85, 10.0, rung=1, parent=0), point(11, 0.65, 2.0, rung=1, parent=1)]
    best = point(6, 0.90, 1.0)  # dominates every other: now among the best two of seven
    assert promotions([*rung0, best, *children], Rungs((2, 6)), METRICS) == []  # 7 // 3 = 2 places, both taken
    grown = [*rung0, best, point(7, 0.20, 13.0), point(8, 0.25, 14.0), *children]
    assert [p.number for p in promotions(grown, Rungs((2, 6)), METRICS)] == [6]  # 9 // 3 = 3: one place free


def test_presets_are_promoted_by_the_rule_but_the_unet_reference_always_goes_on():
    def preset(number, name, dice, latency):
        return dataclasses.replace(point(number, dice, latency), preset=name)

    rung0 = [preset(0, "unet", 0.70, 20.0), preset(1, "fire", 0.40, 9.5), preset(2, "group", 0.65, 15.0),
             point(3, 0.75, 8.0), point(4, 0.30, 1.0), point(5, 0.35, 9.0)]
    # 6 // 3 = 2 by the rule: #3 (best Dice, on the front) and #4 (fastest); the weak presets stay at rung 0
    assert [p.number for p in promotions(rung0, Rungs((2, 6)), METRICS)] == [0, 3, 4]
    assert [p.number for p in promotions(rung0[:2], Rungs((2, 6)), METRICS)] == [0]  # unet before 3 are done


def test_a_preset_left_at_a_low_rung_is_beaten_only_by_candidates_trained_no_longer():
    fire = dataclasses.replace(point(0, 0.50, 5.0), preset="fire")
    early, late = point(1, 0.45, 4.0), point(2, 0.70, 4.0, rung=1, parent=1)
    assert front.preset_verdicts([fire, early, late], METRICS)[0][1] is None  # only #1's rung 1 beats it
    beaten = dataclasses.replace(fire, attrs={"rung": 1})
    assert front.preset_verdicts([beaten, early, late], METRICS)[0][1].number == 2


def test_higher_rungs_promote_first_and_a_candidate_shows_its_highest_rung():
    rungs = Rungs((1, 3, 9))
    points = [point(n, 0.5 + n / 100, 5.0 - n / 10) for n in range(9)]
    points += [point(9 + k, 0.9 - k / 100, 5.0 + k, rung=1, parent=8 - k) for k in range(3)]
    due = promotions(points, rungs, METRICS)
    assert due[0].number == 9 and rungs.stage(2) == (3, 6)  # rung 1's best goes first
    on_front = {p.number for p in front.front(points, METRICS)}
    assert not on_front & {8, 7, 6}  # superseded by their completed rung-1 trials
    assert child_attrs(due[0]) == {"rung": 2, "parent": 9, "parent_id": 9, "candidate": 8}


@pytest.mark.slow  # a whole search: the slow tier keeps the default one under 15 minutes
def test_a_search_with_rungs_promotes_from_checkpoints_and_counts_candidates(tmp_path):
    """4 candidates at 1 epoch, eta 2: half of them go on to epoch 2 from their checkpoints (decided
    as trials finish, as in ASHA, but never more than half in all), keeping their first rung's
    latency; the budget counts the 4 candidates, and the front shows each candidate at its
    highest rung."""
    import optuna

    from search.loop import counted
    from studies.front import front, study_points
    from studies.store import ResultStore
    from studies.storage import load_study
    from tests.conftest import TINY_SEARCH, run_cli

    tiny = [a for a in TINY_SEARCH if a not in ("--epochs", "2", "--rungs", "off")]
    result = run_cli("start", "--budget", "4", "--study", "r", "--rungs", "1,2", "--eta", "2", *tiny, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    url = f"sqlite:///{tmp_path / 'studies.db'}"
    trials = load_study(url, "r").get_trials()
    promoted = [t for t in trials if t.user_attrs.get("rung") == 1]
    assert len(counted(trials)) == 4 and len(promoted) == 2, [(t.number, t.state, t.user_attrs.get("rung")) for t in trials]
    assert promotions(study_points(load_study(url, "r")), Rungs((1, 2), eta=2), METRICS) == []  # the half's places are taken
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    by_number = {t.number: t for t in trials}
    with ResultStore(url, create=False) as store:
        for child in promoted:
            parent = by_number[child.user_attrs["parent"]]
            assert child.params == parent.params and child.user_attrs["summary"] == parent.user_attrs["summary"]
            assert child.user_attrs["resumed_at_epoch"] == 1 and len(child.user_attrs["dice_history"]) == 1
            assert child.user_attrs["training"]["resumed_live"]  # one worker: it trained the parent itself
            assert store.checkpoint(parent._trial_id) is None  # dropped once the promotion trained on
            assert child.user_attrs["latency_ms"] == parent.user_attrs["latency_ms"]  # timed once, as its first rung
            assert child.user_attrs["latency_timed_as"] == parent.number and "latency" not in child.user_attrs["seconds"]
            assert store.measurements(child._trial_id)[0]["stats"]["timed_as_trial"] == parent.number
        kept = [t for t in trials if "rung" not in t.user_attrs and t.number not in {c.user_attrs["parent"] for c in promoted}]
        assert all(store.checkpoint(t._trial_id) is not None for t in kept)  # may still be promoted on continue
    on_front = {p.number for p in front(study_points(load_study(url, "r")))}
    assert not on_front & {c.user_attrs["parent"] for c in promoted}
    assert "(rung 1 of #" in result.stdout


@pytest.mark.slow  # a whole search: the slow tier keeps the default one under 15 minutes
def test_distillation_trains_the_teacher_once_and_every_searched_candidate_learns_from_it(tmp_path):
    from studies.store import ResultStore
    from studies.storage import load_study
    from tests.conftest import TINY_SEARCH, run_cli

    tiny = [a if a != "2" else "1" for a in TINY_SEARCH]  # one epoch
    result = run_cli("start", "--budget", "2", "--study", "d", "--distill", "unet", "--distill-weight", "0.7", *tiny, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("training the teacher unet") == 1
    url = f"sqlite:///{tmp_path / 'studies.db'}"
    with ResultStore(url, create=False) as store:
        teacher = store.teacher("d")
    assert teacher["source"] == "unet" and teacher["figures"]["epochs"] == 1
    trials = load_study(url, "d").get_trials()
    assert [t.user_attrs.get("distilled_from") for t in trials] == ["unet", "unet"]
    again = run_cli("start", "--budget", "3", "--study", "d", cwd=tmp_path)  # continued: the stored teacher, not a new one
    assert again.returncode == 0 and "training the teacher" not in again.stdout
    # a stored trial teaches another study as it was stored: its artifact's predictions, no training
    taught = run_cli("start", "--budget", "1", "--study", "e", "--distill", "trial:0@d", *tiny, cwd=tmp_path)
    assert taught.returncode == 0, taught.stderr[-3000:]
    assert "training the teacher" not in taught.stdout and "the teacher is trial:0@d as stored" in taught.stdout
    with ResultStore(url, create=False) as store:
        stored, artifact = store.teacher("e"), store.artifact(trials[0]._trial_id)
    assert stored["source"] == "trial:0@d" and stored["figures"]["study"] == "d" and stored["figures"]["trial"] == 0
    assert stored["targets"] != teacher["targets"]  # the trial's predictions, not unet's
    assert load_study(url, "e").get_trials()[0].user_attrs["distilled_from"] == "trial:0@d"
    assert artifact is not None


def test_a_teacher_that_is_not_stored_is_refused_before_a_study_is_made(tmp_path):
    from tests.conftest import TINY_SEARCH, run_cli

    bad = run_cli("start", "--budget", "1", "--distill", "resnet", cwd=tmp_path)
    assert bad.returncode == 2 and bad.stderr.strip().startswith(
        "search: error: --distill: unknown teacher 'resnet'; give a preset (unet,")
    assert "trial:N@STUDY" in bad.stderr
    missing = run_cli("start", "--budget", "1", "--study", "s", "--distill", "trial:3@nosuch", *TINY_SEARCH, cwd=tmp_path)
    assert missing.returncode == 2 and "--distill trial:3@nosuch: no study 'nosuch' in this storage" in missing.stderr
    assert missing.stderr.strip().count("\n") == 0 and not (tmp_path / "studies.db").exists()  # nothing left behind


def test_the_studys_teacher_carries_the_distill_options(tmp_path):
    import io

    import numpy as np

    from search.config import SearchConfig
    from search.teacher import teacher_of
    from studies.store import ResultStore

    url = f"sqlite:///{tmp_path / 'studies.db'}"
    config = SearchConfig(study="s", storage=url, distill="unet", distill_weight=0.3, distill_temperature=1.0,
                          distill_term="bce")  # not the default
    buffer = io.BytesIO()
    np.save(buffer, np.full((2, 4, 4, 1), 0.25, np.float32))
    with ResultStore(url) as store:
        store.save_teacher("s", "unet", buffer.getvalue(), {})
        teacher = teacher_of(config, store)
    assert (teacher.weight, teacher.temperature, teacher.soft_term) == (0.3, 1.0, "bce")
    assert teacher.targets.shape == (2, 4, 4, 1) and float(teacher.targets.max()) == 0.25


def test_a_worker_claims_the_promotion_of_a_parent_it_trained_first_and_each_promotion_once(tmp_path):
    """6 candidates at rung 0, eta 3: #0 and #1 are due, #0 first; a worker that trained #1 takes
    #1 (it trains on in that worker's live models); the next claim takes #0; then none is due."""
    import optuna

    from search.config import SearchConfig
    from search.rungs import claim_promotion

    url = f"sqlite:///{tmp_path / 'studies.db'}"
    study = optuna.create_study(study_name="s", storage=url, directions=["maximize", "minimize", "minimize"])
    width = optuna.distributions.IntDistribution(4, 16)
    for number, (dice, latency) in enumerate([(0.9, 5.0), (0.8, 1.0), (0.5, 6.0), (0.4, 7.0), (0.3, 8.0), (0.2, 9.0)]):
        study.add_trial(optuna.trial.create_trial(values=[dice, latency, 100.0], params={"width": 8 + number},
                                                  distributions={"width": width}, user_attrs={"rung": 0}))
    config = SearchConfig(storage=url, study="s", rungs=(1, 3), eta=3)
    claimed = [claim_promotion(study, config, trained_here={1}), claim_promotion(study, config, trained_here={1}),
               claim_promotion(study, config)]
    children = [study._storage.get_trial(trial_id) for trial_id in claimed[:2]]
    assert [c.user_attrs["parent"] for c in children] == [1, 0] and claimed[2] is None
    assert children[0].params == {"width": 9} and children[0].state == optuna.trial.TrialState.RUNNING
