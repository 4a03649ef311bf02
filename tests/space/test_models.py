"""Every preset builds, converts in every quant mode and runs in LiteRT; grouped convs stay native."""

import numpy as np
import pytest

from space.convert import to_tflite
from space.model import build, static_costs, transfer_weights
from space.presets import FLOAT_PRESETS, PRESETS, preset
from space.spec import QUANT_MODES, QuantSpec, uniform

SIZE = 32


def run_litert(model_bytes: bytes, images: np.ndarray) -> np.ndarray:
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=model_bytes, num_threads=1)
    interpreter.allocate_tensors()
    source, target = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    outputs = []
    for image in images:
        batch = image[None]
        if source["dtype"] != np.float32:
            scale, zero = source["quantization"]
            batch = np.clip(np.round(batch / scale + zero), -128, 127).astype(source["dtype"])
        interpreter.set_tensor(source["index"], batch)
        interpreter.invoke()
        result = interpreter.get_tensor(target["index"])
        if target["dtype"] != np.float32:
            scale, zero = target["quantization"]
            result = (result.astype(np.float32) - zero) * scale
        outputs.append(result[0])
    return np.stack(outputs)


def op_names(model_bytes: bytes) -> list[str]:
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=model_bytes)
    interpreter.allocate_tensors()
    return [op["op_name"] for op in interpreter._get_ops_details()]


@pytest.fixture(scope="module")
def calibration():
    return np.random.default_rng(0).uniform(0, 1, (8, SIZE, SIZE, 3)).astype(np.float32)


def test_unet_preset_has_the_reference_parameter_count():
    params = static_costs(build(PRESETS["unet"])).params
    assert 1_900_000 <= params <= 2_000_000
    assert PRESETS["unet"].input_size == 128


def test_costs_shrink_for_lightweight_blocks():
    costs = {name: static_costs(build(preset(name, SIZE))) for name in FLOAT_PRESETS}
    for name in ("group", "depthwise", "shuffle", "fire"):
        assert costs[name].params < costs["unet"].params / 2
    for name in ("depthwise", "shuffle", "fire"):
        assert costs[name].macs < costs["unet"].macs / 3
    assert costs["group"].macs < costs["unet"].macs  # its first two levels stay standard
    assert costs["dilated"].params == costs["unet"].params  # dilation adds receptive field, not weights


# Two presets convert in every mode in the default tier (group-dilated holds group and dilated); the
# others, the opt-in kinds' presets among them, in the slow one (the default tier still converts every
# kind: the searches of tests/search sample them, and test_blocks converts the opt-in blocks).
DEFAULT_TIER_PRESETS = ("unet", "group-dilated")


@pytest.mark.parametrize("name", [name if name in DEFAULT_TIER_PRESETS else pytest.param(name, marks=pytest.mark.slow)
                                  for name in sorted(FLOAT_PRESETS)])
def test_preset_converts_in_every_mode_and_runs(name, calibration):
    model = build(preset(name, SIZE), seed=0)
    expected = model(calibration[:2], training=False).numpy()
    for mode in QUANT_MODES:
        tflite = to_tflite(model, QuantSpec(mode, calibration_images=8), calibration)
        output = run_litert(tflite, calibration[:2])
        assert output.shape == (2, SIZE, SIZE, 1), mode
        assert np.all((output >= 0) & (output <= 1)), mode
        tolerance = 1e-4 if mode == "float32" else 0.1
        assert np.abs(output - expected).max() < tolerance, mode


def test_int8_io_model_takes_int8_and_stays_close(calibration):
    model = build(uniform("standard", 3, base_width=8, input_size=SIZE), seed=0)
    tflite = to_tflite(model, QuantSpec("int8", 8, io_type="int8"), calibration)
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=tflite)
    assert interpreter.get_input_details()[0]["dtype"] == np.int8
    assert interpreter.get_output_details()[0]["dtype"] == np.int8
    expected = model(calibration, training=False).numpy()
    assert np.abs(run_litert(tflite, calibration) - expected).mean() < 0.02


def test_integer_modes_need_calibration():
    model = build(uniform("standard", 3, base_width=4, input_size=SIZE))
    with pytest.raises(ValueError, match="calibration"):
        to_tflite(model, QuantSpec("int8"), None)


def test_group_convolution_is_one_native_conv2d():
    spec = uniform("group", 3, groups=4, base_width=8, input_size=SIZE)
    model = build(spec)
    ops = op_names(to_tflite(model))
    keras_convs = sum(type(layer).__name__ == "Conv2D" for layer in model.layers)
    assert ops.count("CONV_2D") == keras_convs
    assert "SPLIT" not in ops and "SPLIT_V" not in ops
    assert ops.count("CONCATENATION") == spec.depth  # only the skip connections

    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=to_tflite(model))
    grouped = [t for t in interpreter.get_tensor_details() if len(t["shape"]) == 4 and t["shape"][0] == 16 and t["shape"][3] == 4]
    assert grouped, "a grouped 3x3 kernel of level 1 has in/groups = 16/4 = 4 input channels"


def test_masked_training_form_computes_the_native_function(calibration):
    spec = uniform("shuffle", 3, groups=4, dilation=2, base_width=8, input_size=SIZE)
    masked = build(spec, grouped="masked", seed=3)
    native = transfer_weights(masked, build(spec))
    np.testing.assert_allclose(masked(calibration).numpy(), native(calibration).numpy(), atol=1e-5)
    assert static_costs(masked).macs == static_costs(native).macs


def test_masked_group_conv_config_round_trip_rebuilds_an_equal_layer(calibration):
    from space import _tf
    from space.blocks import MaskedGroupConv2D

    keras = _tf.keras()
    layer = MaskedGroupConv2D(8, 3, mask_groups=4, padding="same", dilation_rate=2, use_bias=False, name="masked")
    rebuilt = MaskedGroupConv2D.from_config(layer.get_config())
    assert rebuilt.get_config() == layer.get_config() and rebuilt.mask_groups == 4
    revived = keras.layers.deserialize(keras.layers.serialize(layer))  # through the registered name
    assert type(revived) is MaskedGroupConv2D and revived.get_config() == layer.get_config()
    images = keras.layers.Conv2D(8, 1)(calibration[:2])  # 8 channels, divisible by 4 groups
    expected = layer(images).numpy()
    rebuilt(images)
    rebuilt.set_weights(layer.get_weights())
    np.testing.assert_array_equal(rebuilt(images).numpy(), expected)


def test_a_masked_model_rebuilt_from_its_config_gives_identical_outputs(calibration):
    from space import _tf

    keras = _tf.keras()
    model = build(uniform("group", 3, groups=2, base_width=8, input_size=SIZE), grouped="masked", seed=1)
    rebuilt = keras.Model.from_config(model.get_config())
    rebuilt.set_weights(model.get_weights())
    assert [type(layer) for layer in rebuilt.layers] == [type(layer) for layer in model.layers]
    np.testing.assert_array_equal(rebuilt(calibration[:2]).numpy(), model(calibration[:2]).numpy())
