"""Optuna's RDB storage as nas-lite opens it: checked first, retried on lock conflicts, heartbeats that
never leave a trial RUNNING forever, and read-only for readers.

Why some methods are overridden: SQLite's busy timeout makes a connection wait for a lock, but a write
transaction that began as a read and finds the database changed meanwhile fails at once with
"database is locked" (WAL's busy snapshot), and PostgreSQL can end a writer in a deadlock; both leave
nothing behind and succeed when run again. Reads need no retry: under WAL they never wait on a writer,
and PostgreSQL's READ COMMITTED reads take no locks. So every method that writes is overridden, each
one explicitly, to run again while that happens. Three of them are private (``STORAGE_HOOKS`` in
:mod:`studies.optuna_internals`): Optuna's ``_CachedStorage`` and ``fail_stale_trials`` call those.
"""

from __future__ import annotations

import datetime
import os
import warnings
from typing import Any, Callable, TypeVar

import optuna
import sqlalchemy
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.trial import TrialState

from studies.optuna_internals import running_trials_without_heartbeat
from studies.storage.engine import connect_url, engine_kwargs, tune_engine
from studies.storage.retry import RETRY_SECONDS, is_init_race, retry_locked
from studies import records
from studies.storage.schema import check_database, empty_tables_for_reading, ensure_tables, open_error
from studies.storage.urls import DEFAULT_URL, database_url, shown

HEARTBEAT_INTERVAL, GRACE_PERIOD = (int(s) for s in os.environ.get("NAS_LITE_HEARTBEAT", "10,30").split(","))
"""Seconds between heartbeats of a running trial, and seconds without one after which a RUNNING
trial is failed and retried (``NAS_LITE_HEARTBEAT=INTERVAL,GRACE`` changes them, e.g. in tests)."""
MAX_RETRY = 2
"""How many times a trial whose worker died is run again (a trial that kills workers is dropped)."""

T = TypeVar("T")


def _again(method: Callable[..., T], *args, **kwargs) -> T:
    return retry_locked(lambda: method(*args, **kwargs))


class NasLiteStorage(RDBStorage):
    """``RDBStorage`` whose writes retry on lock conflicts and whose writer engine carries the SQLite pragmas.

    Build it with :func:`open_storage`. Picklable (for worker processes) like ``RDBStorage``.
    ``shown_url`` is the URL as the user gave it, password hidden.
    """

    def __init__(self, url: str, *, writes: bool = True, shown_url: str | None = None, **kwargs):
        self.writes = writes
        self.shown_url = shown_url or shown(url)
        super().__init__(url, skip_table_creation=not writes, **kwargs)
        self._tune()

    def __setstate__(self, state):
        super().__setstate__(state)
        self._tune()

    def _tune(self) -> None:
        if self.writes:
            tune_engine(self.engine)

    # -- studies --------------------------------------------------------------------------------
    def create_new_study(self, directions, study_name=None):
        return _again(super().create_new_study, directions, study_name)

    def delete_study(self, study_id):
        return _again(super().delete_study, study_id)

    def set_study_user_attr(self, study_id, key, value):
        return _again(super().set_study_user_attr, study_id, key, value)

    def set_study_system_attr(self, study_id, key, value):
        return _again(super().set_study_system_attr, study_id, key, value)

    # -- trials ---------------------------------------------------------------------------------
    # Optuna's heartbeat thread records the first beat a moment after the trial starts, and a RUNNING
    # trial without any beat is never found stale: a worker killed in that moment would leave its
    # trial RUNNING forever. So every trial gets its first beat before it becomes RUNNING (a beat on
    # a WAITING trial is harmless), or, where Optuna creates it RUNNING, right after.
    def _create_new_trial(self, study_id, template_trial=None):
        frozen = _again(super()._create_new_trial, study_id, template_trial)
        if self.heartbeat_interval and frozen.state == TrialState.RUNNING:
            self.record_heartbeat(frozen._trial_id)
        return frozen

    def set_trial_state_values(self, trial_id, state, values=None):
        if state == TrialState.RUNNING and self.heartbeat_interval:
            self.record_heartbeat(trial_id)
        return _again(super().set_trial_state_values, trial_id, state, values)

    def _set_trial_param(self, trial_id, param_name, param_value_internal, distribution, previous_distribution):
        return _again(super()._set_trial_param, trial_id, param_name, param_value_internal, distribution, previous_distribution)

    def set_trial_intermediate_value(self, trial_id, step, intermediate_value):
        return _again(super().set_trial_intermediate_value, trial_id, step, intermediate_value)

    def set_trial_user_attr(self, trial_id, key, value):
        return _again(super().set_trial_user_attr, trial_id, key, value)

    def set_trial_system_attr(self, trial_id, key, value):
        return _again(super().set_trial_system_attr, trial_id, key, value)

    # -- heartbeats -----------------------------------------------------------------------------
    def record_heartbeat(self, trial_id):
        return _again(super().record_heartbeat, trial_id)

    def _get_stale_trial_ids(self, study_id):
        """Optuna's stale trials, and RUNNING trials that never beat once they are older than the grace
        period (a worker killed right after Optuna created its trial RUNNING, or a database written
        before the first beat was moved ahead of the state change)."""
        stale = _again(super()._get_stale_trial_ids, study_id)
        # Optuna stores datetime_start as naive UTC, from the clock of the process that started the trial.
        now = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
        oldest = now - datetime.timedelta(seconds=self.grace_period or 2 * self.heartbeat_interval)
        return stale + _again(running_trials_without_heartbeat, self, study_id, oldest)


def _with_init_retries(work: Callable[[], T], parsed: sqlalchemy.URL) -> T:
    """Creating tables races when several workers start on a fresh database: retry, then explain."""
    try:
        return retry_locked(work, seconds=RETRY_SECONDS, transient=is_init_race)
    except sqlalchemy.exc.DatabaseError as error:
        raise open_error(parsed, error) from error


def open_storage(
    url: str = DEFAULT_URL,
    *,
    create: bool = True,
    heartbeat_interval: int | None = HEARTBEAT_INTERVAL,
    grace_period: int | None = GRACE_PERIOD,
    max_retry: int | None = MAX_RETRY,
) -> RDBStorage:
    """Optuna's RDB storage on ``url``, with heartbeat, retry of dead workers' trials and SQLite tuning.

    Creates Optuna's tables and the ``naslite_`` tables on first use. ``create=False`` opens it for
    reading only: a missing SQLite file is a ``FileNotFoundError``, nothing is created or written (any
    write raises), no write access is needed and the heartbeat is off. ``heartbeat_interval=None``
    turns the heartbeat off. Errors: ``ValueError`` with one line (see :mod:`studies.storage`).
    """
    parsed = database_url(url, create=create)
    if "version_info" not in check_database(parsed, create=create) and not create:
        raise FileNotFoundError(f"{shown(url)} holds no study yet; run 'search start' first, or pass --storage URL of another database")
    beat = heartbeat_interval if create else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        kwargs = dict(
            engine_kwargs=engine_kwargs(parsed, create=create),
            heartbeat_interval=beat,
            grace_period=grace_period if beat else None,
            heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=max_retry) if beat else None,
            writes=create,
            shown_url=parsed.render_as_string(hide_password=True),
        )
        url_text = connect_url(parsed, create).render_as_string(hide_password=False)
        try:
            storage = _with_init_retries(lambda: NasLiteStorage(url_text, **kwargs), parsed)
        except RuntimeError as error:  # Optuna's own schema is too old or too new
            raise ValueError(str(error).strip().splitlines()[0]) from error
        except optuna.exceptions.StorageInternalError as error:
            raise open_error(parsed, error.__cause__ or error) from error
    if create:
        _ensure(storage.engine, parsed)
    return storage


def create_engine(url: str, *, create: bool = True) -> sqlalchemy.Engine:
    """An engine on a checked database whose ``naslite_`` tables exist and are current (used by
    :class:`studies.store.ResultStore`). Raises like :func:`open_storage`; ``create=False`` reads only."""
    parsed = database_url(url, create=create)
    tables = check_database(parsed, create=create)
    engine = sqlalchemy.create_engine(connect_url(parsed, create), **engine_kwargs(parsed, create=create))
    if not create and engine.dialect.name == "sqlite" and records.SchemaVersion.__tablename__ not in tables:
        empty_tables_for_reading(engine)
    if create:
        tune_engine(engine)
        try:
            _ensure(engine, parsed)
        except BaseException:
            engine.dispose()
            raise
    return engine


def _ensure(engine: sqlalchemy.Engine, parsed: sqlalchemy.URL) -> None:
    try:
        _with_init_retries(lambda: ensure_tables(engine), parsed)
    except sqlalchemy.exc.SQLAlchemyError as error:
        raise open_error(parsed, error) from error


def storage_url(storage: Any) -> str:
    """The URL of an RDB storage (password hidden), or the storage's type name."""
    inner = getattr(storage, "_backend", storage)
    url = getattr(inner, "shown_url", None) or getattr(inner, "url", None)
    return shown(url) if url else type(inner).__name__
