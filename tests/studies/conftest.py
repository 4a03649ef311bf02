"""A small study on a real SQLite file, written the way the search loop writes it."""

from __future__ import annotations

import optuna
import pytest

from studies import storage
from studies.store import ResultStore
from tests.studies.helpers import TINY_TFLITE, make_study

POINTS = [(0.90, 100.0, 300.0), (0.85, 20.0, 200.0), (0.50, 10.0, 100.0), (0.80, 50.0, 250.0)]


@pytest.fixture
def study_db(tmp_path):
    """``(url, study)``: study "demo" with 4 complete trials (front 0, 1, 2; knee 1) and artifacts,
    one failed trial, and an empty study "empty" created before it."""
    url = f"sqlite:///{tmp_path / 'studies.db'}"
    opened = storage.open_storage(url)
    make_study(opened, "empty", [])
    study = make_study(opened, "demo", POINTS)
    study.add_trial(optuna.trial.create_trial(state=optuna.trial.TrialState.FAIL, user_attrs={"error": "NaN loss"}))
    tflite = TINY_TFLITE.read_bytes()
    with ResultStore(url) as store:
        for trial in study.trials[:4]:
            store.save_artifact(trial._trial_id, study.study_name, trial.number, tflite)
            store.save_measurement(trial._trial_id, "local", {"machine": "x86_64"}, {"runs": 20, "threads": 2},
                                   {"p50_ms": trial.values[1], "p90_ms": trial.values[1] * 1.1})
    return url, study
