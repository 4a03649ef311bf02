"""What the sampling tests share."""

from __future__ import annotations

import optuna

from space.sampling import SearchSpace, sample


def sampled(count: int, space: SearchSpace = SearchSpace(), seed: int = 0):
    """``count`` pairs ``(trial, spec)`` of a random sampler's study over ``space`` at 32x32: each spec
    sampled from its trial, which is then told (so the next trial is asked afresh)."""
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    for _ in range(count):
        trial = study.ask()
        spec = sample(trial, space, input_size=32)
        study.tell(trial, 0.0)
        yield trial, spec
