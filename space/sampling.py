"""``sample(trial, space) -> CandidateSpec``: a candidate from Optuna's suggest API.

Parameters are conditional: a group count is asked only for kinds that use groups, an expansion
factor only for kinds that expand, and the stages of levels deeper than the sampled depth are not
asked at all. A choice with one value is not asked either, so the default space (kernel 3,
transposed upsampling, concatenated skips) asks what it asked before these choices existed.
Choice sets never change between trials (Optuna requires that), so a sampled group count that does
not divide a stage's channels is lowered to the largest one that does.
"""

from __future__ import annotations

import dataclasses

from space.quant import QUANT_CHOICES, SEARCHED_QUANT_MODES, parse_quant_choice, quant_choice
from space.spec import (
    BLOCK_KINDS,
    DEPTH_RANGE,
    DILATION_CHOICES,
    EXPANDING_KINDS,
    EXPANSION_CHOICES,
    GROUP_CHOICES,
    GROUPED_KINDS,
    KERNEL_CHOICES,
    OFF,
    SEARCHED_BLOCK_KINDS,
    SKIP_MERGES,
    UPSAMPLINGS,
    CandidateSpec,
    QuantSpec,
    StageSpec,
)


def _check(field: str, values, allowed) -> tuple:
    values = tuple(values)
    if not values:
        raise ValueError(f"{field}: needs at least one value; choose from {', '.join(map(str, allowed))}")
    unknown = [v for v in values if v not in allowed]
    if unknown:
        raise ValueError(f"{field}: {', '.join(map(str, unknown))} not allowed; choose from {', '.join(map(str, allowed))}")
    return tuple(dict.fromkeys(values))


@dataclasses.dataclass(frozen=True)
class SearchSpace:
    """What the search may choose. Narrow it to focus a search; the defaults suit a Pi 4.

    The default space is the original one: the block kinds ``residual``, ``inverted`` and
    ``factorized``, kernel 5, resized upsampling and added skips are there to be opted into.
    """

    block_kinds: tuple[str, ...] = SEARCHED_BLOCK_KINDS
    groups: tuple[int, ...] = (2, 4, 8)
    expansions: tuple[int, ...] = EXPANSION_CHOICES[1:]
    kernels: tuple[int, ...] = (3,)
    dilations: tuple[int, ...] = DILATION_CHOICES
    upsamplings: tuple[str, ...] = ("transpose",)
    skip_merges: tuple[str, ...] = ("concat",)
    depths: tuple[int, ...] = (3, 4)
    base_widths: tuple[int, ...] = (8, 12, 16)
    quant_modes: tuple[str, ...] = SEARCHED_QUANT_MODES
    sparsities: tuple[float, ...] = (0.0,)
    channel_keeps: tuple[float, ...] = (OFF,)  # structured channel pruning after training; 1: off
    rank_fractions: tuple[float, ...] = (OFF,)  # low-rank factorisation of KxK convolutions after training; 1: off
    input_sizes: tuple[int, ...] | None = None  # None: the data's size, not searched
    mirror_decoder: bool = True
    calibration_images: int = 64

    def __post_init__(self):
        set_ = lambda name, value: object.__setattr__(self, name, value)  # noqa: E731
        set_("block_kinds", _check("block_kinds", self.block_kinds, BLOCK_KINDS))
        set_("groups", _check("groups", self.groups, GROUP_CHOICES[1:]))
        set_("expansions", _check("expansions", self.expansions, EXPANSION_CHOICES[1:]))
        set_("kernels", _check("kernels", self.kernels, KERNEL_CHOICES))
        set_("dilations", _check("dilations", self.dilations, DILATION_CHOICES))
        set_("upsamplings", _check("upsamplings", self.upsamplings, UPSAMPLINGS))
        set_("skip_merges", _check("skip_merges", self.skip_merges, SKIP_MERGES))
        set_("depths", _check("depths", self.depths, range(DEPTH_RANGE[0], DEPTH_RANGE[1] + 1)))
        set_("quant_modes", _check("quant_modes", self.quant_modes, QUANT_CHOICES))
        set_("base_widths", tuple(self.base_widths))
        for width in self.base_widths:
            if width < 4 or width % 4:
                raise ValueError(f"base_widths: {width} is not a multiple of 4 (at least 4); try 8, 12, 16, 24 or 32")
        for sparsity in self.sparsities:
            if not 0 <= sparsity < 1:
                raise ValueError(f"sparsities: {sparsity} is outside [0, 1); try 0, 0.5 or 0.75")
        for name in ("channel_keeps", "rank_fractions"):
            set_(name, tuple(getattr(self, name)))
            for value in getattr(self, name):
                if not 0 < value <= 1:
                    raise ValueError(f"{name}: {value} is outside (0, 1]; try 1 (off), 0.75 or 0.5")
        if self.input_sizes is not None:
            set_("input_sizes", tuple(self.input_sizes))

    def describe(self) -> list[tuple[str, str]]:
        """(parameter, choices) rows for ``search space``."""
        rows = [
            ("depth (encoder levels)", ", ".join(map(str, self.depths))),
            ("base_width", ", ".join(map(str, self.base_widths))),
            ("input_size", ", ".join(map(str, self.input_sizes)) if self.input_sizes else "the data's (not searched)"),
            ("per stage: kind", ", ".join(self.block_kinds)),
            ("per stage: groups (group, shuffle)", ", ".join(map(str, self.groups))),
            ("per stage: expansion (inverted)", ", ".join(map(str, self.expansions))),
            ("per stage: kernel", ", ".join(map(str, self.kernels))),
            ("per stage: dilation", ", ".join(map(str, self.dilations))),
            ("stages searched", "encoder levels + bottleneck" + ("; decoder mirrors the encoder" if self.mirror_decoder else " + decoder levels")),
            ("decoder: upsampling", ", ".join(self.upsamplings)),
            ("decoder: skip merge", ", ".join(self.skip_merges)),
            ("quant", ", ".join(self.quant_modes)),
            ("sparsity", ", ".join(f"{s:g}" for s in self.sparsities)),
            ("channel_keep (pruning after training)", ", ".join(f"{k:g}" for k in self.channel_keeps)),
            ("rank_fraction (low rank after training)", ", ".join(f"{r:g}" for r in self.rank_fractions)),
        ]
        return rows


def sample(trial, space: SearchSpace = SearchSpace(), input_size: int = 128, input_channels: int = 3) -> CandidateSpec:
    """Ask ``trial`` for one candidate of ``space``."""
    depth = _categorical(trial, "depth", space.depths)
    base_width = _categorical(trial, "base_width", space.base_widths)
    if space.input_sizes:
        input_size = _categorical(trial, "input_size", space.input_sizes)
    encoder = tuple(_stage(trial, f"enc{level}", space, base_width * 2 ** level) for level in range(depth))
    bottleneck = _stage(trial, "bottleneck", space, base_width * 2 ** depth)
    if space.mirror_decoder:
        decoder = encoder
    else:
        decoder = tuple(_stage(trial, f"dec{level}", space, base_width * 2 ** level) for level in range(depth))
    quant = QuantSpec(*_quant(trial, space))
    return CandidateSpec(
        encoder=encoder,
        bottleneck=bottleneck,
        decoder=decoder,
        base_width=base_width,
        input_size=input_size,
        input_channels=input_channels,
        quant=quant,
        sparsity=_categorical(trial, "sparsity", space.sparsities),
        upsampling=_categorical(trial, "upsampling", space.upsamplings),
        skip_merge=_categorical(trial, "skip_merge", space.skip_merges),
        **_compression(trial, space, quant),
    )


def _compression(trial, space: SearchSpace, quant: QuantSpec) -> dict:
    """``channel_keep`` and ``rank_fraction``: asked only for post-training quantization (a QAT model is not rebuilt)."""
    if quant.policy.trains_aware:
        return {}
    return {"channel_keep": _categorical(trial, "channel_keep", space.channel_keeps),
            "rank_fraction": _categorical(trial, "rank_fraction", space.rank_fractions)}


def _quant(trial, space: SearchSpace) -> tuple[str, int, str]:
    """``(mode, calibration_images, io_type)``: the choice ``int8-io`` is mode int8 with int8 I/O."""
    mode, io_type = parse_quant_choice(_categorical(trial, "quant", space.quant_modes))
    return mode, space.calibration_images, io_type


def _categorical(trial, name, choices):
    """Ask only when there is a choice, so fixed settings do not clutter the study."""
    return trial.suggest_categorical(name, list(choices)) if len(choices) > 1 else choices[0]


def _stage(trial, name, space: SearchSpace, channels: int) -> StageSpec:
    kind = _categorical(trial, f"{name}_kind", space.block_kinds)
    groups = 1
    if kind in GROUPED_KINDS:
        wanted = _categorical(trial, f"{name}_groups", space.groups)
        groups = max(g for g in GROUP_CHOICES if g <= wanted and channels % g == 0)
    expansion = _categorical(trial, f"{name}_expansion", space.expansions) if kind in EXPANDING_KINDS else 1
    dilation = _categorical(trial, f"{name}_dilation", space.dilations)
    kernel = _categorical(trial, f"{name}_kernel", space.kernels)
    return StageSpec(kind, groups, dilation, expansion, kernel)


def params_of(spec: CandidateSpec, space: SearchSpace = SearchSpace()) -> dict:
    """The trial parameters that make ``sample`` return ``spec`` (to enqueue presets)."""
    params = {"depth": spec.depth, "base_width": spec.base_width, "quant": quant_choice(spec.quant.mode, spec.quant.io_type),
              "sparsity": spec.sparsity, "upsampling": spec.upsampling, "skip_merge": spec.skip_merge,
              "channel_keep": spec.channel_keep, "rank_fraction": spec.rank_fraction}
    if space.input_sizes:
        params["input_size"] = spec.input_size
    stages = [(f"enc{level}", stage) for level, stage in enumerate(spec.encoder)] + [("bottleneck", spec.bottleneck)]
    if not space.mirror_decoder:
        stages += [(f"dec{level}", stage) for level, stage in enumerate(spec.decoder)]
    for name, stage in stages:
        params[f"{name}_kind"] = stage.kind
        params[f"{name}_dilation"] = stage.dilation
        params[f"{name}_kernel"] = stage.kernel
        if stage.kind in GROUPED_KINDS:
            params[f"{name}_groups"] = stage.groups
        if stage.kind in EXPANDING_KINDS:
            params[f"{name}_expansion"] = stage.expansion
    return params


def in_space(spec: CandidateSpec, space: SearchSpace = SearchSpace()) -> bool:
    """Whether ``sample`` can return ``spec``: a preset may lie outside a narrowed space."""
    try:
        return sample(_Fixed(params_of(spec, space)), space, spec.input_size, spec.input_channels) == spec
    except ValueError:
        return False


class _Fixed:
    """A trial that answers from ``params`` and refuses a value its choices do not hold."""

    def __init__(self, params: dict):
        self.params = params

    def suggest_categorical(self, name, choices):
        if self.params[name] not in choices:
            raise ValueError(f"{name}: {self.params[name]!r} is not among {choices}")
        return self.params[name]
