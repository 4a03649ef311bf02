"""What takes the space (``search studies``, ``search status``) and ``search prune``: the front's models stay."""

import hashlib
import json

import numpy as np
import optuna
import pytest

from studies import storage
from studies.store import ResultStore
from tests.conftest import run_cli
from tests.studies.factory import png
from tests.studies.helpers import TINY_TFLITE, make_study

POINTS = [(0.90, 100.0, 300.0), (0.85, 20.0, 200.0), (0.50, 10.0, 100.0), (0.80, 50.0, 250.0), (0.40, 90.0, 280.0)]
FRONT, OFF_FRONT = (0, 1, 2), (3, 4)  # 3 and 4 are dominated by 1


@pytest.fixture
def db(tmp_path):
    """``(path, url)``: study "demo" (front 0, 1, 2; knee 1) whose five trials have a model, a
    measurement and a preview, and a RUNNING trial with a model (a search still writing)."""
    path = tmp_path / "studies.db"
    url = f"sqlite:///{path}"
    study = make_study(storage.open_storage(url), "demo", POINTS)
    study.add_trial(optuna.trial.create_trial(state=optuna.trial.TrialState.RUNNING))
    tflite, image = TINY_TFLITE.read_bytes(), png(np.full((32, 32, 3), 7, "uint8"))
    with ResultStore(url) as store:
        for trial in study.trials:
            store.save_artifact(trial._trial_id, "demo", trial.number, tflite)
            store.save_previews(trial._trial_id, [(image, image, image)])
            store.save_measurement(trial._trial_id, "local", {}, {"runs": 20}, {"p50_ms": 1.0})
    return path, url


def _models(url):
    with ResultStore(url, create=False) as store:
        study = storage.load_study(url, "demo")
        return {t.number: (store.artifact(t._trial_id) is not None, len(store.previews(t._trial_id)), len(store.measurements(t._trial_id)))
                for t in study.trials}


def test_studies_and_status_say_what_takes_the_space(db):
    _, url = db
    model = TINY_TFLITE.stat().st_size
    result = run_cli("studies", "--storage", url)
    assert result.returncode == 0, result.stderr
    line = next(line for line in result.stdout.splitlines() if line.startswith("space: "))
    assert "artifacts" in line and "previews" in line and "Optuna's rows" in line and "search prune" in result.stdout
    status = run_cli("status", "--study", "demo", "--storage", url, "--json")
    space = json.loads(status.stdout)["space"]
    assert space["artifacts"] == 6 * model and space["models"] == 6 and space["previews"] > 0
    assert "artifacts" in run_cli("status", "--study", "demo", "--storage", url).stdout.splitlines()[-1]


def test_prune_keeps_the_front_and_the_running_trial_frees_bytes_and_vacuums(db):
    path, url = db
    on_disk = lambda: sum(p.stat().st_size for p in path.parent.glob("studies.db*") if p.suffix != ".lock")  # noqa: E731 - with the WAL
    before = on_disk()
    result = run_cli("prune", "--study", "demo", "--storage", url, "--vacuum")
    assert result.returncode == 0, result.stderr
    assert "deleted the models of 2 trial(s) of demo" in result.stdout and "kept 3 (front): #0, #1, #2" in result.stdout
    assert "vacuumed:" in result.stdout and on_disk() < before
    models = _models(url)
    assert all(models[n] == (True, 1, 1) for n in (*FRONT, 5))  # the front, and the trial still running
    assert all(models[n] == (False, 0, 1) for n in OFF_FRONT)  # measurements stay
    assert run_cli("status", "--study", "demo", "--storage", url).returncode == 0


def test_a_pruned_trial_exports_with_a_clear_message_and_a_front_trial_still_exports(db, tmp_path):
    _, url = db
    assert run_cli("prune", "--study", "demo", "--storage", url, "--keep", "knee").returncode == 0
    assert _models(url)[0][0] is False and _models(url)[1][0] is True  # only the knee (#1) kept
    out = tmp_path / "model.tflite"
    done = run_cli("export", "--study", "demo", "--storage", url, "--pick", "knee", "-o", out)
    assert done.returncode == 0, done.stderr
    assert hashlib.sha256(out.read_bytes()).hexdigest() == hashlib.sha256(TINY_TFLITE.read_bytes()).hexdigest()
    refused = run_cli("export", "--study", "demo", "--storage", url, "--trial", "0", "-o", tmp_path / "gone.tflite")
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1
    assert "deleted by 'search prune'" in refused.stderr and "--trial 0 --retrain-epochs E" in refused.stderr


def test_dry_run_deletes_nothing_and_bad_input_loses_nothing(db):
    _, url = db
    models = _models(url)
    dry = run_cli("prune", "--study", "demo", "--storage", url, "--dry-run")
    assert dry.returncode == 0 and "would delete the models of 2 trial(s)" in dry.stdout
    for args, message in ((("--study", "nope"), "no study 'nope'"), (("--study", "demo", "--keep", "all"), "invalid choice")):
        bad = run_cli("prune", *args, "--storage", url)
        assert bad.returncode == 2 and message in bad.stderr and bad.stderr.count("\n") == 1
    assert _models(url) == models


def test_export_and_prune_print_a_hostile_study_name_escaped(tmp_path):
    """A study name is any string Optuna accepts: the lines that name it must not drive the terminal."""
    url, name = f"sqlite:///{tmp_path / 'studies.db'}", "demo\x1b]0;owned\x07\x1b[2J"
    study = make_study(storage.open_storage(url), name, POINTS)
    with ResultStore(url) as store:
        for trial in study.trials:
            store.save_artifact(trial._trial_id, name, trial.number, TINY_TFLITE.read_bytes())
    exported = run_cli("export", "--study", name, "--storage", url, "--trial", "1", "-o", tmp_path / "m.tflite", cwd=tmp_path)
    pruned = run_cli("prune", "--study", name, "--storage", url, cwd=tmp_path)
    for result in (exported, pruned):
        assert result.returncode == 0, result.stderr
        assert "\x1b" not in result.stdout and "\x07" not in result.stdout
        assert "demo\\x1b]0;owned\\x07\\x1b[2J" in result.stdout, result.stdout
