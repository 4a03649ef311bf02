"""Does a search find models that dominate the hand-designed variants?

    python benchmarks/pareto_vs_presets.py --data ../shared/datasets/dsb2018_nuclei \\
        [--budget 50] [--image-size 128] [--epochs 5] [--data-limit N] [--report-only]

One fresh study: the 14 presets (7 float, 7 int8) are enqueued first, then ``--budget`` searched
trials, all with the same data, training budget and latency protocol. Prints a markdown table:
each preset's Dice (TFLite), latency and size and the searched front member that dominates it
(or "not dominated"); the knee model; the hypervolume of the front with and without the presets;
the wall time. Writes the figures as JSON and the Pareto plot as HTML under --out.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from search.config import EARLY_STOP, LR_SCHEDULES, SearchConfig  # noqa: E402 - after the path above


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--budget", type=int, default=50)
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=SearchConfig.batch_size)
    parser.add_argument("--learning-rate", type=float, default=SearchConfig.learning_rate)
    parser.add_argument("--lr-schedule", default=SearchConfig.lr_schedule, choices=LR_SCHEDULES)
    parser.add_argument("--data-limit", type=int)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--latency-clock", default="cpu", choices=("wall", "cpu"),
                        help="cpu (default here): one thread's CPU time, steady while other work shares the machine")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--early-stop", default="front", choices=EARLY_STOP,
                        help="search start's --early-stop (the study keeps the rule it was started with)")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "out")
    parser.add_argument("--report-only", action="store_true",
                        help="report on the study these settings made so far (an interrupted run continues when started again)")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.time()
    if args.report_only:
        study = _load(args)
        report(study, args, _trial_wall_seconds(study))
    else:
        study = search(args)
        report(study, args, time.time() - started)


def _name(args) -> str:
    return f"presets-vs-search-{Path(args.data).name}-{args.image_size}-b{args.budget}-e{args.epochs}-s{args.seed}"


def _storage(args) -> str:
    return f"sqlite:///{(args.out / 'pareto_vs_presets.db').resolve()}"


def _load(args):
    import optuna

    from studies.storage import open_storage

    return optuna.load_study(study_name=_name(args), storage=open_storage(_storage(args), create=False))


def _trial_wall_seconds(study) -> float:
    """From the first trial's start to the last one's end (the run was interrupted or is going on)."""
    trials = [t for t in study.get_trials(deepcopy=False) if t.datetime_start and t.datetime_complete]
    return (max(t.datetime_complete for t in trials) - min(t.datetime_start for t in trials)).total_seconds() if trials else 0.0


def search(args):
    from search.loop import run_search
    from search.progress import make_reporter
    from space.presets import presets_for

    config = SearchConfig(
        budget=args.budget + len(presets_for()), study=_name(args), storage=_storage(args),
        data=args.data, image_size=args.image_size, epochs=args.epochs, batch_size=args.batch_size,
        learning_rate=args.learning_rate, lr_schedule=args.lr_schedule,
        data_limit=args.data_limit, threads=args.threads, latency_clock=args.latency_clock, seed=args.seed,
        enqueue_presets=True, early_stop=args.early_stop, rungs=None,
    )
    # The study's name does not carry these: continuing it with other values must fail, not mix.
    defining = {"batch_size", "learning_rate", "lr_schedule", "data_limit", "threads", "latency_clock"}
    return run_search(config, defining, make_reporter("bar"))


def report(study, args, seconds: float) -> None:
    from studies.front import front, knee, preset_verdicts, study_points
    from studies.pareto import hypervolume

    metrics = ("dice", "latency_ms", "size_kb")
    points = study_points(study)
    presets = [p for p in points if p.preset and p.complete]
    searched = [p for p in points if not p.preset]
    finished = sum(1 for t in study.get_trials(deepcopy=False) if t.state.is_finished() and not t.user_attrs.get("preset"))
    searched_front = front(searched, metrics)
    reference = {"dice": 0.0, "latency_ms": 1.1 * max(p.values["latency_ms"] for p in presets),
                 "size_kb": 1.1 * max(p.values["size_kb"] for p in presets)}
    rows = ["| preset | Dice (TFLite) | latency ms | size KB | dominated by |", "| --- | --- | --- | --- | --- |"]
    results = []
    for preset, best in preset_verdicts(points, metrics):
        by = f"#{best.number} {best.summary} (Dice {best.values['dice']:.3f}, {best.values['latency_ms']:.2f} ms, {best.values['size_kb']:.0f} KB)" if best else "not dominated"
        if best and _architecture(best) in {_architecture(p) for p in presets}:
            by += ", a preset's architecture"  # the search found a preset again, with other PTQ settings
        rows.append(f"| {preset.preset} | {preset.values['dice']:.3f} | {preset.values['latency_ms']:.2f} | {preset.values['size_kb']:.0f} | {by} |")
        results.append({"preset": preset.preset, **preset.values, "dominated_by": best.number if best else None})
    chosen = knee(searched_front, metrics) if searched_front else None
    with_presets = hypervolume(points, metrics, reference)
    without = hypervolume(searched, metrics, reference)
    unet = next(p for p in presets if p.preset == "unet")
    close = [p for p in searched_front if p.values["dice"] >= unet.values["dice"] - 0.01 and p.values["latency_ms"] <= unet.values["latency_ms"] / 5]
    lines = rows + [
        "",
        f"knee: #{chosen.number} {chosen.summary} (Dice {chosen.values['dice']:.3f}, {chosen.values['latency_ms']:.2f} ms, {chosen.values['size_kb']:.0f} KB)" if chosen else "knee: none",
        f"hypervolume (reference {reference}): searched front {without:.4f}, with the presets {with_presets:.4f}",
        f"float presets dominated: {sum(r['dominated_by'] is not None for r in results if not r['preset'].endswith('-int8'))} of 7; "
        f"unet-int8 dominated: {any(r['dominated_by'] is not None for r in results if r['preset'] == 'unet-int8')}",
        f"within 0.01 Dice of unet ({unet.values['dice']:.3f}) at <= 1/5 of its latency ({unet.values['latency_ms'] / 5:.2f} ms): "
        + (", ".join(f"#{p.number} (Dice {p.values['dice']:.3f}, {p.values['latency_ms']:.2f} ms)" for p in close) or "none"),
        f"searched trials finished: {finished} of {args.budget}; wall time {seconds / 60:.1f} min",
    ]
    print("\n".join(lines))
    (args.out / "pareto_vs_presets.json").write_text(json.dumps({
        "study": study.study_name, "args": {k: str(v) for k, v in vars(args).items()}, "presets": results,
        "front": [{"number": p.number, "summary": p.summary, **p.values} for p in searched_front],
        "knee": chosen.number if chosen else None, "hypervolume": {"searched": without, "with_presets": with_presets},
        "reference": reference, "seconds": seconds,
    }, indent=2))
    from studies.report import write_report

    write_report(_storage(args), args.out / "pareto_vs_presets.html", study.study_name)


def _architecture(point) -> str:
    """The summary without its quantization mode (the last word)."""
    return point.summary.rsplit(" ", 1)[0]


if __name__ == "__main__":
    main()
