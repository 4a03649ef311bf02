"""What the sampler benchmarks share: small real searches, one SQLite file, hypervolume tables."""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

OUT = Path(__file__).parent / "out"
STORAGE = f"sqlite:///{(OUT / 'samplers.db').resolve()}"
# Small settings on the built-in data; one LiteRT thread timed by CPU clock, so that timings stay
# comparable while other work shares this 2-core machine. The training is the one the recorded
# runs had (before the cosine schedule and batch 8 became the defaults), so that their studies
# keep their meaning; --batch-size, --learning-rate and --lr-schedule choose another.
SMALL = dict(data="synthetic", data_limit=160, image_size=32, epochs=3, batch_size=16, learning_rate=1e-3,
             lr_schedule="constant", threads=1, latency_clock="cpu", widths=(4, 8, 12, 16), rungs=None)
OPTIONS = ("data", "image_size", "data_limit", "epochs", "batch_size", "learning_rate", "lr_schedule")


def host_line() -> str:
    """The CPU, its ranking features, the cores and the load now: what every printed figure names."""
    import os

    from evaluators.agent import device_info

    info = device_info()
    features = "/".join(info["cpu_features"]) or "no AVX2"
    return f"{info['cpu']} ({features}), {info['cores']} cores, load {os.getloadavg()[0]:.1f}"


def add_data_options(parser) -> None:
    """--data, --image-size, --data-limit, --epochs and the training options of every search (default SMALL)."""
    parser.add_argument("--data", default=SMALL["data"], help="synthetic (default) or a folder of images/ and masks/")
    for key in OPTIONS[1:]:
        parser.add_argument(f"--{key.replace('_', '-')}", type=type(SMALL[key]), default=SMALL[key])


def settings_of(args) -> dict:
    """SMALL with the data and training options of ``args``."""
    return {**SMALL, **{key: getattr(args, key) for key in OPTIONS}}


def tag(settings: dict) -> str:
    """'' for SMALL (the studies and files of earlier runs keep their names), else what differs."""
    if settings == SMALL:
        return ""
    data = f"-{Path(settings['data']).name}-{settings['image_size']}px-n{settings['data_limit']}-e{settings['epochs']}"
    training = {key: settings[key] for key in ("batch_size", "learning_rate", "lr_schedule")}
    if training == {key: SMALL[key] for key in training}:
        return data  # the name runs made before the training options had
    return f"{data}-b{training['batch_size']}-lr{training['learning_rate']:g}-{training['lr_schedule']}"


def run(sampler: str, seed: int, budget: int, settings: dict = SMALL) -> str:
    """Run (or finish) one search; returns its study name."""
    from search.config import SearchConfig
    from search.loop import run_search
    from search.progress import make_reporter

    OUT.mkdir(parents=True, exist_ok=True)
    name = study_name(sampler, seed, budget, settings)
    print(f"== {name}", file=sys.stderr)
    data = settings["data"] if settings["data"] == "synthetic" else str(Path(settings["data"]).resolve())
    config = SearchConfig(budget=budget, study=name, storage=STORAGE, sampler=sampler, seed=seed, **{**settings, "data": data})
    run_search(config, set(), make_reporter("bar"))
    return name


def study_name(sampler: str, seed: int, budget: int, settings: dict = SMALL) -> str:
    return f"{sampler}-seed{seed}-budget{budget}{tag(settings)}"


def finished(name: str, budget: int) -> bool:
    """Whether the study exists and all ``budget`` of its trials have finished."""
    import optuna

    from studies.storage import open_storage

    try:
        study = optuna.load_study(study_name=name, storage=open_storage(STORAGE))
    except KeyError:
        return False
    return sum(t.state.is_finished() for t in study.get_trials(deepcopy=False)) >= budget


def points_of(name: str):
    import optuna

    from studies.front import study_points
    from studies.storage import open_storage

    return study_points(optuna.load_study(study_name=name, storage=open_storage(STORAGE)))


def hypervolume_table(volumes: dict[str, list[float]]) -> tuple[list[str], dict]:
    """Markdown rows and a JSON-friendly summary: each sampler's hypervolumes, mean and std."""
    rows = ["| sampler | hypervolume per seed | mean | std |", "| --- | --- | --- | --- |"]
    summary = {}
    for sampler, values in volumes.items():
        mean = statistics.mean(values)
        std = statistics.stdev(values) if len(values) > 1 else 0.0
        summary[sampler] = {"hypervolumes": values, "mean": mean, "std": std}
        rows.append(f"| {sampler} | {', '.join(f'{v:.4f}' for v in values)} | {mean:.4f} | {std:.4f} |")
    return rows, summary


def jsonable(settings: dict) -> dict:
    return {key: list(value) if isinstance(value, tuple) else value for key, value in settings.items()}
