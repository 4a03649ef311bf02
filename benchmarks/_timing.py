"""What the latency tables share: the host line, and timing many models in interleaved rounds."""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def add_timing_options(parser) -> None:
    """--runs, --min-seconds, --rounds and --clock: how each model is timed."""
    parser.add_argument("--runs", type=int, default=200, help="timed runs per round, at least")
    parser.add_argument("--min-seconds", type=float, default=2.0, help="of timing per round, at least")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clock", choices=("cpu", "wall"), default="cpu")


def local_device(args):
    """This machine as the board, one LiteRT thread under XNNPACK, and the protocol of ``args``."""
    from evaluators.devices import LocalDevice
    from evaluators.runtime import Protocol

    return LocalDevice(threads=1), Protocol(warmup=20, runs=args.runs, min_seconds=args.min_seconds, threads=1, clock=args.clock)


def header(device, args, size: int) -> str:
    """The line every table starts with: CPU, runtime, threads, clock, size, rounds."""
    info = device.info()
    return (f"CPU: {info['cpu']} ({', '.join(info['cpu_features']) or 'no VNNI/AMX/dot-product'}), {info['cores']} cores; "
            f"{info['runtime']['name']} {info['runtime']['version']}, 1 thread, XNNPACK, {args.clock} clock, "
            f"{size}x{size}, median of {args.rounds} rounds of >= {args.runs} runs")


def time_interleaved(rows: list[dict], device, protocol, rounds: int) -> None:
    """Time every row's ``tflite`` ``rounds`` times, one round of all rows after another (a slow
    spell of the machine hits every model alike); sets ``medians`` (one per round, ms) and ``ms``
    (their median). Each measurement runs in a fresh process (``LocalDevice``)."""
    from tqdm import tqdm

    for row in rows:
        row["medians"] = []
    with tqdm(total=rounds * len(rows), desc="timing", unit="model") as bar:
        for _ in range(rounds):
            for row in rows:
                row["medians"].append(device.measure(row["tflite"], protocol)["median_ms"])
                bar.update()
    for row in rows:
        row["ms"] = statistics.median(row["medians"])
