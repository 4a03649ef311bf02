"""Is the default job's front ranked on timing noise? (issue 18, item 6)

    PYTHONPATH=. python benchmarks/default_job_noise.py [--repeats 3] [--sampled 5] [--out DIR]

The 7 float presets and ``--sampled`` candidates of the default space (seeded), untrained, are
converted at each image size and timed by ``LocalDevice`` (a fresh process per measurement, as a
search times them) under several latency protocols, ``--repeats`` times each; the repeats are
interleaved (repeat 1 of every setting, then repeat 2, ...) so that they meet the machine's load
at different moments, as the trials of one search do. Per setting:

- ``cv``: the median coefficient of variation within one measurement;
- ``spread``: the median over models of the relative standard deviation of a model's medians
  across the repeats: how far a second measurement of the same model lands;
- ``gap``: the median relative difference between two models (mean of the repeats' medians);
- ``apart``: the pairs the front's tolerance (``studies.front.uncertainty``: the standard error of
  each median, or the spread of the protocol's attempts when larger) tells apart, per repeat (mean);
- ``flipped``: of the pairs told apart in two repeats, those whose order differs: pairs the front
  ranks on noise; ``flipped, SE only``: the same with the standard error alone (the tolerance
  before the attempts counted; also what measurements cached without their attempts give);
- ``steady``: pairs told apart in the same order in every repeat;
- ``s/model``: the wall time a measurement costs a trial.

Resumable: converted models and every measurement are cached in ``--out`` as they are made.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from evaluators.agent import cpu_features, device_info  # noqa: E402
from evaluators.devices import LocalDevice  # noqa: E402
from evaluators.runtime import Protocol  # noqa: E402
from studies.front import TrialPoint, uncertainty  # noqa: E402


@dataclasses.dataclass(frozen=True)
class Setting:
    name: str
    image_size: int
    threads: int
    clock: str = "wall"
    min_seconds: float = 0.5

    @property
    def key(self) -> str:
        return f"{self.image_size}-{self.clock}-{self.threads}-{self.min_seconds}"

    @property
    def protocol(self) -> Protocol:
        return Protocol(threads=self.threads, clock=self.clock, min_seconds=self.min_seconds)


SETTINGS = (
    Setting("32 wall 4 thr (the old default)", 32, 4),
    Setting("32 cpu 1 thr (the default)", 32, 1, "cpu"),
    Setting("32 cpu 1 thr 1.5 s", 32, 1, "cpu", 1.5),
    Setting("48 wall 4 thr", 48, 4),
    Setting("48 cpu 1 thr", 48, 1, "cpu"),
)


def models(image_size: int, sampled: int) -> dict[str, object]:
    """The float presets and ``sampled`` seeded candidates of the default space, at ``image_size``."""
    from search.calibrate import _RandomTrial
    from space.presets import FLOAT_PRESETS, preset
    from space.sampling import sample

    specs = {name: preset(name, image_size) for name in FLOAT_PRESETS}
    rng = np.random.default_rng(1)
    for number in range(sampled):
        specs[f"sampled-{number}"] = sample(_RandomTrial(rng), input_size=image_size)
    return specs


def converted(out: Path, image_size: int, name: str, spec) -> bytes:
    from search.calibrate import tflite_of

    path = out / f"{image_size}-{name}.tflite"
    if not path.exists():
        path.write_bytes(tflite_of(spec))
    return path.read_bytes()


def measured(cache: dict, key: str, measure) -> dict:
    if key not in cache:
        started = time.perf_counter()
        result = measure()
        cache[key] = {"median_ms": result["median_ms"], "cv": result["cv"], "runs": result["runs"],
                      "attempt_medians_ms": result["attempt_medians_ms"], "seconds": round(time.perf_counter() - started, 3), "load": os.getloadavg()[0]}
    return cache[key]


def point(result: dict, attempts: bool) -> TrialPoint:
    attrs = {"latency_cv": result["cv"], "latency_runs": result["runs"]}
    if attempts:
        attrs["latency_attempts_ms"] = result.get("attempt_medians_ms")
    return TrialPoint(0, 0, "COMPLETE", {"latency_ms": result["median_ms"]}, attrs=attrs)


def order(a: dict, b: dict, attempts: bool) -> int:
    """+1 / -1: ``a`` is faster / slower beyond the front's tolerance; 0: a tie."""
    tolerance = max(uncertainty(point(a, attempts), "latency_ms"), uncertainty(point(b, attempts), "latency_ms"))
    difference = b["median_ms"] - a["median_ms"]
    return int(np.sign(difference)) if abs(difference) > tolerance else 0


def verdicts(results: dict[str, list[dict]], attempts: bool) -> dict[str, float]:
    """Pairs told apart per repeat (mean), pairs told apart in opposite orders, pairs told apart alike in every repeat."""
    votes = [[order(a, b, attempts) for a, b in zip(results[x], results[y])] for x, y in itertools.combinations(results, 2)]
    told = [[vote for vote in pair if vote] for pair in votes]
    repeats = len(votes[0])
    return {"apart": sum(map(len, told)) / repeats, "flipped": sum(len(set(t)) > 1 for t in told),
            "steady": sum(len(t) == repeats and len(set(t)) == 1 for t in told)}


def figures(results: dict[str, list[dict]]) -> dict[str, float]:
    """The table's row for one setting: ``results`` holds each model's repeats."""
    medians = {name: np.array([r["median_ms"] for r in repeats]) for name, repeats in results.items()}
    means = {name: m.mean() for name, m in medians.items()}
    measurements = [r for repeats in results.values() for r in repeats]
    return {
        "ms": float(np.median(list(means.values()))),
        "cv": float(np.median([r["cv"] for r in measurements])),
        "spread": float(np.median([m.std() / m.mean() for m in medians.values()])),
        "gap": float(np.median([abs(means[a] - means[b]) / min(means[a], means[b])
                                for a, b in itertools.combinations(means, 2)])),
        "pairs": len(medians) * (len(medians) - 1) // 2,
        **verdicts(results, attempts=True),
        "flipped_se_only": verdicts(results, attempts=False)["flipped"],
        "seconds": float(np.mean([r["seconds"] for r in measurements])),
        "load": float(np.mean([r["load"] for r in measurements])),
    }


def table(rows: dict[str, dict]) -> str:
    header = ("| setting | median ms | cv | spread | gap | apart | flipped | steady | flipped, SE only | s/model | load |\n"
              "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    lines = [f"| {name} | {f['ms']:.3f} | {f['cv']:.1%} | {f['spread']:.1%} | {f['gap']:.1%} | "
             f"{f['apart']:.1f}/{f['pairs']} | {f['flipped']} | {f['steady']} | {f['flipped_se_only']} | "
             f"{f['seconds']:.1f} | {f['load']:.1f} |" for name, f in rows.items()]
    return "\n".join([header, *lines])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sampled", type=int, default=5, help="seeded candidates of the default space beside the presets")
    parser.add_argument("--settings", type=lambda text: [SETTINGS[int(i)] for i in text.split(",")], default=SETTINGS,
                        help="only these rows of SETTINGS, by index, e.g. 0,1")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "out" / "default_job_noise")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    cache_path = args.out / "measurements.json"
    cache = json.loads(cache_path.read_text()) if cache_path.exists() else {}
    specs = {size: models(size, args.sampled) for size in sorted({s.image_size for s in args.settings})}
    model_bytes = {(size, name): converted(args.out, size, name, spec)
                   for size, named in specs.items() for name, spec in named.items()}
    device = LocalDevice()  # threads capped at the cores, as in a search
    for repeat in range(args.repeats):
        for setting in args.settings:
            for name in specs[setting.image_size]:
                key = f"{setting.key}|{name}|{repeat}"
                measured(cache, key, lambda: device.measure(model_bytes[setting.image_size, name], setting.protocol))
                cache_path.write_text(json.dumps(cache, indent=1))
            print(f"repeat {repeat + 1}: {setting.name} done (load {os.getloadavg()[0]:.1f})", file=sys.stderr)

    info = device_info()
    print(f"\nhost: {info['cpu']}, {info['cores']} cores, features {','.join(cpu_features()) or '-'}; "
          f"{len(next(iter(specs.values())))} models (7 float presets, {args.sampled} sampled), {args.repeats} repeats; "
          f"load average now {', '.join(f'{x:.2f}' for x in os.getloadavg())}\n")
    rows = {s.name: figures({name: [cache[f"{s.key}|{name}|{r}"] for r in range(args.repeats)] for name in specs[s.image_size]})
            for s in args.settings}
    print(table(rows))
    (args.out / "summary.json").write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
