"""Does structured compression cut latency under XNNPACK, where magnitude sparsity does not?

    python benchmarks/channel_pruning.py [--size 128] [--presets unet,depthwise] [--keeps 0.75,0.5]
                                         [--ranks 0.5] [--quant float32,int8] [--runs 200] [--rounds 3]

For each preset and quant mode it converts and times, on this machine with one LiteRT thread
(XNNPACK on, each measurement in a fresh process, ``--clock cpu`` by default: steadier on a shared
machine), the model as built and these variants of it:

- ``sparse 0.5``: half of every convolution kernel's weights at zero (smallest magnitudes first),
  what tensorflow-model-optimization's pruning leaves after ``strip_pruning``: same shapes;
- ``keep K``: structured channel pruning to the share K of each convolution's filters
  (:func:`evaluators.structured.prune_channels`);
- ``rank R``: low-rank factorisation of the KxK convolutions (:func:`evaluators.structured.factorize`).

Latency does not depend on the weights' values, so the models are untrained (seeded). Every model
is timed ``--rounds`` times, interleaved with the others (so that a slow spell of the machine hits
all variants alike); each round is the median of at least ``--runs`` runs, and the table shows the
median over rounds, with MACs, size and the ratio to the model as built.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _timing import add_timing_options, header, local_device, time_interleaved  # noqa: E402


def variants(model, keeps, ranks):
    """(label, model) pairs: as built, magnitude-sparse, channel-pruned, factorised."""
    from evaluators import structured

    yield "as built", model
    yield "sparse 0.5", magnitude_sparse(model, 0.5)
    for keep in keeps:
        yield f"keep {keep:g}", structured.prune_channels(model, keep)[0]
    for rank in ranks:
        factorised, info = structured.factorize(model, rank)
        if info["ranks"]:  # a model without dense KxK convolutions (depthwise) has nothing to factorise
            yield f"rank {rank:g}", factorised


def magnitude_sparse(model, sparsity: float):
    """A copy of ``model`` with the ``sparsity`` share of each convolution kernel's smallest weights at zero."""
    from evaluators.structured import copy_layer, rebuild, set_weights

    weights = {}

    def make(layer):
        values = layer.get_weights()
        if values and "kernel" in layer.weights[0].name:
            kernel = values[0]
            values[0] = np.where(np.abs(kernel) > np.quantile(np.abs(kernel), sparsity), kernel, 0).astype(kernel.dtype)
        weights[layer.name] = values
        return copy_layer(layer)

    return set_weights(rebuild(model, make), weights)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--presets", default="unet,depthwise")
    parser.add_argument("--keeps", default="0.75,0.5")
    parser.add_argument("--ranks", default="0.5")
    parser.add_argument("--quant", default="float32,int8")
    add_timing_options(parser)
    args = parser.parse_args()

    from space.convert import to_tflite
    from space.model import build, static_costs
    from space.presets import preset
    from space.spec import QuantSpec

    device, protocol = local_device(args)
    print(header(device, args, args.size))
    calibration = np.random.default_rng(0).uniform(0, 1, (16, args.size, args.size, 3)).astype(np.float32)
    keeps = [float(k) for k in args.keeps.split(",") if k]
    ranks = [float(r) for r in args.ranks.split(",") if r]
    rows = []
    for name in args.presets.split(","):
        model = build(preset(name, args.size), seed=0)
        for label, variant in variants(model, keeps, ranks):
            macs = static_costs(variant).macs
            for mode in args.quant.split(","):
                tflite = to_tflite(variant, QuantSpec(mode, 16), calibration)
                rows.append({"preset": name, "quant": mode, "variant": label, "macs": macs, "tflite": tflite})
    time_interleaved(rows, device, protocol, args.rounds)
    print(f"{'preset':<11}{'quant':<9}{'variant':<12}{'MMACs':>8}{'KB':>8}{'ms':>9}{'rounds (ms)':>26}{'x built':>9}")
    for row in rows:
        base = next(r for r in rows if (r["preset"], r["quant"], r["variant"]) == (row["preset"], row["quant"], "as built"))
        print(f"{row['preset']:<11}{row['quant']:<9}{row['variant']:<12}{row['macs'] / 1e6:8.1f}{len(row['tflite']) / 1024:8.0f}"
              f"{row['ms']:9.3f}{' '.join(f'{m:.3f}' for m in row['medians']):>26}{row['ms'] / base['ms']:9.2f}")


if __name__ == "__main__":
    main()
