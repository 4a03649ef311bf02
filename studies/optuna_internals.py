"""Every private Optuna name nas-lite uses, in one place, checked by tests/studies/test_optuna_internals.py.

Pinned: ``optuna>=5,<6`` (pyproject.toml), written against ``PINNED``. When a new Optuna moves or
changes one of these, that test fails and names it; fix it here, nowhere else.

- :func:`pop_waiting_trial_id`: ``Study._pop_waiting_trial_id`` (claims a WAITING trial: workers run
  only the trials the coordinator enqueued, so a study ends with exactly its budget).
- :func:`heartbeat_thread`: ``optuna.storages._heartbeat.get_heartbeat_thread`` (what ``optimize``
  runs beside a trial; an ask/tell loop must run it itself).
- :func:`fail_stale_trials`: the public but experimental ``optuna.storages.fail_stale_trials``,
  without its warning.
- :func:`compute_hypervolume`: ``optuna._hypervolume.compute_hypervolume`` (exact WFG).
- :func:`running_trials_without_heartbeat`: ``optuna.storages._rdb.models`` and
  ``_create_scoped_session`` (a query Optuna has no method for).
- :func:`optuna_table_names`: the tables of ``models.BaseModel.metadata``.
- :func:`create_running_trial`: ``Study._study_id`` with the public ``storage.create_new_trial``
  (a promoted rung is claimed by making it RUNNING for its worker at once).
- ``STORAGE_HOOKS``: private ``RDBStorage`` methods that :class:`studies.storage.rdb.NasLiteStorage`
  overrides, because Optuna's ``_CachedStorage`` and ``fail_stale_trials`` call them, not the public ones.
"""

from __future__ import annotations

import datetime
import warnings

PINNED = "5.0.0"
"""The Optuna version these names were read from."""

STORAGE_HOOKS = ("_create_new_trial", "_set_trial_param", "_get_stale_trial_ids")


def pop_waiting_trial_id(study) -> int | None:
    """Set one WAITING trial of ``study`` RUNNING and return its id; ``None`` when none is waiting."""
    return study._pop_waiting_trial_id()


def create_running_trial(study, params: dict, distributions: dict, user_attrs: dict) -> int:
    """A new RUNNING trial of ``study`` with these parameters, owned by the caller; returns its id."""
    import optuna

    template = optuna.trial.create_trial(state=optuna.trial.TrialState.RUNNING, params=params,
                                         distributions=distributions, user_attrs=user_attrs)
    return study._storage.create_new_trial(study._study_id, template_trial=template)


def heartbeat_thread(trial_id: int, storage):
    """A context manager that records heartbeats of ``trial_id`` in ``storage`` while it runs (none if disabled)."""
    from optuna.storages._heartbeat import get_heartbeat_thread

    return get_heartbeat_thread(trial_id, storage)


def fail_stale_trials(study) -> None:
    """Fail the RUNNING trials whose heartbeat stopped, and run the storage's retry callback."""
    import optuna

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)


def compute_hypervolume(losses, reference_point, assume_pareto: bool = False) -> float:
    """The hypervolume of the rows of ``losses`` (minimised) up to ``reference_point``."""
    from optuna._hypervolume import compute_hypervolume as wfg

    return float(wfg(losses, reference_point, assume_pareto=assume_pareto))


def running_trials_without_heartbeat(storage, study_id: int, started_before: datetime.datetime) -> list[int]:
    """Ids of RUNNING trials of ``study_id`` in the RDB ``storage`` that started before
    ``started_before`` (naive UTC, as Optuna stores it) and never recorded a heartbeat."""
    from optuna.storages._rdb import models
    from optuna.storages._rdb.storage import _create_scoped_session
    from optuna.trial import TrialState

    trial = models.TrialModel
    with _create_scoped_session(storage.scoped_session) as session:
        rows = (session.query(trial.trial_id)
                .filter(trial.study_id == study_id, trial.state == TrialState.RUNNING,
                        trial._datetime_start_utc < started_before, ~trial.heartbeats.any())
                .all())
        return [row.trial_id for row in rows]


def optuna_table_names() -> frozenset[str]:
    """The names of the tables Optuna's RDB storage creates."""
    from optuna.storages._rdb import models

    return frozenset(models.BaseModel.metadata.tables)
