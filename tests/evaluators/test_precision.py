"""Training in bfloat16 (Keras' mixed_bfloat16): float32 weights out, converted and scored as float32."""

import numpy as np
import pytest

from evaluators.accuracy import evaluate_tflite
from evaluators.agent import cpu_flags
from evaluators.train import BFLOAT16_FLAGS, PRECISIONS, fit_candidate, training_precision
from space.convert import to_tflite
from space.model import build
from space.spec import QuantSpec, uniform


def tiny(kind="standard", groups=1, **kwargs):
    return uniform(kind, depth=3, groups=groups, base_width=8, input_size=32, **kwargs)


def test_the_option_names_every_precision():
    from search.options import PRECISIONS as OPTION_PRECISIONS

    assert OPTION_PRECISIONS == PRECISIONS


def test_a_bfloat16_training_returns_a_float32_model_that_learned_and_converts(data):
    spec = tiny("group", groups=2)  # trained masked: the copy into the native model is checked too
    model, history, info = fit_candidate(spec, data, 3, batch_size=4, seed=0, precision="bfloat16")
    assert info["precision"] == "bfloat16" and info["training_form"] == "masked"
    assert all(layer.compute_dtype == "float32" for layer in model.layers)
    assert 0 < info["transfer_max_diff"] <= 0.05  # bfloat16 arithmetic, not the same float32 one
    scored = evaluate_tflite(to_tflite(model), data)
    untrained = evaluate_tflite(to_tflite(build(spec, seed=0)), data)
    assert scored["dice"] > untrained["dice"] + 0.3
    assert history.val_dice[-1] == pytest.approx(scored["dice"], abs=0.05)


def test_a_bfloat16_training_goes_on_in_stages_as_one_run_does(data):
    spec = tiny()
    _, first, info = fit_candidate(spec, data, 1, batch_size=8, seed=0, horizon=3, precision="bfloat16")
    _, second, again = fit_candidate(spec, data, 2, batch_size=8, seed=0, horizon=3, resume=first.checkpoint,
                                     precision="bfloat16")
    _, whole, _ = fit_candidate(spec, data, 3, batch_size=8, seed=0, precision="bfloat16")
    assert again["resumed_live"] and again["precision"] == "bfloat16"
    assert first.checkpoint.weights[0].dtype == np.float32  # stored as a float32 training's are
    assert first.val_dice + second.val_dice == pytest.approx(whole.val_dice, abs=0.02)


def test_auto_takes_bfloat16_only_for_blocks_of_16_channels_without_depthwise_or_several_phases():
    wide, narrow, fire, depthwise = (uniform(kind, depth=3, base_width=width, input_size=32)
                                     for kind, width in [("standard", 16), ("standard", 8), ("fire", 16), ("depthwise", 16)])
    fast_cpu = bool(cpu_flags() & set(BFLOAT16_FLAGS))
    assert training_precision(wide, build(wide), "auto") == ("bfloat16" if fast_cpu else "float32")
    for slow in (narrow, fire, depthwise):  # fire squeezes 16 filters to 4
        assert training_precision(slow, build(slow), "auto") == "float32"
    assert training_precision(depthwise, build(depthwise), "bfloat16") == "bfloat16"  # asked for
    standard, qat = tiny(), tiny(quant=QuantSpec("int8-qat"))
    assert training_precision(qat, build(qat), "bfloat16") == "float32"  # QAT rewraps the model: float32
    with pytest.raises(ValueError, match="unknown 'half'; choose from float32, auto, bfloat16"):
        training_precision(standard, build(standard), "half")
