import json

import pytest

from space.spec import CandidateSpec, QuantSpec, StageSpec, uniform


def test_json_round_trip_is_exact():
    spec = CandidateSpec(
        encoder=(StageSpec(), StageSpec("group", 4, 2), StageSpec("fire", dilation=4)),
        bottleneck=StageSpec("shuffle", 8),
        decoder=(StageSpec("depthwise"), StageSpec(), StageSpec("group", 2)),
        base_width=8, input_size=32, input_channels=1, quant=QuantSpec("int8", 16, "int8"), sparsity=0.5,
    )
    text = spec.to_json()
    assert json.loads(text)["encoder"][1] == {"kind": "group", "groups": 4, "dilation": 2}
    assert CandidateSpec.from_json(text) == spec
    assert hash(CandidateSpec.from_json(text)) == hash(spec)


@pytest.mark.parametrize(
    "make, field, allowed",
    [
        (lambda: StageSpec("inception"), "kind", "standard, group, depthwise, fire, shuffle"),
        (lambda: StageSpec("group", 3), "groups", "1, 2, 4, 8"),
        (lambda: StageSpec("standard", 2), "groups", "group, shuffle"),
        (lambda: StageSpec("standard", dilation=0), "dilation", "1, 2, 4"),
        (lambda: uniform("group", 3, groups=8, base_width=4, input_size=32), "groups", "1, 2, 4"),
        (lambda: uniform("standard", 5, input_size=48), "input_size", "multiple of 32"),
        (lambda: uniform("standard", 6, input_size=256), "encoder", "3 to 5"),
        (lambda: uniform("standard", 3, base_width=6), "base_width", "multiple of 4"),
        (lambda: QuantSpec("int4"), "quant.mode", "float32, dynamic, float16, int8, int16x8, int8-qat"),
        (lambda: QuantSpec("float16", io_type="int8"), "quant.io_type", "int8 or int8-qat"),
        (lambda: uniform("standard", 3, sparsity=1.0), "sparsity", "[0, 1)"),
        (lambda: StageSpec("standard", expansion=4), "expansion", "inverted"),
        (lambda: StageSpec("inverted", expansion=3), "expansion", "1, 2, 4, 6"),
        (lambda: StageSpec("residual", kernel=7), "kernel", "3, 5"),
        (lambda: uniform("standard", 3, input_size=32, upsampling="nearest"), "upsampling", "transpose, resize"),
        (lambda: uniform("standard", 3, input_size=32, skip_merge="sum"), "skip_merge", "concat, add"),
    ],
)
def test_validation_names_the_field_and_allowed_values(make, field, allowed):
    with pytest.raises(ValueError) as error:
        make()
    message = str(error.value)
    assert message.startswith(field + ":")
    assert allowed in message


def test_from_dict_rejects_unknown_fields():
    data = uniform("standard", 3, input_size=32).to_dict()
    data["colour"] = "red"
    with pytest.raises(ValueError, match="unknown fields"):
        CandidateSpec.from_dict(data)


def test_summary_and_kinds():
    spec = CandidateSpec(
        encoder=(StageSpec(), StageSpec("group", 4, 2), StageSpec()),
        bottleneck=StageSpec("fire"),
        decoder=(StageSpec(), StageSpec("group", 4, 2), StageSpec()),
        base_width=8, input_size=32, quant=QuantSpec("int8"),
    )
    assert spec.summary == "std,grp4-d2,std|fire w8 32px int8"
    assert spec.kinds == ("fire", "group", "standard")
    assert [name for name, _, _ in spec.stages()] == [
        "encoder[0]", "encoder[1]", "encoder[2]", "bottleneck", "decoder[2]", "decoder[1]", "decoder[0]"]


# Written by the spec of the original space (before kernel, expansion, upsampling and skip merge existed).
OLD_JSON = (
    '{"base_width": 8, "bottleneck": {"dilation": 2, "groups": 2, "kind": "group"}, "decoder": [{"dilation": 2, '
    '"groups": 2, "kind": "group"}, {"dilation": 2, "groups": 2, "kind": "group"}, {"dilation": 2, "groups": 2, '
    '"kind": "group"}], "encoder": [{"dilation": 2, "groups": 2, "kind": "group"}, {"dilation": 2, "groups": 2, '
    '"kind": "group"}, {"dilation": 2, "groups": 2, "kind": "group"}], "input_channels": 3, "input_size": 32, '
    '"quant": {"calibration_images": 16, "io_type": "float32", "mode": "int8"}, "sparsity": 0.0}'
)


def test_an_old_spec_loads_with_the_old_behaviour_and_serialises_as_it_did():
    spec = CandidateSpec.from_json(OLD_JSON)
    assert spec == uniform("group", 3, groups=2, dilation=2, base_width=8, input_size=32, quant=QuantSpec("int8", 16))
    assert (spec.upsampling, spec.skip_merge) == ("transpose", "concat")
    assert {(stage.kernel, stage.expansion) for _, _, stage in spec.stages()} == {(3, 1)}
    assert spec.to_json() == OLD_JSON  # keys made of it (device calibration samples) stay valid


def test_json_round_trip_keeps_every_new_choice():
    spec = CandidateSpec(
        encoder=(StageSpec("residual", kernel=5), StageSpec("inverted", expansion=6), StageSpec("factorized", dilation=2)),
        bottleneck=StageSpec("inverted", expansion=2, kernel=5),
        decoder=(StageSpec("factorized", kernel=5), StageSpec("residual"), StageSpec("inverted", expansion=4)),
        base_width=8, input_size=32, upsampling="resize", skip_merge="add",
    )
    data = json.loads(spec.to_json())
    assert data["encoder"][1] == {"kind": "inverted", "groups": 1, "dilation": 1, "expansion": 6}
    assert data["encoder"][0]["kernel"] == 5 and (data["upsampling"], data["skip_merge"]) == ("resize", "add")
    assert CandidateSpec.from_json(spec.to_json()) == spec
    assert spec.summary == "res-k5,inv6,fac-d2|inv2-k5|fac-k5,res,inv4 w8 32px resize/add float32"
