"""The studies in a storage: listing them, the most recent one, loading one by name."""

from __future__ import annotations

import dataclasses
import datetime
from typing import Any

import optuna

from studies.metrics import state_counts
from studies.names import default_name_date
from studies.storage.rdb import open_storage, storage_url


@dataclasses.dataclass(frozen=True)
class StudyInfo:
    """One study in a storage: names, directions and trial counts by state (``TrialState`` names)."""

    name: str
    study_id: int
    directions: tuple[str, ...]
    metric_names: tuple[str, ...] | None
    states: dict[str, int]
    last_activity: datetime.datetime | None
    user_attrs: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def n_trials(self) -> int:
        return sum(self.states.values())

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["last_activity"] = self.last_activity.isoformat() if self.last_activity else None
        data["n_trials"] = self.n_trials
        return data


def _as_storage(storage: "str | optuna.storages.BaseStorage"):
    return open_storage(storage, create=False) if isinstance(storage, str) else storage


def list_studies(storage: "str | optuna.storages.BaseStorage") -> list[StudyInfo]:
    """Every study in ``storage`` (a URL, opened for reading only, or an open storage), oldest first.

    A URL of a missing SQLite file is a ``FileNotFoundError``; nothing is created.
    """
    storage = _as_storage(storage)
    return [_info(storage, study) for study in sorted(storage.get_all_studies(), key=lambda s: s._study_id)]


def _info(storage, study) -> StudyInfo:
    trials = storage.get_all_trials(study._study_id, deepcopy=False)
    states = state_counts(trials)
    times = [t for trial in trials for t in (trial.datetime_start, trial.datetime_complete) if t]
    names = study.system_attrs.get("study:metric_names")
    return StudyInfo(
        name=study.study_name,
        study_id=study._study_id,
        directions=tuple(d.name.lower() for d in study.directions),
        metric_names=tuple(names) if names else None,
        states=states,
        last_activity=max(times) if times else None,
        user_attrs=dict(study.user_attrs),
    )


def latest_study(infos: list[StudyInfo]) -> StudyInfo:
    """The default study (:mod:`studies.names`): the newest ``search-<date>`` study, else the study
    with the most recent trial activity (studies without trials rank by id after them)."""
    if not infos:
        raise LookupError("the storage holds no study yet; run 'search start' first or pass --storage URL")
    dated = [info for info in infos if default_name_date(info.name)]
    return max(dated or infos, key=lambda info: (
        default_name_date(info.name) or "", info.last_activity is not None, info.last_activity or datetime.datetime.min,
        info.study_id))


def load_study(storage: "str | optuna.storages.BaseStorage", name: str | None = None) -> optuna.Study:
    """The study ``name`` in ``storage`` (a URL, opened for reading only, or an open storage); the most
    recent one if ``None``.

    Errors: ``LookupError`` naming the available studies when ``name`` is not there, or when the
    storage holds no study; ``FileNotFoundError`` for a missing SQLite file.
    """
    storage = _as_storage(storage)
    if name is None:
        name = latest_study(list_studies(storage)).name
    try:
        return optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        available = [info.name for info in list_studies(storage)]
        if not available:
            raise LookupError(f"no study {name!r}: {storage_url(storage)} holds no study yet; run 'search start' first") from None
        raise LookupError(
            f"no study {name!r} in {storage_url(storage)}; available: {', '.join(available)} (see 'search studies')"
        ) from None
