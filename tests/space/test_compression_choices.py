"""The spec's compression choices (channel pruning, low rank): off by default, round-trip, sampled on request."""

import json

import optuna
import pytest

from space.sampling import SearchSpace, in_space, params_of, sample
from space.spec import CandidateSpec, QuantSpec, uniform
from tests.space.helpers import sampled

BEFORE = uniform("standard", depth=3, base_width=8, input_size=32)  # a spec as stored before the choices existed


def test_a_spec_stored_before_the_choices_loads_off_and_serialises_as_it_did():
    stored = BEFORE.to_dict()
    assert "channel_keep" not in stored and "rank_fraction" not in stored
    spec = CandidateSpec.from_dict(json.loads(json.dumps(stored)))
    assert spec == BEFORE and spec.channel_keep == 1.0 and spec.rank_fraction == 1.0 and not spec.compressed
    assert spec.to_json() == BEFORE.to_json() and spec.summary == BEFORE.summary


def test_compression_choices_round_trip_and_show_in_the_summary():
    spec = BEFORE.replace(channel_keep=0.5, rank_fraction=0.25)
    assert CandidateSpec.from_json(spec.to_json()) == spec and spec.compressed
    assert spec.summary.endswith("keep0.5 rank0.25")


@pytest.mark.parametrize("field", ["channel_keep", "rank_fraction"])
@pytest.mark.parametrize("value", [0.0, 1.5, -0.5])
def test_out_of_range_choices_name_the_field(field, value):
    with pytest.raises(ValueError, match=f"{field}: must be in \\(0, 1\\]"):
        BEFORE.replace(**{field: value})


def test_quantization_aware_training_refuses_compression():
    with pytest.raises(ValueError, match="int8-qat.*set both to 1"):
        BEFORE.replace(quant=QuantSpec("int8-qat"), channel_keep=0.5)


def test_the_default_space_asks_for_no_compression():
    for trial, spec in sampled(10):
        assert not spec.compressed and "channel_keep" not in trial.params and "rank_fraction" not in trial.params


def test_an_opted_in_space_samples_every_choice_but_none_for_qat():
    space = SearchSpace(channel_keeps=(1.0, 0.75, 0.5), rank_fractions=(1.0, 0.5), quant_modes=("float32", "int8-qat"))
    seen = set()
    for trial, spec in sampled(80, space):
        if spec.quant.mode == "int8-qat":
            assert not spec.compressed and "channel_keep" not in trial.params
        else:
            seen.add((spec.channel_keep, spec.rank_fraction))
        assert in_space(spec, space)
    assert seen == {(k, r) for k in (1.0, 0.75, 0.5) for r in (1.0, 0.5)}


def test_a_compressed_spec_round_trips_through_trial_params_and_is_outside_the_default_space():
    spec = BEFORE.replace(channel_keep=0.75, rank_fraction=0.5)
    space = SearchSpace(channel_keeps=(1.0, 0.75), rank_fractions=(1.0, 0.5), depths=(3,), base_widths=(8,), quant_modes=("float32",),
                        block_kinds=("standard",), dilations=(1,))
    assert sample(optuna.trial.FixedTrial(params_of(spec, space)), space, 32) == spec
    assert not in_space(spec)


def test_bad_choices_in_the_space_are_a_clear_error():
    with pytest.raises(ValueError, match="channel_keeps: 0 is outside"):
        SearchSpace(channel_keeps=(1.0, 0))
