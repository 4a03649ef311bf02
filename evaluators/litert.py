"""The one place that touches LiteRT's names, public and private.

Imports only numpy and LiteRT (``ai_edge_litert``, or ``tflite_runtime`` on boards that have only
that): the Pi agent uses it. ``tests/evaluators/test_litert.py`` fails loudly when a pinned
version renames or reshapes what is used here.
"""

from __future__ import annotations

from typing import Any

try:
    from ai_edge_litert import __version__ as RUNTIME_VERSION
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    RUNTIME_NAME = "ai-edge-litert"
except ImportError:  # a board with the older standalone runtime
    from tflite_runtime import __version__ as RUNTIME_VERSION
    from tflite_runtime.interpreter import Interpreter, OpResolverType

    RUNTIME_NAME = "tflite-runtime"

DELEGATE_NODE = "DELEGATE"  # what a node replaced by the (XNNPACK) delegate is called in the execution plan


def ops_details(interpreter) -> list[dict[str, Any]]:
    """The execution plan: per node ``index``, ``op_name``, ``inputs``, ``outputs`` (tensor indices;
    -1 for an absent optional input). Delegate partitions appear as ``DELEGATE`` nodes at the end."""
    return interpreter._get_ops_details()


def tensor_details(interpreter, index: int) -> dict[str, Any]:
    """``name``, ``shape``, ``dtype``, ``quantization`` of any tensor (weights included), by index."""
    return interpreter._get_tensor_details(index, 0)
