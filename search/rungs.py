"""Rungs: asynchronous successive halving with a Pareto-aware promotion rule (as Syne Tune's MOASHA).

``--rungs 2,6,18`` trains every sampled candidate for 2 epochs; whenever a worker is free it first
promotes, and only then takes a new candidate: at each rung below the top, the best ``1/eta`` of
the candidates that completed it (non-dominated sorting of Dice at that rung, latency and size;
within a rank, the higher Dice; never more than ``1/eta`` of the rung in all: :func:`promotions`)
go on to the next rung, from their stored weights and optimizer state, on a learning-rate
schedule that spans the last rung's epochs (so 2 -> 6 -> 18 trains as one 18-epoch run would).

Storage: one Optuna trial per candidate and rung. A promoted trial has its parent's parameters
(the sampler learns from every rung) and the user attributes ``rung`` (its index), ``parent``
(the trial number it goes on from) and ``candidate`` (the trial number of the candidate's first
rung). A candidate's figures are those of its highest completed rung: a trial with a completed
child is ``superseded`` and left off the front (:func:`studies.front.candidates`). Its latency is
timed once, at its first rung (``search.trial._parent_timing``).

The budget counts candidates, that is trials of the first rung; promotions come on top of it. The
presets are promoted by the same rule as every candidate (promoting them all took the whole budget
of a search at equal wall time: RESULTS.md), except the reference, ``unet``, which always goes on to
the last rung: "within 0.01 of unet's Dice" means unet trained as long as a candidate can be. A
preset left at a low rung is judged only against candidates trained no longer
(:func:`studies.front.preset_verdicts`); ``search confirm`` retrains any of them to equal epochs.
A promotion is claimed once: under the storage-wide lock, as a RUNNING trial made for the worker
that claimed it (a worker killed mid-promotion leaves a stale trial that is failed and retried
like any other).
"""

from __future__ import annotations

import dataclasses

from space.presets import REFERENCE
from studies.front import TrialPoint, candidates, nondominated_ranks

ETA = 3


def ladder(epochs: int, eta: int = ETA) -> tuple[int, ...]:
    """The rungs of ``--rungs auto``: ``epochs``, ``epochs/eta`` and ``epochs/eta**2`` (rounded, at
    least one epoch, repeats dropped): 9 -> 1,3,9; 18 -> 2,6,18; 2 -> 1,2; 1 -> 1, one fidelity."""
    return tuple(sorted({max(1, round(epochs / eta**k)) for k in (2, 1, 0)}))


@dataclasses.dataclass(frozen=True)
class Rungs:
    """The epochs a candidate has trained for at the end of each rung (increasing), and ``eta``."""

    epochs: tuple[int, ...]
    eta: int = ETA

    def __post_init__(self):
        if not self.epochs or any(e < 1 for e in self.epochs) or list(self.epochs) != sorted(set(self.epochs)):
            raise ValueError(f"--rungs: give increasing epochs, such as 2,6,18; got {','.join(map(str, self.epochs))}")
        if self.eta < 2:
            raise ValueError(f"--eta: must be at least 2, got {self.eta}")

    @property
    def horizon(self) -> int:
        """The epochs of the last rung: the length of every candidate's learning-rate schedule."""
        return self.epochs[-1]

    def stage(self, rung: int) -> tuple[int, int]:
        """``(epochs done before, epochs to train)`` at ``rung``."""
        before = self.epochs[rung - 1] if rung else 0
        return before, self.epochs[rung] - before


def promotions(points: list[TrialPoint], rungs: Rungs, metrics) -> list[TrialPoint]:
    """The candidates due for promotion now, the highest rung first, best first within a rung.

    A rung of ``n`` promotes at most ``n // eta`` in all (the reference aside): a candidate among the
    best ``n // eta`` waits while those promoted before fill that quota. Without the quota (plain
    ASHA) every re-ranking as the rung fills promotes its newcomers, and with three objectives a
    newcomer is so often non-dominated that 81% of a rung went on (RESULTS.md): the rungs then
    cost more epochs per candidate than single fidelity."""
    claimed = {p.attrs.get("parent") for p in points if p.attrs.get("parent") is not None}
    due = []
    for rung in reversed(range(len(rungs.epochs) - 1)):
        done = [p for p in candidates(points, metrics, latest=False) if p.rung == rung]
        reference = [p for p in done if p.preset == REFERENCE and p.number not in claimed]
        others = [p for p in done if p.preset != REFERENCE]
        places = len(done) // rungs.eta
        free = places - sum(p.number in claimed for p in others)
        best = [p for p in _ranked(others, metrics)[:places] if p.number not in claimed]
        due += reference + best[: max(0, free)]
    return due


def _ranked(points: list[TrialPoint], metrics) -> list[TrialPoint]:
    ranks = nondominated_ranks(points, metrics)
    order = sorted(range(len(points)), key=lambda i: (ranks[i], -points[i].values.get("dice", 0.0), points[i].number))
    return [points[i] for i in order]


def child_attrs(parent: TrialPoint) -> dict:
    """The user attributes a promoted trial starts with."""
    carried = {key: parent.attrs[key] for key in ("preset", "preset_params") if key in parent.attrs}
    return {**carried, "rung": parent.rung + 1, "parent": parent.number, "parent_id": parent.trial_id,
            "candidate": parent.attrs.get("candidate", parent.number)}


def claim_promotion(study, config, trained_here=frozenset()) -> int | None:
    """Under the storage-wide lock, make the first due promotion of ``study`` a RUNNING trial for the
    calling worker (with its parent's parameters) and return its id; ``None`` when none is due.
    The first due one whose parent the worker trained itself (trial numbers ``trained_here``) comes
    before the others: it trains on in the worker's live models, without a rebuild or a new trace."""
    rungs = config.rung_plan
    if rungs is None:
        return None
    from studies.front import study_points
    from studies.locks import storage_lock
    from studies.optuna_internals import create_running_trial

    with storage_lock(config.storage, f"rungs:{config.study}"):
        due = promotions(study_points(study), rungs, config.objectives)
        if not due:
            return None
        chosen = next((p for p in due if p.number in trained_here), due[0])
        parent = study._storage.get_trial(chosen.trial_id)
        return create_running_trial(study, parent.params, parent.distributions, child_attrs(chosen))
