"""Export: the stored artifact byte for byte, a complete sidecar, clear errors."""

from __future__ import annotations

import hashlib
import json

import pytest

from studies import export, front
from studies.store import ResultStore
from tests.conftest import run_cli
from tests.studies.helpers import TINY_TFLITE, spec_dict


def test_export_knee_writes_artifact_and_complete_sidecar(study_db, tmp_path):
    url, study = study_db
    output = tmp_path / "out" / "model.tflite"
    output.parent.mkdir()
    with ResultStore(url) as store:
        done = export.export(study, store, output, pick="knee", version="9.9.9")
        stored = store.artifact_sha256(study.trials[1]._trial_id)
    assert done.point.number == 1
    assert done.point.number in {p.number for p in front.front(front.study_points(study))}
    assert hashlib.sha256(output.read_bytes()).hexdigest() == stored == done.sha256
    assert output.read_bytes() == TINY_TFLITE.read_bytes()

    sidecar = json.loads((tmp_path / "out" / "model.json").read_text())
    assert sidecar["sha256"] == stored and sidecar["size_bytes"] == len(output.read_bytes())
    assert sidecar["nas_lite_version"] == "9.9.9"
    assert sidecar["study"] == {"name": "demo", "trial_number": 1, "trial_id": study.trials[1]._trial_id,
                                "state": "COMPLETE", "feasible": True, "on_front": True, "preset": None, "pick": "knee"}
    assert sidecar["spec"] == spec_dict() | {"sparsity": 0.0}
    assert sidecar["quant"] == {"mode": "int8", "calibration_images": 4, "io_type": "int8"}
    assert sidecar["input"]["shape"] == [1, 16, 16, 3] and sidecar["input"]["layout"] == "NHWC"
    assert (sidecar["input"]["height"], sidecar["input"]["width"], sidecar["input"]["channels"]) == (16, 16, 3)
    assert "[0, 1]" in sidecar["input"]["normalisation"]
    assert sidecar["input"]["dtype"] == "int8" and sidecar["output"]["dtype"] == "int8"
    assert sidecar["input"]["quantization"]["zero_point"] == -128
    assert sidecar["input"]["quantization"]["scale"] == pytest.approx(1 / 255, rel=1e-3)
    assert sidecar["output"]["quantization"]["scale"] > 0
    metrics = sidecar["metrics"]
    assert metrics["dice"] == 0.85 and metrics["latency_ms"] == 20.0 and metrics["size_kb"] == 200.0
    assert metrics["device"] == "local" and metrics["float_dice"] == pytest.approx(0.86)
    assert sidecar["measurements"][0]["device"] == "local"
    assert sidecar["measurements"][0]["stats"]["p50_ms"] == 20.0
    assert sidecar["final"] is None and sidecar["search_sha256"] == stored

    # the exported model runs in LiteRT as the sidecar describes it
    import numpy as np
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(output))
    interpreter.allocate_tensors()
    scale, zero = sidecar["input"]["quantization"]["scale"], sidecar["input"]["quantization"]["zero_point"]
    image = np.clip(np.round(np.full((1, 16, 16, 3), 0.5) / scale) + zero, -128, 127).astype(np.int8)
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], image)
    interpreter.invoke()
    assert interpreter.get_tensor(interpreter.get_output_details()[0]["index"]).shape == (1, 16, 16, 1)


def test_export_retrain_hook_keeps_both_figures(study_db, tmp_path):
    url, study = study_db
    seen = {}

    def retrain(spec, point):
        seen["spec"], seen["number"] = spec, point.number
        return TINY_TFLITE.read_bytes(), {"dice": 0.9, "latency_ms": 19.0}

    with ResultStore(url) as store:
        export.export(study, store, tmp_path / "m.tflite", trial=2, retrain=retrain)
    sidecar = json.loads((tmp_path / "m.json").read_text())
    assert seen["number"] == 2 and seen["spec"].input_size == 16
    assert sidecar["final"] == {"dice": 0.9, "latency_ms": 19.0} and sidecar["metrics"]["dice"] == 0.5


def test_export_errors(study_db, tmp_path):
    url, study = study_db
    with ResultStore(url) as store:
        with pytest.raises(LookupError, match="no trial 42; its trials are numbered 0 to 4"):
            export.export(study, store, tmp_path / "m.tflite", trial=42)
        with pytest.raises(LookupError, match="trial 4 of study demo is FAIL"):
            export.export(study, store, tmp_path / "m.tflite", trial=4)
        with pytest.raises(LookupError, match=r"meets latency<=5 .*closest is trial 2"):
            export.export(study, store, tmp_path / "m.tflite", pick="latency<=5,max:dice")
        with pytest.raises(FileNotFoundError, match="does not exist"):
            export.export(study, store, tmp_path / "missing" / "m.tflite", pick="knee")
        with pytest.raises(ValueError, match="own sidecar"):
            export.export(study, store, tmp_path / "m.json", pick="knee")
    assert not (tmp_path / "m.tflite").exists()


def test_export_cli(study_db, tmp_path):
    url, study = study_db
    result = run_cli("export", "--storage", url, "--pick", "dice>=0.8,min:latency", "-o", tmp_path / "best.tflite", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "exported trial 1 (pick dice>=0.8,min:latency) of study demo" in result.stdout
    assert (tmp_path / "best.tflite").read_bytes() == TINY_TFLITE.read_bytes()
    assert json.loads((tmp_path / "best.json").read_text())["study"]["trial_number"] == 1

    for args, message in [
        (("--study", "empty", "--pick", "knee"), "study empty has no complete trial yet"),
        (("--study", "nope", "--trial", "0"), "no study 'nope'"),
        (("--pick", "dice>=0.99,min:latency"), "no complete feasible trial meets dice>=0.99"),
        (("--pick", "fastest"), "cannot read 'fastest'"),
    ]:
        result = run_cli("export", "--storage", url, *args, "-o", tmp_path / "x.tflite", cwd=tmp_path)
        assert result.returncode == 2, result.stderr
        assert result.stderr.startswith("search: error: ") and message in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
    result = run_cli("export", "--storage", url, "--trial", "0", "-o", tmp_path / "no" / "x.tflite", cwd=tmp_path)
    assert result.returncode == 2 and "does not exist" in result.stderr
