"""A lock shared by every process that uses one storage, for the rare steps that must not interleave.

SQLite: an advisory ``flock`` on ``<database>.lock`` beside the file (SQLite itself is local).
PostgreSQL: ``pg_advisory_lock``, so processes on several machines agree. Anything else: no lock.
"""

from __future__ import annotations

import contextlib
import zlib


@contextlib.contextmanager
def storage_lock(url: str, name: str):
    """Hold the lock ``name`` of the storage at ``url`` for the ``with`` block."""
    if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
        with _file_lock(url.removeprefix("sqlite:///") + ".lock"):
            yield
    elif url.startswith("postgresql"):
        with _postgres_lock(url, zlib.crc32(name.encode())):
            yield
    else:
        yield


@contextlib.contextmanager
def _file_lock(path: str):
    import fcntl

    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextlib.contextmanager
def _postgres_lock(url: str, key: int):
    import sqlalchemy

    engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)
    with engine.connect() as connection:
        connection.execute(sqlalchemy.text("SELECT pg_advisory_lock(:key)"), {"key": key})
        try:
            yield
        finally:
            connection.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:key)"), {"key": key})
    engine.dispose()
