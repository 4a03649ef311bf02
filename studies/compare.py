"""Two studies side by side: their fronts, hypervolumes under one reference, and who dominates whom.

:func:`compare_studies` computes a :class:`Comparison` (on :mod:`studies.front` and
:mod:`studies.pareto`, nothing re-implemented); :func:`format_comparison` renders it for
``search compare`` (``Comparison.to_dict`` is the ``--json`` form).

The metrics are the objectives both studies share. The reference is the worse of the two
studies' own default references in each metric, so both hypervolumes measure the same box.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from studies import pareto
from studies.front import TrialPoint, dominates, front, knee, objective_names, study_points
from studies.metrics import METRICS, format_value, sign


@dataclasses.dataclass(frozen=True)
class Side:
    """One study of a comparison."""

    name: str
    front: list[TrialPoint]
    hypervolume: float
    best_dice: TrialPoint | None
    fastest: TrialPoint | None
    knee: TrialPoint | None
    devices: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"study": self.name, "front": [_row(p) for p in self.front], "hypervolume": self.hypervolume,
                "best_dice": _row(self.best_dice), "fastest": _row(self.fastest), "knee": _row(self.knee),
                "devices": list(self.devices)}


def _row(point: TrialPoint | None) -> dict[str, Any] | None:
    return None if point is None else {"number": point.number, "summary": point.summary, "preset": point.preset, **point.values}


@dataclasses.dataclass(frozen=True)
class Comparison:
    metrics: tuple[str, ...]
    reference: dict[str, float]
    a: Side
    b: Side
    a_dominates: list[tuple[TrialPoint, TrialPoint]]  # (member of a, member of b it dominates)
    b_dominates: list[tuple[TrialPoint, TrialPoint]]

    def to_dict(self) -> dict[str, Any]:
        pairs = lambda found: [[x.number, y.number] for x, y in found]  # noqa: E731
        return {"metrics": list(self.metrics), "reference": dict(self.reference), "a": self.a.to_dict(),
                "b": self.b.to_dict(), "a_dominates_b": pairs(self.a_dominates), "b_dominates_a": pairs(self.b_dominates)}


def shared_metrics(study_a, study_b) -> tuple[str, ...]:
    """The objectives of ``study_a`` that ``study_b`` has too; ``ValueError`` when there are none."""
    b = set(objective_names(study_b))
    shared = tuple(m for m in objective_names(study_a) if m in b and m in METRICS)
    if not shared:
        raise ValueError(f"studies {study_a.study_name} and {study_b.study_name} share no objective; compare studies "
                         "searched for the same metrics")
    return shared


def compare_studies(study_a, study_b) -> Comparison:
    """Compare two Optuna studies made by ``search start`` (see the module docstring)."""
    metrics = shared_metrics(study_a, study_b)
    points_a, points_b = study_points(study_a), study_points(study_b)
    front_a, front_b = front(points_a, metrics), front(points_b, metrics)
    # a study without a front has only a placeholder reference: it must not widen the other's box
    measured = [points for points, members in ((points_a, front_a), (points_b, front_b)) if members] or [points_a]
    references = [pareto.default_reference(points, metrics) for points in measured]
    reference = {m: max((r[m] for r in references), key=lambda v: sign(m) * v) for m in metrics}
    return Comparison(
        metrics=metrics,
        reference=reference,
        a=_side(study_a.study_name, points_a, front_a, metrics, reference),
        b=_side(study_b.study_name, points_b, front_b, metrics, reference),
        a_dominates=[(x, y) for x in front_a for y in front_b if dominates(x, y, metrics)],
        b_dominates=[(y, x) for y in front_b for x in front_a if dominates(y, x, metrics)],
    )


def _side(name, points, members, metrics, reference) -> Side:
    return Side(
        name=name,
        front=members,
        hypervolume=pareto.hypervolume(points, metrics, reference),
        best_dice=_best(members, "dice", metrics),
        fastest=_best(members, "latency_ms", metrics),
        knee=knee(points, metrics) if members else None,
        devices=tuple(sorted({str(p.attrs["device"]) for p in members if p.attrs.get("device")})),
    )


def _best(members: list[TrialPoint], metric: str, metrics) -> TrialPoint | None:
    if not members or metric not in metrics:
        return None
    return max(members, key=lambda p: (-sign(metric) * p.values[metric], -p.number))


# -- rendering -----------------------------------------------------------------------------------
def format_comparison(comparison: Comparison) -> str:
    """``search compare`` as text."""
    a, b, metrics = comparison.a, comparison.b, comparison.metrics
    reference = ", ".join(format_value(m, v) for m, v in comparison.reference.items())
    rows = [("", a.name, b.name), ("front size", str(len(a.front)), str(len(b.front))),
            ("hypervolume", f"{a.hypervolume:.4f}", f"{b.hypervolume:.4f}")]
    for label, field in (("best Dice", "best_dice"), ("fastest", "fastest"), ("knee", "knee")):
        rows.append((label, _point(getattr(a, field), metrics), _point(getattr(b, field), metrics)))
    width, column = max(len(r[0]) for r in rows), max(len(r[1]) for r in rows)
    lines = [f"metrics: {', '.join(metrics)}; hypervolume reference: {reference}"]
    lines += [f"{label:<{width}}  {left:<{column}}  {right}" for label, left, right in rows]
    lines += _dominance(a, b, comparison.a_dominates) + _dominance(b, a, comparison.b_dominates)
    if a.devices and b.devices and a.devices != b.devices:
        lines.append(f"note: latency was measured on different devices ({', '.join(a.devices)} vs "
                     f"{', '.join(b.devices)}); compare latencies with care")
    return "\n".join(lines)


def _point(point: TrialPoint | None, metrics) -> str:
    return "-" if point is None else f"#{point.number} " + ", ".join(format_value(m, point.values[m]) for m in metrics)


def _dominance(winner: Side, loser: Side, pairs) -> list[str]:
    beaten = sorted({y.number for _, y in pairs})
    head = f"{winner.name} dominates {len(beaten)} of {len(loser.front)} front member(s) of {loser.name}"
    lines = [head + (":" if pairs else "")]
    for x in winner.front:
        victims = [y for w, y in pairs if w is x]
        if victims:
            lines.append(f"  #{x.number} {x.summary} dominates " + ", ".join(f"#{y.number} {y.summary}" for y in victims))
    return lines
