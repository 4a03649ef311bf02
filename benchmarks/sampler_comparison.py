"""Which sampler should ``search start`` use by default? Run each with 3 seeds, compare hypervolume.

    python benchmarks/sampler_comparison.py [--budget 16] [--seeds 3] [--samplers tpe,nsga2,random]

Every run is a real search (training, TFLite, LiteRT latency) on the built-in data at small
settings, in its own study of one SQLite file under benchmarks/out/. Hypervolumes use one
reference point for all runs (Dice 0; 1.1 x the worst latency and size seen in any run), so they
are comparable. Prints a markdown table and writes the figures as JSON.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SMALL = dict(data="synthetic", data_limit=160, image_size=32, epochs=3, batch_size=16, threads=2, widths=(4, 8, 12, 16))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=int, default=16)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--samplers", default="tpe,nsga2,random")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "out")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    storage = f"sqlite:///{(args.out / 'samplers.db').resolve()}"
    runs = {}
    started = time.time()
    for sampler in args.samplers.split(","):
        for seed in range(args.seeds):
            runs[(sampler, seed)] = run(sampler, seed, args.budget, storage)
    report(runs, args, time.time() - started)


def run(sampler: str, seed: int, budget: int, storage: str) -> str:
    from search.config import SearchConfig
    from search.loop import run_search
    from search.progress import Reporter

    name = f"{sampler}-seed{seed}-budget{budget}"
    config = SearchConfig(budget=budget, study=name, storage=storage, sampler=sampler, seed=seed, **SMALL)
    print(f"== {name}", file=sys.stderr)
    run_search(config, set(), Reporter("bar"))
    return name


def report(runs: dict, args, seconds: float) -> None:
    import optuna

    from studies.pareto import hypervolume, study_points
    from studies.storage import open_storage

    storage = open_storage(f"sqlite:///{(args.out / 'samplers.db').resolve()}")
    points = {key: study_points(optuna.load_study(study_name=name, storage=storage)) for key, name in runs.items()}
    reference = {"dice": 0.0}
    for metric in ("latency_ms", "size_kb"):
        worst = max(p.values[metric] for pts in points.values() for p in pts if p.complete and metric in p.values)
        reference[metric] = 1.1 * worst
    volumes = {key: hypervolume(pts, None, reference) for key, pts in points.items()}
    table = ["| sampler | hypervolume per seed | mean | std |", "| --- | --- | --- | --- |"]
    summary = {}
    for sampler in args.samplers.split(","):
        values = [volumes[(sampler, seed)] for seed in range(args.seeds)]
        mean, std = statistics.mean(values), statistics.stdev(values) if len(values) > 1 else 0.0
        summary[sampler] = {"hypervolumes": values, "mean": mean, "std": std}
        table.append(f"| {sampler} | {', '.join(f'{v:.4f}' for v in values)} | {mean:.4f} | {std:.4f} |")
    print("\n".join(table))
    print(f"\nbudget {args.budget}, {args.seeds} seeds, reference {reference}, wall time {seconds / 60:.1f} min")
    result = {"budget": args.budget, "seeds": args.seeds, "settings": {k: list(v) if isinstance(v, tuple) else v for k, v in SMALL.items()},
              "reference": reference, "samplers": summary, "seconds": seconds}
    (args.out / "sampler_comparison.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
