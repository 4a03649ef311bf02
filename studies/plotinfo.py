"""What the figures and tables of a study show, as plain data: points, the front, the knee, the
recommended trials and the hypervolume history (computation only; :mod:`studies.scatter` and
:mod:`studies.figures` render it).

As in optuna's ``_get_pareto_front_info`` then ``_get_pareto_front_plot``: :func:`pareto_info`
reads a study once into a :class:`ParetoInfo` (one :class:`PlotPoint` per COMPLETE trial, front and
knee from :mod:`studies.front`, picks from :mod:`studies.pareto`, the study's limits).
"""

from __future__ import annotations

import collections
import dataclasses
import html
from collections.abc import Sequence

from space.spec import BLOCK_KINDS as SPACE_BLOCK_KINDS
from studies import pareto
from studies.front import TrialPoint, constant_mask, front, knee, study_limits, study_points, tied, uncertainty
from studies.metrics import METRICS, finite, half_width, with_spread

BLOCK_KINDS = (*SPACE_BLOCK_KINDS, "mixed")  # a trial's main kind, "mixed" when none leads
RECOMMENDED = (("knee", "knee"), ("max-dice", "best Dice"), ("min-latency", "fastest"))
"""``(pick rule, what it is)`` of the recommended trials, in the order they are shown."""


@dataclasses.dataclass(frozen=True)
class PlotPoint:
    """One COMPLETE trial as the figures see it."""

    number: int
    dice: float
    latency_ms: float
    size_kb: float
    kind: str
    quant: str
    preset: str | None = None
    infeasible: str | None = None
    hover: str = ""
    on_front: bool = False
    knee: bool = False
    texts: dict = dataclasses.field(default_factory=dict)  # spread_texts of the trial
    ties: tuple[int, ...] = ()  # front members this one ties with (studies.front.tied)

    def value(self, metric: str) -> float:
        return getattr(self, metric)

    def category(self, color_by: str) -> str:
        return self.kind if color_by == "kind" else self.quant


@dataclasses.dataclass(frozen=True)
class Recommendation:
    """A trial worth exporting: the pick rules that choose it (``knee``, ``max-dice``, ...) and its point."""

    rules: tuple[str, ...]
    point: PlotPoint

    @property
    def labels(self) -> list[str]:
        names = dict(RECOMMENDED)
        return [names[rule] for rule in self.rules]


@dataclasses.dataclass(frozen=True)
class ParetoInfo:
    """What the figures of one study need: its points, its trials for :mod:`studies.front` and
    :mod:`studies.pareto`, the knee's trial number, the study's limits and the Dice a constant mask
    scores on its validation images (:func:`studies.front.constant_mask`)."""

    study_name: str
    points: tuple[PlotPoint, ...]
    trials: tuple[TrialPoint, ...] = ()
    knee: int | None = None
    limits: dict = dataclasses.field(default_factory=dict)
    constant_mask_dice: float | None = None

    @property
    def feasible(self) -> list[PlotPoint]:
        return [p for p in self.points if not p.infeasible]

    @property
    def front(self) -> list[PlotPoint]:
        return sorted((p for p in self.points if p.on_front), key=lambda p: -p.dice)

    @property
    def knee_point(self) -> PlotPoint | None:
        return next((p for p in self.points if p.knee), None)


def pareto_info(study) -> ParetoInfo:
    """Read an Optuna study into plain points; front and knee over the feasible COMPLETE trials."""
    baseline = constant_mask(study)
    return info_from_points(study.study_name, study_points(study), study_limits(study),
                            baseline.values["dice"] if baseline else None)


def info_from_points(study_name: str, trials: Sequence[TrialPoint], limits: dict | None = None,
                     constant_mask_dice: float | None = None) -> ParetoInfo:
    """Build a :class:`ParetoInfo` from :class:`studies.front.TrialPoint` records."""
    plotted = [t for t in trials if t.complete and all(m in t.values for m in METRICS)]
    members = front(trials, tuple(METRICS))
    the_knee = knee(trials, tuple(METRICS)).number if members else None
    ties = front_ties(members)  # a key for every member, so "in ties" is "on the front"
    points = [_point(t, t.number in ties, t.number == the_knee, ties.get(t.number, ())) for t in plotted]
    return ParetoInfo(study_name, tuple(points), tuple(trials), the_knee, dict(limits or {}), constant_mask_dice)


def front_ties(members: Sequence[TrialPoint]) -> dict[int, tuple[int, ...]]:
    """Each front member's number -> the other members it ties with in every objective
    (:func:`studies.front.tied`): neither could be told better by its own measurements."""
    return {a.number: tuple(b.number for b in members if b is not a and tied(a, b, a.objectives or tuple(METRICS)))
            for a in members}


def spread_texts(trial: TrialPoint) -> dict[str, str]:
    """``dice``, ``latency_ms`` and (where stored) ``test_dice`` as :func:`studies.metrics.with_spread`
    writes them: Dice with half its 95% interval over images, latency with its measurement's spread
    (the uncertainties :func:`studies.front.uncertainty` counts as ties); the bare value where none was
    stored, no entry where the trial has no value."""
    texts = {m: with_spread(m, trial.values[m], uncertainty(trial, m)) for m in ("dice", "latency_ms") if m in trial.values}
    if finite(trial.attrs.get("test_dice")) is not None:
        texts["test_dice"] = with_spread("test_dice", trial.attrs["test_dice"], half_width(trial.attrs.get("test_dice_ci95")))
    return texts


def recommendations(info: ParetoInfo) -> list[Recommendation]:
    """The trials :data:`RECOMMENDED` picks (what ``search export --pick RULE`` takes), one entry per
    trial with every rule that chose it; none before a feasible trial is complete."""
    by_number = {p.number: p for p in info.points}
    chosen: dict[int, list[str]] = {}
    for rule, _ in RECOMMENDED:
        try:
            number = pareto.pick(info.trials, rule, tuple(METRICS)).number
        except LookupError:
            return []
        chosen.setdefault(number, []).append(rule)
    return [Recommendation(tuple(rules), by_number[number]) for number, rules in chosen.items() if number in by_number]


def front_2d(info: ParetoInfo, x: str) -> list[PlotPoint]:
    """The feasible points on the front of Dice against ``x`` alone, ordered by ``x``."""
    numbers = {t.number for t in front(info.trials, ("dice", x))}
    return sorted((p for p in info.feasible if p.number in numbers), key=lambda p: (p.value(x), -p.dice))


def front_view(info: ParetoInfo, x: str) -> dict[str, list[float]] | None:
    """The 2-D plot's :func:`view` of Dice against ``x``: around the front's members and the 2-D
    front of Dice against ``x``; ``None`` without a front."""
    return view([*info.front, *front_2d(info, x)], (x, "dice"))


def front_view_3d(info: ParetoInfo) -> dict[str, list[float]] | None:
    """The 3-D plot's :func:`view`: around the front's members in every metric."""
    return view(info.front, tuple(METRICS))


def view(shown: Sequence[PlotPoint], metrics: Sequence[str], margin: float = 0.12) -> dict[str, list[float]] | None:
    """THE zoom rule of the scatter plots: each metric's axis range around the ``shown`` points with
    ``margin`` of their span on each side (Dice within [0, 1], the others from 0), so that one far
    trial does not squeeze the front into a corner; ``None`` when nothing is shown."""
    if not shown:
        return None
    return {m: _padded([p.value(m) for p in shown], margin, low=0.0, high=1.0 if m == "dice" else None) for m in metrics}


def outside(info: ParetoInfo, ranges: dict[str, list[float]]) -> list[PlotPoint]:
    """The points that ``ranges`` (of :func:`view`) leave out."""
    return [p for p in info.points if not all(low <= p.value(m) <= high for m, (low, high) in ranges.items())]


def _padded(values: list[float], margin: float, low: float, high: float | None = None) -> list[float]:
    lowest, highest = min(values), max(values)
    pad = (highest - lowest) * margin or abs(highest) * margin or margin
    top = highest + pad if high is None else min(high + pad / 4, highest + pad)
    return [max(low, lowest - pad), top]


def reference_point(*infos: ParetoInfo) -> dict[str, float]:
    """One hypervolume reference for ``infos`` (:func:`studies.pareto.default_reference` of all their
    trials; the loosest limit of each kind where set), so their curves compare directly."""
    limits: dict[str, float] = {}
    for info in infos:
        for key, value in info.limits.items():
            limits[key] = max(value, limits.get(key, value))
    trials = [t for info in infos for t in info.trials]
    return pareto.default_reference(trials, tuple(METRICS), limits)


def hypervolume_history(info: ParetoInfo, reference: dict[str, float] | None = None) -> tuple[list[int], list[float]]:
    """Hypervolume after each finished trial, in trial-number order (``studies.pareto``)."""
    history = pareto.hypervolume_history(info.trials, tuple(METRICS), reference or reference_point(info))
    return [number for number, _ in history], [value for _, value in history]


def main_kind(attrs: dict) -> str:
    """The block kind used by most stages (``mixed`` when only the ``kinds`` list is known and it has several)."""
    spec = attrs.get("spec") or {}
    stages = [*spec.get("encoder", []), spec.get("bottleneck"), *spec.get("decoder", [])]
    counts = collections.Counter(s.get("kind", "standard") for s in stages if isinstance(s, dict))
    if counts:
        return max(counts, key=lambda kind: (counts[kind], -BLOCK_KINDS.index(kind) if kind in BLOCK_KINDS else -99))
    kinds = attrs.get("kinds") or []
    return kinds[0] if len(kinds) == 1 else ("mixed" if kinds else "unknown")


def escape(text) -> str:
    """Names that came from users, HTML-escaped before plotly sees them."""
    return html.escape(str(text), quote=True)


def _point(trial: TrialPoint, on_front: bool, is_knee: bool, ties: tuple[int, ...] = ()) -> PlotPoint:
    point = PlotPoint(
        number=trial.number,
        dice=trial.values["dice"],
        latency_ms=trial.values["latency_ms"],
        size_kb=trial.values["size_kb"],
        kind=main_kind(trial.attrs),
        quant=trial.quant or _spec_quant(trial.attrs) or "unknown",
        preset=trial.preset or None,
        infeasible=trial.infeasible,
        on_front=on_front,
        knee=is_knee,
        texts=spread_texts(trial),
        ties=ties,
    )
    return dataclasses.replace(point, hover=_hover(point))


def _spec_quant(attrs: dict) -> str | None:
    return ((attrs.get("spec") or {}).get("quant") or {}).get("mode")


def _hover(point: PlotPoint) -> str:
    title = f"<b>trial #{point.number}</b>" + (f" · preset {escape(point.preset)}" if point.preset else "")
    status = (
        f"infeasible: {escape(point.infeasible)}" if point.infeasible
        else "the knee of the Pareto front" if point.knee
        else "on the Pareto front" if point.on_front else "dominated"
    )
    ties = f" (a tie with {', '.join(f'#{n}' for n in point.ties)})" if point.ties else ""
    test = f" · test {point.texts['test_dice']}" if "test_dice" in point.texts else ""
    return "<br>".join([
        title,
        f"Dice {point.texts['dice']}{test}",
        f"latency {point.texts['latency_ms']} ms · size {point.size_kb:.4g} KB",
        f"{escape(point.kind)} blocks · {escape(point.quant)}",
        status + ties,
    ])
