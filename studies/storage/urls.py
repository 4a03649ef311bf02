"""Storage URLs and SQLite files: which URLs are valid, and whether a file may be opened at all."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import sqlalchemy
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

DEFAULT_URL = "sqlite:///studies.db"
URL_FORMS = (
    "sqlite:///studies.db (relative path), sqlite:////abs/path/studies.db, "
    "postgresql://USER:PASSWORD@HOST:5432/DBNAME"
)


def shown(url: str) -> str:
    """``url`` without its password, for messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - an unparsable URL is shown as given
        return url


def database_url(url: str, *, create: bool = True) -> sqlalchemy.URL:
    """The checked SQLAlchemy URL for ``url``; a ``ValueError`` or ``FileNotFoundError`` otherwise.

    ``postgresql://`` without a driver uses psycopg 3 when psycopg2 is not installed. For SQLite
    with ``create=True`` the folder must exist and be writable; with ``create=False`` (commands that
    only read) a missing file is a ``FileNotFoundError`` and no write access is needed. What the
    file holds is checked by :func:`studies.storage.schema.check_database`.
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
        return parsed if driver else parsed.set(drivername=f"postgresql+{_postgres_driver()}")
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
    import optuna

    if optuna.get_all_study_names(storage):
        return  # another process made a study in it meanwhile
    storage.engine.dispose()
    for leftover in (path, *journal_files(path)):
        leftover.unlink(missing_ok=True)


def journal_files(path: Path) -> tuple[Path, Path, Path]:
    """The ``-wal``, ``-shm`` and ``-journal`` files SQLite keeps beside the database at ``path``."""
    return Path(f"{path}-wal"), Path(f"{path}-shm"), Path(f"{path}-journal")


def _postgres_driver() -> str:
    if importlib.util.find_spec("psycopg2") is None and importlib.util.find_spec("psycopg") is not None:
        return "psycopg"
    return "psycopg2"


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
    # itself reports a file that is not a database, in check_database, before anything is written.
    if create and not (os.access(path, os.W_OK) and os.access(folder, os.W_OK)):
        raise ValueError(f"cannot write {path} (permission denied); SQLite needs write access to the file and its folder")
