"""The resolved configuration of a search: defaults <- TOML file <- command-line flags.

It is saved in the study (user attribute ``config``), so that continuing a study and the reports
know how it was made. Keys that define what a trial's numbers mean (data, training, objectives,
constraints, space) cannot change when a study is continued; the others (budget, workers,
timeout, sampler, devices) can.
"""

from __future__ import annotations

import dataclasses
import datetime
import tomllib
from pathlib import Path
from typing import Any

from studies.metrics import ALIASES as OBJECTIVE_ALIASES  # metric names and aliases: one vocabulary
from studies.metrics import METRICS as OBJECTIVES

SAMPLERS = ("tpe", "nsga2", "random", "gp")
EARLY_STOP = ("front", "cheaper", "off")  # see search.trial.Verdict
LR_SCHEDULES = ("cosine", "constant")  # see evaluators.train.learning_rate_schedule
# Studies made before a key existed were run as these say; continuing one must not change its training.
BEFORE_KEYS = {"learning_rate": 1e-3, "lr_schedule": "constant"}
RUN_KEYS = ("budget", "workers", "timeout", "sampler", "devices", "device_token", "study", "storage", "enqueue_presets",
            "early_stop")


@dataclasses.dataclass(frozen=True)
class SearchConfig:
    budget: int = 50
    study: str | None = None
    storage: str = "sqlite:///studies.db"
    data: str = "synthetic"
    image_size: int = 32
    channels: int = 3
    synthetic_count: int = 256
    data_limit: int | None = None
    epochs: int = 3
    batch_size: int = 8
    learning_rate: float = 2e-3
    lr_schedule: str = "cosine"
    devices: tuple[str, ...] = ()
    device_token: str | None = None
    threads: int = 4
    latency_clock: str = "wall"
    objectives: tuple[str, ...] = ("dice", "latency_ms", "size_kb")
    max_latency_ms: float | None = None
    max_size_kb: float | None = None
    min_dice: float | None = None
    block_kinds: tuple[str, ...] | None = None
    quant_modes: tuple[str, ...] | None = None
    depths: tuple[int, ...] | None = None
    widths: tuple[int, ...] | None = None
    groups: tuple[int, ...] | None = None
    dilations: tuple[int, ...] | None = None
    sparsities: tuple[float, ...] | None = None
    search_input_size: tuple[int, ...] | None = None
    sampler: str = "tpe"
    seed: int = 0
    workers: int = 1
    timeout: float | None = None
    enqueue_presets: bool = False
    early_stop: str = "front"

    def __post_init__(self):
        if self.budget < 1:
            raise ValueError(f"budget: must be at least 1, got {self.budget}")
        if self.workers < 1:
            raise ValueError(f"workers: must be at least 1, got {self.workers}")
        if self.epochs < 1 or self.batch_size < 1 or self.threads < 1:
            raise ValueError("epochs, batch_size and threads: must be at least 1")
        if not self.learning_rate > 0:
            raise ValueError(f"learning-rate: must be positive, got {self.learning_rate}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"lr-schedule: unknown {self.lr_schedule!r}; choose one of {', '.join(LR_SCHEDULES)}")
        if self.sampler not in SAMPLERS:
            raise ValueError(f"sampler: unknown {self.sampler!r}; choose one of {', '.join(SAMPLERS)}")
        if self.early_stop not in EARLY_STOP:
            raise ValueError(f"early-stop: unknown {self.early_stop!r}; choose one of {', '.join(EARLY_STOP)}")
        if self.latency_clock not in ("wall", "cpu"):
            raise ValueError(f"latency-clock: choose wall or cpu, not {self.latency_clock!r}")
        if self.latency_clock == "cpu" and self.threads != 1:
            raise ValueError("latency-clock: cpu times one LiteRT thread; add --threads 1")
        if self.channels not in (1, 3):
            raise ValueError(f"channels: choose 1 or 3, got {self.channels}")
        objectives = tuple(_objective(name) for name in self.objectives)
        if len(objectives) < 2 or len(set(objectives)) != len(objectives):
            raise ValueError("objectives: name two or three different ones of dice, latency, size")
        object.__setattr__(self, "objectives", objectives)
        for name in ("max_latency_ms", "max_size_kb"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ValueError(f"{name.replace('_', '-')}: must be positive, got {value}")
        if self.min_dice is not None and not 0 <= self.min_dice <= 1:
            raise ValueError(f"min-dice: must be between 0 and 1, got {self.min_dice}")
        self._check_input_sizes(self.space)  # validates the narrowing now, not in a worker

    def _check_input_sizes(self, space) -> None:
        """Every input size must suit every depth the search may build, or every trial would fail."""
        from space.presets import PRESETS
        from space.spec import halvable

        depths = {depth: "--depths" for depth in space.depths}
        if self.enqueue_presets:
            depths.update({spec.depth: "the presets (--enqueue-presets)" for spec in PRESETS.values() if spec.depth not in depths})
        flag = "--search-input-size" if self.search_input_size else "--image-size"
        for size in self.search_input_size or (self.image_size,):
            for depth, where in sorted(depths.items()):
                if not halvable(size, depth):
                    step = 2 ** depth
                    near = max(2 * step, round(size / step) * step)
                    raise ValueError(
                        f"{flag}: {size} cannot be halved {depth} times (depth {depth} of {where}); "
                        f"use a multiple of {step} such as {near}, or search smaller depths"
                    )

    @property
    def directions(self) -> list[str]:
        return [OBJECTIVES[name] for name in self.objectives]

    @property
    def training(self) -> dict[str, Any]:
        """How every candidate is trained: the keyword arguments of ``evaluators.train.fit_candidate``."""
        return dict(batch_size=self.batch_size, seed=self.seed, learning_rate=self.learning_rate, schedule=self.lr_schedule)

    @property
    def constraints(self) -> dict[str, float]:
        limits = {"max_latency_ms": self.max_latency_ms, "max_size_kb": self.max_size_kb, "min_dice": self.min_dice}
        return {key: value for key, value in limits.items() if value is not None}

    @property
    def space(self):
        from search.commands.options import space_from

        return space_from(dataclasses.asdict(self))

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data.pop("device_token")  # a secret: never stored
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "SearchConfig":
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - fields)
        if unknown:
            raise ValueError(f"config: unknown keys {', '.join(unknown)}; valid keys are {', '.join(sorted(fields))}")
        tuples = {f.name for f in dataclasses.fields(cls) if "tuple" in str(f.type)}
        return cls(**{key: tuple(value) if key in tuples and value is not None else value for key, value in data.items()})

    @classmethod
    def from_stored(cls, stored: dict[str, Any]) -> "SearchConfig":
        """The configuration saved in a study (keys this version does not know are left out)."""
        known = {f.name for f in dataclasses.fields(cls)}
        return cls.from_dict({**BEFORE_KEYS, **{key: value for key, value in stored.items() if key in known}})

    def replace(self, **changes) -> "SearchConfig":
        return dataclasses.replace(self, **changes)


def _objective(name: str) -> str:
    try:
        return OBJECTIVE_ALIASES[name]
    except KeyError:
        raise ValueError(f"objectives: unknown {name!r}; choose from dice, latency, size") from None


def read_toml(path: str | Path) -> dict[str, Any]:
    """The keys of a TOML config file (dashes or underscores), for ``--config``."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"--config {path}: no such file") from None
    except tomllib.TOMLDecodeError as error:
        raise ValueError(f"--config {path}: not valid TOML ({error})") from None
    data = data.get("search", data)
    return {key.replace("-", "_"): value for key, value in data.items()}


def resolve(flags: dict[str, Any], config_file: str | None = None) -> SearchConfig:
    """Defaults, then the TOML file, then the flags that were given (``None`` means not given)."""
    values = read_toml(config_file) if config_file else {}
    values.update({key: value for key, value in flags.items() if value is not None})
    return SearchConfig.from_dict(values)


def merge_with_stored(given: SearchConfig, explicit: set[str], stored: dict[str, Any]) -> SearchConfig:
    """The configuration to continue a study with: what it was made with, plus the run keys given now.

    A defining key given explicitly with another value is an error: the study's numbers would
    stop being comparable.
    """
    base = SearchConfig.from_stored(stored)
    for key in sorted(explicit - set(RUN_KEYS)):
        if key in stored and _normal(getattr(given, key)) != _normal(stored[key]):
            raise ValueError(
                f"--{key.replace('_', '-')}: study {given.study!r} was made with {stored[key]!r}, not {getattr(given, key)!r}; "
                "drop the flag to continue it, or start a new study with --study NAME"
            )
    runs = {key: getattr(given, key) for key in RUN_KEYS if key in explicit or key in ("study", "storage", "device_token")}
    return base.replace(**runs)


def _normal(value):
    return list(value) if isinstance(value, tuple) else value


def default_study_name(today: datetime.date | None = None) -> str:
    return f"search-{(today or datetime.date.today()).isoformat()}"
