"""The default study, one rule for every command: without ``--study``, ``search start`` makes or
continues ``search-<today>``, and every other command takes the newest study with such a name
(the most recently active study when the storage holds none)."""

from __future__ import annotations

import datetime
import re

DEFAULT_PREFIX = "search-"
_DEFAULT_NAME = re.compile(rf"{DEFAULT_PREFIX}(\d{{4}}-\d{{2}}-\d{{2}})")


def default_study_name(today: datetime.date | None = None) -> str:
    """The name ``search start`` gives a study when ``--study`` is not given."""
    return f"{DEFAULT_PREFIX}{(today or datetime.date.today()).isoformat()}"


def default_name_date(name: str) -> str | None:
    """The date of a default study's name (``search-2026-12-01`` -> ``2026-12-01``), else ``None``."""
    match = _DEFAULT_NAME.fullmatch(name)
    return match.group(1) if match else None


_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """``text`` with control characters but newlines written as ``\\x1b``: a study name (any string
    Optuna accepts) must not move the cursor, clear or retitle the terminal that shows it."""
    return _CONTROL.sub(lambda match: f"\\x{ord(match.group()):02x}", text)
