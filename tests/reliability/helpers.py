"""What every reliability test checks: one clean error line, the exit status, and a database that is
unchanged or still consistent (earlier trials intact, none left RUNNING, SQLite's integrity check ok)."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

QUICK = (  # the tiny settings of tests/search, with depthwise blocks of width 4 trained one epoch. Not int8:
    # trained int8 models with dilated depthwise stages can fail XNNPACK's prepare (see README.md)
    "--data-limit", "40", "--image-size", "32", "--epochs", "1", "--batch-size", "8", "--depths", "3",
    "--no-presets", "--widths", "4", "--block-kinds", "depthwise", "--dilations", "1,2", "--threads", "1", "--quant-modes", "float32,float16",
)
FINISHED = ("COMPLETE", "PRUNED", "FAIL")


def assert_error(result, status: int, *texts: str) -> str:
    """``result`` failed with ``status`` and exactly one line on stderr, ``search: error: ...``, that
    contains every one of ``texts`` (the problem and the fix); no traceback. Returns the line."""
    assert result.returncode == status, f"exit {result.returncode}, wanted {status}: {result.stderr[-3000:]}"
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout, result.stderr[-3000:]
    lines = result.stderr.splitlines()
    assert len(lines) == 1, f"wanted one line on stderr, got {len(lines)}: {result.stderr[-3000:]!r}"
    line = lines[0]
    assert line.startswith("search: error: ") and "\r" not in line, repr(line)
    for text in texts:
        assert text in line, f"{text!r} not in {line!r}"
    return line


def rows_digest(path: Path) -> str:
    """A SHA-256 over every row of every table of the SQLite file at ``path`` (read-only), table by table."""
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        digest = hashlib.sha256()
        tables = [name for (name,) in connection.execute("select name from sqlite_master where type='table' order by name")]
        for table in tables:
            digest.update(table.encode())
            for row in sorted(repr(row) for row in connection.execute(f'select * from "{table}"')):
                digest.update(row.encode())
        return digest.hexdigest()
    finally:
        connection.close()


def integrity(path: Path) -> str:
    """``PRAGMA integrity_check`` of the SQLite file at ``path``: ``"ok"`` when it is sound."""
    connection = sqlite3.connect(str(path))
    try:
        return connection.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        connection.close()


def load_study(path: Path, study: str):
    import optuna

    from studies.storage import open_storage

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.load_study(study_name=study, storage=open_storage(f"sqlite:///{path}", create=False, heartbeat_interval=None))


def assert_consistent(path: Path, study: str, budget: int | None = None) -> list:
    """The study in ``path`` is sound: integrity ok, nothing RUNNING or WAITING, and (with ``budget``)
    exactly ``budget`` finished trials that count, each retry chain counted once. Returns them."""
    from search.loop import counted

    assert integrity(path) == "ok"
    trials = load_study(path, study).get_trials(deepcopy=False)
    assert not [t.number for t in trials if t.state.name not in FINISHED], [(t.number, t.state.name) for t in trials]
    kept = counted(trials)
    if budget is not None:
        assert len(kept) == budget, [(t.number, t.state.name, t.system_attrs) for t in trials]
        origins = [t.system_attrs.get("failed_trial", t.number) for t in kept]
        assert len(set(origins)) == len(origins), origins  # a killed trial and its retry never both count
    return kept
