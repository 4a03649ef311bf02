"""Hypervolume and picking one trial by a rule: computation only, on the front of :mod:`studies.front`.

Rendering lives elsewhere (``studies.figures``, ``studies.status``), as in Optuna where
``_get_pareto_front_info`` computes and ``_get_pareto_front_plot`` draws. Metric names, short names
and ideal values are :mod:`studies.metrics`; which trials count (candidates: COMPLETE and feasible),
the front and the knee are :mod:`studies.front`.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Iterable, Sequence

import numpy as np

from studies.front import TrialPoint, candidates, front, knee, metrics_for
from studies.metrics import ALIASES, CHOICES, IDEAL, METRICS, SHORT, limit_name, metric_name, sign

NAMED_RULES = {"knee": "knee", "max-dice": "max:dice", "min-latency": "min:latency", "min-size": "min:size"}
RULE_FORMS = (
    "knee, max-dice, min-latency, min-size, or conditions and one goal separated by commas, "
    "e.g. 'dice>=0.8,min:latency' or 'latency<=20,max:dice' or 'size<=500,knee' "
    f"(metrics: {CHOICES.replace('(', '[').replace(')', ']')}; operators: >= <= > <; goals: max:METRIC, min:METRIC, knee)"
)


# -- hypervolume ---------------------------------------------------------------------------------
def default_reference(
    points: Iterable[TrialPoint],
    metrics: Iterable[str] | None = None,
    limits: dict[str, float] | None = None,
) -> dict[str, float]:
    """A reference point: Dice 0; latency and size from the study's limits where set
    (``max_latency_ms``, ``max_size_kb``, see :func:`studies.front.study_limits`), else 1.1 x the
    worst value among the candidates.

    Hypervolumes are comparable only under the same reference: pass a fixed one to compare
    studies (say, samplers); this default suits one study's own history.
    """
    points = list(points)
    names = metrics_for(points, metrics)
    pool = candidates(points, names)
    limits = limits or {}
    reference = {}
    for m in names:
        limit = limits.get(limit_name(m))
        if METRICS[m] == "maximize":
            reference[m] = 0.0
        elif limit is not None and limit > 0:
            reference[m] = float(limit)
        else:
            worst = max((p.values[m] for p in pool), default=0.0)
            reference[m] = 1.1 * worst if worst > 0 else 1.0
    return reference


def _losses(points: Sequence[TrialPoint], metrics: Sequence[str], reference: dict[str, float]) -> np.ndarray:
    """Normalised losses: 0 at ``IDEAL``, 1 at ``reference``, for every metric."""
    rows = []
    for m in metrics:
        span = reference[m] - IDEAL[m]
        if span == 0 or sign(m) * span < 0:
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
    names = metrics_for(points, metrics)
    reference = _reference(points, names, reference)
    pool = front(points, names)
    if not pool:
        return 0.0
    losses = _losses(pool, names, reference)
    losses = losses[np.all(losses <= 1.0, axis=1)]
    if len(losses) == 0:
        return 0.0
    return float(compute_hypervolume(losses, np.ones(len(names)), assume_pareto=True))


def hypervolume_above(
    points: Iterable[TrialPoint],
    baseline: TrialPoint,
    metrics: Iterable[str] | None = None,
    reference: dict[str, float] | None = None,
) -> float:
    """:func:`hypervolume` with ``baseline``'s Dice as the reference's (a constant mask's,
    :func:`studies.front.constant_mask`): the share of the box the candidates reach beyond the
    trivial predictor, where the plain hypervolume also rewards cheap models that learned nothing."""
    points = list(points)
    names = metrics_for(points, metrics)
    floor = baseline.values["dice"]
    if "dice" not in names or floor >= IDEAL["dice"]:
        return 0.0
    return hypervolume(points, names, {**_reference(points, names, reference), "dice": floor})


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
    """``[(trial number, hypervolume of the trials up to it)]`` for every finished trial, in number order.

    Each value is :func:`hypervolume` of the trials so far, on the one front (a candidate's highest
    rung, near-ties decided as :func:`studies.front.front` decides them), so the last value is the
    study's hypervolume. One reference for the whole history (default: :func:`default_reference`
    of all points), so the values compare: the curve rises with each candidate that widens the
    front and can dip, a little, when a promotion supersedes a lower rung that scored better or a
    near-tie takes a member's place.
    """
    points = sorted(points, key=lambda p: p.number)
    names = metrics_for(points, metrics)
    reference = _reference(points, names, reference)
    history, finished, value = [], [], 0.0
    for point in points:
        if point.state not in ("COMPLETE", "PRUNED", "FAIL"):
            continue
        finished.append(point)
        if candidates([point], names):
            value = hypervolume(finished, names, reference)
        history.append((point.number, value))
    return history


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
        return f"{SHORT.get(self.metric, self.metric)}{self.op}{self.threshold:g}"


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
        raise ValueError(f"pick rule {text!r}: unknown metric {name!r}; metrics are {CHOICES}")
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
    names = metrics_for(points, metrics)
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
        return (primary, *(sign(m) * p.values[m] if m in p.values else math.inf for m in others), p.number)

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
