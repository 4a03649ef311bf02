"""Time a TFLite model with LiteRT: a measuring protocol, not a timer call.

Imports only the standard library, numpy and LiteRT (through :mod:`evaluators.litert`), because
this module runs on the Pi inside the agent.
"""

from __future__ import annotations

import dataclasses
import gc
import math
import time
from collections import Counter
from typing import Any

import numpy as np

from evaluators.litert import DELEGATE_NODE, RUNTIME_NAME, RUNTIME_VERSION, Interpreter, OpResolverType, ops_details, tensor_details

CLOCKS = {"wall": time.perf_counter_ns, "cpu": time.thread_time_ns}


@dataclasses.dataclass(frozen=True)
class Protocol:
    """How one model is timed.

    ``warmup`` untimed runs, then at least ``runs`` timed runs and at least ``min_seconds`` of
    timing, on ``threads`` threads with XNNPACK on. When the coefficient of variation of an attempt
    is above ``max_cv`` the model is measured again, up to ``max_attempts`` times; the steadiest
    attempt is kept.

    ``clock="wall"`` times what a user waits for. ``clock="cpu"`` times the CPU time of the
    invoking thread instead (``threads=1`` only): on a machine shared with training or other
    jobs it leaves out the time the scheduler gives to others.
    """

    warmup: int = 10
    runs: int = 50
    min_seconds: float = 1.0
    threads: int = 4
    max_cv: float = 0.05
    max_attempts: int = 3
    clock: str = "wall"

    def __post_init__(self):
        if not isinstance(self.clock, str) or self.clock not in CLOCKS:
            raise ValueError(f"protocol.clock: {self.clock!r} is not a clock; choose one of {', '.join(CLOCKS)}")
        if self.clock == "cpu" and self.threads != 1:
            raise ValueError(f"protocol.clock: 'cpu' times one thread; use threads=1, not {self.threads}")
        _check_range("warmup", self.warmup, int, 0, 10_000)
        _check_range("runs", self.runs, int, 1, 100_000)
        _check_range("min_seconds", self.min_seconds, (int, float), 0, 600)
        _check_range("threads", self.threads, int, 1, 256)
        _check_range("max_cv", self.max_cv, (int, float), 0, 10)
        _check_range("max_attempts", self.max_attempts, int, 1, 20)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Protocol":
        if not isinstance(data, dict):
            raise ValueError(f"protocol: expected a JSON object, got {type(data).__name__}")
        names = [field.name for field in dataclasses.fields(cls)]
        unknown = sorted(set(data) - set(names))
        if unknown:
            raise ValueError(f"protocol: unknown fields {unknown}; valid fields are {', '.join(names)}")
        return cls(**data)


@dataclasses.dataclass(frozen=True)
class Limits:
    """What one benchmark may cost the machine it runs on; a model or a protocol beyond is refused
    with ValueError. The agent sets them (``--max-tensor-mb``, ``--max-seconds``), since a client
    chooses both the model's tensor shapes and the protocol; None: no limit (a local measurement).

    ``max_tensor_bytes`` bounds the total size of the model's tensors, checked before LiteRT
    allocates them (a 1 KB model can declare a 1x8192x8192x3 input). ``max_seconds`` bounds the
    time the protocol may ask for (``min_seconds x max_attempts``) and the whole timing loop.
    """

    max_tensor_bytes: int | None = None
    max_seconds: float | None = None

    def check(self, protocol: Protocol) -> None:
        asked = protocol.min_seconds * protocol.max_attempts
        if self.max_seconds is not None and asked > self.max_seconds:
            raise ValueError(f"protocol: min_seconds x max_attempts is {asked:g} s; this agent times for at most "
                             f"{self.max_seconds:g} s (its --max-seconds): ask for less")


def _check_range(name, value, types, low, high):
    if isinstance(value, bool) or not isinstance(value, types) or not low <= value <= high:
        raise ValueError(f"protocol.{name}: must be a number from {low} to {high}, got {value!r}")


def benchmark(model_bytes: bytes, protocol: Protocol = Protocol(), limits: Limits = Limits()) -> dict[str, Any]:
    """Time ``model_bytes`` with ``protocol`` in this process.

    Returns median/p10/p90/mean/std in ms, ``cv`` (std / mean), ``samples_ms``, ``runs``,
    ``attempts``, ``attempt_cvs`` and ``attempt_medians_ms``, ``threads``, ``protocol``, ``runtime`` (name, version),
    ``delegate`` (partitions and op counts inside and outside XNNPACK), ``peak_activation_bytes``,
    ``model_bytes`` and ``input`` (shape, dtype). A model LiteRT cannot load or run, or one beyond
    ``limits``, raises ValueError with the reason.
    """
    limits.check(protocol)
    interpreter = _load(model_bytes, protocol.threads, limits.max_tensor_bytes)
    input_detail = interpreter.get_input_details()[0]
    interpreter.set_tensor(input_detail["index"], example_input(input_detail))
    deadline = None if limits.max_seconds is None else time.monotonic() + limits.max_seconds
    attempts = []
    for _ in range(protocol.max_attempts):
        samples = _time_invocations(interpreter, protocol, deadline)
        attempts.append(samples)
        if _cv(samples) <= protocol.max_cv:
            break
    steadiest = min(attempts, key=_cv)
    return {
        **latency_statistics(steadiest),
        "samples_ms": [round(float(s), 5) for s in steadiest],
        "attempts": len(attempts),
        "attempt_cvs": [round(_cv(a), 5) for a in attempts],
        "attempt_medians_ms": [round(float(np.median(a)), 5) for a in attempts],
        "threads": protocol.threads,
        "protocol": protocol.to_dict(),
        "runtime": {"name": RUNTIME_NAME, "version": RUNTIME_VERSION},
        "delegate": delegated_ops(interpreter),
        "xnnpack_error": interpreter.xnnpack_error,
        "peak_activation_bytes": _peak_activation_bytes(interpreter),
        "model_bytes": len(model_bytes),
        "input": {"shape": [int(n) for n in input_detail["shape"]], "dtype": np.dtype(input_detail["dtype"]).name},
    }


def latency_statistics(samples_ms) -> dict[str, float]:
    """median/p10/p90/mean/std in ms and the coefficient of variation of timing samples."""
    samples = np.asarray(samples_ms, dtype=np.float64)
    p10, median, p90 = np.percentile(samples, [10, 50, 90])
    return {
        "median_ms": round(float(median), 5),
        "p10_ms": round(float(p10), 5),
        "p90_ms": round(float(p90), 5),
        "mean_ms": round(float(samples.mean()), 5),
        "std_ms": round(float(samples.std()), 5),
        "cv": round(_cv(samples), 5),
        "runs": int(samples.size),
    }


def _cv(samples) -> float:
    samples = np.asarray(samples, dtype=np.float64)
    return float(samples.std() / samples.mean()) if samples.mean() > 0 else 0.0


def open_interpreter(model_bytes: bytes, threads: int, max_tensor_bytes: int | None = None):
    """A LiteRT interpreter with tensors allocated and XNNPACK applied, as a board's runtime does by
    default. XNNPACK refuses to prepare some int8 models (it depends on their trained weights); those
    run on LiteRT's own kernels instead, with XNNPACK's message in ``interpreter.xnnpack_error``
    (None otherwise). LiteRT's ValueError or RuntimeError when neither loads the model; ValueError
    when its tensors would take more than ``max_tensor_bytes``, before any is allocated."""
    try:
        interpreter = Interpreter(model_content=bytes(model_bytes), num_threads=threads)
        _check_tensor_memory(interpreter, max_tensor_bytes)
        interpreter.allocate_tensors()  # the default XNNPACK delegate is applied here
        interpreter.xnnpack_error = None
        return interpreter
    except (ValueError, RuntimeError) as error:
        if "XNNPACK" not in str(error):
            raise
        refused = _one_line(error)
    interpreter = Interpreter(model_content=bytes(model_bytes), num_threads=threads,
                              experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    interpreter.allocate_tensors()
    interpreter.xnnpack_error = refused
    return interpreter


def _check_tensor_memory(interpreter, max_tensor_bytes: int | None) -> None:
    if max_tensor_bytes is None:
        return
    total = sum(math.prod(max(int(n), 0) for n in d["shape"]) * np.dtype(d["dtype"]).itemsize
                for d in interpreter.get_tensor_details())
    if total > max_tensor_bytes:
        raise TensorMemoryError(f"model: its tensors take {total / 2**20:,.0f} MiB; this agent allows "
                                f"{max_tensor_bytes / 2**20:,.0f} MiB (its --max-tensor-mb): send a smaller model or input")


class TensorMemoryError(ValueError):
    """A model whose tensors are beyond :attr:`Limits.max_tensor_bytes` (not LiteRT's own error)."""


def _load(model_bytes: bytes, threads: int, max_tensor_bytes: int | None = None):
    """An interpreter ready to time (see :func:`open_interpreter`), or ValueError with LiteRT's message."""
    if not model_bytes:
        raise ValueError("model: empty; send the bytes of a .tflite file")
    try:
        interpreter = open_interpreter(model_bytes, threads, max_tensor_bytes)
        details = interpreter.get_input_details()
    except TensorMemoryError:
        raise
    except (ValueError, RuntimeError) as error:
        raise ValueError(f"model: LiteRT cannot load it: {_one_line(error)}") from None
    if len(details) != 1:
        raise ValueError(f"model: expected one input tensor, found {len(details)}")
    return interpreter


def _time_invocations(interpreter, protocol: Protocol, deadline: float | None = None) -> np.ndarray:
    """Warm up, then time single invocations until both ``runs`` and ``min_seconds`` are reached;
    ValueError once the monotonic clock passes ``deadline``."""
    try:
        for _ in range(protocol.warmup):
            _check_deadline(deadline)
            interpreter.invoke()
        clock, samples, started = CLOCKS[protocol.clock], [], time.perf_counter()
        gc_was_enabled = gc.isenabled()
        gc.disable()  # a collection in the middle of a timed run is noise, not the model
        try:
            while len(samples) < protocol.runs or time.perf_counter() - started < protocol.min_seconds:
                _check_deadline(deadline)
                before = clock()
                interpreter.invoke()
                samples.append(clock() - before)
        finally:
            if gc_was_enabled:
                gc.enable()
    except RuntimeError as error:
        raise ValueError(f"model: LiteRT cannot run it: {_one_line(error)}") from None
    return np.asarray(samples, dtype=np.float64) / 1e6


def _check_deadline(deadline: float | None) -> None:
    if deadline is not None and time.monotonic() > deadline:
        raise ValueError("benchmark: the protocol took longer than this agent's --max-seconds; ask for fewer runs or attempts")


def _one_line(error: Exception) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return "; ".join(lines) or type(error).__name__


def example_input(detail: dict, images: np.ndarray | None = None, seed: int = 0) -> np.ndarray:
    """An input for the tensor ``detail``: ``images`` (float, [0, 1]) or seeded noise.

    Integer inputs are quantized with the tensor's own scale and zero point.
    """
    shape, dtype = tuple(detail["shape"]), np.dtype(detail["dtype"])
    if images is None:
        images = np.random.default_rng(seed).random(shape, dtype=np.float32)
    images = np.asarray(images, dtype=np.float32).reshape(shape)
    if dtype.kind == "f":
        return images.astype(dtype)
    scale, zero_point = detail["quantization"]
    if not scale:
        raise ValueError(f"model: integer input {dtype.name} has no quantization scale")
    limits = np.iinfo(dtype)
    return np.clip(np.round(images / scale + zero_point), limits.min, limits.max).astype(dtype)


def delegated_ops(interpreter) -> dict[str, Any]:
    """Which ops of the model run inside the delegate and which are left to LiteRT's own kernels.

    After delegation the node list holds the model's ops followed by one DELEGATE node per
    partition. A partition's ops are found by walking back from its outputs to its inputs.
    """
    nodes = ops_details(interpreter)
    ops = [node for node in nodes if node["op_name"] != DELEGATE_NODE]
    partitions = [node for node in nodes if node["op_name"] == DELEGATE_NODE]
    producer = {int(t): op for op in ops for t in op["outputs"]}
    inside: set[int] = set()
    for partition in partitions:
        boundary = {int(t) for t in partition["inputs"]}
        pending = [int(t) for t in partition["outputs"]]
        while pending:
            op = producer.get(pending.pop())
            if op is None or op["index"] in inside:
                continue
            inside.add(op["index"])
            pending.extend(int(t) for t in op["inputs"] if t >= 0 and int(t) not in boundary)
    return {
        "partitions": len(partitions),
        "inside": dict(Counter(op["op_name"] for op in ops if op["index"] in inside)),
        "outside": dict(Counter(op["op_name"] for op in ops if op["index"] not in inside)),
    }


def peak_activation_bytes(model_bytes: bytes) -> int:
    """The largest total size of non-constant tensors alive at once, in bytes.

    Computed from the op execution order and tensor sizes (LiteRT's Python API does not report its
    arena size). Scratch buffers of kernels and the delegate's own workspace are not included.
    """
    return _peak_activation_bytes(_load(model_bytes, threads=1))


def _peak_activation_bytes(interpreter) -> int:
    ops = [node for node in ops_details(interpreter) if node["op_name"] != DELEGATE_NODE]
    lifetimes = _activation_lifetimes(interpreter, ops)
    sizes = {tensor: _tensor_bytes(interpreter, tensor) for tensor in lifetimes}
    return max(
        (sum(sizes[t] for t, (first, last) in lifetimes.items() if first <= step <= last) for step in range(len(ops))),
        default=sum(sizes.values()),
    )


def activation_bytes(model_bytes: bytes) -> int:
    """The total size of all non-constant tensors: what memory would be without reuse."""
    interpreter = _load(model_bytes, threads=1)
    ops = [node for node in ops_details(interpreter) if node["op_name"] != DELEGATE_NODE]
    return sum(_tensor_bytes(interpreter, tensor) for tensor in _activation_lifetimes(interpreter, ops))


def _activation_lifetimes(interpreter, ops) -> dict[int, tuple[int, int]]:
    """``tensor -> (first step, last step)`` for graph inputs, op outputs and graph outputs."""
    first = {int(d["index"]): 0 for d in interpreter.get_input_details()}
    last = dict(first)
    for step, op in enumerate(ops):
        for tensor in map(int, op["inputs"]):
            if tensor in first:  # constants (weights) have no producer and are never counted
                last[tensor] = step
        for tensor in map(int, op["outputs"]):
            first.setdefault(tensor, step)
            last[tensor] = step
    for detail in interpreter.get_output_details():
        last[int(detail["index"])] = max(len(ops) - 1, 0)
    return {tensor: (first[tensor], last[tensor]) for tensor in first}


def _tensor_bytes(interpreter, tensor: int) -> int:
    detail = tensor_details(interpreter, tensor)
    return int(np.prod(detail["shape"], dtype=np.int64)) * np.dtype(detail["dtype"]).itemsize
