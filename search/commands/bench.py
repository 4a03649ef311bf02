"""``search bench``: time one .tflite model with the latency protocol, here or on a Pi agent.

Prints median/p10/p90/mean/std/CV, the ops inside and outside the XNNPACK delegate and the peak
activation memory.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from search.options import CLOCKS, TOKEN_ENV, add_option, csv_of, whole_number


def register(subparsers):
    parser = subparsers.add_parser("bench", help="time a .tflite model here or on a Pi agent", description=__doc__)
    parser.add_argument("model", type=Path, help="the .tflite file")
    add_device_options(parser)
    group = parser.add_argument_group("protocol")
    group.add_argument("--warmup", type=whole_number(0), default=10, help="untimed runs first (default %(default)s)")
    group.add_argument("--runs", type=whole_number(1), default=50, help="timed runs, at least (default %(default)s)")
    group.add_argument("--min-seconds", type=float, default=1.0, help="time for at least this long (default %(default)s)")
    group.add_argument("--clock", choices=CLOCKS, default="wall",
                       help="wall: what a user waits for (default); cpu: CPU time of the one LiteRT thread "
                            "(needs --threads 1), steadier on a machine busy with other work")
    parser.add_argument("--json", action="store_true", help="print the full result as JSON")
    parser.set_defaults(run=run)


def add_device_options(parser: argparse.ArgumentParser) -> None:
    """The device options of ``search start``, and ``--cpus``."""
    group = parser.add_argument_group("device")
    add_option(group, "devices", shown="this machine, in a separate process")
    add_option(group, "device_token")
    add_option(group, "threads", help="LiteRT threads, as on a Pi 4; capped at this machine's cores when local")
    group.add_argument("--cpus", type=csv_of(int), metavar="C,C", help="pin local measurements to these CPUs, e.g. 2,3")


def device_from(args: argparse.Namespace):
    """The :class:`evaluators.devices.Device` the device options ask for."""
    from evaluators.devices import open_devices

    cpus = list(args.cpus) if args.cpus else None
    return open_devices(args.devices, args.device_token or os.environ.get(TOKEN_ENV), args.threads, cpus)


def run(args):
    from evaluators.runtime import Protocol

    if not args.model.is_file():
        raise FileNotFoundError(f"{args.model}: no such file; pass a .tflite model")
    protocol = Protocol(warmup=args.warmup, runs=args.runs, min_seconds=args.min_seconds, clock=args.clock,
                        threads=args.threads or (1 if args.clock == "cpu" else 4))
    device = device_from(args)
    result = device.measure(args.model.read_bytes(), protocol)
    if args.json:
        print(json.dumps({**result, "device_info": device.info()}, indent=2))
        return
    from studies.status import device_line

    print(format_result(args.model.name, result) + "\n" + device_line(result["device"], device.info()))


def format_result(model_name: str, result: dict) -> str:
    """A few lines for people: latency statistics, the delegate's share, size and memory."""
    cvs = ", ".join(f"{cv:.1%}" for cv in result["attempt_cvs"])
    delegate = result["delegate"]
    lines = [
        f"{model_name} on {result['device']}: {result['model_bytes']:,} bytes, "
        f"peak activations {result['peak_activation_bytes']:,} bytes",
        f"latency   median {result['median_ms']:.3f} ms   p10 {result['p10_ms']:.3f}   p90 {result['p90_ms']:.3f}   "
        f"mean {result['mean_ms']:.3f}   std {result['std_ms']:.3f}   cv {result['cv']:.1%}",
        f"          {result['runs']} runs, {result['attempts']} attempt(s) (cv {cvs}), {result['threads']} threads, "
        f"{result['protocol'].get('clock', 'wall')} clock, {result['runtime']['name']} {result['runtime']['version']}",
        f"XNNPACK   {delegate['partitions']} partition(s): {_op_counts(delegate['inside'])}",
        f"outside   {_op_counts(delegate['outside'])}",
    ]
    if result.get("xnnpack_error"):  # an agent older than this field leaves it out
        lines.append(f"warning: XNNPACK refused this model ({result['xnnpack_error']}); timed on LiteRT's own kernels")
    if result["cv"] > result["protocol"]["max_cv"]:
        lines.append(f"warning: cv {result['cv']:.1%} is above {result['protocol']['max_cv']:.0%} after "
                     f"{result['attempts']} attempt(s); the device was busy, treat the figures with care")
    return "\n".join(lines)


def _op_counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{name} x{count}" for name, count in sorted(counts.items())) or "none"
