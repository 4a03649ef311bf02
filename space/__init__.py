"""WHAT can be searched: the spec of a candidate, sampling it, presets, model builders, conversion.

``space`` knows nothing of training or storage. TensorFlow is imported only by the functions that
need it (``build``, ``to_tflite``, ``static_costs``), through :mod:`space._tf`, so ``import space``
stays light.
"""

from space.quant import QUANT_POLICIES, SEARCHED_QUANT_MODES, QuantPolicy, quant_policy
from space.spec import (
    BLOCK_KINDS,
    DEPTH_RANGE,
    DILATION_CHOICES,
    GROUP_CHOICES,
    QUANT_MODES,
    CandidateSpec,
    QuantSpec,
    StageSpec,
)

_LAZY = {
    "build": "space.model",
    "transfer_weights": "space.model",
    "grouped_kernel": "space.model",
    "static_costs": "space.model",
    "StaticCosts": "space.model",
    "to_tflite": "space.convert",
    "get_block": "space.blocks",
    "BLOCKS": "space.blocks",
    "sample": "space.sampling",
    "SearchSpace": "space.sampling",
    "PRESETS": "space.presets",
    "preset": "space.presets",
}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'space' has no attribute {name!r}")


__all__ = [
    "BLOCK_KINDS", "DEPTH_RANGE", "DILATION_CHOICES", "GROUP_CHOICES", "QUANT_MODES", "QUANT_POLICIES",
    "SEARCHED_QUANT_MODES", "CandidateSpec", "QuantPolicy", "QuantSpec", "StageSpec", "quant_policy", *_LAZY,
]
