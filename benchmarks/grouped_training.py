"""Training time of a grouped U-Net, masked form vs native Conv2D(groups), per epoch.

    python benchmarks/grouped_training.py [--size 64] [--images 128] [--groups 4] [--dilation 1]

Checks DESIGN.md's fact that native grouped convolutions train 10-20x slower on TensorFlow's CPU
kernels, which is why ``evaluators.train.fit_candidate`` trains the masked form. The first epoch
includes tracing; the second is the steady state.
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def epoch_times(grouped: str, args) -> tuple[float, float]:
    from types import SimpleNamespace

    from evaluators.train import train
    from space.model import build
    from space.spec import uniform

    rng = np.random.default_rng(0)
    images = rng.uniform(0, 1, (args.images, args.size, args.size, 3)).astype(np.float32)
    masks = (images[..., :1] > 0.5).astype(np.float32)
    data = SimpleNamespace(train_images=images, train_masks=masks, val_images=images[:8], val_masks=masks[:8])
    spec = uniform("group", depth=args.depth, groups=args.groups, dilation=args.dilation, base_width=args.width, input_size=args.size)
    model = build(spec, grouped=grouped, seed=0)
    stamps = [time.perf_counter()]
    train(model, data, epochs=2, batch_size=8, callback=lambda epoch, dice: stamps.append(time.perf_counter()))
    return stamps[1] - stamps[0], stamps[2] - stamps[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--images", type=int, default=128)
    parser.add_argument("--groups", type=int, default=4)
    parser.add_argument("--dilation", type=int, default=1)
    parser.add_argument("--width", type=int, default=16)
    parser.add_argument("--depth", type=int, default=3)
    args = parser.parse_args()
    print(f"group U-Net depth {args.depth}, width {args.width}, groups {args.groups}, dilation {args.dilation}, "
          f"{args.images} images {args.size}x{args.size}, batch 8")
    results = {form: epoch_times(form, args) for form in ("masked", "native")}
    for form, (first, second) in results.items():
        print(f"{form:>7}: first epoch (with tracing) {first:6.1f} s, second epoch {second:6.1f} s")
    print(f"native / masked, second epoch: {results['native'][1] / results['masked'][1]:.1f}x")


if __name__ == "__main__":
    main()
