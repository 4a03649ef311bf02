"""``search device calibrate`` and ``search device show`` through the real command line, with real
LiteRT timing on this machine and a real SQLite file."""

import dataclasses
import json
import sqlite3

import pytest

from search.calibrate import calibration_specs

pytestmark = pytest.mark.timeout(900)

QUICK = ("--runs", "10", "--min-seconds", "0.1")


@pytest.mark.slow  # about 30 s or more: the default tier stays under 15 minutes
def test_calibrate_stores_a_model_and_show_lists_it(cli, tmp_path):
    storage = f"sqlite:///{tmp_path / 'studies.db'}"
    done = cli("device", "calibrate", "--device", "local", "--models", "6", "--image-size", "32", *QUICK, "--storage", storage)
    assert done.returncode == 0, done.stderr
    assert "latency model of local: 6 models; on the held-out fifth (1 models)" in done.stdout
    assert "MACs only" in done.stdout and "calibrating local" in done.stderr  # the progress bar
    with sqlite3.connect(tmp_path / "studies.db") as database:
        samples = [json.loads(row[0]) for row in database.execute("SELECT sample FROM naslite_calibration_samples")]
    assert len(samples) == 6 and all(sample["stats"]["median_ms"] > 0 and sample["ops"] for sample in samples)

    again = cli("device", "calibrate", "--models", "6", "--image-size", "32", *QUICK, "--storage", storage)
    assert again.returncode == 0, again.stderr  # every sample read back (a second insert would break the unique key)

    shown = cli("device", "show", "--storage", storage, "--json")
    assert shown.returncode == 0, shown.stderr
    (record,) = [json.loads(line) for line in shown.stdout.splitlines()]  # the newest model per device
    model = record["model"]
    assert record["device"] == "local" and model["calibration_models"] == 6
    assert model["protocol"]["clock"] == "cpu" and model["protocol"]["threads"] == 1
    assert model["coefficients"]["invoke"] >= 0 and any(name.startswith("macs:CONV_2D") for name in model["coefficients"])
    assert set(model["accuracy"]) == {"held_out", "macs_baseline", "params_baseline"}
    table = cli("device", "show", "--storage", storage)
    assert "local" in table.stdout and "kernel model" in table.stdout


def test_the_stored_model_predicts_from_the_tflite_alone(tmp_path):
    from evaluators.latency_model import fit, read_ops
    from search.calibrate import evaluate, latency_model_for, save_model, tflite_of
    from studies.store import ResultStore

    models = [tflite_of(spec) for spec in calibration_specs(5, 32, seed=3)]
    samples = [{"ops": [dataclasses.asdict(op) for op in read_ops(model)], "macs": 1 + i, "params": 1 + i,
                "stats": {"median_ms": 1.0 + i}} for i, model in enumerate(models)]
    model = evaluate(samples, about={"device": {"name": "board"}})
    store = ResultStore(f"sqlite:///{tmp_path / 'studies.db'}")
    save_model(store, "board", model)
    assert latency_model_for(store, "other") is None
    stored = latency_model_for(store, "board")
    assert stored.predict(models[0]) == pytest.approx(model.predict(models[0])) and stored.device == {"name": "board"}
    assert stored.coefficients == fit([read_ops(m) for m in models], [1, 2, 3, 4, 5]).coefficients


def test_specs_span_the_space_and_repeat_for_a_seed():
    specs = calibration_specs(20, 64, seed=0)
    assert len({spec.to_json() for spec in specs}) == 20
    assert specs == calibration_specs(20, 64, seed=0) and specs != calibration_specs(20, 64, seed=1)
    assert len({spec.quant.mode for spec in specs}) >= 3 and len({kind for spec in specs for kind in spec.kinds}) == 5


@pytest.mark.parametrize("arguments, message", [
    (("--models", "3"), "--models: 3 is too few"),
    (("--image-size", "40"), "--image-size: 40 cannot be halved"),
    (("--device", "pi.local"), "is not a URL"),
    (("--threads", "2", "--clock", "cpu"), "use threads=1"),
])
def test_bad_input_is_one_line_and_exit_2(cli, tmp_path, arguments, message):
    done = cli("device", "calibrate", *arguments, "--storage", f"sqlite:///{tmp_path / 'studies.db'}")
    assert done.returncode == 2
    assert message in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "studies.db").exists()


def test_show_without_a_database_exits_2(cli, tmp_path):
    done = cli("device", "show", "--storage", f"sqlite:///{tmp_path / 'missing.db'}")
    assert done.returncode == 2 and "no database at" in done.stderr


@pytest.mark.slow  # 15-30 s: the default tier stays under 15 minutes
def test_calibrate_a_board_through_its_agent(cli, tmp_path):
    from tests.evaluators.latency_helpers import TOKEN, running_agent

    storage = f"sqlite:///{tmp_path / 'studies.db'}"
    with running_agent() as (url, _):
        done = cli("device", "calibrate", "--device", url, "--device-token", TOKEN, "--models", "5", "--image-size", "32",
                   "--threads", "1", *QUICK, "--storage", storage)
    assert done.returncode == 0, done.stderr
    assert f"for device '{url}'" in done.stdout
    (record,) = [json.loads(line) for line in cli("device", "show", "--storage", storage, "--json").stdout.splitlines()]
    assert record["device"] == url and record["model"]["protocol"]["clock"] == "wall"  # a board: wall clock
    assert record["model"]["device"]["cores"] >= 1  # the agent's /info


@pytest.mark.slow  # a whole search: the slow tier keeps the default one under 15 minutes
def test_a_search_on_predicted_latency_needs_no_timing_and_verifies_its_front(cli, tmp_path):
    import optuna

    from search.calibrate import latency_model_for
    from studies.store import ResultStore
    from studies.storage import load_study
    from tests.conftest import TINY_SEARCH

    storage = f"sqlite:///{tmp_path / 'studies.db'}"
    missing = cli("start", "--budget", "1", "--latency", "predicted:local", "--storage", storage, *TINY_SEARCH, cwd=tmp_path)
    assert missing.returncode == 2 and "no latency model of device 'local'" in missing.stderr
    assert cli("device", "calibrate", "--models", "6", "--image-size", "32", *QUICK, "--storage", storage).returncode == 0
    done = cli("start", "--budget", "2", "--study", "p", "--latency", "predicted:local", "--verify-front",
               "--storage", storage, *TINY_SEARCH, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    study = load_study(storage, "p")
    with ResultStore(storage, create=False) as store:
        model = latency_model_for(store, "local")
        for trial in study.get_trials(states=(optuna.trial.TrialState.COMPLETE,)):
            assert trial.user_attrs["latency_predicted"] is True and trial.user_attrs["latency_runs"] == 0
            assert trial.user_attrs["latency_ms"] == pytest.approx(model.predict(store.artifact(trial._trial_id)))
    verified = study.user_attrs["verified_front"]
    assert verified and all(v["measured_ms"] > 0 and v["device"] == "local" for v in verified.values())
    assert "verified #" in done.stdout
