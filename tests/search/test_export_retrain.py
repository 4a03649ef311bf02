"""``search export --retrain-epochs``: the spec trained again on all the data, measured again, both figure sets kept."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from search.pipeline import SEARCH_MIN_SECONDS
from tests.conftest import run_cli


def stored_sha256(url: str, study_name: str, number: int) -> str:
    import optuna

    from studies.storage import open_storage
    from studies.store import ResultStore

    study = optuna.load_study(study_name=study_name, storage=open_storage(url))
    with ResultStore(url, create=False) as store:
        return store.artifact_sha256(study.trials[number]._trial_id)


def runs_in_litert(path) -> tuple[int, ...]:
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))
    interpreter.allocate_tensors()
    detail = interpreter.get_input_details()[0]
    interpreter.set_tensor(detail["index"], np.zeros(detail["shape"], detail["dtype"]))
    interpreter.invoke()
    return tuple(interpreter.get_tensor(interpreter.get_output_details()[0]["index"]).shape)


@pytest.mark.slow  # about 30 s or more: the default tier stays under 15 minutes
def test_retrained_export_keeps_search_and_final_figures(tiny_search, tmp_path):
    folder, url, name = tiny_search
    stored = stored_sha256(url, name, 0)

    plain = run_cli("export", "--storage", url, "--study", name, "--trial", "0", "-o", tmp_path / "plain.tflite")
    assert plain.returncode == 0, plain.stderr[-3000:]
    assert hashlib.sha256((tmp_path / "plain.tflite").read_bytes()).hexdigest() == stored

    result = run_cli("export", "--storage", url, "--study", name, "--trial", "0", "-o", tmp_path / "model.tflite",
                     "--retrain-epochs", "1")
    assert result.returncode == 0, result.stderr[-3000:]
    written = (tmp_path / "model.tflite").read_bytes()
    digest = hashlib.sha256(written).hexdigest()
    assert digest != stored  # retrained weights, not the stored artifact
    assert "retrained for 1 epoch(s)" in result.stdout

    # progress on stderr, and only ours: TensorFlow's chatter goes to a log that is removed on success
    lines = result.stderr.strip().splitlines()
    assert any("epoch 1/1" in line for line in lines), result.stderr
    assert all(line.startswith("retrain: ") for line in lines), result.stderr

    sidecar = json.loads((tmp_path / "model.json").read_text())
    assert sidecar["sha256"] == digest and sidecar["size_bytes"] == len(written)
    assert sidecar["search_sha256"] == stored
    search_time, final = sidecar["metrics"], sidecar["final"]
    for figures in (search_time, final):
        assert {"dice", "iou", "float_dice", "latency_ms", "latency_p90_ms", "size_kb", "device"} <= set(figures)
        assert 0.0 <= figures["dice"] <= 1.0 and figures["latency_ms"] > 0
    assert final["retrained"] is True and final["epochs"] == 1 and final["epochs_run"] == 1
    assert final["train_images"] == 32  # --data-limit 40: train and validation splits together; the 8 test images stay out
    assert final["dice_held_out"] is False and "not a held-out" in final["dice_note"]
    assert final["size_bytes"] == len(written) and final["device"] == "local"
    assert final["protocol"]["threads"] == 1  # the study's --threads
    assert final["protocol"]["min_seconds"] == SEARCH_MIN_SECONDS  # timed as the search timed it
    assert {"train", "convert", "evaluate", "latency", "total"} <= set(final["seconds"])  # the pipeline's one clock
    assert len(final["history"]["val_dice"]) == 1
    assert sidecar["quant"]["mode"] == json.loads((tmp_path / "plain.json").read_text())["quant"]["mode"]

    assert runs_in_litert(tmp_path / "model.tflite") == (1, 32, 32, 1)


@pytest.mark.parametrize("arguments, message", [
    (("--trial", "0", "--data", "synthetic"), "used only when retraining"),
    (("--trial", "0", "--retrain-epochs", "0"), "--retrain-epochs: must be at least 1"),
    (("--trial", "0", "--retrain-epochs", "1", "--data", "no/such/folder"), "no such folder"),
])
def test_retrain_option_errors(tmp_path, arguments, message):
    result = run_cli("export", "--storage", f"sqlite:///{tmp_path / 'none.db'}", *arguments, "-o", tmp_path / "m.tflite")
    assert result.returncode == 2 and message in result.stderr, result.stderr
    assert not (tmp_path / "m.tflite").exists()


def test_retrain_needs_a_nas_lite_study(tmp_path):
    """A study without the stored search configuration cannot be retrained: one line, exit 2."""
    from studies.storage import open_storage
    from tests.studies.helpers import make_study

    url = f"sqlite:///{tmp_path / 'studies.db'}"
    make_study(open_storage(url), "demo", [(0.8, 10.0, 100.0)])
    result = run_cli("export", "--storage", url, "--study", "demo", "--trial", "0", "-o", tmp_path / "m.tflite",
                     "--retrain-epochs", "1")
    assert result.returncode == 2 and "was not made by 'search start'" in result.stderr, result.stderr
    assert not (tmp_path / "m.tflite").exists()


def test_all_data_trains_on_every_image():
    from evaluators.data import load_dataset
    from search.retrain import all_data

    data = load_dataset("synthetic", 32, 1, limit=10)
    everything = all_data(data)
    assert len(everything.train_images) == len(everything.train_masks) == 10
    assert everything.val_images is data.val_images and everything.channels == 1
