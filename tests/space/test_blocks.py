"""The block kinds residual, inverted and factorized, the kernel size, and the decoder's upsampling and
skip merge: each builds, trains, converts in every quant mode, runs in LiteRT inside XNNPACK, and
round-trips through get_config and the spec's JSON."""

import numpy as np
import pytest

from space import _tf
from space.blocks import add_skip, inverted_block, residual_block
from space.convert import to_tflite
from space.model import build, static_costs
from space.spec import QUANT_MODES, CandidateSpec, QuantSpec, StageSpec, uniform
from tests.space.test_models import op_names, run_litert

SIZE = 32
keras = _tf.keras()

EVERY_NEW_CHOICE = CandidateSpec(
    encoder=(StageSpec("residual", kernel=5), StageSpec("inverted", expansion=4), StageSpec("factorized", dilation=2)),
    bottleneck=StageSpec("inverted", expansion=6, kernel=5),
    decoder=(StageSpec("factorized", kernel=5), StageSpec("residual"), StageSpec("inverted", expansion=2, kernel=5)),
    base_width=4, input_size=SIZE, upsampling="resize", skip_merge="add",
)
UNIFORM = {
    "residual": uniform("residual", 3, base_width=4, input_size=SIZE),
    "inverted": uniform("inverted", 3, expansion=6, base_width=4, input_size=SIZE),
    "factorized-k5": uniform("factorized", 3, kernel=5, base_width=4, input_size=SIZE),
    "resize-add": uniform("standard", 3, base_width=4, input_size=SIZE, upsampling="resize", skip_merge="add"),
}


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(0).uniform(0, 1, (8, SIZE, SIZE, 3)).astype(np.float32)


@pytest.fixture(scope="module")
def model():
    return build(EVERY_NEW_CHOICE, seed=0)


def delegated(tflite: bytes) -> dict:
    from evaluators.runtime import _load, delegated_ops

    return delegated_ops(_load(tflite, threads=1))


@pytest.mark.parametrize("name", sorted(UNIFORM))
def test_each_new_choice_builds_a_mask_of_the_input_size(name, images):
    output = build(UNIFORM[name], seed=0)(images[:2], training=False).numpy()
    assert output.shape == (2, SIZE, SIZE, 1)
    assert np.all((output >= 0) & (output <= 1))


def test_the_model_of_every_new_choice_trains(model, images):
    tf = _tf.tensorflow()
    masks = (images[..., :1] > 0.5).astype(np.float32)
    with tf.GradientTape() as tape:  # one eager step: tracing a training function would cost 10x more
        loss = keras.losses.binary_crossentropy(masks, model(images, training=True))
    gradients = tape.gradient(loss, model.trainable_weights)
    assert np.isfinite(float(tf.reduce_mean(loss)))
    reached = [g is not None and float(tf.reduce_max(tf.abs(g))) > 0 for g in gradients]
    assert all(reached)  # every block's weights, not only the head's


def converts_in_every_mode_and_runs_in_xnnpack(model, images) -> dict[str, bytes]:
    """The model's ``.tflite`` per quant mode, each checked to run close to the Keras model."""
    expected = model(images[:2], training=False).numpy()
    converted = {mode: to_tflite(model, QuantSpec(mode, calibration_images=8), images) for mode in QUANT_MODES}
    for mode, tflite in converted.items():
        output = run_litert(tflite, images[:2])
        assert output.shape == (2, SIZE, SIZE, 1), mode
        tolerance = 1e-4 if mode == "float32" else 0.1
        assert np.abs(output - expected).max() < tolerance, mode
        if mode in ("float32", "int8"):
            assert delegated(tflite)["outside"] == {}, mode  # every op runs inside XNNPACK
    return converted


def test_the_model_of_every_new_choice_converts_in_every_mode_and_runs_in_xnnpack(model, images):
    ops = op_names(converts_in_every_mode_and_runs_in_xnnpack(model, images)["float32"])
    assert "RESIZE_BILINEAR" in ops and "ADD" in ops  # resized upsampling and added skips, as asked
    assert not {"TRANSPOSE_CONV", "CONCATENATION", "RESIZE_NEAREST_NEIGHBOR"} & set(ops)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(UNIFORM))
def test_each_new_choice_alone_converts_in_every_mode_and_runs_in_xnnpack(name, images):
    converts_in_every_mode_and_runs_in_xnnpack(build(UNIFORM[name], seed=0), images)


def test_get_config_round_trip_gives_identical_outputs(model, images):
    rebuilt = keras.Model.from_config(model.get_config())
    rebuilt.set_weights(model.get_weights())
    assert [type(layer) for layer in rebuilt.layers] == [type(layer) for layer in model.layers]
    np.testing.assert_array_equal(rebuilt(images[:2]).numpy(), model(images[:2]).numpy())


def test_shortcuts_are_identities_when_the_channels_match_and_projections_otherwise():
    def layer_names(block, channels, filters, stage):
        inputs = keras.Input((8, 8, channels))
        return [layer.name for layer in keras.Model(inputs, block(inputs, filters, stage, "b")).layers]

    assert "b_proj" not in layer_names(residual_block, 8, 8, StageSpec("residual"))
    assert "b_proj" in layer_names(residual_block, 4, 8, StageSpec("residual"))
    same = layer_names(inverted_block, 8, 8, StageSpec("inverted", expansion=4))
    assert {"b_ir1_add", "b_ir2_add"} <= set(same)
    wider = layer_names(inverted_block, 4, 8, StageSpec("inverted", expansion=4))
    assert "b_ir1_add" not in wider and "b_ir2_add" in wider  # the first unit changes the channels
    assert "b_ir1_expand" not in layer_names(inverted_block, 8, 8, StageSpec("inverted"))  # expansion 1: none


def test_inverted_expands_its_input_by_the_stage_factor():
    inputs = keras.Input((8, 8, 4))
    block = keras.Model(inputs, inverted_block(inputs, 8, StageSpec("inverted", expansion=6), "b"))
    assert block.get_layer("b_ir1_expand").filters == 4 * 6  # of the unit's input channels
    assert block.get_layer("b_ir2_expand").filters == 8 * 6


def test_added_skips_project_the_skip_when_the_channels_differ():
    x, skip = keras.Input((8, 8, 4)), keras.Input((8, 8, 6))
    merged = keras.Model([x, skip], add_skip(x, skip, "d"))
    assert merged.output_shape == (None, 8, 8, 4) and "d_skip_proj" in [layer.name for layer in merged.layers]


def test_costs_follow_the_kernel_and_the_factorisation():
    def macs(**changes):
        return static_costs(build(uniform(input_size=SIZE, depth=3, base_width=8, **changes))).macs

    standard, k5 = macs(kind="standard"), macs(kind="standard", kernel=5)
    assert 2 < k5 / standard < 25 / 9  # the 1x1 head and the upsampling do not grow
    assert macs(kind="factorized") < 0.8 * standard  # 3x1 + 1x3 is 6 weights per channel pair, not 9
    assert macs(kind="standard", upsampling="resize") < standard  # its 1x1 runs before the resize
    assert macs(kind="standard", skip_merge="add") < standard  # the decoder's blocks see half the channels
