"""Files nas-lite must not write: another application's SQLite database (refused, byte for byte as it
was), and any database a reader opens (no write access needed, the file and its journal mode unchanged)."""

from __future__ import annotations

import hashlib
import os
import shlex
import shutil
import sqlite3
import subprocess
import sys
import textwrap

import pytest

from tests.conftest import ROOT, run_cli
from tests.reliability.helpers import QUICK, assert_error
from tests.studies.helpers import TINY_TFLITE

pytestmark = pytest.mark.timeout(600)

MAKE_STUDY = textwrap.dedent("""
    import sys
    from studies.storage import open_storage
    from tests.studies.factory import add_results, sample_study
    from tests.studies.helpers import TINY_TFLITE

    url, journal = sys.argv[1], sys.argv[2]
    if journal == "wal":
        open_storage(url)  # the file as nas-lite writes it: WAL journal, nas-lite's tables
    study = sample_study(url, "demo", complete=5)
    add_results(url, study.trials[0], TINY_TFLITE.read_bytes())
""")


def _sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _journal(path) -> str:
    """``"wal"`` or ``"rollback"``, from the file header (bytes 18-19), without opening the database."""
    return {b"\x02\x02": "wal", b"\x01\x01": "rollback"}[path.read_bytes()[18:20]]


def _study_file(path, journal: str):
    """A study database at ``path``, written by another process that has ended (no -wal, no -shm left)."""
    url = f"sqlite:///{path}"
    subprocess.run([sys.executable, "-c", MAKE_STUDY, url, journal], check=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    if journal == "rollback":
        connection = sqlite3.connect(path)
        connection.execute("PRAGMA journal_mode = DELETE")
        connection.close()
    assert _journal(path) == journal and sorted(p.name for p in path.parent.iterdir()) == [path.name]
    return url


# -- issue 17.1: another application's database -------------------------------------------------
@pytest.fixture
def other_app(tmp_path):
    path = tmp_path / "other-app.db"
    connection = sqlite3.connect(path)
    connection.executescript("create table customers (id integer primary key, name text);"
                             "insert into customers (name) values ('Ada'), ('Grace');"
                             "create table studies (id integer primary key, title text);")
    connection.close()
    return path


@pytest.mark.parametrize("command", [
    ("studies",), ("status",), ("export", "--trial", "0", "-o", "{tmp}/m.tflite"), ("start", "--budget", "1", *QUICK),
])
def test_another_applications_database_is_refused_and_left_byte_for_byte(tmp_path, other_app, command):
    before = _sha256(other_app)
    args = [part.format(tmp=tmp_path) for part in command]
    result = run_cli(*args[:1], "--storage", f"sqlite:///{other_app}", *args[1:], cwd=tmp_path)
    assert_error(result, 2, "another application's database (tables customers)", "new file name")
    assert _sha256(other_app) == before and _journal(other_app) == "rollback"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other-app.db"]


def test_another_applications_database_is_refused_by_every_opener(tmp_path, other_app):
    from studies import storage
    from studies.store import ResultStore

    before = _sha256(other_app)
    url = f"sqlite:///{other_app}"
    for opener in (storage.open_storage, ResultStore, lambda u: storage.open_storage(u, create=False),
                   lambda u: ResultStore(u, create=False), storage.list_studies):
        with pytest.raises(ValueError, match="another application's database"):
            opener(url)
    assert _sha256(other_app) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other-app.db"]


def test_an_empty_file_is_new_to_a_writer_and_holds_no_study_for_a_reader(tmp_path):
    from studies import storage

    path = tmp_path / "studies.db"
    path.touch()
    assert_error(run_cli("studies", "--storage", f"sqlite:///{path}", cwd=tmp_path), 2, "holds no study yet", "search start")
    assert path.read_bytes() == b"" and sorted(p.name for p in tmp_path.iterdir()) == ["studies.db"]
    storage.open_storage(f"sqlite:///{path}")  # a writer takes it as a new database
    assert _journal(path) == "wal"


# -- issue 17.8: reading needs no write access and changes nothing --------------------------------
def _read_commands(url: str, out) -> list[list[str]]:
    search = [sys.executable, "-m", "search"]
    return [[*search, "status", "--storage", url, "--study", "demo"], [*search, "studies", "--storage", url],
            [*search, "export", "--storage", url, "--trial", "0", "-o", str(out / "m.tflite")]]


def test_reading_a_database_in_a_read_only_folder(tmp_path):
    """``chmod 444`` file in a read-only folder: a read-only bind mount as root (root writes through file modes)."""
    folder, out = tmp_path / "ro", tmp_path / "out"
    folder.mkdir()
    out.mkdir()
    path = folder / "studies.db"
    url = _study_file(path, "wal")
    before = _sha256(path)
    commands = " && ".join(shlex.join(command) for command in _read_commands(url, out))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    if os.geteuid() == 0:
        if shutil.which("unshare") is None:
            pytest.skip("needs unshare(1) to mount a read-only folder as root")
        quoted = shlex.quote(str(folder))
        script = f"mount --bind {quoted} {quoted}; mount -o remount,bind,ro {quoted}; {commands}"
        result = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-ec", script],
                                capture_output=True, text=True, timeout=300, env=env)
    else:
        path.chmod(0o444)
        folder.chmod(0o555)
        try:
            result = subprocess.run(["sh", "-ec", commands], capture_output=True, text=True, timeout=300, env=env)
        finally:
            folder.chmod(0o755)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Pareto" in result.stdout or "front" in result.stdout.lower(), result.stdout[-2000:]
    assert "exported trial 0" in result.stdout
    assert (out / "m.tflite").read_bytes() == TINY_TFLITE.read_bytes()
    assert _sha256(path) == before and sorted(p.name for p in folder.iterdir()) == ["studies.db"]


def test_readers_leave_a_rollback_journal_database_as_it_is(tmp_path):
    """The dashboard, status and export on a database in rollback-journal mode: never switched to WAL,
    not a byte changed."""
    from tests.studies.served import fetch, running_dashboard

    path = tmp_path / "studies.db"
    url = _study_file(path, "rollback")
    before = _sha256(path)
    with running_dashboard(url) as served:
        base = served.url.rstrip("/")
        for route in ("/", "/studies", "/api/study?study=demo", "/trial?study=demo&number=0", "/artifact?study=demo&number=0"):
            assert fetch(base + route)[0] == 200, route
    for command in _read_commands(url, tmp_path):
        result = subprocess.run(command, capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT)})
        assert result.returncode == 0, result.stderr[-3000:]
    assert _journal(path) == "rollback" and _sha256(path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.json", "m.tflite", "studies.db"]
