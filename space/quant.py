"""The quant-mode registry: one policy object per mode, read by conversion, training and reuse.

As tensorflow-model-optimization treats its schemes as objects, every fact about a mode lives in
its :class:`QuantPolicy`: how the converter is set up, whether it needs calibration images,
whether the model trains quantization-aware, whether it may take int8 input/output. Code asks the
policy (``quant_policy(mode).calibrates``), never compares mode names.
"""

from __future__ import annotations

import dataclasses

NO_QUANTIZATION = "float32"


@dataclasses.dataclass(frozen=True)
class QuantPolicy:
    """One quant mode.

    ``optimizes``: the converter quantizes (``Optimize.DEFAULT``); ``weight_types``: names of
    ``tf`` dtypes the weights may be stored in (float16); ``ops_set``: name of the
    ``tf.lite.OpsSet`` the converted model is restricted to; ``calibrates``: the converter needs a
    representative dataset; ``trains_aware``: training is quantization-aware (QAT), so a trained
    model cannot be reused for another mode; ``integer_io``: ``io_type="int8"`` is allowed;
    ``searched``: in the search space unless ``--quant-modes`` says otherwise.
    """

    name: str
    description: str
    optimizes: bool = True
    weight_types: tuple[str, ...] = ()
    ops_set: str | None = None
    calibrates: bool = False
    trains_aware: bool = False
    integer_io: bool = False
    searched: bool = False

    def configure(self, converter, tf) -> None:
        """Set ``converter`` (a ``tf.lite.TFLiteConverter``) up for this mode, calibration aside."""
        if self.optimizes:
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if self.weight_types:
            converter.target_spec.supported_types = [getattr(tf, name) for name in self.weight_types]
        if self.ops_set:
            converter.target_spec.supported_ops = [getattr(tf.lite.OpsSet, self.ops_set)]


QUANT_POLICIES = {
    policy.name: policy
    for policy in (
        QuantPolicy(NO_QUANTIZATION, "float32, no quantization", optimizes=False, searched=True),
        QuantPolicy("dynamic", "dynamic-range: int8 weights, float activations", searched=True),
        QuantPolicy("float16", "float16 weights", weight_types=("float16",), searched=True),
        QuantPolicy("int8", "full-integer int8, calibrated post-training", ops_set="TFLITE_BUILTINS_INT8",
                    calibrates=True, integer_io=True, searched=True),
        QuantPolicy("int16x8", "int16 activations, int8 weights, calibrated post-training",
                    ops_set="EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8", calibrates=True),
        # A QAT model keeps the ranges it learned (checked: other data gives the same model), but
        # TF 2.21's converter refuses TFLITE_BUILTINS_INT8 without a representative dataset.
        QuantPolicy("int8-qat", "full-integer int8 after quantization-aware training", ops_set="TFLITE_BUILTINS_INT8",
                    calibrates=True, trains_aware=True, integer_io=True),
    )
}
QUANT_MODES = tuple(QUANT_POLICIES)
SEARCHED_QUANT_MODES = tuple(name for name, policy in QUANT_POLICIES.items() if policy.searched)
INTEGER_IO_SUFFIX = "-io"
QUANT_CHOICES = QUANT_MODES + tuple(name + INTEGER_IO_SUFFIX for name, policy in QUANT_POLICIES.items() if policy.integer_io)
"""What the search space (``--quant-modes``) may hold: every mode, and each integer mode with int8
input and output (``int8-io``: full-integer I/O, for boards that feed uint8/int8 camera frames)."""


def quant_policy(mode: str) -> QuantPolicy:
    """The policy of ``mode``; ``ValueError`` lists the valid modes."""
    try:
        return QUANT_POLICIES[mode]
    except (KeyError, TypeError):
        raise ValueError(f"quant.mode: unknown mode {mode!r}; choose one of {', '.join(QUANT_MODES)}") from None


def parse_quant_choice(choice: str) -> tuple[str, str]:
    """``(mode, io_type)`` of a :data:`QUANT_CHOICES` name: ``int8-io`` -> ``("int8", "int8")``."""
    mode = choice.removesuffix(INTEGER_IO_SUFFIX) if isinstance(choice, str) else choice
    if mode != choice and mode in QUANT_POLICIES and QUANT_POLICIES[mode].integer_io:
        return mode, "int8"
    if choice not in QUANT_POLICIES:
        raise ValueError(f"quant mode: unknown {choice!r}; choose one of {', '.join(QUANT_CHOICES)}")
    return choice, "float32"


def quant_choice(mode: str, io_type: str = "float32") -> str:
    """The :data:`QUANT_CHOICES` name of a mode and I/O type (the inverse of :func:`parse_quant_choice`)."""
    return mode + (INTEGER_IO_SUFFIX if io_type == "int8" else "")
