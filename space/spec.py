"""The spec of one candidate: a frozen, JSON-serialisable description that alone rebuilds the model.

A U-Net of ``depth`` encoder levels, a bottleneck and a mirrored decoder. Level ``i`` has
``base_width * 2**i`` channels; the bottleneck has ``base_width * 2**depth``. Each stage names a
block kind (see ``space.blocks.BLOCKS``), a group count, an expansion factor, a kernel size and a
dilation rate; the decoder upsamples and merges its skips in one of the ways ``space.blocks`` holds.

Fields added after specs were first stored (``LATER_FIELDS``) are left out of ``to_dict`` at their
defaults: a spec of the original space serialises exactly as it did, so keys made of its JSON (the
device calibration's samples) stay valid, and a stored spec without them loads as it was built.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from space.quant import QUANT_MODES  # noqa: F401  (re-exported: the names the spec accepts)
from space.quant import NO_QUANTIZATION, QUANT_POLICIES, QuantPolicy, quant_policy

BLOCK_KINDS = ("standard", "group", "depthwise", "fire", "shuffle", "residual", "inverted", "factorized")
SEARCHED_BLOCK_KINDS = BLOCK_KINDS[:5]  # the default space; the later kinds are opt-in (--block-kinds)
GROUPED_KINDS = ("group", "shuffle")  # kinds whose group count is a real choice
EXPANDING_KINDS = ("inverted",)  # kinds whose expansion factor is a real choice
GROUP_CHOICES = (1, 2, 4, 8)
EXPANSION_CHOICES = (1, 2, 4, 6)
KERNEL_CHOICES = (3, 5)
DILATION_CHOICES = (1, 2, 4)
UPSAMPLINGS = ("transpose", "resize")  # the decoder's: see space.blocks.UPSAMPLERS
SKIP_MERGES = ("concat", "add")  # how the decoder merges a skip: see space.blocks.SKIP_MERGERS
KIND_LABELS = {"standard": "std", "group": "grp", "depthwise": "dw", "fire": "fire", "shuffle": "shf",
               "residual": "res", "inverted": "inv", "factorized": "fac"}
LATER_FIELDS = ("expansion", "kernel", "upsampling", "skip_merge", "channel_keep", "rank_fraction")
DEPTH_RANGE = (3, 5)

IO_TYPES = ("float32", "int8")
OFF = 1.0  # channel_keep and rank_fraction: the trained model is not compressed
COMPRESSION_FIELDS = ("channel_keep", "rank_fraction")


def halvable(input_size: int, depth: int) -> bool:
    """Whether ``depth`` encoder levels can halve ``input_size`` evenly, leaving at least 2 pixels."""
    return input_size >= 2 ** (depth + 1) and input_size % 2 ** depth == 0


def _choices(values) -> str:
    return ", ".join(str(v) for v in values)


@dataclasses.dataclass(frozen=True)
class StageSpec:
    """One U-Net stage: ``kind`` of block, ``groups`` (grouped kinds only), ``dilation``,
    ``expansion`` (expanding kinds only) and ``kernel`` (the size of its spatial convolutions)."""

    kind: str = "standard"
    groups: int = 1
    dilation: int = 1
    expansion: int = 1
    kernel: int = 3

    def __post_init__(self):
        if self.kind not in BLOCK_KINDS:
            raise ValueError(f"kind: unknown block kind {self.kind!r}; choose one of {_choices(BLOCK_KINDS)}")
        if self.groups not in GROUP_CHOICES:
            raise ValueError(f"groups: {self.groups!r} is not allowed; choose one of {_choices(GROUP_CHOICES)}")
        if self.kind not in GROUPED_KINDS and self.groups != 1:
            raise ValueError(
                f"groups: block kind {self.kind!r} takes no group count (groups=1); "
                f"only {_choices(GROUPED_KINDS)} use groups"
            )
        if not isinstance(self.dilation, int) or self.dilation < 1:
            raise ValueError(f"dilation: must be an integer >= 1, got {self.dilation!r}; choose one of {_choices(DILATION_CHOICES)}")
        if self.expansion not in EXPANSION_CHOICES:
            raise ValueError(f"expansion: {self.expansion!r} is not allowed; choose one of {_choices(EXPANSION_CHOICES)}")
        if self.kind not in EXPANDING_KINDS and self.expansion != 1:
            raise ValueError(
                f"expansion: block kind {self.kind!r} takes no expansion factor (expansion=1); "
                f"only {_choices(EXPANDING_KINDS)} use one"
            )
        if self.kernel not in KERNEL_CHOICES:
            raise ValueError(f"kernel: {self.kernel!r} is not allowed; choose one of {_choices(KERNEL_CHOICES)}")

    @property
    def label(self) -> str:
        """Short label such as ``std``, ``grp4``, ``dw-d2``, ``inv6-k5``."""
        text = KIND_LABELS[self.kind] + (str(self.groups) if self.kind in GROUPED_KINDS else "")
        text += str(self.expansion) if self.kind in EXPANDING_KINDS else ""
        text += f"-k{self.kernel}" if self.kernel != 3 else ""
        return text + (f"-d{self.dilation}" if self.dilation > 1 else "")

    def to_dict(self) -> dict[str, Any]:
        return _without_later_defaults(self)


@dataclasses.dataclass(frozen=True)
class QuantSpec:
    """Post-training quantization (or QAT) settings.

    ``calibration_images`` is used by the integer modes; ``io_type`` is the input/output type of
    the integer modes (``float32`` keeps float I/O with quantize/dequantize at the edges).
    """

    mode: str = NO_QUANTIZATION
    calibration_images: int = 64
    io_type: str = "float32"

    def __post_init__(self):
        policy = quant_policy(self.mode)
        if self.io_type not in IO_TYPES:
            raise ValueError(f"quant.io_type: {self.io_type!r} is not allowed; choose one of {_choices(IO_TYPES)}")
        if self.io_type == "int8" and not policy.integer_io:
            modes = " or ".join(name for name, p in QUANT_POLICIES.items() if p.integer_io)
            raise ValueError(f"quant.io_type: int8 input/output needs mode {modes}, not {self.mode!r}")
        if policy.calibrates and self.calibration_images < 1:
            raise ValueError(f"quant.calibration_images: mode {self.mode!r} needs at least 1, got {self.calibration_images}")

    @property
    def policy(self) -> QuantPolicy:
        """How this mode converts and trains (:mod:`space.quant`)."""
        return quant_policy(self.mode)

    @property
    def for_training(self) -> "QuantSpec":
        """The part of these settings that training depends on: QAT's mode, else no quantization.

        Two specs whose ``for_training`` agree train to the same weights (same seed), so one
        trained model serves both.
        """
        return QuantSpec(self.mode if self.policy.trains_aware else NO_QUANTIZATION)

    @property
    def label(self) -> str:
        return self.mode + ("/int8-io" if self.io_type == "int8" else "")


@dataclasses.dataclass(frozen=True)
class CandidateSpec:
    """One candidate U-Net with its compression settings.

    ``decoder[i]`` is the decoder stage at level ``i`` (same resolution as ``encoder[i]``).
    """

    encoder: tuple[StageSpec, ...]
    bottleneck: StageSpec
    decoder: tuple[StageSpec, ...]
    base_width: int = 16
    input_size: int = 128
    input_channels: int = 3
    quant: QuantSpec = QuantSpec()
    sparsity: float = 0.0
    upsampling: str = "transpose"
    skip_merge: str = "concat"
    channel_keep: float = OFF  # structured pruning: the share of each convolution's filters kept (by L1 norm)
    rank_fraction: float = OFF  # low-rank factorisation of KxK convolutions: the share of the full rank kept

    def __post_init__(self):
        object.__setattr__(self, "encoder", tuple(self.encoder))
        object.__setattr__(self, "decoder", tuple(self.decoder))
        low, high = DEPTH_RANGE
        if not low <= self.depth <= high:
            raise ValueError(f"encoder: depth {self.depth} is out of range; choose {low} to {high} levels")
        if len(self.decoder) != self.depth:
            raise ValueError(f"decoder: needs {self.depth} stages to mirror the encoder, got {len(self.decoder)}")
        if self.base_width < 4 or self.base_width % 4:
            raise ValueError(f"base_width: must be a multiple of 4 and at least 4, got {self.base_width}")
        if self.input_channels not in (1, 3):
            raise ValueError(f"input_channels: choose 1 (grayscale) or 3 (RGB), got {self.input_channels}")
        if not halvable(self.input_size, self.depth):
            raise ValueError(
                f"input_size: {self.input_size} cannot be halved {self.depth} times; "
                f"use a multiple of {2 ** self.depth} that is at least {2 ** (self.depth + 1)}, or a smaller depth"
            )
        if not 0.0 <= self.sparsity < 1.0:
            raise ValueError(f"sparsity: must be in [0, 1), got {self.sparsity}")
        if self.upsampling not in UPSAMPLINGS:
            raise ValueError(f"upsampling: unknown {self.upsampling!r}; choose one of {_choices(UPSAMPLINGS)}")
        if self.skip_merge not in SKIP_MERGES:
            raise ValueError(f"skip_merge: unknown {self.skip_merge!r}; choose one of {_choices(SKIP_MERGES)}")
        for name in COMPRESSION_FIELDS:
            if not 0.0 < getattr(self, name) <= 1.0:
                raise ValueError(f"{name}: must be in (0, 1] (1: off), got {getattr(self, name)}")
        if self.compressed and self.quant.policy.trains_aware:
            raise ValueError(
                f"channel_keep, rank_fraction: quant mode {self.quant.mode!r} trains a quantization-aware model, "
                "which is not rebuilt narrower; set both to 1 or choose a post-training quant mode"
            )
        for where, level, stage in self.stages():
            channels = self.channels(level)
            if channels % stage.groups:
                raise ValueError(
                    f"groups: {stage.groups} does not divide the {channels} channels of {where}; "
                    f"choose one of {_choices(g for g in GROUP_CHOICES if channels % g == 0)}"
                )

    @property
    def compressed(self) -> bool:
        """Whether the trained model is pruned to fewer channels or factorised before conversion."""
        return self.channel_keep < OFF or self.rank_fraction < OFF

    @property
    def depth(self) -> int:
        return len(self.encoder)

    def channels(self, level: int) -> int:
        """Channels of the stage at ``level`` (``depth`` is the bottleneck)."""
        return self.base_width * 2 ** level

    def stages(self):
        """``(name, level, stage)`` for every stage, input to output."""
        for level, stage in enumerate(self.encoder):
            yield f"encoder[{level}]", level, stage
        yield "bottleneck", self.depth, self.bottleneck
        for level in reversed(range(self.depth)):
            yield f"decoder[{level}]", level, self.decoder[level]

    @property
    def summary(self) -> str:
        """One line for logs and tables: ``std,std,grp4-d2|grp4 w16 128px int8`` (``w16 128px resize/add
        int8`` when the decoder is not the original transpose/concat). The input size is there because
        ``--search-input-size`` makes it a choice."""
        enc = ",".join(s.label for s in self.encoder)
        dec = ",".join(s.label for s in self.decoder)
        body = f"{enc}|{self.bottleneck.label}" + ("" if self.decoder == self.encoder else f"|{dec}")
        decoder = f" {self.upsampling}/{self.skip_merge}" if (self.upsampling, self.skip_merge) != ("transpose", "concat") else ""
        extra = f" sp{self.sparsity:g}" if self.sparsity else ""
        extra += f" keep{self.channel_keep:g}" if self.channel_keep < OFF else ""
        extra += f" rank{self.rank_fraction:g}" if self.rank_fraction < OFF else ""
        return f"{body} w{self.base_width} {self.input_size}px{decoder} {self.quant.label}{extra}"

    @property
    def kinds(self) -> tuple[str, ...]:
        return tuple(sorted({stage.kind for _, _, stage in self.stages()}))

    # -- JSON ---------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        data = _without_later_defaults(self)
        data["encoder"] = [stage.to_dict() for stage in self.encoder]
        data["bottleneck"] = self.bottleneck.to_dict()
        data["decoder"] = [stage.to_dict() for stage in self.decoder]
        data["quant"] = dataclasses.asdict(self.quant)
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "CandidateSpec":
        data = dict(data)
        unknown = set(data) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"spec: unknown fields {sorted(unknown)}")
        data["encoder"] = tuple(StageSpec(**s) for s in data["encoder"])
        data["decoder"] = tuple(StageSpec(**s) for s in data["decoder"])
        data["bottleneck"] = StageSpec(**data["bottleneck"])
        data["quant"] = QuantSpec(**data.get("quant", {}))
        return cls(**data)

    @classmethod
    def from_json(cls, text: str) -> "CandidateSpec":
        return cls.from_dict(json.loads(text))

    def replace(self, **changes) -> "CandidateSpec":
        return dataclasses.replace(self, **changes)


def _without_later_defaults(spec) -> dict[str, Any]:
    """The fields of a dataclass spec, less those of ``LATER_FIELDS`` that hold their defaults."""
    return {field.name: getattr(spec, field.name) for field in dataclasses.fields(spec)
            if field.name not in LATER_FIELDS or getattr(spec, field.name) != field.default}


def uniform(kind: str = "standard", depth: int = 4, groups: int = 1, dilation: int = 1, expansion: int = 1,
            kernel: int = 3, **kwargs) -> CandidateSpec:
    """A spec with the same stage everywhere."""
    stage = StageSpec(kind, groups, dilation, expansion, kernel)
    return CandidateSpec(encoder=(stage,) * depth, bottleneck=stage, decoder=(stage,) * depth, **kwargs)
