"""The study's distillation teacher (``--distill``): made once per study, kept in the result store.

Two sources:

- ``--distill unet`` (any preset name) trains that preset once, for the study's ``--epochs`` (with
  rungs: the last rung's), on the study's training split, before the workers start;
- ``--distill trial:N@STUDY`` takes trial N of STUDY (in the same storage) as it was stored: its
  ``.tflite`` artifact runs in LiteRT on this study's training images, so nothing trains again and
  a model trained longer elsewhere (a search at more epochs, or a confirmed one) can teach. The
  study is named because the option defines the study: a study cannot hold its own teacher before
  it exists.

Either way the teacher's probabilities on the training images are computed once, stored, and
handed to every worker, so a student's training step costs no teacher pass (see
:mod:`evaluators.distill`). Presets are references and train without it.
"""

from __future__ import annotations

import dataclasses
import io
import re

import numpy as np

TRIAL_SOURCE = re.compile(r"trial:(\d+)@(.+)")


@dataclasses.dataclass(frozen=True)
class StoredTrial:
    """A ``trial:N@STUDY`` teacher: trial ``number`` of ``study``."""

    number: int
    study: str


def parse_source(source: str, presets) -> str | StoredTrial:
    """A preset name, or the :class:`StoredTrial` of ``trial:N@STUDY``; ``ValueError`` naming both forms otherwise."""
    if source in presets:
        return source
    match = TRIAL_SOURCE.fullmatch(source)
    if match is None:
        raise ValueError(f"--distill: unknown teacher {source!r}; give a preset ({', '.join(presets)}) "
                         "or a stored trial as trial:N@STUDY")
    return StoredTrial(int(match.group(1)), match.group(2))


def stored_teacher(config, storage=None) -> tuple[bytes, dict] | None:
    """The artifact and figures of a ``trial:N@STUDY`` teacher (``None`` for a preset teacher);
    ``ValueError`` in one line when that study, trial or artifact is not in the study's storage
    (``storage``: it opened), or the model reads other images than this study's (channels)."""
    import optuna

    from space.presets import PRESETS
    from studies.storage import open_storage
    from studies.store import ResultStore

    source = parse_source(config.distill, list(PRESETS)) if config.distill else None
    if not isinstance(source, StoredTrial):
        return None
    storage = storage or open_storage(config.storage, create=False)
    try:
        study = optuna.load_study(study_name=source.study, storage=storage)
    except KeyError:
        raise ValueError(f"--distill {config.distill}: no study {source.study!r} in this storage; "
                         "'search list' shows the studies") from None
    trial = next((t for t in study.get_trials(deepcopy=False) if t.number == source.number), None)
    if trial is None or trial.state.name != "COMPLETE":
        raise ValueError(f"--distill {config.distill}: study {source.study!r} has no complete trial {source.number}; "
                         f"'search status --study {source.study}' lists them")
    with ResultStore(config.storage) as store:
        artifact = store.artifact(trial._trial_id)
    if artifact is None:
        raise ValueError(f"--distill {config.distill}: trial {source.number} of {source.study!r} kept no model "
                         "(pruned by 'search prune'?); choose another trial")
    channels = _input_channels(artifact)
    if channels != config.channels:
        raise ValueError(f"--distill {config.distill}: that model reads {channels}-channel images, this study "
                         f"{config.channels}-channel ones; choose a teacher trained on the same kind of images")
    return artifact, {"dice": trial.user_attrs.get("dice"), "summary": trial.user_attrs.get("summary"),
                      "epochs": trial.user_attrs.get("epochs"), "trial": source.number, "study": source.study}


def _input_channels(artifact: bytes) -> int:
    from evaluators.accuracy import input_shape, interpreter

    return int(input_shape(interpreter(artifact, threads=1))[-1])


def prepare(config, data, store, note) -> None:
    """Make the study's teacher if it has none yet: its targets on ``data.train_images``, stored."""
    if not config.distill or store.teacher(config.study) is not None:
        return
    stored = stored_teacher(config)
    if stored is None:
        note(f"distillation: training the teacher {config.distill} for {config.epochs} epochs, once for this study")
        targets, figures = _trained_targets(config, data)
    else:
        note(f"distillation: the teacher is {config.distill} as stored; its predictions on the training images, once")
        targets, figures = _stored_targets(stored, data)
    buffer = io.BytesIO()
    np.save(buffer, targets.astype(np.float32))
    store.save_teacher(config.study, config.distill, buffer.getvalue(), figures)


def _trained_targets(config, data) -> tuple[np.ndarray, dict]:
    from evaluators.distill import teacher_targets
    from search.pipeline import Stopwatch, train
    from space.presets import preset

    trained = train(preset(config.distill, config.image_size, config.channels), data, config.epochs, config.training, Stopwatch())
    return teacher_targets(trained.model, data.train_images), {"float_dice": float(trained.history.val_dice[-1]),
                                                               "epochs": config.epochs}


def _stored_targets(stored: tuple[bytes, dict], data) -> tuple[np.ndarray, dict]:
    from evaluators.accuracy import predict_tflite

    artifact, figures = stored
    return predict_tflite(artifact, data.train_images), figures


def teacher_of(config, store):
    """The :class:`evaluators.distill.Teacher` of the study, or ``None`` without ``--distill``."""
    if not config.distill:
        return None
    from evaluators.distill import Teacher

    stored = store.teacher(config.study)
    if stored is None:
        raise RuntimeError(f"study {config.study!r} has no teacher stored; 'search start' makes it before the workers start")
    return Teacher(np.load(io.BytesIO(stored["targets"])), config.distill_weight, config.distill_temperature,
                   config.distill_term)
