"""``build(spec) -> tf.keras.Model``: the U-Net a spec describes, and its static costs."""

from __future__ import annotations

import dataclasses

import numpy as np

from space import _tf
from space.blocks import MaskedGroupConv2D, get_block, get_skip_merger, get_upsampler
from space.spec import CandidateSpec

keras = _tf.keras()
layers = keras.layers


def build(spec: CandidateSpec, grouped: str = "native", seed: int | None = None) -> "keras.Model":
    """The U-Net of ``spec``: one sigmoid channel out, inputs are images scaled to [0, 1].

    ``grouped="masked"`` builds the fast-training form of grouped convolutions (same function,
    same layer names); see :mod:`space.blocks`.
    """
    if grouped not in ("native", "masked"):
        raise ValueError(f"grouped: choose 'native' or 'masked', not {grouped!r}")
    if seed is not None:
        keras.utils.set_random_seed(seed)
    inputs = keras.Input((spec.input_size, spec.input_size, spec.input_channels), name="image")
    x, skips = inputs, []
    for level, stage in enumerate(spec.encoder):
        x = get_block(stage.kind)(x, spec.channels(level), stage, f"enc{level}", grouped)
        skips.append(x)
        x = layers.MaxPooling2D(2, name=f"enc{level}_pool")(x)
    x = get_block(spec.bottleneck.kind)(x, spec.channels(spec.depth), spec.bottleneck, "bottleneck", grouped)
    upsample, merge = get_upsampler(spec.upsampling), get_skip_merger(spec.skip_merge)
    for level in reversed(range(spec.depth)):
        x = merge(upsample(x, spec.channels(level), f"dec{level}"), skips[level], f"dec{level}")
        stage = spec.decoder[level]
        x = get_block(stage.kind)(x, spec.channels(level), stage, f"dec{level}", grouped)
    outputs = layers.Conv2D(1, 1, activation="sigmoid", name="mask")(x)
    return keras.Model(inputs, outputs, name="unet")


def transfer_weights(source: "keras.Model", target: "keras.Model") -> "keras.Model":
    """Copy weights layer by layer (matched by name), turning masked grouped kernels into native ones."""
    for layer in source.layers:
        weights = layer.get_weights()
        if not weights:
            continue
        destination = target.get_layer(layer.name)
        if isinstance(layer, MaskedGroupConv2D) and not isinstance(destination, MaskedGroupConv2D):
            weights = [grouped_kernel(weights[0], layer.mask_groups), *weights[1:]]
        destination.set_weights(weights)
    return target


def grouped_kernel(kernel: np.ndarray, groups: int) -> np.ndarray:
    """The native ``Conv2D(groups=g)`` kernel of a masked one: (kh, kw, in, out) with ``groups``
    blocks on its diagonal -> (kh, kw, in/g, out), the blocks side by side."""
    in_group, out_group = kernel.shape[2] // groups, kernel.shape[3] // groups
    blocks = [kernel[:, :, g * in_group:(g + 1) * in_group, g * out_group:(g + 1) * out_group] for g in range(groups)]
    return np.concatenate(blocks, axis=3)


def is_quantization_aware(model) -> bool:
    """Whether tensorflow-model-optimization wrapped ``model`` for quantization-aware training."""
    return any(type(layer).__name__.startswith("Quantize") for layer in model.layers)


@dataclasses.dataclass(frozen=True)
class StaticCosts:
    """What a model costs before it runs: trainable + non-trainable parameters, multiply-accumulates."""

    params: int
    macs: int


def static_costs(model: "keras.Model") -> StaticCosts:
    """Parameters and MACs counted from layer shapes (batch size 1)."""
    return StaticCosts(params=int(model.count_params()), macs=int(sum(_layer_macs(layer) for layer in model.layers)))


def _layer_macs(layer) -> int:
    if isinstance(layer, layers.DepthwiseConv2D):
        _, h, w, c = layer.output_shape
        kh, kw = layer.kernel_size
        return h * w * c * kh * kw
    if isinstance(layer, layers.Conv2DTranspose):
        _, h, w, c_in = layer.input_shape
        kh, kw = layer.kernel_size
        return h * w * kh * kw * c_in * layer.filters
    if isinstance(layer, layers.Conv2D):
        _, h, w, c_out = layer.output_shape
        c_in = layer.input_shape[-1]
        groups = layer.mask_groups if isinstance(layer, MaskedGroupConv2D) else layer.groups
        kh, kw = layer.kernel_size
        return h * w * c_out * kh * kw * c_in // groups
    if isinstance(layer, layers.Dense):
        return int(np.prod(layer.kernel.shape))
    return 0
