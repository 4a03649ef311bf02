"""How well does the per-device latency model predict this machine's latency? (issue 14, part 5)

    PYTHONPATH=. python benchmarks/latency_model.py [--models 200] [--image-size 128] [--cpus 1]

1. Accuracy: ``--models`` generated candidates (``search.calibrate.calibration_specs``: random
   specs spanning the space, every fifth a preset) at ``--image-size``, each converted untrained
   in its quant mode and timed locally (one LiteRT thread, CPU clock, pinned to ``--cpus``). The
   kernel model, and lines on MACs alone and on parameters alone, are fitted on 10, 30 and 100 of
   the first half and tested on the second half: Spearman, median absolute percentage error, share
   within +-10%. The first k and 3 random draws of k give the mean and spread.
2. Stability: ``--stability`` models of the test half timed again in two more passes; the median
   coefficient of variation within a measurement, the median difference between passes, and the
   Spearman of pass 1 against pass 2.

Resumable: every measurement is cached in ``--out`` as it is made. Prints a table and writes
``summary.json`` there, with the host CPU (model name, AVX2/AVX-512/VNNI flags) and load averages.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np
from tqdm import tqdm

from evaluators import latency_model
from evaluators.devices import LocalDevice
from evaluators.runtime import Protocol
from search.calibrate import calibration_specs, measure_sample, sample_key, sample_ops, tflite_of

FIT_SIZES = (10, 30, 100)
DRAWS = 3


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", type=int, default=200, help="candidates: the first half to fit, the rest to test")
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--cpus", default="1", help="pin measurements to these CPUs (comma-separated)")
    parser.add_argument("--stability", type=int, default=20, help="models timed in two more passes")
    parser.add_argument("--shrink", type=float, default=latency_model.SHRINK)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "out" / "latency_model")
    parser.add_argument("--fill", type=lambda text: [int(n) for n in text.split(":")], metavar="START:STOP[:STEP]",
                        help="only measure these candidates into the cache (e.g. 199:99:-1 in a second process)")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    device = LocalDevice(threads=1, cpus=[int(c) for c in args.cpus.split(",")])
    protocol = Protocol(threads=1, clock="cpu")
    specs = calibration_specs(args.models, args.image_size, args.seed)
    half = len(specs) // 2
    stable = range(half, half + args.stability)
    indices = range(*args.fill) if args.fill else range(len(specs))
    samples = [cached(args.out / f"{i:03d}.json", lambda i=i: measure_sample(specs[i], device, protocol,
                                                                              args.out / f"stability-{i - half:02d}.tflite" if i in stable else None),
                      sample_key(specs[i], protocol.to_dict()))
               for i in tqdm(indices, desc="candidates", unit="model", file=sys.stderr)]
    if args.fill:
        return 0
    table = accuracy_table(samples[:half], samples[half:], args.shrink, args.seed)
    stability = stability_passes(specs[half:half + args.stability], device, protocol, args.out)
    summary = {"host": host(), "protocol": protocol.to_dict(), "device": device.name, "image_size": args.image_size,
               "models": len(samples), "shrink": args.shrink, "accuracy": table, "stability": stability,
               "cv_all_median": float(np.median([s["stats"]["cv"] for s in samples])),
               "load_during": load_summary(samples), "load_at_end": os.getloadavg()}
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(report(summary))
    return 0


def cached(path: Path, measure, key: str) -> dict:
    """The sample stored at ``path`` if it is for ``key``; else measured now and stored."""
    try:
        sample = json.loads(path.read_text())
        if sample.get("key") == key:
            return sample
    except (FileNotFoundError, json.JSONDecodeError):
        pass
    sample = {**measure(), "key": key, "load": os.getloadavg()}
    path.with_suffix(".part").write_text(json.dumps(sample))
    path.with_suffix(".part").replace(path)  # whole or absent, for the other process
    return sample


def accuracy_table(fit_pool: list[dict], test: list[dict], shrink: float, seed: int) -> list[dict]:
    """Per fit size and method: mean and standard deviation over the draws of each figure."""
    rng = np.random.default_rng(seed)
    rows = []
    for size in sorted({min(size, len(fit_pool)) for size in FIT_SIZES}):
        draws = [np.arange(size)] + ([rng.choice(len(fit_pool), size, replace=False) for _ in range(DRAWS)]
                                     if size < len(fit_pool) else [])
        results = [score([fit_pool[i] for i in draw], test, shrink) for draw in draws]
        for method in results[0]:
            figures = {key: [r[method][key] for r in results] for key in ("spearman", "mape", "within_10")}
            rows.append({"fit": size, "method": method, "draws": len(draws),
                         **{key: [float(np.mean(v)), float(np.std(v))] for key, v in figures.items()}})
    return rows


def score(fit_set: list[dict], test: list[dict], shrink: float) -> dict[str, dict]:
    measured = np.array([s["stats"]["median_ms"] for s in test])
    train = np.array([s["stats"]["median_ms"] for s in fit_set])
    model = latency_model.fit([sample_ops(s) for s in fit_set], train, shrink=shrink)
    result = {"kernel model": latency_model.accuracy([model.predict_ops(sample_ops(s)) for s in test], measured)}
    for name in ("macs", "params"):
        slope, intercept = latency_model.fit_line([s[name] for s in fit_set], train)
        predicted = slope * np.array([s[name] for s in test], dtype=np.float64) + intercept
        result[f"{name} only"] = latency_model.accuracy(predicted, measured)
    return result


def stability_passes(specs, device, protocol, out: Path) -> dict:
    """Two more passes over ``specs`` (the same .tflite bytes each time)."""
    passes = []
    for number in (1, 2):
        results = []
        for index, spec in enumerate(tqdm(specs, desc=f"stability pass {number}", unit="model", file=sys.stderr)):
            model_path = out / f"stability-{index:02d}.tflite"  # written when first measured
            if not model_path.exists():
                model_path.write_bytes(tflite_of(spec))
            key = sample_key(spec, protocol.to_dict())
            results.append(cached(out / f"stability-{number}-{index:02d}.json",
                                  lambda: {"stats": device.measure(model_path.read_bytes(), protocol)}, key))
        passes.append(results)
    first, second = (np.array([r["stats"]["median_ms"] for r in p]) for p in passes)
    cvs = [r["stats"]["cv"] for p in passes for r in p]
    return {"models": len(specs), "median_cv": float(np.median(cvs)), "max_cv": float(np.max(cvs)),
            "median_pass_difference": float(np.median(np.abs(first - second) / ((first + second) / 2))),
            "spearman_passes": latency_model.spearman(first, second),
            "load_during": load_summary([r for p in passes for r in p])}


def host() -> dict:
    from evaluators.agent import device_info

    info = device_info()
    return {"cpu": info["cpu"], "flags": info["cpu_features"], "cores": info["cores"]}


def load_summary(samples: list[dict]) -> dict:
    loads = np.array([s["load"][0] for s in samples if "load" in s] or [float("nan")])
    return {"min": float(np.min(loads)), "mean": float(np.mean(loads)), "max": float(np.max(loads))}


def report(summary: dict) -> str:
    host_ = summary["host"]
    load = summary["load_during"]
    lines = [f"host: {host_['cpu']}, {host_['cores']} cores, flags {' '.join(host_['flags']) or 'none of avx2/avx512/vnni'}",
             f"{summary['models']} candidates at {summary['image_size']}x{summary['image_size']}, {summary['device']}, "
             f"1 thread, CPU clock; 1-minute load average during measurement {load['min']:.1f}-{load['max']:.1f} "
             f"(mean {load['mean']:.1f}); median CV of a measurement {summary['cv_all_median']:.1%}",
             "", "| fit | method | Spearman | median abs. error | within +-10% |", "| --- | --- | --- | --- | --- |"]
    for row in summary["accuracy"]:
        cells = [f"{row[key][0]:.3f} ± {row[key][1]:.3f}" for key in ("spearman",)]
        cells += [f"{row[key][0]:.1%} ± {row[key][1]:.1%}" for key in ("mape", "within_10")]
        lines.append(f"| {row['fit']} | {row['method']} | " + " | ".join(cells) + " |")
    lines += ["", targets(summary)]
    s = summary["stability"]
    lines += ["", f"stability, {s['models']} models timed in two passes: median CV {s['median_cv']:.2%} (max {s['max_cv']:.1%}), "
              f"median difference between passes {s['median_pass_difference']:.2%}, Spearman across passes "
              f"{s['spearman_passes']:.3f}; load {s['load_during']['min']:.1f}-{s['load_during']['max']:.1f}"]
    return "\n".join(lines)


def targets(summary: dict) -> str:
    """Issue 14's targets for 30 calibration models and for the stability passes, met or missed."""
    row = {r["method"]: r for r in summary["accuracy"] if r["fit"] == 30}
    kernel, macs, s = row.get("kernel model"), row.get("macs only"), summary["stability"]
    if kernel is None:
        return "targets: no fit of 30 models (too few candidates)"
    checks = [("Spearman >= 0.95", kernel["spearman"][0], 0.95), ("within +-10% >= 90%", kernel["within_10"][0], 0.90),
              ("Spearman above the MACs line's", kernel["spearman"][0], macs["spearman"][0]),
              ("within +-10% above the MACs line's", kernel["within_10"][0], macs["within_10"][0]),
              ("stability Spearman >= 0.95", s["spearman_passes"], 0.95), ("median CV < 3%", -s["median_cv"], -0.03)]
    return "targets: " + "; ".join(f"{name} {'met' if value >= goal else 'missed'} ({abs(value):.3f} vs {abs(goal):.3f})"
                                    for name, value, goal in checks)


if __name__ == "__main__":
    sys.exit(main())
