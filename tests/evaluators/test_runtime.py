"""The latency protocol, delegate report and memory estimate, on real LiteRT runs."""

from pathlib import Path

import numpy as np
import pytest

from evaluators.runtime import Protocol, activation_bytes, benchmark, example_input, peak_activation_bytes
from tests.evaluators.latency_helpers import QUICK, nearest_upsampling_bytes, unet_bytes


def test_benchmark_reports_statistics_and_delegated_ops():
    result = benchmark(unet_bytes(), Protocol(**QUICK))
    assert result["runs"] == len(result["samples_ms"]) >= 10
    assert 0 < result["p10_ms"] <= result["median_ms"] <= result["p90_ms"]
    assert result["cv"] == pytest.approx(result["std_ms"] / result["mean_ms"], rel=1e-2)
    assert result["runtime"]["name"] in ("ai-edge-litert", "tflite-runtime")
    assert result["delegate"]["partitions"] == 1
    assert result["delegate"]["inside"]["CONV_2D"] == 15
    assert result["delegate"]["outside"] == {}
    assert result["input"] == {"shape": [1, 32, 32, 3], "dtype": "float32"}
    assert result["model_bytes"] == len(unet_bytes())
    assert result["xnnpack_error"] is None


def test_a_model_xnnpack_refuses_is_timed_on_litert_kernels_and_says_so():
    """A trained int8 U-Net of dilated depthwise stages (dw-d2,dw-d4,dw-d4|dw-d2 w4 at 32x32, one
    epoch on the built-in data) that XNNPACK fails to prepare: LiteRT's own kernels run it."""
    from evaluators.accuracy import predict_tflite

    model = (Path(__file__).parent / "data" / "xnnpack_refuses_int8.tflite").read_bytes()
    result = benchmark(model, Protocol(**QUICK))
    assert "XNNPACK" in result["xnnpack_error"]
    assert result["delegate"]["partitions"] == 0 and result["delegate"]["outside"]["DEPTHWISE_CONV_2D"] == 14
    assert result["median_ms"] > 0
    probabilities = predict_tflite(model, np.random.default_rng(0).random((2, 32, 32, 3), dtype=np.float32))
    assert probabilities.shape == (2, 32, 32, 1) and np.isfinite(probabilities).all()


def test_ops_left_outside_the_delegate_are_named():
    delegate = benchmark(nearest_upsampling_bytes(), Protocol(**QUICK))["delegate"]
    assert delegate["outside"] == {"RESIZE_NEAREST_NEIGHBOR": 1}
    assert delegate["inside"] == {"CONV_2D": 2}


def test_integer_input_model_is_fed_quantized_inputs():
    result = benchmark(unet_bytes(quant="int8", io_type="int8"), Protocol(**QUICK))
    assert result["input"]["dtype"] == "int8"
    assert result["delegate"]["outside"] == {}


def test_min_seconds_extends_the_runs():
    result = benchmark(unet_bytes(), Protocol(warmup=0, runs=1, min_seconds=0.2, threads=1, max_attempts=1))
    assert result["runs"] > 1
    assert sum(result["samples_ms"]) >= 150  # most of the 0.2 s is spent invoking


def test_noisy_attempts_are_measured_again():
    result = benchmark(unet_bytes(), Protocol(**{**QUICK, "max_cv": 0.0, "max_attempts": 2}))
    assert result["attempts"] == 2 and len(result["attempt_cvs"]) == 2
    assert result["cv"] == min(result["attempt_cvs"])
    kept = result["attempt_cvs"].index(result["cv"])
    assert len(result["attempt_medians_ms"]) == 2 and result["attempt_medians_ms"][kept] == result["median_ms"]


def test_garbage_is_a_value_error_with_the_runtime_message():
    with pytest.raises(ValueError, match="LiteRT cannot load it: .*Flatbuffer"):
        benchmark(b"not a model at all", Protocol(**QUICK))


def test_peak_activation_memory_is_below_the_sum_of_all_activations():
    peak = peak_activation_bytes(unet_bytes())
    assert 0 < peak < activation_bytes(unet_bytes())
    # at least the first convolution's input and output: 32*32*3 and 32*32*8 float32 values
    assert peak >= (32 * 32 * 3 + 32 * 32 * 8) * 4
    assert peak_activation_bytes(unet_bytes(quant="int8", io_type="int8")) == peak // 4


def test_protocol_round_trip_and_validation():
    protocol = Protocol(warmup=1, runs=3, threads=2)
    assert Protocol.from_dict(protocol.to_dict()) == protocol
    with pytest.raises(ValueError, match="unknown fields \\['runz'\\]"):
        Protocol.from_dict({"runz": 3})
    with pytest.raises(ValueError, match="protocol.runs"):
        Protocol(runs=0)
    with pytest.raises(ValueError, match="protocol.threads"):
        Protocol(threads="4")


def test_example_input_quantizes_with_the_tensor_scale():
    detail = {"shape": np.array([1, 2]), "dtype": np.int8, "quantization": (1 / 255, -128)}
    assert example_input(detail, np.array([[0.0, 1.0]])).tolist() == [[-128, 127]]
    float_detail = {"shape": np.array([1, 2]), "dtype": np.float32, "quantization": (0.0, 0)}
    assert example_input(float_detail, np.array([[0.25, 0.5]])).tolist() == [[0.25, 0.5]]


def test_cpu_clock_times_the_one_thread():
    result = benchmark(unet_bytes(), Protocol(**{**QUICK, "clock": "cpu"}))
    assert result["protocol"]["clock"] == "cpu" and result["median_ms"] > 0
    with pytest.raises(ValueError, match="use threads=1"):
        Protocol(clock="cpu", threads=2)
    with pytest.raises(ValueError, match="choose one of wall, cpu"):
        Protocol(clock="gpu")
