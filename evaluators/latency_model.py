"""A latency model per device, read off a ``.tflite`` file alone, in the spirit of nn-Meter's
kernel-level predictors.

Each op of the model becomes :class:`OpFeatures` (op type, dtype class, shapes, kernel, groups,
stride, dilation, MACs, bytes moved). The model is additive over the ops::

    latency_ms = sum over ops of  a[kind, dtype] * MACs + l[kind, dtype] * loops + b[kind] * bytes + c[kind]   + t0

fitted on one device's measurements by non-negative least squares on the *relative* error (each
row divided by its measured latency), so a 2 ms model counts as much as a 40 ms one. Ridge rows
keep it defined with fewer models than coefficients. Imports only numpy and LiteRT (through
:mod:`evaluators.litert`), so the Pi agent can use it.
"""

from __future__ import annotations

import dataclasses
import json
import struct
from collections import Counter
from typing import Any

import numpy as np

from evaluators.litert import Interpreter, OpResolverType, ops_details, tensor_details

FEATURE_VERSION = 1
"""Bumped when features or columns change: a stored model of another version is refused."""

SHRINK = 30.0
"""How strongly a (kind, dtype) coefficient is pulled toward the shared one (on unit-norm columns).
Chosen on benchmarks/latency_model.py (20 draws, 100 held-out models): shrink 1 / 3 / 10 / 30 gave
a held-out Spearman of 0.83 / 0.84 / 0.85 / 0.86 from 30 calibration models and 0.65 / 0.69 /
0.73 / 0.76 from 10; NNLS with every coefficient free (no shared step) 0.66 from 30."""

CONV_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "TRANSPOSE_CONV", "FULLY_CONNECTED")
_DILATION_FIELD = {"CONV_2D": 5, "DEPTHWISE_CONV_2D": 6}  # dilation_h_factor in the TFLite schema's options tables


@dataclasses.dataclass(frozen=True)
class OpFeatures:
    """One op of a ``.tflite`` model, as the latency model sees it."""

    op: str
    dtype: str  # float, hybrid (float activations, int8 weights), int8, int16
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    kernel: tuple[int, ...] = ()
    groups: int = 1
    stride: int = 1
    dilation: int = 1
    macs: int = 0
    bytes: int = 0
    params: int = 0

    @property
    def kind(self) -> str:
        """The kernel it runs as, which is what a coefficient belongs to: 1x1 and grouped
        convolutions run different code from dense kxk ones."""
        if self.op == "CONV_2D" and self.groups > 1:
            return "CONV_2D_GROUPED"
        if self.op == "CONV_2D" and self.kernel[:2] == (1, 1):
            return "CONV_2D_1X1"
        return self.op

    @property
    def loops(self) -> float:
        """MACs over the input channels each output sums: the inner loops, whose overhead makes a
        MAC of a narrow (grouped, depthwise) convolution dearer than one of a wide convolution."""
        summed = {"CONV_2D": self.input_shape[-1] // max(self.groups, 1), "TRANSPOSE_CONV": self.input_shape[-1],
                  "FULLY_CONNECTED": self.input_shape[-1]}.get(self.op, 1) if self.input_shape else 1
        return self.macs / max(summed, 1)

    @classmethod
    def from_dict(cls, data: dict) -> "OpFeatures":
        shapes = ("input_shape", "output_shape", "kernel")
        return cls(**{key: tuple(value) if key in shapes else value for key, value in data.items()})


# -- reading a .tflite ---------------------------------------------------------------------------
def read_ops(model_bytes: bytes) -> list[OpFeatures]:
    """The ops of ``model_bytes`` in execution order (ValueError if LiteRT cannot load it)."""
    try:
        interpreter = Interpreter(model_content=bytes(model_bytes),
                                  experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    except (ValueError, RuntimeError) as error:
        raise ValueError(f"model: LiteRT cannot load it: {str(error).strip().splitlines()[0]}") from None
    nodes = ops_details(interpreter)
    produced = {int(t) for node in nodes for t in node["outputs"]}
    graph_inputs = {int(d["index"]) for d in interpreter.get_input_details()}
    dilations = _dilations(bytes(model_bytes), {n["index"]: n["op_name"] for n in nodes})
    return [_features(interpreter, node, produced | graph_inputs, dilations.get(node["index"], 1)) for node in nodes]


def _features(interpreter, node, activations: set[int], dilation: int) -> OpFeatures:
    op = node["op_name"]
    tensors = [tensor_details(interpreter, int(t)) for t in node["inputs"] if t >= 0]
    outputs = [tensor_details(interpreter, int(t)) for t in node["outputs"]]
    if op == "TRANSPOSE_CONV":  # output shape, weights, activations, bias
        inputs, weights = tensors[2:3], tensors[1:2] + tensors[3:]
    elif op in CONV_OPS:  # activations, weights, bias (weights may come from a DEQUANTIZE op)
        inputs, weights = tensors[:1], tensors[1:]
    else:
        active = [int(t) in activations for t in node["inputs"] if t >= 0]
        inputs = [t for t, yes in zip(tensors, active) if yes] or tensors[:1]
        weights = [t for t, yes in zip(tensors, active) if not yes]
    x, y = _shape(inputs[0]) if inputs else (), _shape(outputs[0])
    kernel, groups, macs = _conv_costs(op, x, y, _shape(weights[0]) if weights else ())
    stride = max(1, x[1] // y[1]) if op in CONV_OPS and len(x) == 4 and len(y) == 4 and y[1] else 1
    return OpFeatures(
        op=op, dtype=_dtype_class(inputs[0] if inputs else outputs[0], weights[0] if weights else None),
        input_shape=x, output_shape=y, kernel=kernel, groups=groups, stride=stride, dilation=dilation,
        macs=macs, bytes=sum(_nbytes(t) for t in tensors + outputs),
        params=sum(int(np.prod(_shape(t), dtype=np.int64)) for t in weights) if op in CONV_OPS else 0,
    )


def _conv_costs(op: str, x: tuple, y: tuple, w: tuple) -> tuple[tuple[int, ...], int, int]:
    """(kernel height and width, groups, MACs) of a convolution-like op; ((), 1, 0) otherwise."""
    if op == "CONV_2D":  # weights (out, kh, kw, in / groups)
        groups = max(1, x[3] // w[3])
        return w[1:3], groups, int(np.prod(y, dtype=np.int64)) * w[1] * w[2] * w[3]
    if op == "DEPTHWISE_CONV_2D":  # weights (1, kh, kw, channels)
        return w[1:3], x[3], int(np.prod(y, dtype=np.int64)) * w[1] * w[2]
    if op == "TRANSPOSE_CONV":  # weights (out, kh, kw, in); every input pixel meets the whole kernel
        return w[1:3], 1, int(np.prod(x, dtype=np.int64)) * w[0] * w[1] * w[2]
    if op == "FULLY_CONNECTED":  # weights (out, in)
        return (), 1, int(np.prod(y[:-1], dtype=np.int64)) * w[0] * w[1]
    return (), 1, 0


def _shape(detail: dict) -> tuple[int, ...]:
    return tuple(int(n) for n in detail["shape"])


def _nbytes(detail: dict) -> int:
    return int(np.prod(_shape(detail), dtype=np.int64)) * np.dtype(detail["dtype"]).itemsize


def _dtype_class(activation: dict, weight: dict | None) -> str:
    kind = np.dtype(activation["dtype"])
    if kind == np.int8 or kind == np.uint8:
        return "int8"
    if kind == np.int16:
        return "int16"
    if kind.kind == "f" and weight is not None and np.dtype(weight["dtype"]) == np.int8:
        return "hybrid"  # dynamic-range quantization: float activations, int8 weights
    return "float"


def _dilations(buffer: bytes, op_names: dict[int, str]) -> dict[int, int]:
    """``{op index: dilation}`` of the convolutions, read from the flatbuffer (LiteRT's Python API
    does not show builtin options, and a dilated conv at batch 1 is one CONV_2D). Operator i of the
    first subgraph is node i of the interpreter. Field numbers are those of the TFLite schema."""
    try:
        model = _table(buffer, _offset(buffer, 0))
        subgraph = _table(buffer, _vector(buffer, model(2))[0])
        found = {}
        for index, position in enumerate(_vector(buffer, subgraph(3))):
            field = _DILATION_FIELD.get(op_names.get(index, ""))
            options = _table(buffer, position)(4) if field else None
            if options is not None:
                value = _table(buffer, _offset(buffer, options))(field)
                found[index] = struct.unpack_from("<i", buffer, value)[0] if value is not None else 1
        return found
    except (struct.error, IndexError, TypeError):
        return {}  # not readable: dilation stays 1, which is only a feature, not a coefficient


def _offset(buffer: bytes, position: int) -> int:
    return position + struct.unpack_from("<I", buffer, position)[0]


def _table(buffer: bytes, position: int):
    """A flatbuffer table at ``position``: ``field(i)`` -> absolute position of field i, or None."""
    vtable = position - struct.unpack_from("<i", buffer, position)[0]
    size = struct.unpack_from("<H", buffer, vtable)[0]

    def field(number: int) -> int | None:
        slot = 4 + 2 * number
        relative = struct.unpack_from("<H", buffer, vtable + slot)[0] if slot < size else 0
        return position + relative if relative else None

    return field


def _vector(buffer: bytes, position: int) -> list[int]:
    """Positions of the tables in the vector of tables referenced at ``position``."""
    start = _offset(buffer, position)
    count = struct.unpack_from("<I", buffer, start)[0]
    return [_offset(buffer, start + 4 + 4 * i) for i in range(count)]


# -- the additive model --------------------------------------------------------------------------
def columns(ops: list[OpFeatures]) -> dict[str, float]:
    """The model's inputs for one ``.tflite``: summed MACs and inner loops per (kind, dtype), bytes
    and op counts per kind, and the invocation itself. (The inner loops raised the held-out Spearman
    from 30 calibration models from 0.839 to 0.855, and from 10 from 0.745 to 0.764.)"""
    row: Counter = Counter({"invoke": 1.0})
    for op in ops:
        if op.macs:
            row[f"macs:{op.kind}:{op.dtype}"] += op.macs
            row[f"loops:{op.kind}:{op.dtype}"] += op.loops
        row[f"bytes:{op.kind}"] += op.bytes
        row[f"ops:{op.kind}"] += 1
    return dict(row)


def totals(ops: list[OpFeatures]) -> dict[str, int]:
    """Whole-model MACs and parameters (the baselines' inputs)."""
    return {"macs": sum(op.macs for op in ops), "params": sum(op.params for op in ops)}


@dataclasses.dataclass
class LatencyModel:
    """Fitted coefficients (ms per unit of each column) and what they were fitted on."""

    coefficients: dict[str, float]
    device: dict[str, Any] = dataclasses.field(default_factory=dict)
    protocol: dict[str, Any] = dataclasses.field(default_factory=dict)
    accuracy: dict[str, Any] = dataclasses.field(default_factory=dict)
    calibration_models: int = 0
    feature_version: int = FEATURE_VERSION

    def predict_ops(self, ops: list[OpFeatures]) -> float:
        """Predicted latency in ms; a column never seen in calibration adds nothing."""
        return float(sum(self.coefficients.get(name, 0.0) * value for name, value in columns(ops).items()))

    def predict(self, model_bytes: bytes) -> float:
        return self.predict_ops(read_ops(model_bytes))

    def unknown(self, ops: list[OpFeatures]) -> list[str]:
        """Columns of ``ops`` the calibration never saw (their cost is predicted as zero)."""
        return sorted(set(columns(ops)) - set(self.coefficients))

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "LatencyModel":
        data = json.loads(text)
        if data.get("feature_version") != FEATURE_VERSION:
            raise ValueError(f"latency model: feature version {data.get('feature_version')} is not {FEATURE_VERSION}; "
                             "calibrate the device again (search device calibrate)")
        return cls(**data)


def fit(rows: list[list[OpFeatures]], latencies_ms, shrink: float = SHRINK, **about) -> LatencyModel:
    """The :class:`LatencyModel` of measured ``latencies_ms`` of models with ops ``rows``.
    ``about`` fills the other fields (device, protocol, accuracy).

    Two steps, on the relative error: a shared model (one coefficient for all MACs, one for all
    bytes, one per op, one per invocation) by non-negative least squares, then each (kind, dtype)
    column's deviation from it by ridge regression, pulled toward zero with weight ``shrink``: a
    kind seen in few calibration models keeps about the shared cost instead of fitting their noise.
    """
    names = sorted({name for ops in rows for name in columns(ops)})
    matrix = np.array([[columns(ops).get(name, 0.0) for name in names] for ops in rows], dtype=np.float64)
    target = np.asarray(latencies_ms, dtype=np.float64)
    if len(target) != len(matrix) or len(target) < 2 or (target <= 0).any():
        raise ValueError("fit: needs at least two models, each with one positive latency")
    weighted = matrix / target[:, None]  # relative error: every row's target becomes 1
    groups = sorted({name.split(":")[0] for name in names})
    member = np.array([[name.split(":")[0] == group for group in groups] for name in names], dtype=np.float64)
    shared = member @ _scaled(nnls, weighted @ member, np.ones(len(target)))
    deviation = _scaled(lambda a, b: _ridge(a, b, shrink), weighted, 1 - weighted @ shared)
    coefficients = {name: float(value) for name, value in zip(names, np.maximum(shared + deviation, 0.0))}
    return LatencyModel(coefficients=coefficients, calibration_models=len(target), **about)


def _scaled(solve, matrix: np.ndarray, target: np.ndarray) -> np.ndarray:
    """``solve`` on unit-norm columns (MACs are ~1e8, op counts ~10), mapped back."""
    scale = np.linalg.norm(matrix, axis=0)
    scale[scale == 0] = 1.0
    return solve(matrix / scale, target) / scale


def _ridge(matrix: np.ndarray, target: np.ndarray, weight: float) -> np.ndarray:
    stacked = np.vstack([matrix, np.sqrt(weight) * np.eye(matrix.shape[1])])
    return np.linalg.lstsq(stacked, np.concatenate([target, np.zeros(matrix.shape[1])]), rcond=None)[0]


def nnls(matrix: np.ndarray, target: np.ndarray, iterations: int | None = None) -> np.ndarray:
    """argmin ||matrix @ x - target|| subject to x >= 0 (Lawson and Hanson's active-set method;
    scipy is not on a Pi)."""
    rows, count = matrix.shape
    x, passive = np.zeros(count), np.zeros(count, dtype=bool)
    tolerance = 1e-10 * max(1.0, np.abs(matrix).max()) * max(rows, count)
    for _ in range(iterations or 3 * count):
        gradient = matrix.T @ (target - matrix @ x)
        candidates = np.where(~passive & (gradient > tolerance))[0]
        if not len(candidates):
            break
        passive[candidates[np.argmax(gradient[candidates])]] = True
        while True:
            z = np.zeros(count)
            z[passive] = np.linalg.lstsq(matrix[:, passive], target, rcond=None)[0]
            if (z[passive] > 0).all():
                x = z
                break
            shrinking = passive & (z <= 0)
            step = np.min(x[shrinking] / (x[shrinking] - z[shrinking]))
            x = x + step * (z - x)
            passive &= x > tolerance
    return x


# -- accuracy ------------------------------------------------------------------------------------
def fit_line(x, y) -> tuple[float, float]:
    """Least-squares ``y = slope * x + intercept`` (the MACs-only and params-only baselines)."""
    slope, intercept = np.polyfit(np.asarray(x, np.float64), np.asarray(y, np.float64), 1)
    return float(slope), float(intercept)


def spearman(a, b) -> float:
    """Spearman's rank correlation (ties get their mean rank)."""
    ranks = [_ranks(np.asarray(values, np.float64)) for values in (a, b)]
    if min(r.std() for r in ranks) == 0:
        return 0.0
    return float(np.corrcoef(*ranks)[0, 1])


def _ranks(values: np.ndarray) -> np.ndarray:
    order = np.argsort(values, kind="stable")
    ranks = np.empty(len(values))
    ranks[order] = np.arange(len(values), dtype=np.float64)
    for value in np.unique(values):
        tied = values == value
        ranks[tied] = ranks[tied].mean()
    return ranks


def accuracy(predicted, measured) -> dict[str, float]:
    """Spearman (None for fewer than 3 models), median absolute percentage error and the share of
    predictions within +-10%."""
    predicted, measured = np.asarray(predicted, np.float64), np.asarray(measured, np.float64)
    errors = np.abs(predicted - measured) / measured
    rank = round(spearman(predicted, measured), 4) if len(measured) >= 3 else None  # undefined on fewer
    return {"spearman": rank, "mape": round(float(np.median(errors)), 4),
            "within_10": round(float(np.mean(errors <= 0.10)), 4), "models": int(len(measured))}
