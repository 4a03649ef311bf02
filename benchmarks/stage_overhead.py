"""What a promoted rung costs beyond its epochs: training in stages from the store against in the
live models, against one run.

    python benchmarks/stage_overhead.py --data ../shared/datasets/dsb2018_nuclei --image-size 64 \\
        [--data-limit 128] [--stages 2,6,18] [--archs unet:16,depthwise:8,group:8,fire:8]

For each architecture, three trainings to the last stage's epochs, one after another (a slow spell
of the machine hits all three alike): one run; the stages each from the stored checkpoint bytes
(a fresh build, compile and trace each stage, as another worker or a restarted search does); the
stages in the live models (what the worker that trained the parent does). ``--repeats`` rounds of
all of them. Prints, as medians over the rounds: training seconds (wall and this process's CPU), and
the set-up of a later stage, from epoch times: the seconds from a stage's start to the end of its
first epoch less the median epoch of the run (two neighbouring figures, so a busy machine moves it
less than it moves the totals); and each run's last validation Dice (the three must agree: a stage
changes when, not what).
"""

from __future__ import annotations

import argparse
import statistics
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
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    from benchmarks._searches import host_line
    from evaluators.data import load_dataset
    from search.config import SearchConfig

    config = SearchConfig(data=args.data, image_size=args.image_size, seed=args.seed)
    data = load_dataset(args.data, args.image_size, 3, args.seed, config.val_fraction, args.data_limit,
                        test_fraction=config.test_fraction)
    stages = [int(e) for e in args.stages.split(",")]
    train_modes(spec_of("fire:4", args.image_size), data, [2, 4], config.training, "stages live")  # first-use costs
    print(f"# {Path(args.data).name} at {args.image_size}x{args.image_size}, {len(data.train_images)} training images, "
          f"batch {config.batch_size}, stages {args.stages}; {host_line()}")
    print("| architecture | mode | train s (wall) | CPU s | median epoch s | set-up of a later stage, s | val Dice |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for arch in args.archs.split(","):
        spec = spec_of(arch, args.image_size)
        rounds = [{mode: train_modes(spec, data, stages, config.training, mode) for mode in MODES} for _ in range(args.repeats)]
        for mode in MODES:
            runs = [row[mode] for row in rounds]
            def median(key):
                return statistics.median(run[key] for run in runs)
            setup = "" if mode == "one run" else f"{median('setup'):.1f}"
            dice = ", ".join(sorted({f"{run['dice']:.4f}" for run in runs}))
            print(f"| {arch} | {mode} | {median('wall'):.1f} | {median('cpu'):.1f} | {median('epoch'):.2f} | {setup} | {dice} |",
                  flush=True)


def train_modes(spec, data, stages: list[int], training: dict, mode: str) -> dict:
    """Train ``spec`` to ``stages[-1]`` epochs as ``mode`` says: wall and CPU seconds, the median
    epoch, the mean set-up of the stages after the first, the last Dice."""
    from evaluators.train import Checkpoint
    from search.pipeline import Stopwatch, train
    from space import _tf

    _tf.keras().backend.clear_session()  # as the worker does between trials
    clock, wall, cpu = Stopwatch(), time.perf_counter(), time.process_time()
    ends: list[float] = []  # each epoch's end
    starts: list[float] = []  # each stage's start
    record = lambda epoch, dice: ends.append(time.perf_counter())  # noqa: E731
    if mode == "one run":
        starts.append(time.perf_counter())
        trained = train(spec, data, stages[-1], training, clock, record)
    else:
        trained, done = None, 0
        for end in stages:
            resume = trained and trained.history.checkpoint
            if resume and mode == "stages from the store":
                resume = Checkpoint.from_bytes(resume.to_bytes())
            starts.append(time.perf_counter())
            trained = train(spec, data, end - done, training, clock, record, horizon=stages[-1], resume=resume)
            _tf.keras().backend.clear_session()
            done = end
    firsts = [0] + [stages[k] for k in range(len(stages) - 1)] if mode != "one run" else [0]
    steady = [ends[i] - ends[i - 1] for i in range(1, len(ends)) if i not in firsts]
    epoch = statistics.median(steady) if steady else 0.0  # stages of one epoch each leave none steady
    setups = [ends[first] - start - epoch for first, start in zip(firsts, starts)][1:]
    return {"wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu, "epoch": epoch,
            "setup": statistics.mean(setups) if setups else 0.0, "dice": float(trained.history.val_dice[-1])}


if __name__ == "__main__":
    main()
