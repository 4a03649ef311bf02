"""Is the latency protocol reproducible? Time 12 different candidates twice and compare.

    python benchmarks/latency_stability.py [--input-size 128] [--threads N] [--cpus 0,1] [--clock cpu]

Each candidate (block kinds, widths, dilation, quantization modes) is converted once and measured
with the default protocol through LocalDevice in two separate passes. Prints each measurement's
coefficient of variation and the Spearman rank correlation of the medians between the passes.
Targets: median CV under 3%, Spearman at least 0.95.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from evaluators.devices import LocalDevice  # noqa: E402
from evaluators.runtime import Protocol  # noqa: E402
from space.spec import QuantSpec, uniform  # noqa: E402

TARGET_MEDIAN_CV = 0.03
TARGET_SPEARMAN = 0.95


def candidates(input_size: int):
    """(kind, groups, dilation, base width, quant mode) for a spread of latencies and op mixes."""
    choices = [
        ("standard", 1, 1, 8, "float32"),
        ("standard", 1, 1, 16, "float32"),
        ("standard", 1, 2, 12, "float32"),
        ("depthwise", 1, 1, 16, "float32"),
        ("fire", 1, 1, 16, "float32"),
        ("group", 4, 1, 16, "float32"),
        ("shuffle", 4, 1, 16, "float32"),
        ("standard", 1, 1, 8, "int8"),
        ("depthwise", 1, 1, 16, "int8"),
        ("group", 2, 1, 12, "float16"),
        ("standard", 1, 1, 12, "dynamic"),
        ("fire", 1, 1, 8, "int8"),
    ]
    for kind, groups, dilation, width, mode in choices:
        yield uniform(kind, depth=4, groups=groups, dilation=dilation, base_width=width,
                      input_size=input_size, quant=QuantSpec(mode, calibration_images=8))


def convert(spec) -> bytes:
    from space.convert import to_tflite
    from space.model import build

    calibration = np.random.default_rng(0).random((8, spec.input_size, spec.input_size, 3), dtype=np.float32)
    return to_tflite(build(spec, seed=0), spec.quant, calibration)


def spearman(a, b) -> float:
    """Spearman's rank correlation (ties get their average rank)."""
    return float(np.corrcoef(_ranks(a), _ranks(b))[0, 1])


def _ranks(values) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    ranks = np.empty(len(values))
    ranks[np.argsort(values, kind="stable")] = np.arange(len(values))
    for value in np.unique(values):  # average rank for ties
        ranks[values == value] = ranks[values == value].mean()
    return ranks


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input-size", type=int, default=128)
    parser.add_argument("--threads", type=int, help="override the protocol's 4 threads (capped at the cores)")
    parser.add_argument("--cpus", help="pin the measurements to these CPUs, e.g. 1")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall", help="cpu: thread CPU time (needs --threads 1)")
    args = parser.parse_args(argv)
    cpus = [int(cpu) for cpu in args.cpus.split(",")] if args.cpus else None
    protocol = Protocol(clock=args.clock, threads=args.threads or (1 if args.clock == "cpu" else 4))
    device = LocalDevice(args.threads, cpus)

    specs = list(candidates(args.input_size))
    models = [convert(spec) for spec in tqdm(specs, desc="converting", unit="model")]
    passes = []
    for number in (1, 2):
        passes.append([device.measure(model, protocol) for model in tqdm(models, desc=f"pass {number}", unit="model")])

    print(f"\n{device.name}, {passes[0][0]['threads']} threads, protocol {protocol.to_dict()}\n")
    width = max(len(spec.summary) for spec in specs)
    print(f"{'candidate':<{width}} {'median 1':>10} {'cv 1':>7} {'median 2':>10} {'cv 2':>7}  outside XNNPACK")
    for spec, first, second in zip(specs, *passes):
        outside = ", ".join(first["delegate"]["outside"]) or "-"
        print(f"{spec.summary:<{width}} {first['median_ms']:>8.2f}ms {first['cv']:>7.1%} "
              f"{second['median_ms']:>8.2f}ms {second['cv']:>7.1%}  {outside}")
    cvs = [result["cv"] for results in passes for result in results]
    rho = spearman([r["median_ms"] for r in passes[0]], [r["median_ms"] for r in passes[1]])
    median_cv = float(np.median(cvs))
    print(f"\nmedian CV {median_cv:.2%} (target < {TARGET_MEDIAN_CV:.0%}), max CV {max(cvs):.2%}")
    print(f"Spearman rank correlation between passes {rho:.3f} (target >= {TARGET_SPEARMAN})")
    met = median_cv < TARGET_MEDIAN_CV and rho >= TARGET_SPEARMAN
    print("targets met" if met else "targets NOT met")
    return 0 if met else 1


if __name__ == "__main__":
    raise SystemExit(main())
