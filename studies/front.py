"""Which trials count and which are best: THE feasibility rule, dominance, the Pareto front and the knee.

Every reader (status, figures, the dashboard, the report, ``export --pick``, the progress bar) and the
early-stopping rule of :mod:`search.trial` use these, so they all agree on one front.

Feasible: no ``infeasible`` user attribute and no positive constraint value (Optuna's convention:
a value <= 0 is satisfied). Constraint values are read in every form they were stored:

- Optuna 5: one system attribute ``constraints:NAME`` per constraint, written by
  ``trial.set_constraint`` (what :mod:`search.trial` writes, one per study limit: ``max_latency_ms``,
  ``max_size_kb``, ``min_dice``) or ``create_trial(constraints=...)``;
- Optuna before 5: the system attribute ``constraints``, a list a sampler's ``constraints_func`` wrote
  (these two forms are what ``FrozenTrial.constraints`` merges, and what the samplers and
  ``study.best_trials`` see);
- nas-lite before it wrote Optuna 5's form: the user attribute ``constraints``, a list in the order of
  the limits. Optuna never reads it (with the random sampler nothing copied it to the system
  attribute), so on such old studies this front may be smaller than ``best_trials``.

A :class:`TrialPoint` is what these computations need of one trial; :func:`candidates` are the
COMPLETE, feasible points with every metric asked for; fronts, knees (and in :mod:`studies.pareto`
hypervolumes and picks) are computed on candidates only.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from studies.metrics import (
    ALIASES, LIMITS, METRICS, finite, format_value, half_width, metric_name, metric_names, sign, trial_metrics,
)

LATENCY_RUNS = 50  # the protocol's minimum of timed runs, for trials that did not record their count
Z95 = 1.96  # two-sided 95% normal quantile
DICE_RESOLUTION = 0.001  # one unit of the Dice every reader prints: a difference nobody can see is a tie
MEDIAN_ERROR = 1.2533  # standard error of a median over that of a mean (sqrt(pi / 2)), normal samples


# -- feasibility -----------------------------------------------------------------------------------
def feasible(trial) -> bool:
    """THE rule (see the module docstring), for an Optuna ``FrozenTrial`` of any state."""
    return not trial.user_attrs.get("infeasible") and not any(_violated(v) for v in _constraint_values(trial))


def _constraint_values(trial) -> list:
    older = trial.user_attrs.get("constraints")
    return [*trial.constraints.values(), *(older if isinstance(older, (list, tuple)) else ())]


def _violated(value) -> bool:
    """Positive, or not a number: nas-lite stored an infinite value as JSON null."""
    number = value if isinstance(value, (int, float)) and not isinstance(value, bool) else float("inf")
    return not number <= 0


def limit_constraints(limits: dict[str, float], values: dict[str, float]) -> dict[str, float]:
    """The constraint value of each limit (``max_latency_ms``, ...) for metric ``values``: <= 0 when met."""
    return {name: float(sign(LIMITS[name]) * (values[LIMITS[name]] - limit)) for name, limit in limits.items()}


def study_limits(study) -> dict[str, float]:
    """``min_dice``, ``max_latency_ms``, ``max_size_kb`` where set: from the study's ``config`` user
    attribute (or, without one, its ``constraints`` user attribute, which held the same)."""
    source = study.user_attrs.get("config")
    if not isinstance(source, dict):
        source = study.user_attrs.get("constraints")
    source = source if isinstance(source, dict) else {}
    return {name: finite(source[name]) for name in LIMITS if finite(source.get(name)) is not None}


# -- points ----------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class TrialPoint:
    """What the Pareto computations need of one trial.

    ``values``: every metric known for the trial, by canonical name. ``objectives``: the study's
    objective metrics, in order. ``feasible``: :func:`feasible`. ``attrs``: the trial's user
    attributes (conventions in :mod:`studies`). ``study``: the study's name, when known; the trials
    of one study are scored on the same validation images, so their per-image Dice pair up.
    """

    number: int
    trial_id: int
    state: str
    values: dict[str, float]
    objectives: tuple[str, ...] = tuple(METRICS)
    attrs: dict[str, Any] = dataclasses.field(default_factory=dict)
    feasible: bool = True
    preset: str | None = None
    study: str | None = None

    @property
    def complete(self) -> bool:
        return self.state == "COMPLETE"

    @property
    def rung(self) -> int:
        """The rung the figures come from (0 without rungs; see :mod:`search.rungs`)."""
        return int(self.attrs.get("rung", 0))

    @property
    def summary(self) -> str:
        return str(self.attrs.get("summary", ""))

    @property
    def quant(self) -> str:
        return str(self.attrs.get("quant", ""))

    @property
    def infeasible(self) -> str | None:
        """Why a constraint rejected the trial, if it did."""
        if self.feasible:
            return None
        return str(self.attrs.get("infeasible") or "a constraint is violated")

    def value(self, metric: str) -> float | None:
        return self.values.get(metric_name(metric))

    @functools.cached_property
    def dice_per_image(self) -> np.ndarray | None:
        """Each validation image's Dice (``dice_per_image``), or ``None`` when none was stored."""
        stored = self.attrs.get("dice_per_image")
        if not isinstance(stored, list) or not stored or any(finite(v) is None for v in stored):
            return None
        return np.asarray(stored, dtype=np.float64)

    def describe(self, metrics: Iterable[str] = tuple(METRICS)) -> str:
        """``trial 7 (dice 0.812, latency 23.40 ms, size 310.2 KB)``."""
        parts = [format_value(m, self.values.get(m)) for m in metrics]
        return f"trial {self.number} ({', '.join(parts)})"


def objective_names(study) -> tuple[str, ...]:
    """The study's objective metrics: its metric names, or ``METRICS`` when it has three unnamed objectives."""
    names = study.metric_names
    if names:
        return tuple(ALIASES.get(n, n) for n in names)
    if len(study.directions) == len(METRICS):
        return tuple(METRICS)
    return ()


def from_trial(trial, objectives: Sequence[str] = tuple(METRICS), study: str | None = None) -> TrialPoint:
    """A :class:`TrialPoint` from an Optuna ``FrozenTrial`` whose objectives are ``objectives``:
    the objective values first, the user attributes for the other metrics."""
    attrs = dict(trial.user_attrs)
    values: dict[str, float | None] = dict(trial_metrics(attrs))
    if trial.values is not None and len(trial.values) == len(objectives):
        values.update({name: finite(v) for name, v in zip(objectives, trial.values)})  # a non-finite one is unknown
    return TrialPoint(
        number=trial.number,
        trial_id=trial._trial_id,
        state=trial.state.name,
        values={k: v for k, v in values.items() if v is not None},
        objectives=tuple(objectives),
        attrs=attrs,
        feasible=feasible(trial),
        preset=attrs.get("preset"),
        study=study,
    )


def study_points(study) -> list[TrialPoint]:
    """Every trial of an Optuna study as a :class:`TrialPoint`, in trial-number order."""
    objectives = objective_names(study)
    return [from_trial(trial, objectives, study.study_name) for trial in study.get_trials(deepcopy=False)]


# -- fronts ----------------------------------------------------------------------------------------
def metrics_for(points: Sequence[TrialPoint], metrics: Iterable[str] | None = None) -> tuple[str, ...]:
    """``metrics`` made canonical; by default the objectives of the points (or ``METRICS``)."""
    if metrics is None:
        metrics = points[0].objectives if points and points[0].objectives else tuple(METRICS)
    return metric_names(metrics)


def superseded(points: Iterable[TrialPoint]) -> set[int]:
    """The trials a completed trial went on from (its ``parent``: a lower rung of the same candidate)."""
    return {p.attrs["parent"] for p in points if p.complete and p.attrs.get("parent") is not None}


def candidates(points: Iterable[TrialPoint], metrics: Iterable[str] | None = None, *, latest: bool = True) -> list[TrialPoint]:
    """The COMPLETE, feasible points that have every metric in ``metrics``; with ``latest``, only
    each candidate's highest completed rung (see :mod:`search.rungs`)."""
    points = list(points)
    names = metrics_for(points, metrics)
    gone = superseded(points) if latest else set()
    return [p for p in points if p.complete and p.feasible and all(m in p.values for m in names) and p.number not in gone]


def uncertainty(point: TrialPoint, metric: str) -> float:
    """How far ``point``'s value of ``metric`` could move by its own measurement: half its Dice's 95%
    bootstrap interval over images (``dice_ci95``); for latency, the standard error of its median
    (1.25 * CV / sqrt(runs), ``latency_cv`` and ``latency_runs``) or, when larger, the standard
    deviation of the medians of the protocol's attempts (``latency_attempts_ms``: an unsteady model
    is timed up to 3 times, and on a busy machine those medians differ by far more than one run's
    standard error); 0 for size, and for trials that recorded no spread (studies made before these
    were stored)."""
    attrs = point.attrs
    if metric == "dice" and half_width(attrs.get("dice_ci95")) is not None:
        return half_width(attrs["dice_ci95"])
    if metric == "latency_ms" and finite(attrs.get("latency_cv")) and metric in point.values:
        runs = finite(attrs.get("latency_runs")) or LATENCY_RUNS
        return max(point.values[metric] * MEDIAN_ERROR * attrs["latency_cv"] / np.sqrt(runs), _attempt_spread(attrs))
    return 0.0


def _attempt_spread(attrs: dict) -> float:
    """The standard deviation of the attempts' median latencies; 0 with fewer than two."""
    stored = attrs.get("latency_attempts_ms")
    medians = [v for v in map(finite, stored) if v is not None] if isinstance(stored, list) else []
    return float(np.std(medians, ddof=1)) if len(medians) > 1 else 0.0


def tolerance(a: TrialPoint, b: TrialPoint, metric: str) -> float:
    """How large a difference in ``metric`` between ``a`` and ``b`` must be to count (see :func:`tolerances`)."""
    return float(tolerances([a, b], metric)[0, 1])


def tolerances(points: Sequence[TrialPoint], metric: str) -> np.ndarray:
    """The (n, n) matrix of :func:`tolerance`: the larger :func:`uncertainty` of each pair, except
    for the Dice of two trials scored on the same images (one study, the same number of per-image
    Dice): then half the 95% interval of their mean paired difference (normal, 1.96 x SD /
    sqrt(images)), at least :data:`DICE_RESOLUTION`.

    Paired is the sharper test: a model's hard images are hard for the others too, so the two
    unpaired intervals (each ± 0.04 on 26 images) call 0.55 and 0.59 a tie although one is better
    on nearly every image. The interval is the normal one, not a bootstrap, because the front
    compares every pair of trials: the SDs come from one covariance matrix per study."""
    spread = np.array([uncertainty(p, metric) for p in points], dtype=np.float64)
    matrix = np.maximum.outer(spread, spread)
    if metric == "dice":
        for members, scores in _same_images(points):
            covariance = np.atleast_2d(np.cov(scores, ddof=1))
            variance = np.diag(covariance)
            difference = np.maximum(variance[:, None] + variance[None, :] - 2 * covariance, 0.0)
            half = np.maximum(Z95 * np.sqrt(difference / scores.shape[1]), DICE_RESOLUTION)
            matrix[np.ix_(members, members)] = half
    return matrix


def _same_images(points: Sequence[TrialPoint]):
    """``(indices, per-image Dice (k, images))`` for each set of points scored on the same images."""
    groups: dict[tuple[str, int], list[int]] = {}
    for i, point in enumerate(points):
        scores = point.dice_per_image
        if point.study is not None and scores is not None and scores.size > 1:
            groups.setdefault((point.study, scores.size), []).append(i)
    for members in groups.values():
        if len(members) > 1:
            yield members, np.stack([points[i].dice_per_image for i in members])


def dominance(points: Sequence[TrialPoint], metrics: Sequence[str], ties: bool = True) -> np.ndarray:
    """The (n, n) boolean matrix of :func:`dominates`: ``[i, j]`` when ``points[i]`` dominates ``points[j]``."""
    count = len(points)
    no_worse, better = np.ones((count, count), dtype=bool), np.zeros((count, count), dtype=bool)
    for m in metrics:
        losses = sign(m) * np.array([p.values[m] for p in points], dtype=np.float64)  # lower is better
        gain = losses[None, :] - losses[:, None]  # [i, j] > 0: i is better than j
        tie = tolerances(points, m) if ties else np.zeros((count, count))
        no_worse &= gain >= -tie
        better |= gain > tie
    return no_worse & better


def dominates(a: TrialPoint, b: TrialPoint, metrics: Sequence[str], ties: bool = True) -> bool:
    """``a`` is no worse than ``b`` in every metric and better in one.

    With ``ties`` (the default everywhere), a difference within :func:`tolerance` is no difference:
    ``a`` must be better beyond it in one metric and may be worse within it in the others, so
    near-ties (Dice 0.59799 and 0.59798 on 26 images) are ties and the faster of the two dominates.
    """
    return bool(dominance([a, b], metrics, ties)[0, 1])


def tied(a: TrialPoint, b: TrialPoint, metrics: Sequence[str]) -> bool:
    """Every difference between ``a`` and ``b`` is within :func:`tolerance`: their own measurements
    cannot tell which is better, so :func:`dominates` finds neither."""
    return all(abs(a.values[m] - b.values[m]) <= tolerance(a, b, m) for m in metrics)


def front(points: Iterable[TrialPoint], metrics: Iterable[str] | None = None) -> list[TrialPoint]:
    """The non-dominated candidates on ``metrics`` (default: the study's objectives), by trial number.

    Tolerant dominance (:func:`dominates`) is not transitive: B may dominate A (a tie in Dice, B
    faster) and C dominate B while C does not dominate A (A's Dice is better beyond the tie). "Not
    dominated by any candidate" would then drop A although nothing kept beats it. So the front is
    the kernel of the dominance graph: candidates are decided dominators first, and one is a member
    unless a member dominates it. Every candidate left out is dominated by a member, and no member
    by another. Points with equal values are all kept (neither dominates the other).
    """
    points = list(points)
    names = metrics_for(points, metrics)
    pool = candidates(points, names)
    matrix = dominance(pool, names)
    dominators = [np.flatnonzero(matrix[:, i]).tolist() for i in range(len(pool))]
    return sorted((pool[i] for i in kernel(dominators, pool)), key=lambda p: p.number)


def kernel(dominators: list[list[int]], pool: Sequence[TrialPoint]) -> list[int]:
    """The indices of the members: each point once all its dominators are decided, a member unless
    one of them is. A cycle of near-ties (possible with three objectives) is entered at its best
    Dice, whose undecided dominators are then passed over."""
    member: dict[int, bool] = {}
    left = set(range(len(dominators)))
    while left:
        ready = sorted(i for i in left if all(j in member for j in dominators[i]))
        if not ready:
            ready = [max(left, key=lambda i: (pool[i].values.get("dice", 0.0), -pool[i].number))]
        for i in ready:
            member[i] = not any(member.get(j, False) for j in dominators[i])
        left.difference_update(ready)
    return [i for i, inside in member.items() if inside]


def nondominated_ranks(points: Sequence[TrialPoint], metrics: Sequence[str]) -> list[int]:
    """Each point's rank in non-dominated sorting (as in NSGA-II and MOASHA): 0 for the front of
    ``points``, 1 for the front of the rest, and so on; every point must have every metric."""
    ranks = [-1] * len(points)
    matrix = dominance(points, metrics)
    rank, left = 0, set(range(len(points)))
    while left:
        layer = {i for i in left if not any(matrix[j, i] for j in left)}
        layer = layer or set(left)  # tolerant dominance can cycle: what is left then shares a rank
        for i in layer:
            ranks[i] = rank
        left -= layer
        rank += 1
    return ranks


def preset_verdicts(points: Sequence[TrialPoint], metrics: Sequence[str]) -> list[tuple[TrialPoint, TrialPoint | None]]:
    """The tool's claim, checked: each complete preset with the searched front member that dominates
    it (the one with the highest Dice), or ``None``; presets in trial-number order.

    With rungs, a preset is judged at its highest rung against the front of the searched candidates
    as they stood at that rung or below (their earlier rungs count): a preset left at 2 epochs is
    not "beaten" by a candidate trained for 18."""
    presets = [p for p in candidates(points, metrics) if p.preset]
    searched = [p for p in points if not p.preset]
    fronts = {rung: front([p for p in searched if p.rung <= rung], metrics) for rung in {p.rung for p in presets}}
    verdicts = []
    for preset in sorted(presets, key=lambda p: p.number):
        better = [p for p in fronts[preset.rung] if dominates(p, preset, metrics)]
        verdicts.append((preset, max(better, key=lambda p: (p.values.get("dice", 0.0), -p.number), default=None)))
    return verdicts


def front_trials(trials, objectives: Sequence[str], study: str) -> list:
    """The Optuna trials (``FrozenTrial``) of the study named ``study`` on the front of ``objectives``,
    by trial number (none without objectives): the front of :func:`study_points`, paired ties included."""
    if not objectives:
        return []
    by_number = {trial.number: trial for trial in trials}
    points = [from_trial(trial, objectives, study) for trial in by_number.values() if trial.state.name == "COMPLETE"]
    return [by_number[point.number] for point in front(points, objectives)]


# -- the constant mask -----------------------------------------------------------------------------
CONSTANT_MASK = "constant_mask"  # study user attribute: each validation image's Dice of the better constant mask


def constant_mask(study) -> TrialPoint | None:
    """The better constant mask (every pixel foreground, or none) as a point of ``study``, scored on
    its validation images (what :mod:`search.loop` stored): what a model must beat to have learned
    anything. ``None`` for a study made before it was stored."""
    stored = study.user_attrs.get(CONSTANT_MASK)
    if not isinstance(stored, list) or not stored or any(finite(v) is None for v in stored):
        return None
    return TrialPoint(number=-1, trial_id=-1, state="COMPLETE", values={"dice": float(np.mean(stored))},
                      attrs={"dice_per_image": stored, "summary": "constant mask"}, study=study.study_name)


def no_better_than(point: TrialPoint, baseline: TrialPoint) -> bool:
    """Whether ``point``'s Dice does not beat ``baseline``'s beyond their tie (:func:`tolerance`:
    on the same images, half the 95% interval of the paired difference)."""
    return point.values["dice"] - baseline.values["dice"] <= tolerance(point, baseline, "dice")


# -- knee ------------------------------------------------------------------------------------------
def knee(points: Iterable[TrialPoint], metrics: Iterable[str] | None = None) -> TrialPoint:
    """The knee of the front of ``points``: the member closest to the utopia point.

    Each metric is scaled to [0, 1] over the front (0 = best member, 1 = worst), and the knee is
    the member with the smallest Euclidean distance to (0, ..., 0), the point that would be best
    in everything; ties go to the lower trial number. (Not "farthest from the line joining the
    extremes", which is ill-defined in 3-D when extremes coincide.) ``LookupError`` if no candidate.
    """
    points = list(points)
    names = metrics_for(points, metrics)
    members = front(points, names)
    if not members:
        raise LookupError("no complete feasible trial yet, so there is no knee; wait for the search or see 'search status'")
    losses = np.array([[sign(m) * p.values[m] for m in names] for p in members], dtype=float)
    low, high = losses.min(axis=0), losses.max(axis=0)
    span = np.where(high > low, high - low, 1.0)
    distances = np.linalg.norm((losses - low) / span, axis=1)
    best = min(range(len(members)), key=lambda i: (round(float(distances[i]), 12), members[i].number))
    return members[best]
