"""The QAT config of masked grouped convolutions survives ``get_config`` round trips."""

import numpy as np

from evaluators import compress
from evaluators import tfmot_internals as internals
from evaluators.tfmot_internals import keras, tfmot
from space.blocks import MaskedGroupConv2D
from space.model import build
from space.spec import uniform

SIZE = 32


def test_masked_conv_quantize_config_round_trip_rebuilds_an_equal_config():
    config = compress.MaskedConvQuantizeConfig()
    rebuilt = compress.MaskedConvQuantizeConfig.from_config(config.get_config())
    assert rebuilt == config and rebuilt.get_config() == config.get_config()
    serialized = keras.utils.serialize_keras_object(config)
    with tfmot.quantization.keras.quantize_scope({"MaskedConvQuantizeConfig": compress.MaskedConvQuantizeConfig}):
        assert keras.utils.deserialize_keras_object(serialized) == config


def test_a_qat_model_with_masked_convs_rebuilt_from_its_config_gives_identical_outputs():
    images = np.random.default_rng(0).uniform(0, 1, (2, SIZE, SIZE, 3)).astype(np.float32)
    model, _ = compress.quantize(build(uniform("group", 3, groups=2, base_width=8, input_size=SIZE), grouped="masked", seed=0))
    scope = {"MaskedGroupConv2D": MaskedGroupConv2D, "MaskedConvQuantizeConfig": compress.MaskedConvQuantizeConfig}
    with tfmot.quantization.keras.quantize_scope(scope):
        rebuilt = keras.Model.from_config(model.get_config())
    # tfmot 0.8.1's QuantizeLayer makes its min/max twice when rebuilt from a config; both copies
    # keep their initial range here, so the rest is copied layer by layer.
    for layer in model.layers:
        if not internals.is_quantize_layer(layer):
            rebuilt.get_layer(layer.name).set_weights(layer.get_weights())
    assert sum(isinstance(getattr(layer, "layer", None), MaskedGroupConv2D) for layer in rebuilt.layers) > 0
    np.testing.assert_array_equal(rebuilt(images, training=False).numpy(), model(images, training=False).numpy())
