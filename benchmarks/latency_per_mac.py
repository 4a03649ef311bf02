"""Latency per MAC of each block kind, float32 and int8: which MACs are cheap under XNNPACK.

    python benchmarks/latency_per_mac.py [--size 128] [--quant float32,int8] [--runs 200] [--rounds 3]

MACs are what ``search space`` and the trial tables count; what a board pays is latency, and the two
part ways by block kind: a depthwise or grouped MAC moves more memory per multiply than a dense
one, a Fire or shuffle block adds concatenations and transposes that cost time and no MACs. For
each kind (one U-Net of depth 4, base width 16, that kind in every stage, as the presets are
built) and for the decoder's choices on ``unet``, this converts and times the model on this
machine (one LiteRT thread under XNNPACK, interleaved rounds, CPU clock by default) and prints
MMACs, size, the median latency, microseconds per MMAC and that figure relative to ``unet``'s in
the same quant mode. The models are untrained (latency does not depend on the weights' values).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _timing import add_timing_options, header, local_device, time_interleaved  # noqa: E402


def specs(size: int):
    """(label, spec) pairs: every block kind with its usual settings, kernel 5, dilation, the decoder's choices."""
    from space.spec import uniform

    common = dict(depth=4, base_width=16, input_size=size)
    yield "unet (standard)", uniform("standard", **common)
    yield "standard k5", uniform("standard", kernel=5, **common)
    yield "standard dilation 2", uniform("standard", dilation=2, **common)
    for groups in (2, 4):
        yield f"group g{groups}", uniform("group", groups=groups, **common)
    yield "depthwise", uniform("depthwise", **common)
    yield "fire", uniform("fire", **common)
    yield "shuffle g4", uniform("shuffle", groups=4, **common)
    yield "residual", uniform("residual", **common)
    for expansion in (2, 4, 6):
        yield f"inverted e{expansion}", uniform("inverted", expansion=expansion, **common)
    yield "factorized", uniform("factorized", **common)
    yield "unet, resize decoder", uniform("standard", upsampling="resize", **common)
    yield "unet, added skips", uniform("standard", skip_merge="add", **common)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--quant", default="float32,int8")
    parser.add_argument("--only", help="comma-separated labels' first words (for example depthwise,fire)")
    add_timing_options(parser)
    args = parser.parse_args()

    from space.convert import to_tflite
    from space.model import build, static_costs
    from space.spec import QuantSpec

    device, protocol = local_device(args)
    calibration = np.random.default_rng(0).uniform(0, 1, (16, args.size, args.size, 3)).astype(np.float32)
    wanted = set(args.only.split(",")) if args.only else None
    rows = []
    for label, spec in specs(args.size):
        if wanted and label.split()[0] not in wanted:
            continue
        model = build(spec, seed=0)
        macs = static_costs(model).macs
        for mode in args.quant.split(","):
            rows.append({"label": label, "quant": mode, "macs": macs, "tflite": to_tflite(model, QuantSpec(mode, 16), calibration)})
    time_interleaved(rows, device, protocol, args.rounds)
    print(header(device, args, args.size))
    print(f"{'model':<22}{'quant':<9}{'MMACs':>8}{'KB':>8}{'ms':>9}{'us/MMAC':>9}{'x unet':>8}{'rounds (ms)':>26}")
    for row in rows:
        per_mac = row["ms"] * 1e3 / (row["macs"] / 1e6)
        base = next((r for r in rows if r["label"].startswith("unet (") and r["quant"] == row["quant"]), None)
        relative = per_mac / (base["ms"] * 1e3 / (base["macs"] / 1e6)) if base else float("nan")
        print(f"{row['label']:<22}{row['quant']:<9}{row['macs'] / 1e6:8.1f}{len(row['tflite']) / 1024:8.0f}{row['ms']:9.3f}"
              f"{per_mac:9.2f}{relative:8.2f}{' '.join(f'{m:.3f}' for m in row['medians']):>26}")


if __name__ == "__main__":
    main()
