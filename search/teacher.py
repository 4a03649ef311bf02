"""The study's distillation teacher (``--distill``): made once per study, kept in the result store.

``--distill unet`` (any preset name) trains that preset once, for the study's ``--epochs`` (with
rungs: the last rung's), on the study's training split, before the workers start. Its
probabilities on the training images are computed once, stored, and handed to every worker, so a
student's training step costs no teacher pass (see :mod:`evaluators.distill`). Presets are
references and train without it. (A trained trial as the teacher, ``trial:N``, is not offered yet:
the option defines the study, so the study would have to exist before its own teacher.)
"""

from __future__ import annotations

import io

import numpy as np


def check_source(source: str, presets) -> None:
    """``ValueError`` naming the valid teachers, for a ``--distill`` that is not a preset."""
    if source not in presets:
        raise ValueError(f"--distill: unknown teacher {source!r}; give a preset: {', '.join(presets)}")


def prepare(config, data, store, note) -> None:
    """Make the study's teacher if it has none yet: its targets on ``data.train_images``, stored."""
    if not config.distill or store.teacher(config.study) is not None:
        return
    note(f"distillation: training the teacher {config.distill} for {config.epochs} epochs, once for this study")
    targets, figures = _targets(config, data)
    buffer = io.BytesIO()
    np.save(buffer, targets.astype(np.float32))
    store.save_teacher(config.study, config.distill, buffer.getvalue(), figures)


def _targets(config, data) -> tuple[np.ndarray, dict]:
    from evaluators.distill import teacher_targets
    from search.pipeline import Stopwatch, train
    from space.presets import preset

    trained = train(preset(config.distill, config.image_size, config.channels), data, config.epochs, config.training, Stopwatch())
    return teacher_targets(trained.model, data.train_images), {"float_dice": float(trained.history.val_dice[-1]),
                                                               "epochs": config.epochs}


def teacher_of(config, store):
    """The :class:`evaluators.distill.Teacher` of the study, or ``None`` without ``--distill``."""
    if not config.distill:
        return None
    from evaluators.distill import Teacher

    stored = store.teacher(config.study)
    if stored is None:
        raise RuntimeError(f"study {config.study!r} has no teacher stored; 'search start' makes it before the workers start")
    return Teacher(np.load(io.BytesIO(stored["targets"])), config.distill_weight, config.distill_temperature)
