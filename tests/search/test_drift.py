"""Drift control with a device whose speed we set: a drift is recorded, the trials before it are
timed again once the reference settles, a lasting drift becomes the baseline."""

import optuna
import pytest

from search import drift as drift_module
from search.drift import DriftWatch
from studies.status import drift_lines
from studies.store import ResultStore
from tests.studies.helpers import TINY_TFLITE


class Board:
    """A device that answers ``median_ms = speed`` (a fake board: the logic under test is the watch's)."""

    name = "board"

    def __init__(self):
        self.speed, self.timed = 1.0, []

    def info(self):
        return {"cpu": "test"}

    def measure(self, model, protocol=None):
        self.timed.append(len(model))
        return {"median_ms": self.speed, "protocol": {}}


@pytest.fixture
def setting(tmp_path, monkeypatch):
    monkeypatch.setattr(drift_module, "SETTLE_SECONDS", 0.0)
    url = f"sqlite:///{tmp_path / 'studies.db'}"
    study = optuna.create_study(storage=url, study_name="s")
    store = ResultStore(url)
    model = TINY_TFLITE.read_bytes()
    for trial_id in range(1, 5):
        store.save_artifact(trial_id, "s", trial_id, model)
    return study, store, Board()


def test_a_passing_drift_is_recorded_and_the_trials_before_it_are_timed_again(setting):
    study, store, board = setting
    watch = DriftWatch(study, board, None, store, b"reference", every=2)
    watch.timed(1, 1)
    board.speed = 1.5  # the reference is 50% slower at the check ...
    original = board.measure

    def settles(model, protocol=None):  # ... and back to normal when it is checked again
        board.measure = original
        board.speed = 1.02
        return {"median_ms": 1.5, "protocol": {}}

    board.measure = settles
    watch.timed(2, 2)
    (event,) = study.user_attrs["drift:board"]
    assert event["reference_ms"] == 1.5 and event["settled"] and event["after_trial"] == 2
    assert study.user_attrs["retimed:board"] == {"1": 1.02, "2": 1.02}
    assert [m["stats"]["retimed_after_drift"] for m in store.measurements(1)] == [True]
    (line,) = drift_lines({"board": study.user_attrs["drift:board"]}, {"board": study.user_attrs["retimed:board"]})
    assert line.startswith("drift on board: 1 time(s) the reference model moved beyond 5% (at most +50%, after trial 2); 2 trial(s)")


def test_a_lasting_drift_becomes_the_baseline_and_small_changes_are_no_drift(setting):
    study, store, board = setting
    watch = DriftWatch(study, board, None, store, b"reference", every=1)
    board.speed = 1.03
    watch.timed(1, 1)
    assert "drift:board" not in study.user_attrs  # within 5%
    board.speed = 2.0
    watch.timed(2, 2)
    (event,) = study.user_attrs["drift:board"]
    assert not event["settled"] and watch.baseline == 2.0 and "retimed:board" not in study.user_attrs
