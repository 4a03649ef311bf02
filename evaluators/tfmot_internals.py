"""The one place that touches tensorflow-model-optimization's (and tf-keras') private names.

tfmot 0.8.1 does not export what a grouped conv trained in masked form needs to quantize exactly
as tfmot does a native Conv2D: the default 8-bit weight quantizer, the no-op config, the layer
that quantizes a model's input, and the wording of its "not supported" error. Everything else
uses ``tfmot``'s public API. ``tests/evaluators/test_tfmot_internals.py`` fails loudly, naming
``PINNED_VERSION``, when a new version moves or changes any of it.
"""

from __future__ import annotations

import re

from space import _tf

keras = _tf.keras()  # sets TF_USE_LEGACY_KERAS first: tfmot works only with tf-keras
import tensorflow_model_optimization as tfmot  # noqa: E402
from tensorflow_model_optimization.python.core.quantization.keras.default_8bit import (  # noqa: E402
    default_8bit_quantize_configs,
    default_8bit_quantizers,
)
from tensorflow_model_optimization.python.core.quantization.keras.quantize_layer import QuantizeLayer  # noqa: E402

PINNED_VERSION = "0.8.1"
VERSION = tfmot.__version__

# The configuration tfmot gives a layer it leaves in float (the BatchNorm after a conv).
NoOpQuantizeConfig = default_8bit_quantize_configs.NoOpQuantizeConfig
# The per-channel int8 quantizer tfmot puts on a Conv2D kernel.
ConvWeightsQuantizer = default_8bit_quantizers.Default8BitConvWeightsQuantizer
# ``quantize_apply`` raises RuntimeError("Layer NAME:<class ...> is not supported. ...").
_UNSUPPORTED = re.compile(r"Layer (\S+?):<class .*is not supported")


def unsupported_layer(error: BaseException) -> str | None:
    """The layer name in tfmot's "is not supported" error, or None for another error."""
    match = _UNSUPPORTED.search(str(error))
    return match.group(1) if match else None


def is_quantize_layer(layer) -> bool:
    """Whether ``layer`` is the layer ``quantize_apply`` puts after a model's input."""
    return isinstance(layer, QuantizeLayer)


def consumers(layer) -> list:
    """The layers fed by ``layer`` in its functional model (tf-keras' private ``_outbound_nodes``)."""
    return [node.outbound_layer for node in layer._outbound_nodes]
