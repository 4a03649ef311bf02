"""The per-device latency model: features read off real converted 32x32 models, the fit, its JSON."""

import dataclasses
import functools
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from evaluators import latency_model
from evaluators.latency_model import LatencyModel, OpFeatures, accuracy, fit, nnls, read_ops, spearman

pytestmark = pytest.mark.timeout(300)


@functools.lru_cache(maxsize=None)
def converted(quant: str = "float32", dilation: int = 2):
    """(tflite bytes, static costs) of a tiny U-Net with a grouped, a dilated depthwise and a fire stage."""
    from space.convert import to_tflite
    from space.model import build, static_costs
    from space.spec import CandidateSpec, QuantSpec, StageSpec

    stages = (StageSpec("group", 2, dilation), StageSpec("depthwise", 1, dilation))
    spec = CandidateSpec(encoder=stages + (StageSpec("shuffle", 2),), bottleneck=StageSpec("fire"),
                         decoder=stages + (StageSpec("shuffle", 2),), base_width=8, input_size=32)
    model = build(spec, seed=0)
    calibration = np.random.default_rng(0).random((4, 32, 32, 3), dtype=np.float32)
    return to_tflite(model, QuantSpec(quant, calibration_images=4), calibration), static_costs(model)


def test_features_of_a_float_model_match_the_keras_costs():
    model_bytes, costs = converted("float32")
    ops = read_ops(model_bytes)
    kinds = {op.kind for op in ops}
    assert {"CONV_2D", "CONV_2D_GROUPED", "CONV_2D_1X1", "DEPTHWISE_CONV_2D", "TRANSPOSE_CONV", "MAX_POOL_2D",
            "CONCATENATION", "TRANSPOSE"} <= kinds
    assert {op.dtype for op in ops} == {"float"}
    # BatchNorm folds into the convolutions: the MACs are the Keras layers' own count (tolerance 0.1%)
    assert latency_model.totals(ops)["macs"] == pytest.approx(costs.macs, rel=1e-3)
    assert latency_model.totals(ops)["params"] <= costs.params  # BatchNorm's statistics fold away
    grouped = [op for op in ops if op.kind == "CONV_2D_GROUPED"]
    assert {op.groups for op in grouped} == {2}
    first = ops[0]  # the 3-channel image cannot be grouped: a dense, dilated 3x3 conv
    assert (first.op, first.kernel, first.groups, first.dilation) == ("CONV_2D", (3, 3), 1, 2)
    assert first.input_shape == (1, 32, 32, 3) and first.output_shape == (1, 32, 32, 8)
    assert first.macs == 32 * 32 * 8 * 3 * 3 * 3
    assert first.bytes == 4 * (32 * 32 * 3 + 8 * 3 * 3 * 3 + 8 + 32 * 32 * 8)
    depthwise = [op for op in ops if op.kind == "DEPTHWISE_CONV_2D"]
    assert {op.dilation for op in depthwise} == {1, 2}  # the shuffle stage's depthwise conv is not dilated
    assert all(op.groups == op.input_shape[3] for op in depthwise)


def test_dilation_is_read_from_the_flatbuffer():
    undilated = read_ops(converted("float32", dilation=1)[0])
    assert {op.dilation for op in undilated} == {1}
    assert max(op.dilation for op in read_ops(converted("float32", dilation=2)[0])) == 2


@pytest.mark.parametrize("quant, dtypes", [("int8", {"int8"}), ("dynamic", {"hybrid", "float"})])
def test_quantized_models_have_their_dtype_class_and_the_same_macs(quant, dtypes):
    ops = read_ops(converted(quant)[0])
    # dynamic-range quantization leaves weights under 1024 elements in float
    assert {op.dtype for op in ops if op.op == "CONV_2D"} == dtypes
    assert latency_model.totals(ops)["macs"] == latency_model.totals(read_ops(converted("float32")[0]))["macs"]


def synthetic_rows(count: int, seed: int = 0):
    """Random two-kind models whose latency is a known sum of per-column costs."""
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(count):
        ops = [OpFeatures("CONV_2D", "float", (1, 8, 8, int(rng.choice([2, 4, 8, 16]))), (1, 8, 8, 4), (3, 3),
                          macs=int(rng.integers(1e5, 1e7)), bytes=int(rng.integers(1e3, 1e6))) for _ in range(rng.integers(1, 6))]
        ops += [OpFeatures("ADD", "int8", (1, 8, 8, 4), (1, 8, 8, 4), bytes=int(rng.integers(1e3, 1e6)))
                for _ in range(rng.integers(0, 4))]
        rows.append(ops)
    return rows


TRUE = {"macs:CONV_2D:float": 2e-7, "loops:CONV_2D:float": 1e-6, "bytes:CONV_2D": 1e-6, "ops:CONV_2D": 0.05, "bytes:ADD": 3e-6, "ops:ADD": 0.01, "invoke": 0.2}


def test_fit_recovers_known_coefficients():
    rows = synthetic_rows(40)
    truth = LatencyModel(coefficients=TRUE)
    measured = [truth.predict_ops(ops) for ops in rows]
    fitted = fit(rows, measured, shrink=0.0)
    for name, value in TRUE.items():
        assert fitted.coefficients[name] == pytest.approx(value, rel=1e-4)
    held_out = synthetic_rows(20, seed=1)
    figures = accuracy([fitted.predict_ops(ops) for ops in held_out], [truth.predict_ops(ops) for ops in held_out])
    assert figures["spearman"] == pytest.approx(1.0) and figures["within_10"] == 1.0 and figures["mape"] < 1e-4


def test_a_strong_shrink_leaves_one_cost_per_group():
    rows = synthetic_rows(30)
    fitted = fit(rows, [LatencyModel(coefficients=TRUE).predict_ops(ops) for ops in rows], shrink=1e9)
    assert fitted.coefficients["bytes:CONV_2D"] == pytest.approx(fitted.coefficients["bytes:ADD"], rel=1e-3)
    assert fitted.coefficients["ops:CONV_2D"] == pytest.approx(fitted.coefficients["ops:ADD"], rel=1e-3)


def test_nnls_agrees_with_scipy_and_keeps_coefficients_non_negative():
    optimize = pytest.importorskip("scipy.optimize")
    rng = np.random.default_rng(3)
    for _ in range(5):
        matrix, target = rng.normal(size=(30, 8)), rng.normal(size=30)
        ours = nnls(matrix, target)
        assert (ours >= 0).all()
        np.testing.assert_allclose(ours, optimize.nnls(matrix, target)[0], atol=1e-8)


def test_spearman_and_accuracy():
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    figures = accuracy([1.05, 2.5, 3.0], [1.0, 2.0, 3.0])
    assert figures["within_10"] == pytest.approx(2 / 3, abs=1e-4) and figures["mape"] == pytest.approx(0.05)
    assert accuracy([1.0], [1.0])["spearman"] is None


def test_json_round_trip_and_version_check():
    rows = synthetic_rows(12)
    model = fit(rows, [LatencyModel(coefficients=TRUE).predict_ops(ops) for ops in rows],
                device={"name": "local", "cpu": "x"}, protocol={"threads": 1}, accuracy={"held_out": {"mape": 0.01}})
    again = LatencyModel.from_json(model.to_json())
    assert again == model and again.predict_ops(rows[0]) == model.predict_ops(rows[0])
    assert again.calibration_models == 12 and again.feature_version == latency_model.FEATURE_VERSION
    stale = model.to_json().replace(f'"feature_version": {latency_model.FEATURE_VERSION}', '"feature_version": 0')
    with pytest.raises(ValueError, match="calibrate the device again"):
        LatencyModel.from_json(stale)
    op = rows[0][0]
    assert OpFeatures.from_dict(dataclasses.asdict(op)) == op


def test_unknown_columns_are_named():
    model = LatencyModel(coefficients={"invoke": 1.0})
    assert model.unknown(synthetic_rows(1)[0])[0].startswith("bytes:")


NO_HEAVY_IMPORTS = """
import sys
for name in ("tensorflow", "tf_keras", "keras", "optuna", "sqlalchemy", "scipy", "space", "studies", "search"):
    sys.modules[name] = None  # importing any of these now raises ImportError
from evaluators.latency_model import LatencyModel, read_ops
ops = read_ops(open(sys.argv[1], "rb").read())
model = LatencyModel(coefficients={"ops:CONV_2D_GROUPED": 1.0, "invoke": 0.5})
print(len(ops), model.predict(open(sys.argv[1], "rb").read()))
"""


def test_runs_without_tensorflow_optuna_sqlalchemy_or_scipy(tmp_path):
    from tests.conftest import ROOT

    board = tmp_path / "board" / "evaluators"
    board.mkdir(parents=True)
    for name in ("__init__.py", "litert.py", "latency_model.py"):
        shutil.copy(ROOT / "evaluators" / name, board / name)
    model = tmp_path / "model.tflite"
    model_bytes = converted("int8")[0]
    model.write_bytes(model_bytes)
    done = subprocess.run([sys.executable, "-c", NO_HEAVY_IMPORTS, str(model)], cwd=board.parent, capture_output=True,
                          text=True, env={**os.environ, "PYTHONPATH": str(board.parent)}, timeout=120)
    assert done.returncode == 0, done.stderr
    count, predicted = done.stdout.split()
    grouped = sum(op.kind == "CONV_2D_GROUPED" for op in read_ops(model_bytes))
    assert int(count) == len(read_ops(model_bytes)) and float(predicted) == grouped + 0.5
