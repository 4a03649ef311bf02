"""Distillation's Dice gain at equal epochs, and training in stages against one run.

    python benchmarks/distillation.py --data ../shared/datasets/dsb2018_nuclei --image-size 128 \\
        --data-limit 128 --seeds 0,1,2 [--report-only]

Per seed (which draws the split, the initialisation and the data order): a ``unet`` teacher
trained ``--teacher-epochs`` (the last rung of ``--rungs 2,6,18``); each light architecture
trained ``--epochs`` plainly and with the teacher's soft targets (``--distill unet``, at each
``--distill WEIGHT:TEMPERATURE[:TERM]``; the options' defaults unless told); and, for ``--stage-archs``, ``--stages`` (2 -> 6 -> 18,
resumed from the stored weights and optimizer state as a promoted rung is) against one plain run
of the last stage's epochs. Every figure is the float32 TFLite model's Dice on the validation and
on the test split. Prints mean and spread (sample std) over seeds; each run is appended to a
JSON-lines file, so a killed run goes on where it stopped.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from evaluators.distill import DEFAULT_SOFT_TERM, DEFAULT_TEMPERATURE, DEFAULT_WEIGHT, teacher_targets  # noqa: E402

LIGHT = ("depthwise:8", "fire:8", "shuffle:8")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--data-limit", type=int)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--epochs", type=int, default=6, help="the students' epochs")
    parser.add_argument("--teacher-epochs", type=int, default=18)
    parser.add_argument("--archs", default=",".join(LIGHT), help="PRESET:WIDTH,... light students ('' for none)")
    parser.add_argument("--distill", default=f"{DEFAULT_WEIGHT:g}:{DEFAULT_TEMPERATURE:g}:{DEFAULT_SOFT_TERM}",
                        help="WEIGHT:TEMPERATURE[:TERM],... of the soft term (default: the options')")
    parser.add_argument("--stages", default="2,6,18")
    parser.add_argument("--stage-archs", default="depthwise:8,unet:16")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "out" / "distillation")
    parser.add_argument("--report-only", action="store_true")
    args = parser.parse_args(argv)
    args.archs, args.stage_archs = _names(args.archs), _names(args.stage_archs)
    args.out.mkdir(parents=True, exist_ok=True)
    seeds = [int(s) for s in args.seeds.split(",")]
    if not args.report_only:
        for seed in seeds:
            run_seed(args, seed)
    report(args, seeds)


def _names(text: str) -> list[str]:
    return [name for name in text.split(",") if name]


def results_path(args) -> Path:
    return args.out / f"{Path(args.data).name}-{args.image_size}-n{args.data_limit}.jsonl"


def done(args) -> dict[tuple, dict]:
    path = results_path(args)
    rows = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
    return {(row["seed"], row["run"]): row for row in rows}


def run_seed(args, seed: int) -> None:
    from evaluators.data import load_dataset
    from search.config import SearchConfig

    config = SearchConfig(data=args.data, image_size=args.image_size, seed=seed, batch_size=args.batch_size)
    data = load_dataset(args.data, args.image_size, 3, seed, config.val_fraction, args.data_limit,
                        test_fraction=config.test_fraction)
    stages = [int(e) for e in args.stages.split(",")]
    runs = [("teacher", "unet:16", {"epochs": args.teacher_epochs})]
    for arch in args.archs:
        runs.append((f"{arch} plain", arch, {"epochs": args.epochs}))
        runs += [(distilled(arch, setting), arch, {"epochs": args.epochs, "distill": setting}) for setting in _names(args.distill)]
    for arch in args.stage_archs:
        if arch != "unet:16":  # unet's plain run of the last stage's epochs is the teacher
            runs.append((f"{arch} plain {stages[-1]}", arch, {"epochs": stages[-1]}))
        runs.append((f"{arch} stages {args.stages}", arch, {"stages": stages}))
    teacher = None  # its targets on the training images
    for name, arch, how in runs:
        if (seed, name) in done(args) and not (name == "teacher" and teacher is None and _needs_teacher(args, seed)):
            continue
        print(f"== seed {seed}: {name}", file=sys.stderr, flush=True)
        row, model = train_and_score(spec_of(arch, args.image_size), data, how, config.training, teacher)
        if name == "teacher":
            teacher = teacher_targets(model, data.train_images)
        if (seed, name) not in done(args):
            with results_path(args).open("a") as file:
                file.write(json.dumps({"seed": seed, "run": name, **row}) + "\n")


def teacher_setting(setting: str) -> tuple[float, float, str]:
    """``WEIGHT:TEMPERATURE[:TERM]`` as the weight, temperature and soft term of a Teacher."""
    weight, temperature, *term = setting.split(":")
    return float(weight), float(temperature), term[0] if term else DEFAULT_SOFT_TERM


def distilled(arch: str, setting: str) -> str:
    """The run's name, which spells the whole setting (defaults change; the JSON-lines file stays)."""
    weight, temperature, term = teacher_setting(setting)
    return f"{arch} distilled w{weight:g} T{temperature:g} {term}"


def _needs_teacher(args, seed: int) -> bool:
    return any((seed, distilled(arch, setting)) not in done(args) for arch in args.archs for setting in _names(args.distill))


def spec_of(arch: str, image_size: int):
    from space.presets import preset

    name, width = arch.split(":")
    return dataclasses.replace(preset(name, image_size, 3), base_width=int(width))


def train_and_score(spec, data, how: dict, training: dict, targets) -> tuple[dict, object]:
    """The float32 TFLite model's validation and test Dice after training as ``how`` says
    (``targets``: the teacher's on the training images, for ``how["distill"]``)."""
    from evaluators.distill import Teacher

    from search.pipeline import Stopwatch, convert, score, train

    clock = Stopwatch()
    if "stages" in how:
        trained, done_epochs = None, 0
        for end in how["stages"]:
            trained = train(spec, data, end - done_epochs, training, clock, horizon=how["stages"][-1],
                            resume=trained and trained.history.checkpoint)
            done_epochs = end
    else:
        teacher = Teacher(targets, *teacher_setting(how["distill"])) if "distill" in how else None
        trained = train(spec, data, how["epochs"], training, clock, teacher=teacher)
    tflite = convert(spec, trained.model, data.train_images, clock)
    val, test = score(tflite, data, clock), score(tflite, data, clock, split="test")
    return {"dice": val["dice"], "test_dice": test["dice"], "dice_ci95": val["dice_ci95"],
            "float_dice": float(trained.history.val_dice[-1]), "train_seconds": clock.summary().get("train")}, trained.model


def report(args, seeds) -> None:
    from benchmarks._searches import host_line

    rows = done(args)
    names = list(dict.fromkeys(name for _, name in rows))
    print(f"# {Path(args.data).name} at {args.image_size}x{args.image_size}, seeds {seeds}, {host_line()}")
    print("| run | val Dice | test Dice | train s | seeds |")
    print("| --- | --- | --- | --- | --- |")
    for name in names:
        runs = [rows[(seed, name)] for seed in seeds if (seed, name) in rows]
        print(f"| {name} | {_spread([r['dice'] for r in runs])} | {_spread([r['test_dice'] for r in runs])} "
              f"| {statistics.mean(r['train_seconds'] or 0 for r in runs):.0f} | {len(runs)} |")
    for arch in args.archs:
        for setting in _names(args.distill):
            name = distilled(arch, setting)
            gains = [rows[(s, name)]["test_dice"] - rows[(s, f"{arch} plain")]["test_dice"]
                     for s in seeds if (s, name) in rows and (s, f"{arch} plain") in rows]
            if gains:
                print(f"distillation gain, {name}, test Dice: {_spread(gains, signed=True)} over {len(gains)} seed(s)")


def _spread(values, signed: bool = False) -> str:
    if not values:
        return "-"
    sign = "+" if signed else ""
    mean = statistics.mean(values)
    return f"{mean:{sign}.3f} ± {statistics.stdev(values):.3f}" if len(values) > 1 else f"{mean:{sign}.3f}"


if __name__ == "__main__":
    main()
