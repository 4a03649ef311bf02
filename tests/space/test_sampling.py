import optuna
import pytest

from space.presets import PRESETS
from space.sampling import SearchSpace, in_space, params_of, sample
from space.spec import BLOCK_KINDS, KERNEL_CHOICES, SKIP_MERGES, UPSAMPLINGS
from tests.space.helpers import sampled

ENLARGED = SearchSpace(block_kinds=BLOCK_KINDS, kernels=KERNEL_CHOICES, upsamplings=UPSAMPLINGS, skip_merges=SKIP_MERGES)


def test_sampling_with_a_fixed_trial():
    params = {
        "depth": 3, "base_width": 8, "quant": "int8",
        "enc0_kind": "standard", "enc0_dilation": 1,
        "enc1_kind": "group", "enc1_groups": 4, "enc1_dilation": 2,
        "enc2_kind": "shuffle", "enc2_groups": 8, "enc2_dilation": 1,
        "bottleneck_kind": "fire", "bottleneck_dilation": 4,
    }
    spec = sample(optuna.trial.FixedTrial(params), input_size=32)
    assert spec.depth == 3 and spec.base_width == 8 and spec.quant.mode == "int8"
    assert spec.encoder[1].groups == 4 and spec.encoder[1].dilation == 2
    assert spec.bottleneck.kind == "fire" and spec.bottleneck.dilation == 4
    assert spec.decoder == spec.encoder  # mirrored by default


def test_group_count_is_asked_only_for_grouped_kinds():
    for trial, spec in sampled(30, seed=1):
        stages = [(f"enc{i}", s) for i, s in enumerate(spec.encoder)] + [("bottleneck", spec.bottleneck)]
        for name, stage in stages:
            asked = f"{name}_groups" in trial.params
            assert asked == (stage.kind in ("group", "shuffle"))
        assert not any(key.startswith(f"enc{spec.depth}") for key in trial.params)  # deeper levels not asked


def test_group_count_is_lowered_to_a_divisor_of_the_channels():
    params = {"depth": 3, "base_width": 12, "quant": "float32", "bottleneck_kind": "standard", "bottleneck_dilation": 1}
    for level in range(3):
        params |= {f"enc{level}_kind": "group", f"enc{level}_groups": 8, f"enc{level}_dilation": 1}
    spec = sample(optuna.trial.FixedTrial(params), input_size=32)
    assert [s.groups for s in spec.encoder] == [4, 8, 8]  # 12 channels take 4 at most; 24 and 48 take 8


def test_narrowed_space_only_yields_its_choices():
    space = SearchSpace(block_kinds=("depthwise", "fire"), quant_modes=("int8",), depths=(3,), base_widths=(8,))
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(10):
        spec = sample(study.ask(), space, input_size=32)
        assert set(spec.kinds) <= {"depthwise", "fire"}
        assert spec.quant.mode == "int8" and spec.depth == 3 and spec.base_width == 8


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"block_kinds": ("standard", "inception")}, "block_kinds: inception not allowed"),
        ({"quant_modes": ()}, "quant_modes: needs at least one value"),
        ({"depths": (2,)}, "depths: 2 not allowed"),
        ({"base_widths": (10,)}, "base_widths: 10 is not a multiple of 4"),
        ({"groups": (3,)}, "groups: 3 not allowed"),
        ({"kernels": (7,)}, "kernels: 7 not allowed"),
        ({"expansions": (1,)}, "expansions: 1 not allowed"),
        ({"upsamplings": ("nearest",)}, "upsamplings: nearest not allowed"),
        ({"skip_merges": ()}, "skip_merges: needs at least one value"),
    ],
)
def test_bad_narrowing_is_a_clear_error(changes, message):
    with pytest.raises(ValueError, match=message):
        SearchSpace(**changes)


@pytest.mark.parametrize("space", [SearchSpace(block_kinds=BLOCK_KINDS), ENLARGED], ids=["all-kinds", "enlarged"])
@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_round_trip_through_trial_params(name, space):
    spec = PRESETS[name]
    assert sample(optuna.trial.FixedTrial(params_of(spec, space)), space, input_size=spec.input_size) == spec


def test_the_default_space_asks_what_it_asked_before_the_new_choices():
    for trial, spec in sampled(30):
        assert set(spec.kinds) <= {"standard", "group", "depthwise", "fire", "shuffle"}
        assert not [key for key in trial.params if key.endswith(("_kernel", "_expansion", "upsampling", "skip_merge"))]
        assert spec.to_dict().keys() == {"encoder", "bottleneck", "decoder", "base_width", "input_size",
                                         "input_channels", "quant", "sparsity"}


def test_the_enlarged_space_yields_every_new_choice_and_asks_expansion_only_for_inverted():
    seen = {"kind": set(), "kernel": set(), "expansion": set(), "upsampling": set(), "skip_merge": set()}
    for trial, spec in sampled(40, ENLARGED):
        assert in_space(spec, ENLARGED)
        seen["upsampling"].add(spec.upsampling)
        seen["skip_merge"].add(spec.skip_merge)
        for name, stage in [(f"enc{i}", s) for i, s in enumerate(spec.encoder)] + [("bottleneck", spec.bottleneck)]:
            assert (f"{name}_expansion" in trial.params) == (stage.kind == "inverted")
            seen["kind"].add(stage.kind)
            seen["kernel"].add(stage.kernel)
            seen["expansion"].add(stage.expansion)
    assert seen == {"kind": set(BLOCK_KINDS), "kernel": {3, 5}, "expansion": {1, 2, 4, 6},
                    "upsampling": set(UPSAMPLINGS), "skip_merge": set(SKIP_MERGES)}
