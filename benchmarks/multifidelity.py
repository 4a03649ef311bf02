"""Single fidelity against rungs and rungs + distillation, and today's space against the enlarged
one, at equal wall time.

    python benchmarks/multifidelity.py --data ../shared/datasets/dsb2018_nuclei --image-size 128 \\
        --data-limit 128 --minutes 80 --seeds 0,1,2 [--methods single,rungs,rungs+distill] [--report-only]

For each method and seed, one study with the presets enqueued, searched until ``--minutes`` of
wall time are spent (a killed run goes on with the time it has left: the time spent is read from
the study's trials). Methods: ``single`` (every candidate trains ``--epochs``, the default early
stopping), ``rungs`` (``--rungs``, eta 3) and ``rungs+distill`` (the same, every candidate learning
from a unet teacher trained to the last rung); ``enlarged`` (single fidelity in the enlarged space:
every block kind, kernels 3 and 5, both upsamplings and skip merges, channel pruning and low rank
after training, input sizes of 1/2, 3/4 and 1 of ``--image-size``; its presets join). Prints per method, mean and spread over seeds:
hypervolume against one reference for the whole dataset (1.1 x the presets' largest latency and
size, Dice 0, or ``--reference`` to compare with another run) and again with the study's constant
mask as the Dice reference (what it found beyond the trivial predictor), candidates evaluated (and how many of them searched, not presets), epochs spent,
float presets dominated (of 7; 9 with the enlarged space's two), whether unet-int8 is, and the best Dice at <= 1/5 and <= 1/10 of
unet's latency, unet's Dice taken at the last rung (from the rung studies of the same seed), the
searched front's size and how many of its members beat a constant mask (studies that stored one), and
which choices outside today's space (``space.sampling.SearchSpace()``) the front members use, and
over the seeds, per such choice, the searched candidates that used it, how many of them reached the
front and their mean seconds (what the choice cost against what it gave). One LiteRT thread, CPU clock.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

METHODS = ("single", "rungs", "rungs+distill", "enlarged")
OBJECTIVES = ("dice", "latency_ms", "size_kb")


def enlarged_space(image_size: int) -> dict:
    """The ``SearchConfig`` options of the enlarged space: every choice the space holds beyond today's."""
    from space.blocks import BLOCK_KINDS

    return dict(block_kinds=BLOCK_KINDS, kernels=(3, 5), upsamplings=("transpose", "resize"), skip_merges=("concat", "add"),
                channel_keeps=(1.0, 0.75, 0.5), rank_fractions=(1.0, 0.5), search_input_size=(image_size // 2, image_size * 3 // 4, image_size))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--data-limit", type=int)
    parser.add_argument("--minutes", type=float, default=80.0, help="wall time of each method and seed")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--methods", default=",".join(METHODS[:3]), help=f"of {', '.join(METHODS)}")
    parser.add_argument("--epochs", type=int, default=6, help="single fidelity's epochs")
    parser.add_argument("--rungs", default="2,6,18")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "out" / "multifidelity")
    parser.add_argument("--reference", help="LATENCY_MS,SIZE_KB of the hypervolume's reference, as another run's report "
                        "printed it, to compare runs of two commits (default: 1.1 x the presets' largest)")
    parser.add_argument("--report-only", action="store_true")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    seeds, methods = [int(s) for s in args.seeds.split(",")], args.methods.split(",")
    if not args.report_only:
        for seed in seeds:
            for method in methods:
                run(args, method, seed)
    report(args, methods, seeds)


def storage(args) -> str:
    return f"sqlite:///{(args.out / 'multifidelity.db').resolve()}"


def name(args, method: str, seed: int) -> str:
    return f"{method}-{Path(args.data).name}-{args.image_size}-n{args.data_limit}-{args.minutes:g}min-s{seed}"


def config_of(args, method: str, seed: int):
    from search.config import SearchConfig

    rungs = tuple(int(e) for e in args.rungs.split(",")) if method.startswith("rungs") else None
    space = enlarged_space(args.image_size) if method == "enlarged" else {}
    return SearchConfig(
        budget=400, study=name(args, method, seed), storage=storage(args), data=_data(args.data),
        image_size=args.image_size, data_limit=args.data_limit, epochs=args.epochs, batch_size=args.batch_size,
        threads=1, latency_clock="cpu", seed=seed, rungs=rungs, distill="unet" if method.endswith("distill") else None,
        timeout=None, **space,
    )


def _data(data: str) -> str:
    return data if data == "synthetic" else str(Path(data).resolve())


def spent_seconds(study) -> float:
    trials = [t for t in study.get_trials(deepcopy=False) if t.datetime_start and t.datetime_complete]
    return (max(t.datetime_complete for t in trials) - min(t.datetime_start for t in trials)).total_seconds() if trials else 0.0


def run(args, method: str, seed: int) -> None:
    from search.loop import run_search
    from search.progress import make_reporter

    config = config_of(args, method, seed)
    left = args.minutes * 60 - _spent(config)
    if left <= 0:
        return
    print(f"== {config.study}: {left / 60:.1f} min left", file=sys.stderr)
    run_search(config.replace(timeout=left), {"timeout"}, make_reporter("bar"))


def _spent(config) -> float:
    import optuna

    from studies.storage import open_storage

    try:
        return spent_seconds(optuna.load_study(study_name=config.study, storage=open_storage(config.storage)))
    except (KeyError, FileNotFoundError, ValueError):
        return 0.0


def new_choices(point, image_size: int) -> list[str]:
    """The choices of ``point``'s spec that today's space (``SearchSpace()``) does not hold."""
    from space.sampling import SearchSpace
    from space.spec import CandidateSpec

    today, spec = SearchSpace(), CandidateSpec.from_dict(point.attrs["spec"])
    used = [stage.kind for _, _, stage in spec.stages() if stage.kind not in today.block_kinds]
    used += [f"k{stage.kernel}" for _, _, stage in spec.stages() if stage.kernel not in today.kernels]
    used += [value for value, kept in ((spec.upsampling, today.upsamplings), (spec.skip_merge, today.skip_merges))
             if value not in kept]
    used += [f"keep{spec.channel_keep:g}"] * (spec.channel_keep not in today.channel_keeps)
    used += [f"rank{spec.rank_fraction:g}"] * (spec.rank_fraction not in today.rank_fractions)
    used += [f"{spec.input_size}px"] * (spec.input_size != image_size)
    return sorted(set(used))


def figures(points, unet_dice: float | None, image_size: int, baseline=None) -> dict:
    """What the report prints of one study (``points`` from ``studies.front.study_points``;
    ``baseline``: its ``studies.front.constant_mask``, when stored)."""
    from studies.front import candidates, front, no_better_than, preset_verdicts

    metrics = ("dice", "latency_ms", "size_kb")
    verdicts = {preset.preset: best for preset, best in preset_verdicts(points, metrics)}
    unet = next(p for p in candidates(points, metrics) if p.preset == "unet")
    searched = front([p for p in points if not p.preset], metrics)

    def best_at(fraction):
        fast = [p.values["dice"] for p in searched if p.values["latency_ms"] <= unet.values["latency_ms"] * fraction]
        return max(fast, default=None)

    return {
        "candidates": sum(1 for p in points if p.complete and "parent" not in p.attrs),
        "searched": sum(1 for p in points if p.complete and "parent" not in p.attrs and not p.preset),
        "epochs": sum(len(p.attrs.get("dice_history", [])) for p in points),
        "float_presets_dominated": sum(verdicts.get(n) is not None for n in verdicts if not n.endswith("-int8")),
        "float_presets": sum(not n.endswith("-int8") for n in verdicts),
        "unet_int8_dominated": verdicts.get("unet-int8") is not None,
        "unet_dice": unet_dice if unet_dice is not None else unet.values["dice"],
        "best_dice_fifth": best_at(1 / 5), "best_dice_tenth": best_at(1 / 10),
        "searched_front": len(searched),
        "beat_constant_mask": sum(not no_better_than(p, baseline) for p in searched) if baseline else None,
        "unet_latency_ms": unet.values["latency_ms"],
        "new_choices_on_front": {p.number: used for p in searched if (used := new_choices(p, image_size))},
        "choice_yield": choice_yield(points, searched, image_size),
    }


def choice_yield(points, searched, image_size: int) -> dict:
    """Per choice outside today's space (``today`` for a candidate that uses none): searched candidates
    that use it, how many of them are on the searched front (at any rung), and their training
    seconds in all (every rung's)."""
    def candidate(p):
        return p.attrs.get("candidate", p.number)

    on_front = {candidate(p) for p in searched}
    seconds = {}
    for p in points:
        if p.complete:
            seconds[candidate(p)] = seconds.get(candidate(p), 0.0) + ((p.attrs.get("seconds") or {}).get("total") or 0.0)
    tally = {}
    for p in points:
        if not p.complete or p.preset or "parent" in p.attrs:
            continue
        for choice in new_choices(p, image_size) or ["today"]:
            row = tally.setdefault(choice, [0, 0, 0.0])
            row[0] += 1
            row[1] += p.number in on_front
            row[2] += seconds[p.number]
    return tally


def report(args, methods, seeds) -> None:
    import optuna

    from studies.front import constant_mask, study_points
    from studies.pareto import hypervolume, hypervolume_above
    from studies.storage import open_storage

    opened = open_storage(storage(args), create=False)
    studies, baselines = {}, {}
    for method in methods:
        for seed in seeds:
            try:
                study = optuna.load_study(study_name=name(args, method, seed), storage=opened)
            except KeyError:
                continue
            studies[method, seed], baselines[method, seed] = study_points(study), constant_mask(study)
    reference = _reference(args.reference, studies)
    rows = {}
    for (method, seed), points in sorted(studies.items()):
        last_rung_unet = _rung_unet_dice(studies, seed)
        baseline = baselines[method, seed]
        rows[method, seed] = {"hypervolume": hypervolume(points, OBJECTIVES, reference),
                              "hypervolume_above_constant_mask": None if baseline is None else
                              hypervolume_above(points, baseline, OBJECTIVES, reference),
                              **figures(points, last_rung_unet, args.image_size, baseline)}
    _print(rows, methods, reference, args)


def _reference(given: str | None, studies) -> dict:
    if given:
        latency_ms, size_kb = (float(v) for v in given.split(","))
        return {"dice": 0.0, "latency_ms": latency_ms, "size_kb": size_kb}
    presets = [p for points in studies.values() for p in points if p.preset and p.complete and "latency_ms" in p.values]
    return {"dice": 0.0, "latency_ms": 1.1 * max(p.values["latency_ms"] for p in presets),
            "size_kb": 1.1 * max(p.values["size_kb"] for p in presets)}


def _rung_unet_dice(studies, seed) -> float | None:
    for method in ("rungs", "rungs+distill"):
        points = studies.get((method, seed), [])
        top = [p for p in points if p.preset == "unet" and p.complete]
        if top:
            return max(top, key=lambda p: p.attrs.get("rung", 0)).values.get("dice")
    return None


def _print(rows, methods, reference, args) -> None:
    keys = ("hypervolume", "hypervolume_above_constant_mask", "candidates", "searched", "epochs", "float_presets_dominated", "float_presets", "best_dice_fifth",
            "best_dice_tenth", "unet_dice", "searched_front", "beat_constant_mask")
    lines = [f"reference {reference}", "| method | " + " | ".join(keys) + " | unet-int8 dominated |",
             "| --- " * (len(keys) + 2) + "|"]
    for method in methods:
        mine = [row for (m, _), row in rows.items() if m == method]
        if not mine:
            continue
        cells = [_mean_spread([row[key] for row in mine]) for key in keys]
        lines.append(f"| {method} | " + " | ".join(cells) + f" | {sum(r['unet_int8_dominated'] for r in mine)} of {len(mine)} |")
    seeds = sorted({seed for _, seed in rows})
    lines.append("hypervolume by seed " + ", ".join(map(str, seeds)) + ": " + "; ".join(
        f"{method} " + ", ".join(f"{rows[method, s]['hypervolume']:.3f}" if (method, s) in rows else "-" for s in seeds)
        for method in methods))
    for (method, seed), row in sorted(rows.items()):
        if row["new_choices_on_front"]:
            used = ", ".join(f"#{n} {'+'.join(c)}" for n, c in row["new_choices_on_front"].items())
            lines.append(f"{method} seed {seed}: {len(row['new_choices_on_front'])} front members use new choices: {used}")
    lines += _yield_lines(rows, methods)
    text = "\n".join(lines)
    print(text)
    (args.out / f"{Path(args.data).name}-{args.image_size}.json").write_text(
        json.dumps({"rows": {f"{m}/{s}": r for (m, s), r in rows.items()}, "reference": reference,
                    "written": time.strftime("%Y-%m-%d %H:%M")}, indent=2, default=str))


def _yield_lines(rows, methods) -> list[str]:
    """Over the seeds of each method: what each new choice cost (candidates, seconds) and gave (front members)."""
    lines = []
    for method in methods:
        total = {}
        for row in (row for (m, _), row in rows.items() if m == method):
            for choice, counts in row["choice_yield"].items():
                total[choice] = [a + b for a, b in zip(total.get(choice, (0, 0, 0.0)), counts)]
        if total:
            lines.append(f"{method}, all seeds: choice: searched candidates using it, on the front, mean s per candidate")
            lines += [f"  {choice}: {n}, {f} ({f / n:.0%}), {s / n:.1f} s"
                      for choice, (n, f, s) in sorted(total.items(), key=lambda item: -item[1][1] / item[1][0])]
    return lines


def _mean_spread(values) -> str:
    values = [v for v in values if v is not None]
    if not values:
        return "none"
    mean = statistics.mean(values)
    return f"{mean:.3f} ± {statistics.stdev(values):.3f}" if len(values) > 1 else f"{mean:.3f}"


if __name__ == "__main__":
    main()
