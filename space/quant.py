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


def quant_policy(mode: str) -> QuantPolicy:
    """The policy of ``mode``; ``ValueError`` lists the valid modes."""
    try:
        return QUANT_POLICIES[mode]
    except (KeyError, TypeError):
        raise ValueError(f"quant.mode: unknown mode {mode!r}; choose one of {', '.join(QUANT_MODES)}") from None
