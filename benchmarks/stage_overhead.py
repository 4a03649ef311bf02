"""What a promoted rung costs beyond its epochs: training in stages from the store against in the
live models, against one run.

    python benchmarks/stage_overhead.py --data ../shared/datasets/dsb2018_nuclei --image-size 64 \\
        [--data-limit 128] [--stages 2,6,18] [--archs unet:16,depthwise:8,group:8,fire:8]

For each architecture, three trainings to the last stage's epochs, one after another (a slow spell
of the machine hits all three alike): one run; the stages each from the stored checkpoint bytes
(a fresh build, compile and trace each stage, as another worker or a restarted search does); the
stages in the live models (what the worker that trained the parent does). Prints training seconds
(wall and this process's CPU) and the set-up a stage adds, ``(staged - one run) / (stages - 1)``,
and each run's last validation Dice (the three must agree: a stage changes when, not what).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.distillation import spec_of  # noqa: E402

MODES = ("one run", "stages from the store", "stages live")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--data-limit", type=int, default=128)
    parser.add_argument("--stages", default="2,6,18")
    parser.add_argument("--archs", default="unet:16,depthwise:8,group:8,fire:8")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    from benchmarks._searches import host_line
    from evaluators.data import load_dataset
    from search.config import SearchConfig

    config = SearchConfig(data=args.data, image_size=args.image_size, seed=args.seed)
    data = load_dataset(args.data, args.image_size, 3, args.seed, config.val_fraction, args.data_limit,
                        test_fraction=config.test_fraction)
    stages = [int(e) for e in args.stages.split(",")]
    spec_of("fire:4", args.image_size)  # imports and TensorFlow's first-use costs before any timing
    train_modes(spec_of("fire:4", args.image_size), data, [1, 2], config.training, "stages live")
    print(f"# {Path(args.data).name} at {args.image_size}x{args.image_size}, {len(data.train_images)} training images, "
          f"batch {config.batch_size}, stages {args.stages}; {host_line()}")
    print("| architecture | mode | train s (wall) | CPU s | set-up a stage, wall s | CPU s | val Dice |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for arch in args.archs.split(","):
        spec = spec_of(arch, args.image_size)
        rows = {mode: train_modes(spec, data, stages, config.training, mode) for mode in MODES}
        base = rows["one run"]
        for mode, row in rows.items():
            extra = ("", "") if mode == "one run" else tuple(
                f"{(row[k] - base[k]) / (len(stages) - 1):.1f}" for k in ("wall", "cpu"))
            print(f"| {arch} | {mode} | {row['wall']:.1f} | {row['cpu']:.1f} | {extra[0]} | {extra[1]} | {row['dice']:.4f} |",
                  flush=True)


def train_modes(spec, data, stages: list[int], training: dict, mode: str) -> dict:
    """Train ``spec`` to ``stages[-1]`` epochs as ``mode`` says; wall and CPU seconds, last Dice."""
    from evaluators.train import Checkpoint
    from search.pipeline import Stopwatch, train
    from space import _tf

    _tf.keras().backend.clear_session()  # as the worker does between trials
    clock, wall, cpu = Stopwatch(), time.perf_counter(), time.process_time()
    if mode == "one run":
        trained = train(spec, data, stages[-1], training, clock)
    else:
        trained, done = None, 0
        for end in stages:
            resume = trained and trained.history.checkpoint
            if resume and mode == "stages from the store":
                resume = Checkpoint.from_bytes(resume.to_bytes())
            trained = train(spec, data, end - done, training, clock, horizon=stages[-1], resume=resume)
            _tf.keras().backend.clear_session()
            done = end
    return {"wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu,
            "dice": float(trained.history.val_dice[-1])}


if __name__ == "__main__":
    main()
