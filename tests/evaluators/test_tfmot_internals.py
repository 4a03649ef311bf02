"""The tfmot (and tf-keras) private names nas-lite relies on: a version that changes them fails
here, by name and with the version they were checked against, not deep inside a QAT trial."""

import pytest

from evaluators import tfmot_internals as internals

keras, tfmot = internals.keras, internals.tfmot
layers = keras.layers
CHANGED = (f"tensorflow-model-optimization {internals.VERSION} changed a private name that "
           f"evaluators/tfmot_internals.py uses (checked against {internals.PINNED_VERSION})")


def _conv_bn_relu(tail=None):
    inputs = keras.Input((8, 8, 3))
    x = layers.Conv2D(4, 3, padding="same", use_bias=False, name="conv")(inputs)
    x = layers.BatchNormalization(name="conv_bn")(x)
    x = layers.ReLU(name="conv_relu")(x)
    return keras.Model(inputs, tail(x) if tail else x)


@pytest.fixture(scope="module")
def quantized():
    return tfmot.quantization.keras.quantize_model(_conv_bn_relu())


def test_the_conv_kernel_quantizer_is_the_one_tfmot_gives_a_conv2d(quantized):
    wrapper = quantized.get_layer("quant_conv")
    kinds = [type(q) for _, q in wrapper.quantize_config.get_weights_and_quantizers(wrapper.layer)]
    assert kinds == [internals.ConvWeightsQuantizer], CHANGED + f": Conv2D kernel quantizers are {kinds}"
    assert issubclass(internals.ConvWeightsQuantizer, tfmot.quantization.keras.quantizers.Quantizer), CHANGED


def test_the_batchnorm_after_a_conv_gets_the_no_op_config(quantized):
    config = quantized.get_layer("quant_conv_bn").quantize_config
    assert type(config) is internals.NoOpQuantizeConfig, CHANGED + f": BatchNorm after Conv2D gets {type(config)}"
    assert issubclass(internals.NoOpQuantizeConfig, tfmot.quantization.keras.QuantizeConfig), CHANGED


def test_the_input_quantize_layer_is_recognised(quantized):
    found = [layer.name for layer in quantized.layers if internals.is_quantize_layer(layer)]
    assert len(found) == 1, CHANGED + f": quantize_model's input layers are {[type(l).__name__ for l in quantized.layers]}"


def test_the_not_supported_error_names_the_layer():
    model = _conv_bn_relu(lambda x: layers.LayerNormalization(name="odd")(x))
    annotated = tfmot.quantization.keras.quantize_annotate_model(model)
    with pytest.raises(RuntimeError) as caught:
        tfmot.quantization.keras.quantize_apply(annotated)
    assert internals.unsupported_layer(caught.value) == "odd", CHANGED + f": the error now reads {caught.value}"
    assert internals.unsupported_layer(RuntimeError("something else")) is None


def test_consumers_follow_the_functional_graph():
    model = _conv_bn_relu()
    assert [layer.name for layer in internals.consumers(model.get_layer("conv"))] == ["conv_bn"], (
        f"tf-keras changed Layer._outbound_nodes (used by evaluators/tfmot_internals.py with tfmot {internals.PINNED_VERSION})"
    )
