"""Compression during training with tensorflow-model-optimization (tf-keras only).

- Pruning (:func:`prune`, :func:`strip`): magnitude pruning of every convolution kernel to a
  target sparsity with a polynomial schedule over the training steps. ``PruneForLatencyOnXNNPack``
  is used when the model qualifies; a U-Net never does (the policy wants a ZeroPadding2D + 3x3
  stride-2 Conv2D stem and a GlobalAveragePooling2D end), so pruning is a size-only compression
  and the reason is recorded.
- Quantization-aware training (:func:`quantize`): every layer of every block kind is annotated
  with tfmot's default 8-bit scheme (standard, native grouped, dilated, depthwise, Fire's
  Concatenate, ShuffleNet's Reshape/Permute/Add, Conv2DTranspose). The masked form of grouped
  convolutions gets :class:`MaskedConvQuantizeConfig`, which quantizes exactly as tfmot does a
  native Conv2D followed by BatchNorm and ReLU, so a QAT model trained in the fast masked form
  has the same variables as the native one and :func:`transfer_qat_weights` copies it over.
"""

from __future__ import annotations

import numpy as np

from evaluators import tfmot_internals as internals
from evaluators.tfmot_internals import keras, tfmot
from space.blocks import MaskedGroupConv2D

KERNEL_NAMES = ("kernel:0", "depthwise_kernel:0")
PRUNING_UPDATES = 20  # mask updates over the schedule


# -- pruning ------------------------------------------------------------------------------------
def prune(model, sparsity: float, total_steps: int):
    """``(wrapped_model, keras_callbacks, info)``: ``model`` set up for magnitude pruning.

    Each kernel reaches ``sparsity`` at 3/4 of ``total_steps`` (training steps of the phase) and
    stays there. A masked grouped kernel already holds ``1 - 1/g`` zeros off its blocks, so its
    schedule goes from that to ``1 - (1 - sparsity)/g``: the native kernel ends at ``sparsity``.
    ``info``: ``xnnpack_policy`` (bool) and ``xnnpack_policy_reason``.
    """
    if not 0 < sparsity < 1:
        raise ValueError(f"sparsity: must be in (0, 1), got {sparsity}")
    policy, reason = xnnpack_policy(model)
    frequency = max(1, total_steps // PRUNING_UPDATES)
    end_step = max(frequency, int(0.75 * (total_steps - 1)) // frequency * frequency)

    def wrap(layer):
        if not is_prunable(layer) or (policy is not None and not policy.allow_pruning(layer)):
            return layer
        schedule = _schedule(layer, sparsity, end_step, frequency)
        return tfmot.sparsity.keras.prune_low_magnitude(layer, pruning_schedule=schedule)

    wrapped = keras.models.clone_model(model, clone_function=wrap)
    info = {"xnnpack_policy": policy is not None, "xnnpack_policy_reason": reason}
    return wrapped, [tfmot.sparsity.keras.UpdatePruningStep()], info


def strip(model):
    """The model without pruning wrappers, its pruned weights at zero."""
    return tfmot.sparsity.keras.strip_pruning(model)


def is_prunable(layer) -> bool:
    """Convolutions of every kind (Conv2D, grouped, masked, depthwise, transposed)."""
    return isinstance(layer, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D))


def xnnpack_policy(model):
    """``(PruneForLatencyOnXNNPack() or None, reason)``: whether XNNPACK's sparse kernels could apply."""
    policy = tfmot.sparsity.keras.PruneForLatencyOnXNNPack()
    try:
        policy.ensure_model_supports_pruning(model)
    except ValueError as error:
        message = " ".join(str(error).split())
        return None, f"PruneForLatencyOnXNNPack does not accept this model ({message}); pruned for size only"
    return policy, "qualifies for XNNPACK sparse inference"


def _schedule(layer, sparsity, end_step, frequency):
    groups = layer.mask_groups if isinstance(layer, MaskedGroupConv2D) else 1
    structural = 1 - 1 / groups
    return tfmot.sparsity.keras.PolynomialDecay(
        initial_sparsity=structural, final_sparsity=1 - (1 - sparsity) / groups,
        begin_step=0, end_step=end_step, frequency=frequency,
    )


def sparsity(model) -> float:
    """Fraction of zeros among the convolution kernels of ``model`` (plain, stripped or QAT)."""
    kernels = [np.asarray(w) for w in model.weights if w.name.split("/")[-1] in KERNEL_NAMES]
    total = sum(k.size for k in kernels)
    return float(sum((k == 0).sum() for k in kernels) / total) if total else 0.0


def _kernel_variables(model):
    return [w for w in model.trainable_weights if w.name.split("/")[-1] in KERNEL_NAMES]


class KeepZeros(keras.callbacks.Callback):
    """Keeps pruned (zero) kernel entries at zero while a model is fine-tuned (e.g. QAT)."""

    def __init__(self, model):
        super().__init__()
        self.masks = [(variable, np.asarray(variable) != 0) for variable in _kernel_variables(model)]
        self.masks = [(v, m.astype(np.float32)) for v, m in self.masks if not m.all()]

    def on_train_batch_end(self, batch, logs=None):
        for variable, mask in self.masks:
            variable.assign(variable * mask)


# -- quantization-aware training ----------------------------------------------------------------
class MaskedConvQuantizeConfig(tfmot.quantization.keras.QuantizeConfig):
    """QAT of a :class:`~space.blocks.MaskedGroupConv2D`: per-channel int8 kernel, no output quantizer.

    That is what tfmot does to a native Conv2D followed by BatchNorm (the BatchNorm and the conv
    output stay unquantized; the ReLU after them carries the output quantizer).
    """

    def get_weights_and_quantizers(self, layer):
        return [(layer.kernel, internals.ConvWeightsQuantizer())]

    def get_activations_and_quantizers(self, layer):
        return []

    def set_quantize_weights(self, layer, quantize_weights):
        layer.kernel = quantize_weights[0]

    def set_quantize_activations(self, layer, quantize_activations):
        pass

    def get_output_quantizers(self, layer):
        return []

    def get_config(self):
        return {}

    def __eq__(self, other):
        return type(other) is type(self) and other.get_config() == self.get_config()

    def __hash__(self):
        return hash(type(self))


def quantize(model):
    """``(qat_model, unannotated_layer_names)``: the model wrapped for int8 quantization-aware training.

    Weights are kept. Every layer is annotated as ``quantize_model`` does; a layer that tfmot's
    default 8-bit scheme rejects ("is not supported") is left in float and named in the list.
    """
    unannotated: list[str] = []
    while True:
        try:
            return _quantize(model, unannotated), unannotated
        except RuntimeError as error:
            name = internals.unsupported_layer(error)
            if name is None or name in unannotated:
                raise
            unannotated.append(name)


def _quantize(model, skip):
    quantization = tfmot.quantization.keras
    after_masked = _consumers_of_masked(model)

    def annotate(layer):
        if layer.name in skip:
            return layer
        if isinstance(layer, MaskedGroupConv2D):
            return quantization.quantize_annotate_layer(layer, MaskedConvQuantizeConfig())
        if layer.name in after_masked:
            return quantization.quantize_annotate_layer(layer, internals.NoOpQuantizeConfig())
        return quantization.quantize_annotate_layer(layer)

    annotated = keras.models.clone_model(model, clone_function=annotate)
    scope = {
        "MaskedGroupConv2D": MaskedGroupConv2D,
        "MaskedConvQuantizeConfig": MaskedConvQuantizeConfig,
        "NoOpQuantizeConfig": internals.NoOpQuantizeConfig,
    }
    with quantization.quantize_scope(scope):
        return quantization.quantize_apply(annotated)


def _consumers_of_masked(model) -> set[str]:
    """Names of the BatchNormalization layers fed by a masked grouped conv."""
    names = set()
    for layer in model.layers:
        if isinstance(layer, MaskedGroupConv2D):
            names.update(
                consumer.name for consumer in internals.consumers(layer)
                if isinstance(consumer, keras.layers.BatchNormalization)
            )
    return names


def transfer_qat_weights(source, target):
    """Copy a QAT model trained in masked form into the QAT model of the native form.

    Both come from :func:`quantize` on the same spec, so their variables correspond one to one;
    masked kernels become grouped kernels (the quantizers' per-channel ranges carry over as is).
    """
    from space.model import grouped_kernel

    targets = {layer.name: layer for layer in target.layers}
    quantize_layers = [layer for layer in target.layers if internals.is_quantize_layer(layer)]
    for layer in source.layers:
        weights = layer.get_weights()
        if not weights:
            continue
        destination = targets.get(layer.name)
        if destination is None and internals.is_quantize_layer(layer) and len(quantize_layers) == 1:
            destination = quantize_layers[0]
        if destination is None:
            raise ValueError(f"transfer_qat_weights: the native QAT model has no layer {layer.name!r}")
        inner = getattr(layer, "layer", None)
        converted = []
        for value, slot in zip(weights, destination.get_weights()):
            if value.shape != slot.shape and isinstance(inner, MaskedGroupConv2D):
                value = grouped_kernel(value, inner.mask_groups)
            converted.append(value)
        destination.set_weights(converted)
    return target
