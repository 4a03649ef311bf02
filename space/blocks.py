"""The block registry: one place that turns a block kind, or a way to upsample or merge a skip, into layers.

Every block builder has the signature ``builder(x, filters, stage, name, grouped) -> x`` where ``stage``
is a :class:`space.spec.StageSpec` (its ``kernel`` sizes the spatial convolutions) and ``grouped``
selects how grouped convolutions are made:

- ``"native"``: ``Conv2D(groups=g)``, which converts to one CONV_2D and runs in XNNPACK;
- ``"masked"``: a dense ``Conv2D`` whose kernel is multiplied by a block-diagonal mask. It computes
  the same function but trains 15-25x faster on TensorFlow's CPU kernels; copy its weights into
  the native model with :func:`space.model.transfer_weights` before conversion.

The decoder's builders: ``UPSAMPLERS[name](x, filters, name) -> x`` doubles the resolution,
``SKIP_MERGERS[name](x, skip, name) -> x`` joins the encoder's skip.
"""

from __future__ import annotations

from space import _tf
from space.spec import BLOCK_KINDS, SKIP_MERGES, UPSAMPLINGS, StageSpec

keras = _tf.keras()
layers = keras.layers


@keras.utils.register_keras_serializable(package="nas_lite")
class MaskedGroupConv2D(layers.Conv2D):
    """A dense Conv2D restricted to a block-diagonal kernel: a grouped convolution that trains fast.

    The off-block entries start at zero and stay there (their gradient is zero), so the kernel's
    magnitudes are those of the grouped kernel: magnitude pruning and per-channel quantization
    ranges see the same weights as in the native ``Conv2D(groups=g)``.
    """

    def __init__(self, *args, mask_groups: int = 1, **kwargs):
        super().__init__(*args, **kwargs)
        self.mask_groups = mask_groups

    def build(self, input_shape):
        super().build(input_shape)
        tf = _tf.tensorflow()
        in_channels, out_channels = self.kernel.shape[-2], self.kernel.shape[-1]
        in_group, out_group = in_channels // self.mask_groups, out_channels // self.mask_groups
        rows = tf.range(in_channels)[:, None] // in_group
        cols = tf.range(out_channels)[None, :] // out_group
        self.kernel_mask = tf.cast(rows == cols, self.kernel.dtype)[None, None]
        self.kernel.assign(self.kernel * self.kernel_mask)

    def convolution_op(self, inputs, kernel):
        return super().convolution_op(inputs, kernel * self.kernel_mask)

    def get_prunable_weights(self):
        """For tensorflow-model-optimization's pruning wrapper (it only knows the exact Keras classes)."""
        return [self.kernel]

    def get_config(self):
        return {**super().get_config(), "mask_groups": self.mask_groups}


def conv(x, filters, kernel, name, groups=1, dilation=1, grouped="native", activate=True):
    """Conv (grouped as asked) -> BatchNorm -> ReLU (unless not ``activate``: linear)."""
    in_channels = x.shape[-1]
    groups = groups if in_channels % groups == 0 else 1  # the 3-channel image cannot be grouped
    options = dict(padding="same", dilation_rate=dilation, use_bias=False, name=name)
    if groups > 1 and grouped == "masked":
        x = MaskedGroupConv2D(filters, kernel, mask_groups=groups, **options)(x)
    else:
        x = layers.Conv2D(filters, kernel, groups=groups, **options)(x)
    return _bn_relu(x, name, activate)


def depthwise(x, kernel, name, dilation=1, activate=True):
    x = layers.DepthwiseConv2D(kernel, padding="same", dilation_rate=dilation, use_bias=False, name=name)(x)
    return _bn_relu(x, name, activate)


def _bn_relu(x, name, activate):
    x = layers.BatchNormalization(name=f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x) if activate else x


def channel_shuffle(x, groups, name):
    """ShuffleNet's channel shuffle: (h, w, g, c/g) -> transpose -> (h, w, c)."""
    height, width, channels = x.shape[1:]
    x = layers.Reshape((height, width, groups, channels // groups), name=f"{name}_split")(x)
    x = layers.Permute((1, 2, 4, 3), name=f"{name}_swap")(x)
    return layers.Reshape((height, width, channels), name=f"{name}_merge")(x)


def standard_block(x, filters, stage: StageSpec, name, grouped="native"):
    x = conv(x, filters, stage.kernel, f"{name}_conv1", dilation=stage.dilation)
    return conv(x, filters, stage.kernel, f"{name}_conv2", dilation=stage.dilation)


def group_block(x, filters, stage: StageSpec, name, grouped="native"):
    x = conv(x, filters, stage.kernel, f"{name}_conv1", stage.groups, stage.dilation, grouped)
    return conv(x, filters, stage.kernel, f"{name}_conv2", stage.groups, stage.dilation, grouped)


def depthwise_block(x, filters, stage: StageSpec, name, grouped="native"):
    """Two depthwise-separable convolutions (MobileNet style)."""
    for index in (1, 2):
        x = depthwise(x, stage.kernel, f"{name}_dw{index}", stage.dilation)
        x = conv(x, filters, 1, f"{name}_pw{index}")
    return x


def fire_block(x, filters, stage: StageSpec, name, grouped="native"):
    """Two SqueezeNet Fire modules: squeeze 1x1 to filters/4, expand 1x1 and 3x3 (the stage's kernel)
    to filters/2 each."""
    for index in (1, 2):
        squeezed = conv(x, max(filters // 4, 4), 1, f"{name}_fire{index}_squeeze")
        expand1 = conv(squeezed, filters // 2, 1, f"{name}_fire{index}_expand1")
        expand3 = conv(squeezed, filters // 2, stage.kernel, f"{name}_fire{index}_expand3", dilation=stage.dilation)
        x = layers.Concatenate(name=f"{name}_fire{index}")([expand1, expand3])
    return x


def shuffle_block(x, filters, stage: StageSpec, name, grouped="native"):
    """Two ShuffleNet units: grouped 1x1, channel shuffle, depthwise 3x3, grouped 1x1 (+ residual)."""
    groups = stage.groups
    for index in (1, 2):
        unit = f"{name}_unit{index}"
        shortcut = x
        y = conv(x, filters, 1, f"{unit}_gconv1", groups, grouped=grouped)
        y = channel_shuffle(y, groups, f"{unit}_shuffle") if groups > 1 else y
        y = depthwise(y, stage.kernel, f"{unit}_dw", stage.dilation, activate=False)
        y = conv(y, filters, 1, f"{unit}_gconv2", groups, grouped=grouped)
        x = layers.Add(name=f"{unit}_add")([shortcut, y]) if shortcut.shape[-1] == filters else y
    return x


def residual_block(x, filters, stage: StageSpec, name, grouped="native"):
    """ResNet's basic block: two convs added to the input (through a 1x1 projection when the channels differ)."""
    shortcut = x if x.shape[-1] == filters else conv(x, filters, 1, f"{name}_proj", activate=False)
    y = conv(x, filters, stage.kernel, f"{name}_conv1", dilation=stage.dilation)
    y = conv(y, filters, stage.kernel, f"{name}_conv2", dilation=stage.dilation, activate=False)
    y = layers.Add(name=f"{name}_add")([shortcut, y])
    return layers.ReLU(name=f"{name}_relu")(y)


def inverted_block(x, filters, stage: StageSpec, name, grouped="native"):
    """Two MobileNetV2 inverted residuals: 1x1 expand by ``stage.expansion``, depthwise, linear 1x1
    projection, added to the input when the shapes match.

    ReLU, not MobileNetV2's ReLU6: int16x8 models of untrained candidates (converted to be timed
    before training) have near-zero activation ranges in the bottleneck, and a fused RELU6 there
    overflows LiteRT's int32 check ("no_integer_overflow_from_quantization") when quantizing 6.
    """
    for index in (1, 2):
        unit = f"{name}_ir{index}"
        y = x
        if stage.expansion > 1:
            y = conv(y, x.shape[-1] * stage.expansion, 1, f"{unit}_expand")
        y = depthwise(y, stage.kernel, f"{unit}_dw", stage.dilation)
        y = conv(y, filters, 1, f"{unit}_project", activate=False)
        x = layers.Add(name=f"{unit}_add")([x, y]) if x.shape[-1] == filters else y
    return x


def factorized_block(x, filters, stage: StageSpec, name, grouped="native"):
    """Two k x k convolutions, each factorised into k x 1 then 1 x k (Inception-v3, ERFNet)."""
    k, d = stage.kernel, stage.dilation
    for index in (1, 2):
        x = conv(x, filters, (k, 1), f"{name}_conv{index}a", dilation=(d, 1))
        x = conv(x, filters, (1, k), f"{name}_conv{index}b", dilation=(1, d))
    return x


def transpose_up(x, filters, name):
    # Not UpSampling2D("nearest"): XNNPACK has no RESIZE_NEAREST_NEIGHBOR.
    return layers.Conv2DTranspose(filters, 2, strides=2, name=f"{name}_up")(x)


def resize_up(x, filters, name):
    """A 1x1 convolution, then a bilinear resize: resize + convolution without the transposed
    convolution's checkerboard. The 1x1 goes first, at a quarter of the pixels: a bilinear resize
    mixes pixels with weights that sum to 1, so it commutes with a per-pixel affine map."""
    x = layers.Conv2D(filters, 1, name=f"{name}_up")(x)
    return layers.UpSampling2D(2, interpolation="bilinear", name=f"{name}_resize")(x)


def concat_skip(x, skip, name):
    return layers.Concatenate(name=f"{name}_concat")([x, skip])


def add_skip(x, skip, name):
    """The skip added to the upsampled features, through a 1x1 projection when their channels differ."""
    if skip.shape[-1] != x.shape[-1]:
        skip = layers.Conv2D(x.shape[-1], 1, use_bias=False, name=f"{name}_skip_proj")(skip)
    return layers.Add(name=f"{name}_skip_add")([x, skip])


BLOCKS = {
    "standard": standard_block,
    "group": group_block,
    "depthwise": depthwise_block,
    "fire": fire_block,
    "shuffle": shuffle_block,
    "residual": residual_block,
    "inverted": inverted_block,
    "factorized": factorized_block,
}
UPSAMPLERS = {"transpose": transpose_up, "resize": resize_up}
SKIP_MERGERS = {"concat": concat_skip, "add": add_skip}
assert (tuple(BLOCKS), tuple(UPSAMPLERS), tuple(SKIP_MERGERS)) == (BLOCK_KINDS, UPSAMPLINGS, SKIP_MERGES)


def get_block(kind: str):
    """The builder for ``kind``; ``ValueError`` lists the valid kinds."""
    return _lookup(BLOCKS, "block kind", kind)


def get_upsampler(name: str):
    return _lookup(UPSAMPLERS, "upsampling", name)


def get_skip_merger(name: str):
    return _lookup(SKIP_MERGERS, "skip merge", name)


def _lookup(registry: dict, what: str, name: str):
    try:
        return registry[name]
    except KeyError:
        raise ValueError(f"unknown {what} {name!r}; choose one of {', '.join(registry)}") from None
