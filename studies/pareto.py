"""Pareto fronts, the knee, hypervolume and picking one trial: computation only.

Rendering lives elsewhere (``studies.figures``, ``studies.status``), as in Optuna where
``_get_pareto_front_info`` computes and ``_get_pareto_front_plot`` draws.

Metrics are the names of ``studies.METRICS`` (``dice`` maximized, ``latency_ms`` and ``size_kb``
minimized); ``latency`` and ``size`` are accepted as short names everywhere. A
:class:`TrialPoint` knows every metric it can: the study's objective values first, the trial's
user attributes (``dice``, ``latency_ms``, ``size_bytes``) for the others.

Which trials count: :func:`candidates` are COMPLETE, feasible (no ``infeasible`` attribute and no
positive constraint) and have every metric asked for; fronts, hypervolumes, knees and picks are
computed on candidates only.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from studies import METRICS

ALIASES = {"dice": "dice", "latency": "latency_ms", "latency_ms": "latency_ms", "size": "size_kb", "size_kb": "size_kb"}
UNITS = {"dice": "", "latency_ms": " ms", "size_kb": " KB"}
IDEAL = {"dice": 1.0, "latency_ms": 0.0, "size_kb": 0.0}
"""The best value each metric could take; the hypervolume is normalised between it and the reference."""
NAMED_RULES = {"knee": "knee", "max-dice": "max:dice", "min-latency": "min:latency", "min-size": "min:size"}
RULE_FORMS = (
    "knee, max-dice, min-latency, min-size, or conditions and one goal separated by commas, "
    "e.g. 'dice>=0.8,min:latency' or 'latency<=20,max:dice' or 'size<=500,knee' "
    "(metrics: dice, latency [ms], size [KB]; operators: >= <= > <; goals: max:METRIC, min:METRIC, knee)"
)
_CONSTRAINTS_KEY = "constraints"  # where Optuna keeps the values of constraints_func


def metric_name(name: str) -> str:
    """The canonical metric for ``name`` (``latency`` -> ``latency_ms``); ``ValueError`` listing the choices."""
    key = name.strip().lower() if isinstance(name, str) else name
    if key not in ALIASES:
        raise ValueError(f"unknown metric {name!r}; choose one of dice, latency (ms), size (KB)")
    return ALIASES[key]


def _metrics(metrics: Iterable[str] | None, points: Sequence["TrialPoint"] = ()) -> tuple[str, ...]:
    if metrics is None:
        metrics = points[0].objectives if points and points[0].objectives else tuple(METRICS)
    names = tuple(dict.fromkeys(metric_name(m) for m in metrics))
    if not names:
        raise ValueError("no metric given; choose from dice, latency, size")
    return names


def _sign(metric: str) -> float:
    """+1 for minimized metrics, -1 for maximized ones: ``sign * value`` is a loss."""
    return -1.0 if METRICS[metric] == "maximize" else 1.0


# -- points --------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class TrialPoint:
    """What the Pareto computations need of one trial.

    ``values``: every metric known for the trial, by canonical name. ``objectives``: the study's
    objective metrics, in order. ``feasible``: no ``infeasible`` attribute and no positive
    constraint. ``attrs``: the trial's user attributes (conventions in :mod:`studies`).
    """

    number: int
    trial_id: int
    state: str
    values: dict[str, float]
    objectives: tuple[str, ...] = tuple(METRICS)
    attrs: dict[str, Any] = dataclasses.field(default_factory=dict)
    feasible: bool = True
    preset: str | None = None

    @property
    def complete(self) -> bool:
        return self.state == "COMPLETE"

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

    def describe(self, metrics: Iterable[str] = tuple(METRICS)) -> str:
        """``trial 7 (dice 0.812, latency 23.40 ms, size 310.2 KB)``."""
        parts = [format_value(m, self.values.get(m)) for m in metrics]
        return f"trial {self.number} ({', '.join(parts)})"


def format_value(metric: str, value: float | None) -> str:
    """``dice 0.812``, ``latency 23.40 ms``, ``size 310.2 KB``."""
    label = {"dice": "dice", "latency_ms": "latency", "size_kb": "size"}.get(metric, metric)
    if value is None:
        return f"{label} ?"
    text = {"dice": f"{value:.3f}", "latency_ms": f"{value:.2f}", "size_kb": f"{value:.1f}"}.get(metric, f"{value:g}")
    return f"{label} {text}{UNITS.get(metric, '')}"


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def objective_names(study) -> tuple[str, ...]:
    """The study's objective metrics: its metric names, or ``METRICS`` when it has three unnamed objectives."""
    names = study.metric_names
    if names:
        return tuple(ALIASES.get(n, n) for n in names)
    if len(study.directions) == len(METRICS):
        return tuple(METRICS)
    return ()


def from_trial(trial, objectives: Sequence[str] = tuple(METRICS)) -> TrialPoint:
    """A :class:`TrialPoint` from an Optuna ``FrozenTrial`` whose objectives are ``objectives``."""
    attrs = dict(trial.user_attrs)
    size_bytes = _number(attrs.get("size_bytes"))
    values = {
        "dice": _number(attrs.get("dice")),
        "latency_ms": _number(attrs.get("latency_ms")),
        "size_kb": size_bytes / 1024 if size_bytes is not None else None,
    }
    if trial.values is not None and len(trial.values) == len(objectives):
        values.update({name: _number(v) for name, v in zip(objectives, trial.values)})
    constraints = trial.system_attrs.get(_CONSTRAINTS_KEY) or ()
    feasible = not attrs.get("infeasible") and all(c <= 0 for c in constraints)
    return TrialPoint(
        number=trial.number,
        trial_id=trial._trial_id,
        state=trial.state.name,
        values={k: v for k, v in values.items() if v is not None},
        objectives=tuple(objectives),
        attrs=attrs,
        feasible=feasible,
        preset=attrs.get("preset"),
    )


def study_points(study) -> list[TrialPoint]:
    """Every trial of an Optuna study as a :class:`TrialPoint`, in trial-number order."""
    objectives = objective_names(study)
    return [from_trial(trial, objectives) for trial in study.get_trials(deepcopy=False)]


# -- fronts --------------------------------------------------------------------------------------
def candidates(points: Iterable[TrialPoint], metrics: Iterable[str] | None = None) -> list[TrialPoint]:
    """The COMPLETE, feasible points that have every metric in ``metrics``."""
    points = list(points)
    names = _metrics(metrics, points)
    return [p for p in points if p.complete and p.feasible and all(m in p.values for m in names)]


def dominates(a: TrialPoint, b: TrialPoint, metrics: Sequence[str]) -> bool:
    """``a`` is no worse than ``b`` in every metric and better in one."""
    la = [_sign(m) * a.values[m] for m in metrics]
    lb = [_sign(m) * b.values[m] for m in metrics]
    return all(x <= y for x, y in zip(la, lb)) and any(x < y for x, y in zip(la, lb))


def front(points: Iterable[TrialPoint], metrics: Iterable[str] | None = None) -> list[TrialPoint]:
    """The non-dominated candidates on ``metrics`` (default: the study's objectives), by trial number.

    Points with equal values are all kept (neither dominates the other).
    """
    points = list(points)
    names = _metrics(metrics, points)
    pool = candidates(points, names)
    return sorted(
        (p for p in pool if not any(dominates(q, p, names) for q in pool)),
        key=lambda p: p.number,
    )


# -- hypervolume ---------------------------------------------------------------------------------
def default_reference(
    points: Iterable[TrialPoint],
    metrics: Iterable[str] | None = None,
    constraints: dict[str, float] | None = None,
) -> dict[str, float]:
    """A reference point: Dice 0; latency and size from the study's constraints where set
    (``max_latency_ms``, ``max_size_kb``, see :func:`study_constraints`), else 1.1 x the worst
    value among the candidates.

    Hypervolumes are comparable only under the same reference: pass a fixed one to compare
    studies (say, samplers); this default suits one study's own history.
    """
    points = list(points)
    names = _metrics(metrics, points)
    pool = candidates(points, names)
    constraints = constraints or {}
    reference = {}
    for m in names:
        if METRICS[m] == "maximize":
            reference[m] = 0.0
        elif constraints.get(f"max_{m}") is not None and constraints[f"max_{m}"] > 0:
            reference[m] = float(constraints[f"max_{m}"])
        else:
            worst = max((p.values[m] for p in pool), default=0.0)
            reference[m] = 1.1 * worst if worst > 0 else 1.0
    return reference


def study_constraints(study) -> dict[str, float]:
    """``min_dice``, ``max_latency_ms``, ``max_size_kb`` from the study's ``config`` user attribute, where set."""
    config = study.user_attrs.get("config") or {}
    keys = ("min_dice", "max_latency_ms", "max_size_kb")
    return {k: float(config[k]) for k in keys if isinstance(config, dict) and _number(config.get(k)) is not None}


def _losses(points: Sequence[TrialPoint], metrics: Sequence[str], reference: dict[str, float]) -> np.ndarray:
    """Normalised losses: 0 at ``IDEAL``, 1 at ``reference``, for every metric."""
    rows = []
    for m in metrics:
        span = reference[m] - IDEAL[m]
        if span == 0 or _sign(m) * span < 0:
            raise ValueError(f"reference {m}={reference[m]:g} is not worse than the ideal {IDEAL[m]:g}; choose a worse value")
        rows.append([(p.values[m] - IDEAL[m]) / span for p in points])
    return np.asarray(rows, dtype=float).T.reshape(len(points), len(metrics))


def hypervolume(
    points: Iterable[TrialPoint],
    metrics: Iterable[str] | None = None,
    reference: dict[str, float] | None = None,
) -> float:
    """The fraction (0 to 1) of the box between ``IDEAL`` and ``reference`` dominated by the candidates.

    Each metric is normalised to a loss: Dice ``(1 - dice) / (1 - ref)``, latency and size
    ``value / ref``. Candidates worse than the reference in any metric add nothing. Uses Optuna's
    exact hypervolume (WFG); ``reference`` defaults to :func:`default_reference`.
    """
    from studies.optuna_internals import compute_hypervolume

    points = list(points)
    names = _metrics(metrics, points)
    reference = _reference(points, names, reference)
    pool = front(points, names)
    if not pool:
        return 0.0
    losses = _losses(pool, names, reference)
    losses = losses[np.all(losses <= 1.0, axis=1)]
    if len(losses) == 0:
        return 0.0
    return float(compute_hypervolume(losses, np.ones(len(names)), assume_pareto=True))


def _reference(points, names, reference) -> dict[str, float]:
    if reference is None:
        return default_reference(points, names)
    given = {metric_name(k): float(v) for k, v in reference.items()}
    missing = [m for m in names if m not in given]
    if missing:
        raise ValueError(f"reference: no value for {', '.join(missing)}; give one for each of {', '.join(names)}")
    return given


def hypervolume_history(
    points: Iterable[TrialPoint],
    metrics: Iterable[str] | None = None,
    reference: dict[str, float] | None = None,
) -> list[tuple[int, float]]:
    """``[(trial number, hypervolume of the candidates up to it)]`` for every finished trial, in number order.

    One reference for the whole history (default: :func:`default_reference` of all points), so
    the curve never goes down.
    """
    points = sorted(points, key=lambda p: p.number)
    names = _metrics(metrics, points)
    reference = _reference(points, names, reference)
    history, current, value = [], [], 0.0
    for point in points:
        if point.state not in ("COMPLETE", "PRUNED", "FAIL"):
            continue
        if candidates([point], names) and not any(dominates(q, point, names) for q in current):
            current = [q for q in current if not dominates(point, q, names)] + [point]
            value = hypervolume(current, names, reference)
        history.append((point.number, value))
    return history


# -- knee ----------------------------------------------------------------------------------------
def knee(points: Iterable[TrialPoint], metrics: Iterable[str] | None = None) -> TrialPoint:
    """The knee of the front of ``points``: the member closest to the utopia point.

    Each metric is scaled to [0, 1] over the front (0 = best member, 1 = worst), and the knee is
    the member with the smallest Euclidean distance to (0, ..., 0), the point that would be best
    in everything; ties go to the lower trial number. (Not "farthest from the line joining the
    extremes", which is ill-defined in 3-D when extremes coincide.) ``LookupError`` if no candidate.
    """
    points = list(points)
    names = _metrics(metrics, points)
    members = front(points, names)
    if not members:
        raise LookupError("no complete feasible trial yet, so there is no knee; wait for the search or see 'search status'")
    losses = np.array([[_sign(m) * p.values[m] for m in names] for p in members], dtype=float)
    low, high = losses.min(axis=0), losses.max(axis=0)
    span = np.where(high > low, high - low, 1.0)
    distances = np.linalg.norm((losses - low) / span, axis=1)
    best = min(range(len(members)), key=lambda i: (round(float(distances[i]), 12), members[i].number))
    return members[best]


# -- pick ----------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Condition:
    """``metric op threshold``, e.g. ``dice >= 0.8``."""

    metric: str
    op: str
    threshold: float

    def holds(self, point: TrialPoint) -> bool:
        value = point.values[self.metric]
        return {">=": value >= self.threshold, "<=": value <= self.threshold,
                ">": value > self.threshold, "<": value < self.threshold}[self.op]

    def violation(self, point: TrialPoint) -> float:
        """How far ``point`` misses the condition, relative to the threshold (0 if it holds)."""
        if self.holds(point):
            return 0.0
        return abs(point.values[self.metric] - self.threshold) / max(abs(self.threshold), 1e-9)

    def __str__(self) -> str:
        short = {"latency_ms": "latency", "size_kb": "size"}.get(self.metric, self.metric)
        return f"{short}{self.op}{self.threshold:g}"


@dataclasses.dataclass(frozen=True)
class Rule:
    """A parsed pick rule: conditions, then a goal (``("max", m)``, ``("min", m)`` or ``("knee", None)``)."""

    text: str
    conditions: tuple[Condition, ...]
    goal: tuple[str, str | None]

    @property
    def metrics(self) -> tuple[str, ...]:
        names = [c.metric for c in self.conditions] + ([self.goal[1]] if self.goal[1] else [])
        return tuple(dict.fromkeys(names))


_CONDITION = re.compile(r"^([a-z_]+)\s*(>=|<=|>|<)\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:e[-+]?\d+)?)$")
_GOAL = re.compile(r"^(max|min)\s*:\s*([a-z_]+)$")


def parse_rule(text: str) -> Rule:
    """Parse a pick rule strictly (see ``RULE_FORMS``); ``ValueError`` naming the bad part and the valid forms."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"empty pick rule; use {RULE_FORMS}")
    conditions, goals = [], []
    for term in (t.strip().lower() for t in text.split(",")):
        term = NAMED_RULES.get(term, term)
        if term == "knee":
            goals.append(("knee", None))
        elif match := _GOAL.match(term):
            goals.append((match.group(1), _rule_metric(match.group(2), text)))
        elif match := _CONDITION.match(term):
            conditions.append(Condition(_rule_metric(match.group(1), text), match.group(2), float(match.group(3))))
        else:
            raise ValueError(f"pick rule {text!r}: cannot read {term!r}; use {RULE_FORMS}")
    if len(goals) != 1:
        what = "no goal" if not goals else f"{len(goals)} goals"
        raise ValueError(f"pick rule {text!r} has {what}; give exactly one of max:METRIC, min:METRIC, knee; use {RULE_FORMS}")
    return Rule(text=text.strip(), conditions=tuple(conditions), goal=goals[0])


def _rule_metric(name: str, text: str) -> str:
    if name not in ALIASES:
        raise ValueError(f"pick rule {text!r}: unknown metric {name!r}; metrics are dice, latency (ms), size (KB)")
    return ALIASES[name]


def pick(points: Iterable[TrialPoint], rule: str | Rule, metrics: Iterable[str] | None = None) -> TrialPoint:
    """The trial chosen by ``rule`` among the candidates (complete and feasible).

    ``knee`` is the knee of the front on ``metrics`` (default: the study's objectives) of the
    candidates that meet the conditions; ``max:m``/``min:m`` the best in ``m``, ties broken by the
    other metrics, then by the lower trial number. Errors: ``ValueError`` for a bad rule,
    ``LookupError`` when no trial qualifies, naming the failed condition and the closest trial.
    """
    rule = parse_rule(rule) if isinstance(rule, str) else rule
    points = list(points)
    names = _metrics(metrics, points)
    needed = tuple(dict.fromkeys(rule.metrics + (names if rule.goal[0] == "knee" else ())))
    pool = candidates(points, needed)
    if not pool:
        raise LookupError("no complete feasible trial to pick from yet; wait for the search or see 'search status'")
    chosen = [p for p in pool if all(c.holds(p) for c in rule.conditions)]
    if not chosen:
        raise LookupError(_unsatisfied(rule, pool))
    kind, metric = rule.goal
    if kind == "knee":
        return knee(chosen, names)
    others = [m for m in tuple(METRICS) if m != metric]

    def key(p: TrialPoint):
        primary = p.values[metric] if kind == "min" else -p.values[metric]
        return (primary, *(_sign(m) * p.values[m] if m in p.values else math.inf for m in others), p.number)

    return min(chosen, key=key)


def _unsatisfied(rule: Rule, pool: list[TrialPoint]) -> str:
    met = pool
    for index, condition in enumerate(rule.conditions):
        remaining = [p for p in met if condition.holds(p)]
        if not remaining:
            break
        met = remaining
    if index == 0:
        head = f"no complete feasible trial meets {condition}"
    else:
        before = " and ".join(str(c) for c in rule.conditions[:index])
        head = f"{len(met)} trial(s) meet {before} but none of them also meets {condition}"
    closest = min(pool, key=lambda p: (sum(c.violation(p) for c in rule.conditions), p.number))
    return f"{head} (rule {rule.text!r}); closest is {closest.describe()}; relax the rule or see 'search status'"
