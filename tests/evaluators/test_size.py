"""Size and memory of a converted model, against figures counted by hand."""

import numpy as np
import pytest

from evaluators.size import size_report


def two_convs(groups: int = 1):
    """8x8x4 input -> Conv2D(8, 3x3, same, groups) -> Conv2D(1, 1x1): small enough to count by hand."""
    from space import _tf

    keras = _tf.keras()
    inputs = keras.Input((8, 8, 4))
    x = keras.layers.Conv2D(8, 3, padding="same", groups=groups)(inputs)
    return keras.Model(inputs, keras.layers.Conv2D(1, 1)(x))


@pytest.mark.parametrize("groups, params, macs", [
    (1, (3 * 3 * 4 * 8 + 8) + (8 + 1), 8 * 8 * 8 * (3 * 3 * 4) + 8 * 8 * 1 * 8),
    (2, (3 * 3 * 2 * 8 + 8) + (8 + 1), 8 * 8 * 8 * (3 * 3 * 2) + 8 * 8 * 1 * 8),  # a group sees half the channels
])
def test_params_and_macs_are_counted_from_the_layer_shapes(groups, params, macs):
    from space.convert import to_tflite

    model = two_convs(groups)
    report = size_report(to_tflite(model), model)
    assert (report["params"], report["macs"]) == (params, macs)


def test_peak_activation_memory_is_the_largest_set_of_tensors_alive_at_once():
    from space.convert import to_tflite
    from space.spec import QuantSpec

    model = two_convs()
    # float32: the first conv holds its input (8*8*4 floats) and its output (8*8*8 floats)
    assert size_report(to_tflite(model))["peak_activation_bytes"] == (8 * 8 * 4 + 8 * 8 * 8) * 4
    # int8 with float input: the QUANTIZE op holds the float input and its int8 copy, the most at once
    calibration = np.random.default_rng(0).random((4, 8, 8, 4), dtype=np.float32)
    int8 = to_tflite(model, QuantSpec("int8", calibration_images=4), calibration)
    assert size_report(int8)["peak_activation_bytes"] == 8 * 8 * 4 * 4 + 8 * 8 * 4


def test_file_size_is_the_bytes_and_int8_weights_take_a_quarter():
    from tests.evaluators.latency_helpers import unet_bytes

    float_report, int8_report = size_report(unet_bytes()), size_report(unet_bytes(quant="int8"))
    assert float_report["tflite_bytes"] == len(unet_bytes())
    assert int8_report["tflite_bytes"] < 0.35 * float_report["tflite_bytes"]  # 1 byte per weight instead of 4
    assert "params" not in float_report  # counted only from the Keras model
