"""``search start`` end to end on tiny settings: a real SQLite file, real workers, real LiteRT."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import optuna
import pytest

from tests.conftest import ROOT, run_cli

TINY = (
    "--data", "synthetic", "--data-limit", "40", "--image-size", "32", "--epochs", "2", "--rungs", "off",
    "--batch-size", "8", "--depths", "3", "--widths", "4,8", "--threads", "1", "--quant-modes", "float32,int8",
    "--no-presets",
)
FINISHED = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED, optuna.trial.TrialState.FAIL)


def load(tmp_path, name="s"):
    from studies.storage import open_storage

    return optuna.load_study(study_name=name, storage=open_storage(f"sqlite:///{tmp_path / 'studies.db'}"))


def budget_state(study):
    """(finished trials that count, trials still RUNNING or WAITING)."""
    from search.loop import counted

    trials = counted(study.get_trials(deepcopy=False))
    return sum(t.state in FINISHED for t in trials), sum(t.state not in FINISHED for t in trials)


def test_start_runs_the_budget_and_stores_everything(tmp_path):
    result = run_cli("start", "--budget", "4", "--study", "s", *TINY, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "studies.db").is_file()  # the default storage, in the current folder
    study = load(tmp_path)
    assert study.metric_names == ["dice", "latency_ms", "size_kb"]
    trials = study.get_trials()
    assert len(trials) == 4 and all(t.state in FINISHED for t in trials)
    assert study.user_attrs["config"]["budget"] == 4
    before = [t.user_attrs["seconds_before"] for t in trials]  # the worker's time between trials
    assert before[0] > 0 and all(seconds >= 0 for seconds in before)

    from ai_edge_litert.interpreter import Interpreter

    from space.spec import CandidateSpec
    from studies.store import ResultStore

    store = ResultStore(f"sqlite:///{tmp_path / 'studies.db'}")
    complete = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert complete, [t.user_attrs.get("error") for t in trials]
    for trial in complete:
        spec = CandidateSpec.from_dict(trial.user_attrs["spec"])
        assert spec.input_size == 32 and spec.depth == 3
        dice, latency, size = trial.values
        assert 0 <= dice <= 1 and latency > 0 and size > 0
        assert trial.user_attrs["latency_ms"] == latency
        assert len(trial.user_attrs["dice_history"]) == 2
        interpreter = Interpreter(model_content=store.artifact(trial._trial_id))
        interpreter.allocate_tensors()
        assert list(interpreter.get_output_details()[0]["shape"]) == [1, 32, 32, 1]
        (measurement,) = store.measurements(trial._trial_id)
        assert measurement["stats"]["median_ms"] == pytest.approx(latency)
        assert len(store.previews(trial._trial_id)) == 3
        assert len(study.user_attrs["constant_mask"]) == len(trial.user_attrs["dice_per_image"])  # the same images
    # one line per finished trial, and the front at the end
    assert sum(line.startswith("#") for line in result.stdout.splitlines()) == 4
    assert "Pareto front" in result.stdout


@pytest.mark.slow
def test_start_continues_a_study_up_to_a_larger_budget(tmp_path):
    assert run_cli("start", "--budget", "1", "--study", "s", *TINY, cwd=tmp_path).returncode == 0
    result = run_cli("start", "--budget", "2", "--study", "s", "--json", cwd=tmp_path)  # settings come from the study
    assert result.returncode == 0, result.stderr[-3000:]
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert [e["event"] for e in events].count("trial") == 1
    assert budget_state(load(tmp_path)) == (2, 0)


@pytest.mark.slow
def test_continuing_with_other_settings_is_refused(tmp_path):
    assert run_cli("start", "--budget", "1", "--study", "s", *TINY, cwd=tmp_path).returncode == 0
    result = run_cli("start", "--budget", "2", "--study", "s", "--image-size", "64", cwd=tmp_path)
    assert result.returncode == 2
    assert "--image-size: study 's' was made with 32" in result.stderr
    assert budget_state(load(tmp_path)) == (1, 0)


@pytest.mark.slow
def test_impossible_latency_constraint_trains_nothing(tmp_path):
    result = run_cli("start", "--budget", "3", "--study", "s", "--max-latency-ms", "0.0001", *TINY, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    trials = load(tmp_path).get_trials()
    assert len(trials) == 3
    for trial in trials:
        assert trial.state == optuna.trial.TrialState.COMPLETE
        assert "rejected before training" in trial.user_attrs["infeasible"]
        assert "train" not in trial.user_attrs["seconds"] and not trial.user_attrs.get("dice_history")
        assert trial.constraints["max_latency_ms"] > 0  # Optuna 5's form (trial.set_constraint)


@pytest.mark.slow
def test_two_workers_share_one_sqlite_file(tmp_path):
    result = run_cli("start", "--budget", "4", "--study", "s", "--workers", "2", *TINY, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "database is locked" not in result.stderr
    assert budget_state(load(tmp_path)) == (4, 0)


@pytest.mark.slow
def test_sigkill_mid_trial_then_restart_ends_with_exactly_the_budget(tmp_path):
    command = [sys.executable, "-m", "search", "start", "--budget", "3", "--study", "s", *TINY]
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NAS_LITE_HEARTBEAT": "1,4", "TMPDIR": str(scratch)}
    process = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    deadline = time.time() + 300
    while time.time() < deadline:  # wait until a trial has started training
        time.sleep(0.5)
        if (tmp_path / "studies.db").exists() and _training_started(tmp_path):
            break
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert budget_state(load(tmp_path))[1] >= 1  # the trial in flight is left RUNNING
    assert len(_search_folders(scratch)) == 1  # left behind by the kill

    result = run_cli("start", "--budget", "3", "--study", "s", *TINY, cwd=tmp_path,
                     env={"NAS_LITE_HEARTBEAT": "1,4", "TMPDIR": str(scratch)})
    assert result.returncode == 0, result.stderr[-3000:]
    assert not _search_folders(scratch)  # the killed run's dataset copy and logs were removed, and this run's
    study = load(tmp_path)
    assert budget_state(study) == (3, 0)
    assert not [t for t in study.get_trials() if t.state == optuna.trial.TrialState.RUNNING]
    assert any(t.system_attrs.get("failed_trial") is not None for t in study.get_trials())  # retried


def _search_folders(scratch) -> list:
    return [path for path in scratch.glob("nas-lite-*") if path.is_dir()]


def _training_started(tmp_path) -> bool:
    try:
        study = load(tmp_path)
    except Exception:  # noqa: BLE001 - the study may not exist yet
        return False
    return any(t.state == optuna.trial.TrialState.RUNNING and "dice_history" in t.user_attrs for t in study.get_trials())


def test_bad_budget_is_one_line_and_status_2(tmp_path):
    for value, text in (("0", "is not a budget"), ("-3", "is not a budget"), ("abc", "is not a whole number")):
        result = run_cli("start", "--budget", value, cwd=tmp_path)
        assert result.returncode == 2
        assert text in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "studies.db").exists()


def test_bad_data_stores_nothing(tmp_path):
    result = run_cli("start", "--budget", "2", "--data", tmp_path / "nowhere", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("search: error: --data")
    assert not list(tmp_path.glob("studies.db*"))  # not even an empty database file


def test_a_missing_data_folder_on_an_existing_study_is_named_before_any_conflict(tmp_path):
    import optuna

    from search.config import SearchConfig
    from studies.names import default_study_name
    from tests.reliability.helpers import rows_digest

    url = f"sqlite:///{tmp_path / 'studies.db'}"
    study = optuna.create_study(study_name=default_study_name(), storage=url, directions=SearchConfig().directions)
    study.set_user_attr("config", SearchConfig(study=default_study_name(), storage=url).to_dict())
    before = rows_digest(tmp_path / "studies.db")
    result = run_cli("start", "--data", "./my_images", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == "search: error: --data my_images: no such folder; give a folder with images/ and masks/, or 'synthetic'"
    assert rows_digest(tmp_path / "studies.db") == before


def test_arrays_are_float_images(tmp_path):
    """The data handed to workers keeps its dtype and range (guards the npz hand-over)."""
    from evaluators.data import load_dataset
    from search.loop import _save_data

    from evaluators.data import load_arrays

    data = load_dataset("synthetic", 32, synthetic_count=10, test_fraction=0.2)
    arrays = np.load(_save_data(data, tmp_path))
    assert arrays["train_images"].dtype == np.float32 and arrays["train_images"].max() <= 1
    assert np.array_equal(arrays["val_masks"], data.val_masks)
    again = load_arrays(tmp_path / "data.npz")  # what a worker gets: the test split too
    assert again.has_test and np.array_equal(again.test_images, data.test_images)
    assert not load_arrays(_save_data(load_dataset("synthetic", 32, synthetic_count=6), tmp_path)).has_test


@pytest.mark.slow
@pytest.mark.postgres
def test_two_workers_share_a_postgresql_study(tmp_path, postgres_url):
    from search.loop import counted
    from studies.storage import open_storage

    result = run_cli("start", "--budget", "3", "--study", "pg", "--storage", postgres_url, "--workers", "2", *TINY, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    study = optuna.load_study(study_name="pg", storage=open_storage(postgres_url))
    trials = counted(study.get_trials())
    assert len(trials) == 3 and all(t.state in FINISHED for t in trials)
    assert not (tmp_path / "studies.db").exists()  # nothing went to the default SQLite file
