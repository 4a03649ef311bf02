"""The quant-mode registry: one policy per mode; code asks the policy, not the mode's name."""

from types import SimpleNamespace

import pytest

from space.quant import QUANT_MODES, QUANT_POLICIES, SEARCHED_QUANT_MODES, quant_policy
from space.spec import QuantSpec


def test_every_mode_has_a_policy_named_after_it():
    assert QUANT_MODES == ("float32", "dynamic", "float16", "int8", "int16x8", "int8-qat")
    assert all(QUANT_POLICIES[name].name == name and QUANT_POLICIES[name].description for name in QUANT_MODES)
    assert SEARCHED_QUANT_MODES == ("float32", "dynamic", "float16", "int8")


def test_an_unknown_mode_lists_the_choices():
    with pytest.raises(ValueError, match="quant.mode: unknown mode 'int4'; choose one of float32, dynamic"):
        quant_policy("int4")


def test_what_the_policies_say():
    assert [m for m in QUANT_MODES if quant_policy(m).calibrates] == ["int8", "int16x8", "int8-qat"]
    assert [m for m in QUANT_MODES if quant_policy(m).trains_aware] == ["int8-qat"]
    assert [m for m in QUANT_MODES if quant_policy(m).integer_io] == ["int8", "int8-qat"]


def test_training_depends_only_on_a_quantization_aware_mode():
    assert QuantSpec("int8", calibration_images=8, io_type="int8").for_training == QuantSpec("float32")
    assert QuantSpec("float16").for_training == QuantSpec()
    assert QuantSpec("int8-qat", calibration_images=8).for_training == QuantSpec("int8-qat")


def _converter():
    return SimpleNamespace(optimizations=None, target_spec=SimpleNamespace(supported_types=None, supported_ops=None))


FAKE_TF = SimpleNamespace(
    float16="f16", lite=SimpleNamespace(Optimize=SimpleNamespace(DEFAULT="default"), OpsSet=SimpleNamespace(
        TFLITE_BUILTINS_INT8="int8-ops", EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8="16x8-ops")),
)


@pytest.mark.parametrize("mode, optimizations, types, ops", [
    ("float32", None, None, None),
    ("dynamic", ["default"], None, None),
    ("float16", ["default"], ["f16"], None),
    ("int8", ["default"], None, ["int8-ops"]),
    ("int16x8", ["default"], None, ["16x8-ops"]),
    ("int8-qat", ["default"], None, ["int8-ops"]),
])
def test_configure_sets_the_converter_up(mode, optimizations, types, ops):
    converter = _converter()
    quant_policy(mode).configure(converter, FAKE_TF)
    assert converter.optimizations == optimizations
    assert (converter.target_spec.supported_types, converter.target_spec.supported_ops) == (types, ops)
