"""The LiteRT names nas-lite relies on, private ones included: a pinned version that changes them
fails here, by name, not somewhere deep in a benchmark."""

import numpy as np

from evaluators import litert
from tests.evaluators.latency_helpers import unet_bytes


def test_ops_details_lists_the_plan_with_tensor_indices():
    interpreter = litert.Interpreter(model_content=unet_bytes())
    interpreter.allocate_tensors()
    ops = litert.ops_details(interpreter)
    assert ops and {"index", "op_name", "inputs", "outputs"} <= set(ops[0])
    assert "CONV_2D" in {op["op_name"] for op in ops}
    assert all(isinstance(int(t), int) for op in ops for t in op["inputs"])


def test_tensor_details_reads_weights_too():
    interpreter = litert.Interpreter(model_content=unet_bytes())
    interpreter.allocate_tensors()
    conv = next(op for op in litert.ops_details(interpreter) if op["op_name"] == "CONV_2D")
    kernel = litert.tensor_details(interpreter, int(conv["inputs"][1]))
    assert len(kernel["shape"]) == 4 and np.dtype(kernel["dtype"]).itemsize in (1, 2, 4)


def test_delegated_plan_ends_with_delegate_nodes():
    interpreter = litert.Interpreter(model_content=unet_bytes(), num_threads=1)
    interpreter.allocate_tensors()
    names = [op["op_name"] for op in litert.ops_details(interpreter)]
    assert litert.DELEGATE_NODE in names and names[-1] == litert.DELEGATE_NODE
