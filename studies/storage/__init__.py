"""Open the database of a study: Optuna's RDB storage and the project's tables behind one URL.

Contract of :func:`open_storage` (and of :func:`create_engine`, which :class:`studies.store.ResultStore` uses):

- ``sqlite:///PATH`` and ``postgresql://...`` URLs only; anything else (an in-memory SQLite
  database too) is a ``ValueError`` that lists the valid forms.
- Nothing is modified before the database is known to be nas-lite's and usable: a file that is not
  a SQLite database, a SQLite database of another application (tables that are neither nas-lite's nor
  Optuna's), a missing or unwritable folder, or a database whose nas-lite schema is newer than this
  code is refused with a one-line ``ValueError`` and left byte for byte as it was.
- Readers (``create=False``: status, studies, export, the dashboard, the report) never write: SQLite
  opens the file with ``mode=ro`` (``immutable`` in a folder nobody may write), PostgreSQL with
  read-only transactions; the journal mode stays as it is and no write access is needed.
- Crash safety: trials send a heartbeat every ``heartbeat_interval`` seconds while
  ``study.optimize`` runs them; a RUNNING trial whose heartbeat is older than ``grace_period``
  (its worker was SIGKILLed) is set to FAIL by the next worker that starts a trial
  (``optuna.storages.fail_stale_trials``, called by ``study.optimize``), and
  ``RetryHeartbeatStaleTrialCallback`` enqueues it again as WAITING, with the original number in
  ``system_attrs["failed_trial"]``. A loop that uses ask/tell instead of ``optimize`` must call
  :func:`studies.optuna_internals.fail_stale_trials` before it pops a trial and run
  :func:`studies.optuna_internals.heartbeat_thread` itself.
- SQLite with several worker processes: WAL journal, a 60 s busy timeout on every connection
  (SQLAlchemy ``connect`` event) and retries of every storage write that still meets
  "database is locked". PostgreSQL is the choice for many workers or several machines.
- The ``naslite_`` tables (:mod:`studies.records`) are created on first use in the same database,
  and upgraded from an older schema version by ``records.UPGRADES``.

Modules, one job each: :mod:`~studies.storage.urls` (URLs and files), :mod:`~studies.storage.engine`
(connection settings and pragmas), :mod:`~studies.storage.schema` (whose database, which version),
:mod:`~studies.storage.retry`, :mod:`~studies.storage.rdb` (Optuna's storage, opening) and
:mod:`~studies.storage.listing` (studies in a storage).
"""

from studies.storage.engine import SQLITE_TIMEOUT, tune_engine
from studies.storage.listing import StudyInfo, latest_study, list_studies, load_study
from studies.storage.rdb import (
    GRACE_PERIOD, HEARTBEAT_INTERVAL, MAX_RETRY, NasLiteStorage, create_engine, open_storage, storage_url,
)
from studies.storage.retry import RETRY_SECONDS, is_locked_error, retry_locked
from studies.storage.schema import check_database, ensure_tables
from studies.storage.urls import DEFAULT_URL, URL_FORMS, database_url, new_sqlite_file, remove_if_unused, shown

__all__ = [
    "DEFAULT_URL", "GRACE_PERIOD", "HEARTBEAT_INTERVAL", "MAX_RETRY", "RETRY_SECONDS", "SQLITE_TIMEOUT", "URL_FORMS",
    "NasLiteStorage", "StudyInfo", "check_database", "create_engine", "database_url", "ensure_tables",
    "is_locked_error", "latest_study", "list_studies", "load_study", "new_sqlite_file", "open_storage",
    "remove_if_unused", "retry_locked", "shown", "storage_url", "tune_engine",
]
