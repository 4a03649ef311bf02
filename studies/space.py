"""What takes the space in a database, and keeping the models of the front only.

:func:`database_space` and :func:`study_space` measure (sums of blob and JSON lengths per
``naslite_`` table, through :class:`studies.store.ResultStore`); :func:`prune` deletes the
``.tflite`` artifacts and previews of a study's trials off the front (never the front's, never
Optuna's rows, never a trial still running) and records in the study which models it deleted
(``PRUNED_ATTR``: trial number -> SHA-256), so an export of such a trial can say so.
"""

from __future__ import annotations

import dataclasses

from studies.front import front, knee, study_points

KINDS = ("artifacts", "previews", "checkpoints", "confirmations", "measurements")
KEEP_RULES = ("front", "knee")
PRUNED_ATTR = "pruned_models"
FINISHED = ("COMPLETE", "PRUNED", "FAIL")


def format_bytes(count: float) -> str:
    """``812 B``, ``3.4 KB``, ``50.1 MB``, ``1.20 GB`` (1 KB = 1024 bytes)."""
    for unit, scale in (("GB", 1024 ** 3), ("MB", 1024 ** 2), ("KB", 1024)):
        if count >= scale:
            return f"{count / scale:.{2 if unit == 'GB' else 1}f} {unit}"
    return f"{int(count)} B"


def database_space(store) -> dict[str, int]:
    """Bytes per kind of row over the whole database; with an SQLite or PostgreSQL file also
    ``total``, and ``optuna`` (the rest: Optuna's rows, indexes and page overhead) and, SQLite
    only, ``free`` (pages ``search prune --vacuum`` gives back)."""
    space = store.stored_bytes()
    size = store.database_bytes()
    if size is not None:
        space["optuna"] = max(0, size["total"] - size.get("free", 0) - sum(space[k] for k in KINDS))
        space.update(size)
    return space


def study_space(store, study) -> dict[str, int]:
    """Bytes per kind of row of one study's trials, and ``models``: how many artifacts it holds."""
    ids = {trial._trial_id for trial in study.get_trials(deepcopy=False)}
    return {**store.stored_bytes(ids, study.study_name), "models": len(store.artifact_trial_ids(study.study_name))}


def format_space(space: dict[str, int]) -> str:
    """``stored: artifacts 38.2 MB (74 models), previews 9.1 MB, ...`` (kinds that hold nothing left out)."""
    parts = []
    for kind in (*KINDS, "optuna", "free"):
        if space.get(kind):
            label = {"optuna": "Optuna's rows and indexes", "free": "free pages"}.get(kind, kind)
            models = f" ({space['models']} models)" if kind == "artifacts" and "models" in space else ""
            parts.append(f"{label} {format_bytes(space[kind])}{models}")
    total = f"{format_bytes(space['total'])}: " if "total" in space else ""
    return f"space: {total}" + (", ".join(parts) or "nothing stored")


@dataclasses.dataclass(frozen=True)
class Pruned:
    """What :func:`prune` did (or, with ``dry_run``, would do)."""

    kept: tuple[int, ...]  # trial numbers whose models stay
    dropped: tuple[int, ...]  # trial numbers whose models were deleted
    freed: int  # bytes of the deleted artifacts and previews


def keep_numbers(study, keep: str) -> set[int]:
    """The trial numbers ``keep`` names: the front (``front``) or the knee alone (``knee``)."""
    if keep not in KEEP_RULES:
        raise ValueError(f"--keep {keep}: unknown; choose one of {', '.join(KEEP_RULES)}")
    points = study_points(study)
    members = front(points)
    if not members:
        raise LookupError(f"study {study.study_name} has no front yet, so nothing says which models to keep; "
                          "let 'search start' finish a trial first")
    return {knee(points).number} if keep == "knee" else {p.number for p in members}


def prune(study, store, keep: str = "front", dry_run: bool = False) -> Pruned:
    """Delete the artifacts and previews of ``study``'s finished trials outside ``keep``."""
    kept = keep_numbers(study, keep)
    stored = store.artifact_trial_ids(study.study_name)
    trials = [t for t in study.get_trials(deepcopy=False) if t.state.name in FINISHED and t.number not in kept]
    with_models = [t for t in trials if t._trial_id in stored]
    ids = {t._trial_id for t in trials}  # previews of trials whose artifact went before go too
    if dry_run:
        freed = store.stored_bytes(ids)
        return Pruned(tuple(sorted(kept)), tuple(t.number for t in with_models), freed["artifacts"] + freed["previews"])
    record = dict(study.user_attrs.get(PRUNED_ATTR) or {})
    record.update({str(t.number): store.artifact_sha256(t._trial_id) for t in with_models})
    study.set_user_attr(PRUNED_ATTR, record)  # first: a crash before the deletion leaves a record, not a silent gap
    return Pruned(tuple(sorted(kept)), tuple(t.number for t in with_models), store.drop_models(ids))


def pruned_sha256(study, number: int) -> str | None:
    """The SHA-256 of trial ``number``'s model if ``search prune`` deleted it, else ``None``."""
    return (study.user_attrs.get(PRUNED_ATTR) or {}).get(str(number))
