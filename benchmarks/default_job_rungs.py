"""Should the main job run with rungs? ``search start --budget 50`` as the README gives it, plain and
with each ``--rungs`` plan, on the built-in defaults (data, 32x32, epochs, device, early stopping).

    python benchmarks/default_job_rungs.py [--plans 1,3;1,3,9] [--seeds 0,1,2] [--budget 50] [--report-only]

Each job is the user's command in a child process (``python -m search start ...`` with ``--seed``
and its own study in one SQLite file under ``--out``), its wall time taken around it: the default
must stay within the job's 15 minutes. Resumable: a finished job's time is kept in ``times.json``;
a job killed before it finished is deleted and run again (its time would mean nothing). Prints per
method, mean and spread over seeds: wall minutes, candidates (presets included), epochs spent,
hypervolume against one reference for all the jobs (Dice 0; 1.1 x the presets' largest latency
and size) and above the constant mask (its Dice as the reference's), and float presets dominated
(of those the budget reached: 7 at 50). Nothing else should run on the machine meanwhile.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._searches import host_line  # noqa: E402


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plans", default="1,3;1,3,9", help="rung plans to try beside plain, ';' between them")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--budget", type=int, default=50)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "out" / "default_job_rungs")
    parser.add_argument("--report-only", action="store_true")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    methods = ["plain"] + [f"rungs {plan}" for plan in args.plans.split(";") if plan]
    seeds = [int(seed) for seed in args.seeds.split(",")]
    print(host_line(), file=sys.stderr)
    if not args.report_only:
        for seed in seeds:
            for method in methods:
                run(args, method, seed)
    report(args, methods, seeds)


def storage(args) -> str:
    return f"sqlite:///{(args.out / 'jobs.db').resolve()}"


def study_name(args, method: str, seed: int) -> str:
    return f"{method.replace(' ', '-')}-b{args.budget}-s{seed}"


def run(args, method: str, seed: int) -> None:
    import optuna

    from studies.storage import open_storage

    times_path, name = args.out / "times.json", study_name(args, method, seed)
    times = json.loads(times_path.read_text()) if times_path.exists() else {}
    if name in times:
        return
    try:
        optuna.delete_study(study_name=name, storage=open_storage(storage(args)))  # killed before it finished
    except KeyError:
        pass
    command = [sys.executable, "-m", "search", "start", "--budget", str(args.budget), "--seed", str(seed),
               "--study", name, "--storage", storage(args)]
    command += ["--rungs", method.split()[1] if method != "plain" else "off"]
    print(f"== {name}: {' '.join(command[1:])}", file=sys.stderr)
    begin = time.perf_counter()
    subprocess.run(command, check=True, cwd=args.out)
    times[name] = {"seconds": time.perf_counter() - begin, "host": host_line()}
    times_path.write_text(json.dumps(times, indent=2))


def report(args, methods, seeds) -> None:
    import optuna

    from benchmarks.multifidelity import OBJECTIVES, _mean_spread, figures
    from search.config import SearchConfig
    from studies.front import constant_mask, study_points
    from studies.pareto import hypervolume, hypervolume_above
    from studies.storage import open_storage

    times_path = args.out / "times.json"
    times = json.loads(times_path.read_text()) if times_path.exists() else {}
    opened = open_storage(storage(args), create=False)
    studies = {(m, s): optuna.load_study(study_name=study_name(args, m, s), storage=opened)
               for m in methods for s in seeds if study_name(args, m, s) in times}
    points = {key: study_points(study) for key, study in studies.items()}
    presets = [p for study in points.values() for p in study if p.preset and p.complete and "latency_ms" in p.values]
    reference = {"dice": 0.0, "latency_ms": 1.1 * max(p.values["latency_ms"] for p in presets),
                 "size_kb": 1.1 * max(p.values["size_kb"] for p in presets)}
    print(f"reference {reference}")
    print("| method | wall minutes | candidates | epochs | hypervolume | above the constant mask | float presets dominated |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for method in methods:
        mine = [(s, study) for (m, s), study in points.items() if m == method]
        if not mine:
            continue
        rows = [figures(study, None, SearchConfig().image_size) for _, study in mine]  # the default job's size
        minutes = [times[study_name(args, method, s)]["seconds"] / 60 for s, _ in mine]
        volumes = [hypervolume(study, OBJECTIVES, reference) for _, study in mine]
        above = [hypervolume_above(study, constant_mask(studies[method, s]), OBJECTIVES, reference) for s, study in mine]
        cells = [_mean_spread(minutes), _mean_spread([r["candidates"] for r in rows]),
                 _mean_spread([r["epochs"] for r in rows]), _mean_spread(volumes), _mean_spread(above),
                 f"{_mean_spread([r['float_presets_dominated'] for r in rows])} of {max(r['float_presets'] for r in rows)}"]
        print(f"| {method} | " + " | ".join(cells) + " |")
        print(f"  {method} by seed {', '.join(str(s) for s, _ in mine)}: hypervolume "
              + ", ".join(f"{v:.3f}" for v in volumes) + "; above the constant mask "
              + ", ".join(f"{v:.3f}" for v in above) + "; minutes " + ", ".join(f"{m:.1f}" for m in minutes))


if __name__ == "__main__":
    main()
