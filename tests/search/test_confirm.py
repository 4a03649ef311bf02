"""``search confirm``: real retraining with seeds, held-out test Dice, resumption after SIGKILL, bad input."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from tests.conftest import ROOT, run_cli


def copy_database(source, target) -> str:
    """A consistent copy (WAL included) of a SQLite file: tests must not change the session's search."""
    with sqlite3.connect(source) as old, sqlite3.connect(target) as new:
        old.backup(new)
    return f"sqlite:///{target}"


def rows(url: str, study: str) -> list[dict]:
    from studies.store import ResultStore

    with ResultStore(url, create=False) as store:
        return store.confirmations(study)


def wait_for_rows(url: str, study: str, count: int, process, timeout: float = 400) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline and process.poll() is None:
        if len(rows(url, study)) >= count:
            return
        time.sleep(0.5)
    pytest.fail(f"no confirming run stored in {timeout} s (status {process.poll()})")


@pytest.mark.slow  # about 30 s or more: the default tier stays under 15 minutes
def test_confirm_resumes_after_sigkill_and_stores_each_seed(tiny_search, tmp_path):
    folder, _, name = tiny_search
    url = copy_database(folder / "studies.db", tmp_path / "copy.db")  # the study stored sqlite:///studies.db
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    arguments = ["confirm", "--storage", url, "--study", name, "--trials", "0", "--epochs", "1"]
    process = subprocess.Popen([sys.executable, "-m", "search", *arguments, "--seeds", "1"], cwd=elsewhere,
                               env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    wait_for_rows(url, name, 1, process)
    process.send_signal(signal.SIGKILL)  # mid-way: the worker of the second run leaves with its parent
    process.wait()
    first = rows(url, name)

    result = run_cli(*arguments, "--seeds", "2", cwd=elsewhere)
    assert result.returncode == 0, result.stderr[-3000:]
    assert not list(elsewhere.iterdir())  # the runs went to the database given, not the URL the study was made with
    assert f"{len(first)} of 4 runs were done before: continuing" in result.stderr
    assert "8 test images: the study's held-out test split" in result.stderr  # the search held them out too
    done = rows(url, name)
    assert sorted((r["subject"], r["seed"]) for r in done) == [("preset:unet", 0), ("preset:unet", 1), ("trial:0", 0), ("trial:0", 1)]
    assert [r for r in done if (r["subject"], r["seed"]) == (first[0]["subject"], first[0]["seed"])] == first[:1]  # not run again
    for row in done:
        figures = row["figures"]
        assert (figures["train_images"], figures["val_images"], figures["test_images"]) == (24, 8, 8)  # 40 pairs
        assert 0 <= figures["test_dice"] <= 1 and len(figures["test_dice_per_image"]) == 8
        assert figures["latency_ms"] > 0 and figures["epochs_run"] == 1 and figures["protocol"]["threads"] == 1
    unet = {r["seed"]: r["figures"] for r in done if r["subject"] == "preset:unet"}
    assert unet[0]["val_dice_history"] != unet[1]["val_dice_history"]  # two seeds, two trainings
    table = result.stdout
    assert "confirmed: 2 subject(s), 1 epochs, up to 2 seed(s)" in table and " ± " in table
    assert table.strip().splitlines()[-1].split()[0] == "unet"


@pytest.fixture
def stored(tmp_path):
    """A nas-lite study (stored config) with one complete trial and one confirming run already stored."""
    from studies.store import ResultStore
    from tests.studies.factory import add_trial, create_study
    from tests.studies.helpers import TINY_TFLITE

    url = f"sqlite:///{tmp_path / 'studies.db'}"
    study = create_study(url, "demo", {"image_size": 32})
    add_trial(study, 0)
    with ResultStore(url) as store:
        store.save_confirmation("demo", "trial:0", 12, 0, {"dice": 0.8}, TINY_TFLITE.read_bytes())
    return url


@pytest.mark.parametrize("arguments, message", [
    (("--trials", "7"), "--trials: 7 is no complete trial with a spec in study demo; complete trials: 0"),
    (("--test-fraction", "0.9"), "--test-fraction: must be above 0 and below 0.8, got 0.9"),
    (("--data-limit", "2"), "--data-limit: confirm needs at least 3 image pairs"),
    (("--top", "0"), "--top: must be at least 1"),
    (("--front", "--top", "2"), "not allowed with argument"),
])
def test_bad_input_is_one_line_and_keeps_what_is_stored(stored, arguments, message):
    result = run_cli("confirm", "--storage", stored, "--study", "demo", *arguments)
    assert result.returncode == 2 and message in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert [r["figures"] for r in rows(stored, "demo")] == [{"dice": 0.8}]


def test_a_study_not_made_by_search_start_is_refused(tmp_path):
    from studies.storage import open_storage
    from tests.studies.helpers import make_study

    url = f"sqlite:///{tmp_path / 'studies.db'}"
    make_study(open_storage(url), "plain", [(0.8, 10.0, 100.0)])
    result = run_cli("confirm", "--storage", url, "--study", "plain")
    assert result.returncode == 2 and "was not made by 'search start'" in result.stderr, result.stderr
