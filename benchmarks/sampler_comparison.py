"""Which sampler should ``search start`` use by default? Run each with 3 seeds, compare hypervolume.

    python benchmarks/sampler_comparison.py [--budget 20] [--seeds 3] [--samplers tpe,nsga2,random]

Every run is a real search (training, TFLite, LiteRT latency) on the built-in data at small
settings (benchmarks/_searches.py), in its own study of benchmarks/out/samplers.db. Hypervolumes
share one reference point (Dice 0; 1.1 x the worst latency and size seen in any run), so they are
comparable. Prints a markdown table and writes benchmarks/out/sampler_comparison.json.
"""

from __future__ import annotations

import argparse
import json
import time

from _searches import OUT, SMALL, hypervolume_table, jsonable, points_of, run


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=int, default=20)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--samplers", default="tpe,nsga2,random")
    args = parser.parse_args(argv)
    samplers = args.samplers.split(",")
    started = time.time()
    names = {(s, seed): run(s, seed, args.budget) for seed in range(args.seeds) for s in samplers}
    points = {key: points_of(name) for key, name in names.items()}
    reference = {"dice": 0.0}
    for metric in ("latency_ms", "size_kb"):
        reference[metric] = 1.1 * max(p.values[metric] for pts in points.values() for p in pts if p.complete and metric in p.values)
    from studies.pareto import hypervolume

    volumes = {s: [hypervolume(points[(s, seed)], None, reference) for seed in range(args.seeds)] for s in samplers}
    rows, summary = hypervolume_table(volumes)
    seconds = time.time() - started
    print("\n".join(rows))
    print(f"\nbudget {args.budget}, {args.seeds} seeds, reference {reference}, wall time {seconds / 60:.1f} min")
    (OUT / "sampler_comparison.json").write_text(json.dumps(
        {"budget": args.budget, "seeds": args.seeds, "settings": jsonable(SMALL), "reference": reference,
         "samplers": summary, "seconds": seconds}, indent=2))


if __name__ == "__main__":
    main()
