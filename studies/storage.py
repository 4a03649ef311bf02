"""Open the database of a study: Optuna's RDB storage and the project's tables behind one URL.

Contract of :func:`open_storage`:

- ``sqlite:///PATH`` and ``postgresql://...`` URLs only; anything else (an in-memory SQLite
  database too) is a ``ValueError`` that lists the valid forms.
- Nothing is modified before the database is known to be usable: a file that is not a SQLite
  database, a missing or unwritable folder, or a database whose nas-lite schema is newer than
  this code is refused with a one-line ``ValueError`` and left byte for byte as it was.
- Crash safety: trials send a heartbeat every ``heartbeat_interval`` seconds while
  ``study.optimize`` runs them; a RUNNING trial whose heartbeat is older than ``grace_period``
  (its worker was SIGKILLed) is set to FAIL by the next worker that starts a trial
  (``optuna.storages.fail_stale_trials``, called by ``study.optimize``), and
  ``RetryHeartbeatStaleTrialCallback`` enqueues it again as WAITING, with the original number in
  ``system_attrs["failed_trial"]``. A loop that uses ask/tell instead of ``optimize`` must call
  ``optuna.storages.fail_stale_trials(study)`` before ``ask`` and record heartbeats itself.
- SQLite with several worker processes: WAL journal, a 60 s busy timeout on every connection
  (SQLAlchemy ``connect`` event) and retries of every storage call that still meets
  "database is locked". PostgreSQL is the choice for many workers or several machines.
- The ``naslite_`` tables (:mod:`studies.records`) are created on first use in the same database.
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
import os
import random
import time
import warnings
from pathlib import Path
from typing import Any, Callable, TypeVar

import optuna
import sqlalchemy
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.trial import TrialState
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from studies import records

DEFAULT_URL = "sqlite:///studies.db"
URL_FORMS = (
    "sqlite:///studies.db (relative path), sqlite:////abs/path/studies.db, "
    "postgresql://USER:PASSWORD@HOST:5432/DBNAME"
)
HEARTBEAT_INTERVAL, GRACE_PERIOD = (int(s) for s in os.environ.get("NAS_LITE_HEARTBEAT", "10,30").split(","))
"""Seconds between heartbeats of a running trial, and seconds without one after which a RUNNING
trial is failed and retried (``NAS_LITE_HEARTBEAT=INTERVAL,GRACE`` changes them, e.g. in tests)."""
MAX_RETRY = 2
"""How many times a trial whose worker died is run again (a trial that kills workers is dropped)."""
SQLITE_TIMEOUT = 60
"""Seconds a SQLite connection waits for a lock before "database is locked"."""
RETRY_SECONDS = 120
"""How long a storage call is retried while the database stays locked."""

_LOCKED_TEXT = ("database is locked", "database table is locked", "database schema has changed")
_LOCKED_PGCODES = ("40001", "40P01")  # serialization failure, deadlock
_INIT_RACE_TEXT = ("already exists", "unique constraint", "duplicate key")

T = TypeVar("T")


# -- URLs and files ------------------------------------------------------------------------------
def shown(url: str) -> str:
    """``url`` without its password, for messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - an unparsable URL is shown as given
        return url


def database_url(url: str, *, create: bool = True) -> sqlalchemy.URL:
    """The checked SQLAlchemy URL for ``url``; a ``ValueError`` or ``FileNotFoundError`` otherwise.

    ``postgresql://`` without a driver uses psycopg 3 when psycopg2 is not installed. For SQLite,
    the folder must exist and be writable (a file that is not a database is reported by
    :func:`check_schema_version`); with ``create=False`` a missing file is a
    ``FileNotFoundError`` (commands that only read).
    """
    if not isinstance(url, str) or "://" not in url:
        raise ValueError(f"storage URL {url!r} is not valid; use {URL_FORMS}")
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ValueError(f"storage URL {url!r} is not valid; use {URL_FORMS}") from None
    backend, _, driver = parsed.drivername.partition("+")
    if backend == "sqlite":
        _check_sqlite_file(parsed.database, create)
        return parsed
    if backend == "postgresql":
        if not driver:
            parsed = parsed.set(drivername=f"postgresql+{_postgres_driver()}")
        return parsed
    raise ValueError(f"storage URL scheme {parsed.drivername!r} is not supported; use {URL_FORMS}")


def new_sqlite_file(url: str) -> Path | None:
    """The path of the SQLite file ``url`` names when that file does not exist yet, else None."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return None
    if not parsed.drivername.startswith("sqlite") or not parsed.database:
        return None
    path = Path(parsed.database)
    return None if path.exists() else path


def remove_if_unused(storage, path: Path) -> None:
    """Delete the SQLite file at ``path`` (and its journal files) if it holds no study at all."""
    if optuna.get_all_study_names(storage):
        return  # another process made a study in it meanwhile
    storage.engine.dispose()
    for leftover in (path, Path(f"{path}-wal"), Path(f"{path}-shm"), Path(f"{path}-journal")):
        leftover.unlink(missing_ok=True)


def _postgres_driver() -> str:
    import importlib.util

    if importlib.util.find_spec("psycopg2") is None and importlib.util.find_spec("psycopg") is not None:
        return "psycopg"
    return "psycopg2"


def sqlite_path(url: str) -> Path | None:
    """The file of a ``sqlite:///`` URL, or ``None`` (in-memory database, or not SQLite)."""
    parsed = make_url(url)
    if not parsed.drivername.startswith("sqlite") or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


def _check_sqlite_file(database: str | None, create: bool) -> None:
    if database in (None, "", ":memory:"):
        # every connection would get its own empty database: nothing is kept, nothing is shared
        raise ValueError(f"storage URL sqlite:///{database or ''} names no file; use {URL_FORMS}")
    path = Path(database)
    folder = path.absolute().parent
    if path.is_dir():
        raise ValueError(f"storage path {path} is a folder; name a database file such as sqlite:///{path / 'studies.db'}")
    if not folder.is_dir():
        raise ValueError(f"folder {folder} of the storage database does not exist; create it (mkdir -p {folder}) or choose another path")
    if not path.exists():
        if not create:
            raise FileNotFoundError(
                f"no database at {path}; run 'search start' first, or pass --storage sqlite:///PATH of an existing one"
            )
        if not os.access(folder, os.W_OK):
            raise ValueError(f"cannot create a database in {folder}: permission denied; choose a writable folder")
        return
    # Never open() the file here: closing any descriptor of a SQLite file drops the POSIX locks this
    # process's connections hold on it (then another process may delete the WAL under them). SQLite
    # itself reports a file that is not a database, in check_schema_version, before anything is written.
    if not (os.access(path, os.W_OK) and os.access(folder, os.W_OK)):
        raise ValueError(f"cannot write {path} (permission denied); SQLite needs write access to the file and its folder")


# -- engines -------------------------------------------------------------------------------------
def _engine_kwargs(parsed: sqlalchemy.URL) -> dict[str, Any]:
    if parsed.drivername.startswith("sqlite"):
        return {"connect_args": {"timeout": SQLITE_TIMEOUT}}
    return {"pool_pre_ping": True}


def _sqlite_pragmas(dbapi_connection, connection_record) -> None:
    """SQLAlchemy ``connect`` event: busy timeout, WAL journal, and fewer fsyncs (safe with WAL)."""
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_TIMEOUT * 1000}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
    finally:
        cursor.close()


def tune_engine(engine: sqlalchemy.Engine) -> sqlalchemy.Engine:
    """Install the SQLite pragmas on ``engine`` (no-op for other databases); returns ``engine``.

    Connections already in the pool are dropped so that every later one gets the pragmas.
    """
    if engine.dialect.name == "sqlite" and not event.contains(engine, "connect", _sqlite_pragmas):
        event.listen(engine, "connect", _sqlite_pragmas)
        engine.dispose()
    return engine


def create_engine(url: str, *, create: bool = True) -> sqlalchemy.Engine:
    """A tuned engine on a checked database whose ``naslite_`` tables exist and are current.

    Raises like :func:`open_storage`. Used by :class:`studies.store.ResultStore`.
    """
    parsed = database_url(url, create=create)
    check_schema_version(parsed)
    engine = tune_engine(sqlalchemy.create_engine(parsed, **_engine_kwargs(parsed)))
    try:
        _with_init_retries(lambda: ensure_tables(engine), parsed)
    except BaseException:
        engine.dispose()
        raise
    return engine


# -- the nas-lite schema -------------------------------------------------------------------------
def check_schema_version(parsed: sqlalchemy.URL) -> int | None:
    """The ``naslite_`` schema version of the database (``None`` if it has none yet).

    Reads through a plain engine (no pragmas, no writes). A version newer than
    ``records.SCHEMA_VERSION`` is a ``ValueError`` that says to upgrade nas-lite.
    """
    engine = sqlalchemy.create_engine(parsed, **_engine_kwargs(parsed))
    try:
        with engine.connect() as connection:
            if not sqlalchemy.inspect(connection).has_table(records.SchemaVersion.__tablename__):
                return None
            version = connection.execute(sqlalchemy.select(sqlalchemy.func.max(records.SchemaVersion.version))).scalar()
    except sqlalchemy.exc.DatabaseError as error:
        raise _open_error(parsed, error) from error
    finally:
        engine.dispose()
    if version is not None and version > records.SCHEMA_VERSION:
        raise ValueError(
            f"{parsed.render_as_string(hide_password=True)} was written by a newer nas-lite (result schema {version}, "
            f"this one knows up to {records.SCHEMA_VERSION}); upgrade nas-lite (pip install -U nas-lite) to open it"
        )
    return version


def ensure_tables(engine: sqlalchemy.Engine) -> None:
    """Create the ``naslite_`` tables if missing, record the schema version, apply upgrades."""
    records.Base.metadata.create_all(engine)
    with engine.begin() as connection:
        version = connection.execute(sqlalchemy.select(sqlalchemy.func.max(records.SchemaVersion.version))).scalar()
        if version is None:
            connection.execute(sqlalchemy.insert(records.SchemaVersion).values(id=1, version=records.SCHEMA_VERSION))
            return
        if version > records.SCHEMA_VERSION:
            raise ValueError(
                f"the database was written by a newer nas-lite (result schema {version}, this one knows up to "
                f"{records.SCHEMA_VERSION}); upgrade nas-lite (pip install -U nas-lite) to open it"
            )
        if version == records.SCHEMA_VERSION:
            return  # current: opening writes nothing (the dashboard and export only read)
        while version < records.SCHEMA_VERSION:
            if version not in records.UPGRADES:
                raise ValueError(f"result schema {version} cannot be upgraded by this nas-lite; export your models with the nas-lite that wrote it")
            records.UPGRADES[version](connection)
            version += 1
        connection.execute(
            sqlalchemy.update(records.SchemaVersion).values(version=version, updated=records.utcnow())
        )


def _open_error(parsed: sqlalchemy.URL, error: Exception) -> ValueError:
    reason = str(getattr(error, "orig", error)).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    where = parsed.render_as_string(hide_password=True)
    if "not a database" in reason:
        return ValueError(f"{parsed.database} is not a SQLite database; pass the path of a nas-lite database or a new file name")
    return ValueError(f"cannot open {where}: {reason}; check the URL, the server and the permissions")


# -- retries -------------------------------------------------------------------------------------
def _causes(error: BaseException):
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        yield error
        orig = getattr(error, "orig", None)
        if orig is not None and id(orig) not in seen:
            yield orig
        error = error.__cause__ or error.__context__


def is_locked_error(error: BaseException) -> bool:
    """Whether ``error`` is a transient lock conflict ("database is locked", PG deadlock or serialization)."""
    for cause in _causes(error):
        text = str(cause).lower()
        if any(part in text for part in _LOCKED_TEXT):
            return True
        if getattr(cause, "sqlstate", None) in _LOCKED_PGCODES or getattr(cause, "pgcode", None) in _LOCKED_PGCODES:
            return True
    return False


def _is_init_race(error: BaseException) -> bool:
    return is_locked_error(error) or any(
        part in str(cause).lower() for cause in _causes(error) for part in _INIT_RACE_TEXT
    )


def retry_locked(work: Callable[[], T], *, seconds: float = RETRY_SECONDS, transient=is_locked_error) -> T:
    """Run ``work()``; while it fails with a lock conflict, wait (jittered backoff) and run it again.

    ``work`` must leave nothing behind when it fails (one transaction, rolled back), which is what
    every Optuna storage call and every :class:`~studies.store.ResultStore` call does.
    """
    deadline = time.monotonic() + seconds
    attempt = 0
    while True:
        try:
            return work()
        except Exception as error:
            if not transient(error) or time.monotonic() >= deadline:
                raise
        attempt += 1
        time.sleep(min(2.0, 0.02 * 2 ** attempt) * random.uniform(0.5, 1.5))


def _with_init_retries(work: Callable[[], T], parsed: sqlalchemy.URL) -> T:
    """Creating tables races when several workers start on a fresh database: retry, then explain."""
    try:
        return retry_locked(work, seconds=RETRY_SECONDS, transient=_is_init_race)
    except sqlalchemy.exc.DatabaseError as error:
        raise _open_error(parsed, error) from error


# -- Optuna's storage ----------------------------------------------------------------------------
_RETRIED_METHODS = (
    "create_new_study", "delete_study", "set_study_user_attr", "set_study_system_attr",
    "get_study_id_from_name", "get_study_name_from_id", "get_study_directions",
    "get_study_user_attrs", "get_study_system_attrs", "get_all_studies",
    "create_new_trial", "set_trial_param", "get_trial_id_from_study_id_trial_number",
    "get_trial_number_from_id", "get_trial_param", "set_trial_state_values",
    "set_trial_intermediate_value", "set_trial_user_attr", "set_trial_system_attr",
    "get_trial", "get_all_trials", "get_n_trials", "get_best_trial",
    "get_trial_params", "get_trial_user_attrs", "get_trial_system_attrs",
    "record_heartbeat", "_get_stale_trial_ids",
    # private methods that Optuna's _CachedStorage calls on its backend
    "_create_new_trial", "_set_trial_param", "_get_best_trial_id", "_get_trials",
)


def _retrying(method):
    @functools.wraps(method)
    def call(self, *args, **kwargs):
        return retry_locked(lambda: method(self, *args, **kwargs))

    return call


class NasLiteStorage(RDBStorage):
    """``RDBStorage`` whose calls retry on lock conflicts and whose engine carries the SQLite pragmas.

    Build it with :func:`open_storage`. Picklable (for worker processes) like ``RDBStorage``.
    """

    def __init__(self, url: str, **kwargs):
        super().__init__(url, **kwargs)
        tune_engine(self.engine)

    def __setstate__(self, state):
        super().__setstate__(state)
        tune_engine(self.engine)

    # Optuna's heartbeat thread records the first beat a moment after the trial starts, and a RUNNING
    # trial without any beat is never found stale: a worker killed in that moment would leave its
    # trial RUNNING forever. So every trial gets its first beat before it becomes RUNNING (a beat on
    # a WAITING trial is harmless), or, where Optuna creates it RUNNING, right after.
    def _create_new_trial(self, study_id, template_trial=None):
        # Optuna's _CachedStorage calls this private method directly (create_new_trial calls it too).
        frozen = retry_locked(lambda: RDBStorage._create_new_trial(self, study_id, template_trial))
        if self.heartbeat_interval and frozen.state == TrialState.RUNNING:
            self.record_heartbeat(frozen._trial_id)
        return frozen

    def _get_stale_trial_ids(self, study_id):
        """Optuna's stale trials, and RUNNING trials that never beat once they are older than the grace
        period (a worker killed right after Optuna created its trial RUNNING, or a database written
        before the first beat was moved ahead of the state change)."""
        stale = retry_locked(lambda: RDBStorage._get_stale_trial_ids(self, study_id))
        return stale + retry_locked(lambda: self._silent_trial_ids(study_id))

    def _silent_trial_ids(self, study_id) -> list[int]:
        from optuna.storages._rdb import models
        from optuna.storages._rdb.storage import _create_scoped_session

        # Optuna stores datetime_start as naive UTC, from the clock of the process that started the trial.
        now = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
        oldest = now - datetime.timedelta(seconds=self.grace_period or 2 * self.heartbeat_interval)
        with _create_scoped_session(self.scoped_session) as session:
            running = (session.query(models.TrialModel)
                       .filter(models.TrialModel.study_id == study_id, models.TrialModel.state == TrialState.RUNNING,
                               models.TrialModel._datetime_start_utc < oldest, ~models.TrialModel.heartbeats.any())
                       .all())
            return [trial.trial_id for trial in running]

    def set_trial_state_values(self, trial_id, state, values=None):
        if state == TrialState.RUNNING and self.heartbeat_interval:
            self.record_heartbeat(trial_id)
        return retry_locked(lambda: RDBStorage.set_trial_state_values(self, trial_id, state, values))


for _name in _RETRIED_METHODS:
    if _name not in NasLiteStorage.__dict__:  # the overrides above retry their own steps
        setattr(NasLiteStorage, _name, _retrying(getattr(RDBStorage, _name)))


def open_storage(
    url: str = DEFAULT_URL,
    *,
    create: bool = True,
    heartbeat_interval: int | None = HEARTBEAT_INTERVAL,
    grace_period: int | None = GRACE_PERIOD,
    max_retry: int | None = MAX_RETRY,
) -> RDBStorage:
    """Optuna's RDB storage on ``url``, with heartbeat, retry of dead workers' trials and SQLite tuning.

    Creates Optuna's tables and the ``naslite_`` tables on first use (``create=False``: a
    missing SQLite file is a ``FileNotFoundError`` instead). ``heartbeat_interval=None`` turns the
    heartbeat off. Errors: ``ValueError`` with one line (see the module docstring).
    """
    parsed = database_url(url, create=create)
    check_schema_version(parsed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        callback = RetryHeartbeatStaleTrialCallback(max_retry=max_retry) if heartbeat_interval else None
        kwargs = dict(
            engine_kwargs=_engine_kwargs(parsed),
            heartbeat_interval=heartbeat_interval,
            grace_period=grace_period if heartbeat_interval else None,
            heartbeat_stale_trial_callback=callback,
        )
        url_text = parsed.render_as_string(hide_password=False)
        try:
            storage = _with_init_retries(lambda: NasLiteStorage(url_text, **kwargs), parsed)
        except RuntimeError as error:  # Optuna's own schema is too old or too new
            raise ValueError(str(error).strip().splitlines()[0]) from error
        except optuna.exceptions.StorageInternalError as error:
            raise _open_error(parsed, error.__cause__ or error) from error
    try:
        _with_init_retries(lambda: ensure_tables(storage.engine), parsed)
    except sqlalchemy.exc.SQLAlchemyError as error:
        raise _open_error(parsed, error) from error
    return storage


def storage_url(storage: Any) -> str:
    """The URL of an RDB storage (password hidden), or the storage's type name."""
    inner = getattr(storage, "_backend", storage)
    url = getattr(inner, "url", None)
    return shown(url) if url else type(inner).__name__


# -- studies -------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class StudyInfo:
    """One study in a storage: names, directions and trial counts by state (``TrialState`` names)."""

    name: str
    study_id: int
    directions: tuple[str, ...]
    metric_names: tuple[str, ...] | None
    states: dict[str, int]
    last_activity: datetime.datetime | None
    user_attrs: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def n_trials(self) -> int:
        return sum(self.states.values())

    @property
    def n_finished(self) -> int:
        """Complete, pruned and failed trials (what a budget counts)."""
        return sum(self.states.get(state, 0) for state in ("COMPLETE", "PRUNED", "FAIL"))

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["last_activity"] = self.last_activity.isoformat() if self.last_activity else None
        data["n_trials"] = self.n_trials
        return data


def _as_storage(storage: "str | optuna.storages.BaseStorage"):
    return open_storage(storage, create=False) if isinstance(storage, str) else storage


def list_studies(storage: "str | optuna.storages.BaseStorage") -> list[StudyInfo]:
    """Every study in ``storage`` (a URL or an open storage), oldest first (by study id).

    A URL of a missing SQLite file is a ``FileNotFoundError``; nothing is created.
    """
    storage = _as_storage(storage)
    infos = []
    for study in sorted(storage.get_all_studies(), key=lambda s: s._study_id):
        trials = storage.get_all_trials(study._study_id, deepcopy=False)
        states: dict[str, int] = {}
        for trial in trials:
            states[trial.state.name] = states.get(trial.state.name, 0) + 1
        times = [t for trial in trials for t in (trial.datetime_start, trial.datetime_complete) if t]
        names = study.system_attrs.get("study:metric_names")
        infos.append(StudyInfo(
            name=study.study_name,
            study_id=study._study_id,
            directions=tuple(d.name.lower() for d in study.directions),
            metric_names=tuple(names) if names else None,
            states=states,
            last_activity=max(times) if times else None,
            user_attrs=dict(study.user_attrs),
        ))
    return infos


def latest_study(infos: list[StudyInfo]) -> StudyInfo:
    """The study with the most recent trial activity; studies without trials rank by id after them."""
    if not infos:
        raise LookupError("the storage holds no study yet; run 'search start' first or pass --storage URL")
    return max(infos, key=lambda info: (info.last_activity is not None, info.last_activity or datetime.datetime.min, info.study_id))


def load_study(storage: "str | optuna.storages.BaseStorage", name: str | None = None) -> optuna.Study:
    """The study ``name`` in ``storage`` (a URL or an open storage); the most recent one if ``None``.

    Errors: ``LookupError`` naming the available studies when ``name`` is not there, or when the
    storage holds no study; ``FileNotFoundError`` for a missing SQLite file.
    """
    storage = _as_storage(storage)
    if name is None:
        name = latest_study(list_studies(storage)).name
    try:
        return optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        available = [info.name for info in list_studies(storage)]
        if not available:
            raise LookupError(f"no study {name!r}: {storage_url(storage)} holds no study yet; run 'search start' first") from None
        raise LookupError(
            f"no study {name!r} in {storage_url(storage)}; available: {', '.join(available)} (see 'search studies')"
        ) from None
