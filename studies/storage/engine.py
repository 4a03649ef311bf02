"""SQLAlchemy engines: connection settings for writers and readers, and the SQLite pragmas of writers.

A writer's SQLite connections get a busy timeout, the WAL journal (several processes read while one
writes) and ``synchronous=NORMAL``. A reader's (``create=False``) are opened with ``mode=ro``: SQLite
itself refuses any write, and the journal mode of the file is left as it is. A WAL file in a folder
this process cannot write, with no writer's ``-wal``/``-shm`` beside it, is read as ``immutable``
(SQLite could not create the shared-memory file otherwise, and nobody is writing it).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import quote

import sqlalchemy
from sqlalchemy import event

from studies.storage.urls import journal_files

SQLITE_TIMEOUT = 60
"""Seconds a SQLite connection waits for a lock before "database is locked"."""


def engine_kwargs(parsed: sqlalchemy.URL, *, create: bool = True) -> dict[str, Any]:
    """The ``create_engine`` keywords for ``parsed``: a busy timeout (SQLite) or pre-ping (others);
    read-only transactions on PostgreSQL when ``create`` is false."""
    if parsed.drivername.startswith("sqlite"):
        return {"connect_args": {"timeout": SQLITE_TIMEOUT}}
    if create:
        return {"pool_pre_ping": True}
    return {"pool_pre_ping": True, "connect_args": {"options": "-c default_transaction_read_only=on"}}


def connect_url(parsed: sqlalchemy.URL, create: bool) -> sqlalchemy.URL:
    """The URL a writer (``create``) or a reader connects with: for a SQLite reader, the file opened
    with ``mode=ro`` (see the module docstring); other URLs as they are."""
    if create or not parsed.drivername.startswith("sqlite"):
        return parsed
    path = Path(parsed.database).absolute()
    flags = "mode=ro"
    wal, shm, _ = journal_files(path)
    if not os.access(path.parent, os.W_OK) and not (wal.exists() and shm.exists()):
        flags += "&immutable=1"
    return parsed.set(database=f"file:{quote(str(path))}?{flags}").update_query_dict({"uri": "true"})


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
    """Install the writers' SQLite pragmas on ``engine`` (no-op for other databases); returns ``engine``.

    Connections already in the pool are dropped so that every later one gets the pragmas.
    """
    if engine.dialect.name == "sqlite" and not event.contains(engine, "connect", _sqlite_pragmas):
        event.listen(engine, "connect", _sqlite_pragmas)
        engine.dispose()
    return engine
