"""Retries of database work that meets a transient lock conflict, with jittered exponential backoff."""

from __future__ import annotations

import random
import time
from typing import Callable, TypeVar

T = TypeVar("T")

RETRY_SECONDS = 120
"""How long a storage call is retried while the database stays locked."""

_LOCKED_TEXT = ("database is locked", "database table is locked", "database schema has changed")
_LOCKED_PGCODES = ("40001", "40P01")  # serialization failure, deadlock
_INIT_RACE_TEXT = ("already exists", "unique constraint", "duplicate key")


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


def is_init_race(error: BaseException) -> bool:
    """A lock conflict, or another process creating the same tables at the same moment."""
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
