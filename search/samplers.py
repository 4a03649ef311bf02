"""The sampler registry: one factory per ``--sampler`` name.

``SAMPLER_NAMES`` is what ``--sampler`` accepts; :func:`make_sampler` builds one. Optuna is
imported inside the factories, so this module stays light for ``search --help``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from search.config import SearchConfig


def _tpe(config: SearchConfig, seed: int, constraints):
    import optuna

    return optuna.samplers.TPESampler(
        seed=seed, multivariate=True, group=True, constant_liar=config.workers > 1,
        n_startup_trials=max(4, min(10, config.budget // 5)), constraints_func=constraints,
    )


def _nsga2(config: SearchConfig, seed: int, constraints):
    import optuna

    # The default population of 50 would make a 50-trial search a random search.
    population = max(4, min(50, config.budget // 5))
    return optuna.samplers.NSGAIISampler(population_size=population, seed=seed, constraints_func=constraints)


def _random(config: SearchConfig, seed: int, constraints):
    import optuna

    return optuna.samplers.RandomSampler(seed=seed)


def _gp(config: SearchConfig, seed: int, constraints):
    import optuna

    try:
        import torch  # noqa: F401
    except ImportError:
        others = ", ".join(name for name in SAMPLERS if name != "gp")
        raise ValueError(f"--sampler gp needs PyTorch: pip install torch (CPU build), or choose one of {others}") from None
    return optuna.samplers.GPSampler(seed=seed, constraints_func=constraints)


SAMPLERS = {"tpe": _tpe, "nsga2": _nsga2, "random": _random, "gp": _gp}
SAMPLER_NAMES = tuple(SAMPLERS)  # for search.config's ``SAMPLERS`` check


def sampler_factory(name: str):
    """The factory ``(config, seed, constraints_func) -> sampler`` of ``name``; ``ValueError`` lists the names."""
    try:
        return SAMPLERS[name]
    except KeyError:
        raise ValueError(f"sampler: unknown {name!r}; choose one of {', '.join(SAMPLERS)}") from None


def make_sampler(config: SearchConfig, stream: int = 0):
    """The sampler for ``config``, seeded with ``config.seed`` and ``stream``.

    Workers make one per trial with the trial number as ``stream``: the draws then depend on the
    trial, not on the process, so workers, restarted searches and machines sharing a study never
    repeat each other's candidates (a sampler seeded once per process would start its sequence anew).
    """
    factory = sampler_factory(config.sampler)
    seed = (config.seed * 1000 + stream) % 2 ** 32
    constraints = _constraints_func(len(config.constraints)) if config.constraints else None
    return factory(config, seed, constraints)


def _constraints_func(count: int):
    """None: no sampler needs one. In Optuna 5 TPE, NSGA-II and GP read every trial's constraint
    values from ``FrozenTrial.constraints``, where ``search.trial`` stores them (``trial.set_constraint``,
    one per limit; ``count`` of them). A ``constraints_func`` (deprecated since Optuna 5) would only copy
    them into a second system attribute, which ``FrozenTrial.constraints`` merges with the first, so
    that each constraint counts twice. RandomSampler takes no ``constraints_func`` at all: its draws
    ignore past trials, feasible or not."""
    return None
