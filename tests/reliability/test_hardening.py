"""Issue 17, items 7, 9, 10, 12 and 13 through the real command line (the agent's items are in
test_agent_security.py): exported files, exit statuses, predict's output, names with escape
sequences, and non-finite data, each checked the way the README's case table says."""

from __future__ import annotations

import pytest

from tests.conftest import run_cli
from tests.reliability.helpers import assert_error, rows_digest
from tests.studies.helpers import TINY_TFLITE, make_study

pytestmark = pytest.mark.timeout(600)

EVIL = "evil\x1b[2J\x1b]0;owned\x07\rname\x9b31m"


@pytest.fixture
def database(tmp_path):
    """``(path, url)`` of a database with study ``earlier`` (two trials, an artifact for trial 0)."""
    from studies.storage import open_storage
    from studies.store import ResultStore

    path = tmp_path / "studies.db"
    url = f"sqlite:///{path}"
    study = make_study(open_storage(url), "earlier", [(0.8, 10.0, 100.0), (0.7, 5.0, 50.0)])
    with ResultStore(url) as store:
        store.save_artifact(study.trials[0]._trial_id, "earlier", 0, TINY_TFLITE.read_bytes())
    return path, url


# -- 12: names that are terminal escape sequences ------------------------------------------------------
def test_names_with_escape_sequences_are_printed_escaped(tmp_path, database):
    from studies.storage import open_storage

    path, url = database
    make_study(open_storage(url), EVIL, [(0.8, 10.0, 100.0)])
    for args in (("studies",), ("status", "--study", EVIL), ("status", "--study", EVIL + "x")):
        result = run_cli(*args, "--storage", url, cwd=tmp_path)
        for control in ("\x1b", "\x07", "\r", "\x9b"):
            assert control not in result.stdout + result.stderr, (args, result.stdout, result.stderr)
        assert result.returncode == (2 if args[-1].endswith("x") else 0), result.stderr
        assert "evil\\x1b[2J" in result.stdout + result.stderr
