"""The hand-designed variants of the reference reports, as specs.

``unet`` is the standard U-Net (base width 16, depth 4: 1.95 million parameters at 128x128x3).
The others keep its widths and change the blocks: ``group`` and ``dilated`` keep the first two
levels standard and use groups 2 then 4, or dilation 2 then 4, deeper down; ``group-dilated``
does both; ``depthwise``, ``shuffle`` and ``fire`` use that block everywhere, as ``resunet``
(ResNet's residual block) and ``mobilenetv2-unet`` (MobileNetV2's inverted residual, expansion 6)
do with the opt-in kinds. Every preset also exists with int8 post-training quantization as
``<name>-int8``.
"""

from __future__ import annotations

from space.spec import SEARCHED_BLOCK_KINDS, CandidateSpec, QuantSpec, StageSpec, uniform

STD = StageSpec()
REFERENCE = "unet"  # the preset every front and confirmation is judged against


def _deep(kind: str, groups: tuple[int, int], dilations: tuple[int, int]) -> CandidateSpec:
    """Standard in levels 0-1; level 2 and then level 3 + bottleneck with the given settings."""
    level2 = StageSpec(kind, groups[0], dilations[0])
    level3 = StageSpec(kind, groups[1], dilations[1])
    encoder = (STD, STD, level2, level3)
    return CandidateSpec(encoder=encoder, bottleneck=level3, decoder=encoder, base_width=16)


FLOAT_PRESETS = {
    "unet": uniform("standard", depth=4, base_width=16),
    "group": _deep("group", (2, 4), (1, 1)),
    "dilated": _deep("standard", (1, 1), (2, 4)),
    "group-dilated": _deep("group", (2, 4), (2, 4)),
    "depthwise": uniform("depthwise", depth=4, base_width=16),
    "shuffle": uniform("shuffle", depth=4, groups=4, base_width=16),
    "fire": uniform("fire", depth=4, base_width=16),
    "resunet": uniform("residual", depth=4, base_width=16),
    "mobilenetv2-unet": uniform("inverted", depth=4, expansion=6, base_width=16),
}

PRESETS = {
    **FLOAT_PRESETS,
    **{f"{name}-int8": spec.replace(quant=QuantSpec("int8")) for name, spec in FLOAT_PRESETS.items()},
}


def presets_for(block_kinds=SEARCHED_BLOCK_KINDS) -> list[str]:
    """The presets a search of ``block_kinds`` starts with: every preset of the default kinds (inside
    a narrowed space or not, as before), and a preset of an opt-in kind when that kind is searched,
    so the default search evaluates the same presets as before the opt-in kinds existed."""
    kinds = set(SEARCHED_BLOCK_KINDS) | set(block_kinds)
    return [name for name, spec in PRESETS.items() if set(spec.kinds) <= kinds]


def preset(name: str, input_size: int | None = None, input_channels: int | None = None) -> CandidateSpec:
    """The preset ``name``, optionally for another input size or channel count."""
    try:
        spec = PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}") from None
    changes = {"input_size": input_size, "input_channels": input_channels}
    return spec.replace(**{key: value for key, value in changes.items() if value is not None})
