"""The resolved configuration of a search: defaults <- TOML file <- command-line flags.

It is saved in the study (user attribute ``config``), so that continuing a study and the reports
know how it was made. Its fields, their checks and what each means for a continued study (the
roles of ``search.options``) are read off ``search.options.OPTIONS``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from search.options import (  # noqa: F401 - EARLY_STOP, LR_SCHEDULES and SAMPLERS are imported from here too
    BY_NAME, EARLY_STOP, KEYS_OF, LR_SCHEDULES, OPTIONS, RUN, SAMPLERS, STUDY, checked, latency_defaults, read_toml,
    space_of,
)

from studies.names import default_study_name  # noqa: F401 - start names its default study with it
from studies.metrics import ALIASES as OBJECTIVE_ALIASES  # metric names and aliases: one vocabulary
from studies.metrics import METRICS as OBJECTIVES
# Studies made before a key existed were run as these say; continuing one must not change its training.
BEFORE_KEYS = {"learning_rate": 1e-3, "lr_schedule": "constant", "enqueue_presets": False, "val_fraction": 0.2,
               "test_fraction": 0.0, "latency": "measured", "latency_clock": "wall", "rungs": None,
               "distill_term": "bce"}


class _Methods:
    """What a ``SearchConfig`` does beside holding its fields (see ``SearchConfig`` below)."""

    def __post_init__(self):
        for option in OPTIONS:
            object.__setattr__(self, option.name, checked(option, getattr(self, option.name)))
        clock, threads = latency_defaults(self.latency_clock, self.threads, local=not self.devices)
        object.__setattr__(self, "latency_clock", clock)
        object.__setattr__(self, "threads", threads)
        if self.latency_clock == "cpu" and self.threads != 1:
            raise ValueError("--latency-clock: cpu times one LiteRT thread; add --threads 1")
        objectives = tuple(_objective(name) for name in self.objectives)
        if len(objectives) < 2 or len(set(objectives)) != len(objectives):
            raise ValueError("--objectives: name two or three different ones of dice, latency, size")
        object.__setattr__(self, "objectives", objectives)
        self._resolve_rungs()
        if self.latency != "measured" and not (self.latency.startswith("predicted:") and self.predicted_device):
            raise ValueError(f"--latency: {self.latency!r} is neither 'measured' nor 'predicted:NAME' "
                             "(NAME: a device 'search device show' lists)")
        if self.distill:
            from search.teacher import parse_source
            from space.presets import PRESETS

            parse_source(self.distill, list(PRESETS))  # ValueError for a bad one
        self._check_input_sizes(self.space)  # validates the narrowing now, not in a worker

    def _resolve_rungs(self) -> None:
        """``auto`` as :func:`search.rungs.ladder` of the epochs, ``off`` (or a single rung) as
        ``None``, one fidelity; with rungs, the epochs are those of the last."""
        from search.rungs import ladder

        rungs = ladder(self.epochs, self.eta) if self.rungs == "auto" else None if self.rungs == "off" else self.rungs
        if rungs and len(rungs) == 1:  # one rung: one fidelity of that many epochs
            object.__setattr__(self, "epochs", rungs[0])
            rungs = None
        object.__setattr__(self, "rungs", tuple(rungs) if rungs else None)
        if self.rungs:
            object.__setattr__(self, "epochs", self.rung_plan.horizon)  # checks them; the most a candidate trains

    @property
    def predicted_device(self) -> str | None:
        """The device NAME of ``--latency predicted:NAME``, or ``None`` when latency is measured."""
        return self.latency.removeprefix("predicted:") if self.latency.startswith("predicted:") else None

    @property
    def rung_plan(self):
        """The :class:`search.rungs.Rungs` of ``--rungs`` and ``--eta``, or ``None`` (one fidelity)."""
        from search.rungs import Rungs

        return Rungs(tuple(self.rungs), self.eta) if self.rungs else None

    def _check_input_sizes(self, space) -> None:
        """Every input size must suit every depth the search may build, or every trial would fail."""
        from space.presets import PRESETS
        from space.spec import halvable

        depths = {depth: "--depths" for depth in space.depths}
        if self.enqueue_presets:
            depths.update({spec.depth: "the presets (--no-presets to skip them)" for spec in PRESETS.values() if spec.depth not in depths})
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
        """How every candidate is trained: the keyword arguments of ``evaluators.train.fit_candidate``, and
        ``fine_tune_epochs`` after a structured compression (``search.pipeline.compress``)."""
        return dict(batch_size=self.batch_size, seed=self.seed, learning_rate=self.learning_rate, schedule=self.lr_schedule,
                    precision=self.precision, fine_tune_epochs=self.fine_tune_epochs)

    @property
    def constraints(self) -> dict[str, float]:
        limits = {"max_latency_ms": self.max_latency_ms, "max_size_kb": self.max_size_kb, "min_dice": self.min_dice}
        return {key: value for key, value in limits.items() if value is not None}

    @property
    def space(self):
        return space_of({name: getattr(self, name) for name in BY_NAME})

    def to_dict(self) -> dict[str, Any]:
        return {option.name: getattr(self, option.name) for option in OPTIONS if not option.secret}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "SearchConfig":
        unknown = sorted(set(data) - set(BY_NAME))
        if unknown:
            raise ValueError(f"config: unknown keys {', '.join(unknown)}; valid keys are {', '.join(sorted(BY_NAME))}")
        return cls(**data)

    @classmethod
    def from_stored(cls, stored: dict[str, Any]) -> "SearchConfig":
        """The configuration saved in a study (keys this version does not know are left out)."""
        return cls.from_dict(_made_with(stored))

    def replace(self, **changes) -> "SearchConfig":
        return dataclasses.replace(self, **changes)


def _field(option):
    kind = tuple[option.kind, ...] if option.many else option.kind
    return option.name, kind | None if option.default is None else kind, dataclasses.field(default=option.default)


SearchConfig = dataclasses.make_dataclass("SearchConfig", [_field(option) for option in OPTIONS], bases=(_Methods,), frozen=True)
SearchConfig.__module__ = __name__
SearchConfig.__doc__ = "A search's settings: one frozen field per option of ``search.options.OPTIONS``, checked by it."


def _plain(value):
    return list(value) if isinstance(value, tuple) else value


def _objective(name: str) -> str:
    try:
        return OBJECTIVE_ALIASES[name]
    except KeyError:
        raise ValueError(f"--objectives: unknown {name!r}; choose from dice, latency, size") from None


def _made_with(stored: dict[str, Any]) -> dict[str, Any]:
    """What a stored study was made with: the defaults, then ``BEFORE_KEYS`` for keys added since,
    then its stored keys that this version knows, read as the version that stored them ran them."""
    values = {option.name: option.default for option in OPTIONS}
    values.update({**BEFORE_KEYS, **{key: value for key, value in stored.items() if key in BY_NAME}})
    if values["data_limit"] == 0:
        values["data_limit"] = None  # a TOML file could give 0, which loaded all the data
    values["enqueue_presets"] = bool(values["enqueue_presets"])
    return values


def resolve(flags: dict[str, Any], config_file: str | None = None) -> tuple[SearchConfig, set[str]]:
    """Defaults, then the TOML file, then the flags that were given (``None`` means not given); and
    the keys given, in the file or as flags."""
    values = read_toml(config_file) if config_file else {}
    values.update({key: value for key, value in flags.items() if value is not None})
    return SearchConfig.from_dict(values), set(values)


def merge_with_stored(given: SearchConfig, explicit: set[str], stored: dict[str, Any]) -> SearchConfig:
    """The configuration to continue a study with: the keys that define it as it was made (given
    explicitly with another value: an error, the study's numbers would stop being comparable), the
    kept keys as stored unless given now, and the run keys as given now."""
    made = _made_with(stored)
    for key in sorted(explicit & KEYS_OF[STUDY]):
        if _plain(getattr(given, key)) != _plain(made[key]):
            raise ValueError(
                f"{BY_NAME[key].option_string}: study {given.study!r} was made with {_plain(made[key])!r}, "
                f"not {_plain(getattr(given, key))!r}; drop the flag to continue it, or start a new study with --study NAME"
            )
    chosen = {key: getattr(given, key) for key in BY_NAME if key in explicit or key in KEYS_OF[RUN]}
    try:
        return SearchConfig(**{**made, **chosen})
    except ValueError as error:
        raise ValueError(f"study {given.study!r} was stored with a value this version refuses, {error}") from None
