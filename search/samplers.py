"""One factory for the samplers ``--sampler`` names."""

from __future__ import annotations

from search.config import SAMPLERS, SearchConfig


def make_sampler(config: SearchConfig, stream: int = 0):
    """The sampler for ``config``, seeded with ``config.seed`` and ``stream``.

    Workers make one per trial with the trial number as ``stream``: the draws then depend on the
    trial, not on the process, so workers, restarted searches and machines sharing a study never
    repeat each other's candidates (a sampler seeded once per process would start its sequence anew).
    """
    import optuna

    seed = (config.seed * 1000 + stream) % 2 ** 32
    constraints = _constraints_func(len(config.constraints)) if config.constraints else None
    if config.sampler == "tpe":
        return optuna.samplers.TPESampler(
            seed=seed, multivariate=True, group=True, constant_liar=config.workers > 1,
            n_startup_trials=max(4, min(10, config.budget // 5)), constraints_func=constraints,
        )
    if config.sampler == "nsga2":
        # The default population of 50 would make a 50-trial search a random search.
        population = max(4, min(50, config.budget // 5))
        return optuna.samplers.NSGAIISampler(population_size=population, seed=seed, constraints_func=constraints)
    if config.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if config.sampler == "gp":
        try:
            import torch  # noqa: F401
        except ImportError:
            raise ValueError("--sampler gp needs PyTorch: pip install torch (CPU build), or choose tpe, nsga2 or random") from None
        return optuna.samplers.GPSampler(seed=seed, constraints_func=constraints)
    raise ValueError(f"sampler: unknown {config.sampler!r}; choose one of {', '.join(SAMPLERS)}")


def _constraints_func(count: int):
    """None: no sampler needs one. In Optuna 5 TPE, NSGA-II and GP read every trial's constraint
    values from ``FrozenTrial.constraints``, where ``search.trial`` stores them (``trial.set_constraint``,
    one per limit; ``count`` of them). A ``constraints_func`` (deprecated since Optuna 5) would only copy
    them into a second system attribute, which ``FrozenTrial.constraints`` merges with the first, so
    that each constraint counts twice. RandomSampler takes no ``constraints_func`` at all: its draws
    ignore past trials, feasible or not."""
    return None
