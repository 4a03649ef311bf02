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
    assert spec.summary == "std,grp4-d2,std|fire w8 int8"
    assert spec.kinds == ("fire", "group", "standard")
    assert [name for name, _, _ in spec.stages()] == [
        "encoder[0]", "encoder[1]", "encoder[2]", "bottleneck", "decoder[2]", "decoder[1]", "decoder[0]"]
