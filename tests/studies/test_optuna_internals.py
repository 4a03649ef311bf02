"""The private Optuna names nas-lite relies on (studies/optuna_internals.py): a new Optuna that moves or
changes one of them fails here, by name and against the pinned version, not deep inside a search."""

from __future__ import annotations

import datetime
import inspect
import time
import warnings

import numpy as np
import optuna
import pytest
from optuna.storages import RDBStorage

from studies import METRICS, optuna_internals
from studies.optuna_internals import PINNED, STORAGE_HOOKS
from studies.storage import NasLiteStorage, open_storage

optuna.logging.set_verbosity(optuna.logging.WARNING)


def changed(what: str) -> str:
    return (f"{what} changed in optuna {optuna.__version__} (studies/optuna_internals.py was written against "
            f"optuna {PINNED}); adapt that module, then this test")


pytestmark = pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed to be used with Study.optimize")


@pytest.fixture
def study(tmp_path):
    storage = open_storage(f"sqlite:///{tmp_path / 'studies.db'}", heartbeat_interval=1, grace_period=2)
    return optuna.create_study(study_name="s", storage=storage, directions=list(METRICS.values()))


def test_pop_waiting_trial_id_claims_each_waiting_trial_once(study):
    study.enqueue_trial({"x": 0.5})
    trial_id = optuna_internals.pop_waiting_trial_id(study)
    assert isinstance(trial_id, int), changed("Study._pop_waiting_trial_id")
    assert study.trials[0].state.name == "RUNNING", changed("Study._pop_waiting_trial_id")
    assert optuna_internals.pop_waiting_trial_id(study) is None, changed("Study._pop_waiting_trial_id")


def test_heartbeat_thread_beats_while_the_trial_runs(study):
    trial_id = study.ask()._trial_id
    storage = study._storage
    with storage._backend.engine.begin() as connection:
        connection.exec_driver_sql("delete from trial_heartbeats")
    with optuna_internals.heartbeat_thread(trial_id, storage):
        time.sleep(0.3)
    with storage._backend.engine.connect() as connection:
        beats = connection.exec_driver_sql(f"select count(*) from trial_heartbeats where trial_id = {trial_id}").scalar()
    assert beats == 1, changed("optuna.storages._heartbeat.get_heartbeat_thread")
    with optuna_internals.heartbeat_thread(trial_id, optuna.storages.InMemoryStorage()):
        pass  # no heartbeat: a thread that does nothing


def test_fail_stale_trials_fails_a_silent_trial_without_a_warning(study):
    trial_id = study.ask()._trial_id
    time.sleep(3.5)  # past the grace period of 2 s (SQLite's clock counts whole seconds), no heartbeat thread
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        optuna_internals.fail_stale_trials(study)
    assert study._storage.get_trial(trial_id).state.name == "FAIL", changed("optuna.storages.fail_stale_trials")
    assert study.trials[-1].state.name == "WAITING", changed("RetryHeartbeatStaleTrialCallback")


def test_compute_hypervolume_known_values():
    box = optuna_internals.compute_hypervolume(np.array([[0.5, 0.5]]), np.ones(2))
    two = optuna_internals.compute_hypervolume(np.array([[0.25, 0.75], [0.75, 0.25]]), np.ones(2), assume_pareto=True)
    assert (box, two) == (pytest.approx(0.25), pytest.approx(0.3125)), changed("optuna._hypervolume.compute_hypervolume")
    assert isinstance(box, float)


def test_running_trials_without_heartbeat_finds_only_silent_old_ones(study):
    trial_id = study.ask()._trial_id
    backend = study._storage._backend
    silent = optuna_internals.running_trials_without_heartbeat
    later = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None) + datetime.timedelta(seconds=60)
    assert silent(backend, study._study_id, later) == [], "NasLiteStorage records the first beat with the trial"
    with backend.engine.begin() as connection:
        connection.exec_driver_sql("delete from trial_heartbeats")
    assert silent(backend, study._study_id, later) == [trial_id], changed("storages._rdb.models.TrialModel")
    assert silent(backend, study._study_id, later - datetime.timedelta(hours=1)) == []


def test_optuna_table_names():
    names = optuna_internals.optuna_table_names()
    assert {"studies", "trials", "version_info", "trial_heartbeats"} <= names, changed("storages._rdb.models")


def test_storage_hooks_are_what_optuna_calls_and_what_nas_lite_overrides():
    from optuna.storages import _cached_storage, _heartbeat

    callers = {
        "_create_new_trial": (_cached_storage._CachedStorage.create_new_trial, RDBStorage.create_new_trial),
        "_set_trial_param": (_cached_storage._CachedStorage.set_trial_param, RDBStorage.set_trial_param),
        "_get_stale_trial_ids": (_cached_storage._CachedStorage._get_stale_trial_ids, _heartbeat.fail_stale_trials),
    }
    assert set(callers) == set(STORAGE_HOOKS)
    for hook, functions in callers.items():
        assert callable(getattr(RDBStorage, hook, None)), changed(f"RDBStorage.{hook}")
        for function in functions:
            assert f"{hook}(" in inspect.getsource(function), changed(f"{function.__qualname__} (no longer calls {hook})")
        ours = inspect.signature(getattr(NasLiteStorage, hook)).parameters
        assert list(ours) == list(inspect.signature(getattr(RDBStorage, hook)).parameters), changed(f"RDBStorage.{hook}'s signature")
    private = {name for name, value in vars(NasLiteStorage).items()
               if callable(value) and name.startswith("_") and not name.startswith("__") and hasattr(RDBStorage, name)}
    assert private == set(STORAGE_HOOKS), "NasLiteStorage overrides a private RDBStorage method: list it in STORAGE_HOOKS"


def test_create_running_trial_makes_a_trial_with_its_parameters_for_its_caller(study):
    distribution = optuna.distributions.IntDistribution(1, 9)
    trial_id = optuna_internals.create_running_trial(study, {"x": 3}, {"x": distribution}, {"rung": 1})
    trial = study._storage.get_trial(trial_id)
    assert trial.state == optuna.trial.TrialState.RUNNING and trial.params == {"x": 3} and trial.user_attrs == {"rung": 1}
    assert optuna.Trial(study, trial_id).suggest_int("x", 1, 9) == 3  # suggesting again returns the given value
    assert optuna_internals.pop_waiting_trial_id(study) is None  # never offered to another worker
