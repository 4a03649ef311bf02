"""Plotly figures of a study: Pareto fronts, a 3-D view, hypervolume over trials, two studies compared.

Computation is split from rendering, as in optuna's ``_get_pareto_front_info`` then
``_get_pareto_front_plot``: :func:`pareto_info` reads a study once into a :class:`ParetoInfo`
(plain data: one :class:`PlotPoint` per COMPLETE trial, front and knee from :mod:`studies.front`,
the study's limits), and the ``*_figure`` functions turn that into ``plotly.graph_objects.Figure`` objects.

Conventions every figure follows (the dashboard and the tests rely on them):

- every trace that holds trials has ``meta == {"role": "trials"}`` and one ``customdata`` entry
  per point: the trial number, so a click can open that trial's page;
- lines (the front, the limits) carry no customdata and skip hover;
- names that came from users (study, preset, reason) are HTML-escaped before plotly sees them.

Plotly is imported inside the functions that need it.
"""

from __future__ import annotations

import collections
import dataclasses
import html
from collections.abc import Sequence

from studies import pareto
from studies.front import TrialPoint, front, knee, study_limits, study_points
from studies.metrics import AXES, METRICS, UNITS, limit_name

COLOR_BY = {"kind": "main block kind", "quant": "quant mode"}
KIND_COLORS = {
    "standard": "#4c72b0", "group": "#dd8452", "depthwise": "#55a868",
    "fire": "#c44e52", "shuffle": "#8172b3", "mixed": "#937860",
}
QUANT_COLORS = {
    "float32": "#4c72b0", "dynamic": "#dd8452", "float16": "#55a868",
    "int8": "#c44e52", "int16x8": "#8172b3", "int8-qat": "#da8bc3",
}
OTHER_COLOR = "#8c8c8c"
STUDY_COLORS = ("#1f77b4", "#d62728")
DOMINATED_OPACITY = 0.28
TRIALS = {"role": "trials"}


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

    def value(self, metric: str) -> float:
        return getattr(self, metric)

    def category(self, color_by: str) -> str:
        return self.kind if color_by == "kind" else self.quant


@dataclasses.dataclass(frozen=True)
class ParetoInfo:
    """What the figures of one study need: its points, its trials for :mod:`studies.front` and
    :mod:`studies.pareto`, the knee's trial number and the study's limits."""

    study_name: str
    points: tuple[PlotPoint, ...]
    trials: tuple[TrialPoint, ...] = ()
    knee: int | None = None
    limits: dict = dataclasses.field(default_factory=dict)

    @property
    def feasible(self) -> list[PlotPoint]:
        return [p for p in self.points if not p.infeasible]

    @property
    def front(self) -> list[PlotPoint]:
        return sorted((p for p in self.points if p.on_front), key=lambda p: -p.dice)


# -- computation -------------------------------------------------------------------------------

def pareto_info(study) -> ParetoInfo:
    """Read an Optuna study into plain points; front and knee over the feasible COMPLETE trials."""
    return info_from_points(study.study_name, study_points(study), study_limits(study))


def info_from_points(study_name: str, trials: Sequence[TrialPoint], limits: dict | None = None) -> ParetoInfo:
    """Build a :class:`ParetoInfo` from :class:`studies.front.TrialPoint` records."""
    plotted = [t for t in trials if t.complete and all(m in t.values for m in METRICS)]
    members = {t.number for t in front(trials, tuple(METRICS))}
    the_knee = knee(trials, tuple(METRICS)).number if members else None
    points = [_point(t, t.number in members, t.number == the_knee) for t in plotted]
    return ParetoInfo(study_name, tuple(points), tuple(trials), the_knee, dict(limits or {}))


def front_2d(info: ParetoInfo, x: str) -> list[PlotPoint]:
    """The feasible points on the front of Dice against ``x`` alone, ordered by ``x``."""
    numbers = {t.number for t in front(info.trials, ("dice", x))}
    return sorted((p for p in info.feasible if p.number in numbers), key=lambda p: (p.value(x), -p.dice))


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


# -- rendering ---------------------------------------------------------------------------------

def pareto_figure(info: ParetoInfo, x: str = "latency_ms", color_by: str = "kind"):
    """Dice against ``x`` (``latency_ms`` or ``size_kb``): dominated trials faded, the front joined."""
    import plotly.graph_objects as go

    _check_choice("x", x, ("latency_ms", "size_kb"))
    _check_choice("color_by", color_by, COLOR_BY)
    figure = go.Figure(layout=_layout(f"Dice vs {AXES[x].split(' (')[0]}", info))
    figure.add_trace(_front_line(front_2d(info, x), x))
    for category, points in _by_category(info, color_by).items():
        figure.add_traces(_front_and_dominated(points, category, lambda chosen, on_front, name: _scatter_2d(
            chosen, x, name, _color(category, color_by), on_front)))
    figure.add_traces(_presets_and_infeasible_2d(info, x, color_by))
    _add_limit_lines(figure, info.limits, x)
    _mark_knee(figure, info, x)
    figure.update_layout(xaxis_title=AXES[x], yaxis_title=AXES["dice"], legend_title_text=COLOR_BY[color_by])
    return _maybe_empty(figure, info)


def pareto_3d_figure(info: ParetoInfo, color_by: str = "kind"):
    """Dice, latency and size in 3-D; the front solid, dominated trials faded."""
    import plotly.graph_objects as go

    _check_choice("color_by", color_by, COLOR_BY)
    figure = go.Figure(layout=_layout("Dice, latency and size", info))
    for category, points in _by_category(info, color_by).items():
        figure.add_traces(_front_and_dominated(points, category, lambda chosen, on_front, name: _scatter_3d(
            chosen, name, _color(category, color_by), on_front)))
    special = [p for p in info.points if p.preset or p.infeasible]
    if special:
        figure.add_trace(_scatter_3d_special(special))
    figure.update_layout(
        scene={"xaxis_title": AXES["latency_ms"], "yaxis_title": AXES["size_kb"], "zaxis_title": "Dice"},
        legend_title_text=COLOR_BY[color_by], margin={"l": 0, "r": 0, "t": 48, "b": 0},
    )
    return _maybe_empty(figure, info)


def hypervolume_figure(*infos: ParetoInfo, reference=None):
    """Hypervolume over trials of one or more studies, against one shared reference point."""
    import plotly.graph_objects as go

    reference = reference or reference_point(*infos)
    title = "Hypervolume over trials"
    figure = go.Figure(layout=_layout(title, infos[0] if len(infos) == 1 else None))
    for index, info in enumerate(infos):
        numbers, values = hypervolume_history(info, reference)
        figure.add_trace(go.Scatter(
            x=numbers, y=values, mode="lines+markers", name=_escape(info.study_name),
            line={"shape": "hv", "color": STUDY_COLORS[index % len(STUDY_COLORS)]}, marker={"size": 5},
            hovertemplate="trial #%{x}<br>hypervolume %{y:.4f}<extra></extra>",
        ))
    latency, size = reference["latency_ms"], reference["size_kb"]
    figure.update_layout(
        xaxis_title="trial number", yaxis_title="hypervolume (share of the box)", showlegend=len(infos) > 1,
        yaxis_rangemode="tozero",
    )
    figure.add_annotation(
        text=f"reference: Dice 0, {latency:.3g} ms, {size:.3g} KB", showarrow=False,
        xref="paper", yref="paper", x=1, y=0, xanchor="right", yanchor="bottom", font={"size": 11, "color": "#666"},
    )
    return figure if any(info.points for info in infos) else _empty(figure)


def compare_figure(first: ParetoInfo, second: ParetoInfo, x: str = "latency_ms"):
    """Two studies' fronts of Dice against ``x`` on one plot; each study's other trials faded."""
    import plotly.graph_objects as go

    _check_choice("x", x, ("latency_ms", "size_kb"))
    figure = go.Figure(layout=_layout(f"Dice vs {AXES[x].split(' (')[0]}: two studies", None))
    for index, info in enumerate((first, second)):
        color = STUDY_COLORS[index % len(STUDY_COLORS)]
        name = _escape(info.study_name)
        line = _front_line(front_2d(info, x), x)
        line.update(name=f"{name}: front", line_color=color, showlegend=True, legendgroup=name)
        figure.add_trace(line)
        for scatter in _front_and_dominated(info.feasible, info.study_name, lambda chosen, on_front, label: _scatter_2d(
                chosen, x, label, color, on_front)):
            scatter.update(legendgroup=name, customdata=[[number, info.study_name] for number in scatter.customdata])
            figure.add_trace(scatter)
    figure.update_layout(xaxis_title=AXES[x], yaxis_title=AXES["dice"])
    return figure if first.points or second.points else _empty(figure)


def latency_histogram(samples: Sequence[float], title: str = "Latency distribution"):
    """Histogram of latency samples in ms, with the median marked."""
    import plotly.graph_objects as go

    figure = go.Figure(layout=_layout(title, None))
    figure.add_trace(go.Histogram(x=list(samples), nbinsx=30, marker_color=KIND_COLORS["standard"], name="runs",
                                  hovertemplate="%{x} ms: %{y} runs<extra></extra>"))
    if samples:
        median = sorted(samples)[len(samples) // 2]
        figure.add_vline(x=median, line_dash="dash", line_color="#333",
                         annotation_text=f"p50 {median:.3g} ms", annotation_position="top right")
    figure.update_layout(xaxis_title="latency (ms)", yaxis_title="runs", showlegend=False, bargap=0.05)
    return figure


def dice_history_figure(history: Sequence[float]):
    """Validation Dice per epoch."""
    import plotly.graph_objects as go

    figure = go.Figure(layout=_layout("Validation Dice per epoch", None))
    figure.add_trace(go.Scatter(x=list(range(1, len(history) + 1)), y=list(history), mode="lines+markers",
                                hovertemplate="epoch %{x}: Dice %{y:.4f}<extra></extra>"))
    figure.update_layout(xaxis_title="epoch", yaxis_title="Dice (Keras model)", showlegend=False, xaxis_dtick=1)
    return figure


def figure_json(figure) -> dict:
    """A figure as plain JSON-ready data (``{"data": [...], "layout": {...}}``)."""
    import json

    import plotly.io

    return json.loads(plotly.io.to_json(figure, validate=False))


def study_figures(info: ParetoInfo, color_by: str = "kind") -> dict:
    """The study page's figures as JSON-ready dicts: ``latency``, ``size``, ``3d``, ``hypervolume``."""
    return {
        "latency": figure_json(pareto_figure(info, "latency_ms", color_by)),
        "size": figure_json(pareto_figure(info, "size_kb", color_by)),
        "3d": figure_json(pareto_3d_figure(info, color_by)),
        "hypervolume": figure_json(hypervolume_figure(info)),
    }


# -- helpers: points ---------------------------------------------------------------------------

def _point(trial: TrialPoint, on_front: bool, is_knee: bool) -> PlotPoint:
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
    )
    return dataclasses.replace(point, hover=_hover(point))


def main_kind(attrs: dict) -> str:
    """The block kind used by most stages (``mixed`` when only the ``kinds`` list is known and it has several)."""
    spec = attrs.get("spec") or {}
    stages = [*spec.get("encoder", []), spec.get("bottleneck"), *spec.get("decoder", [])]
    counts = collections.Counter(s.get("kind", "standard") for s in stages if isinstance(s, dict))
    if counts:
        order = list(KIND_COLORS)
        return max(counts, key=lambda kind: (counts[kind], -order.index(kind) if kind in order else -99))
    kinds = attrs.get("kinds") or []
    return kinds[0] if len(kinds) == 1 else ("mixed" if kinds else "unknown")


def _spec_quant(attrs: dict) -> str | None:
    return ((attrs.get("spec") or {}).get("quant") or {}).get("mode")


def _hover(point: PlotPoint) -> str:
    title = f"<b>trial #{point.number}</b>" + (f" · preset {_escape(point.preset)}" if point.preset else "")
    status = (
        f"infeasible: {_escape(point.infeasible)}" if point.infeasible
        else "the knee of the Pareto front" if point.knee
        else "on the Pareto front" if point.on_front else "dominated"
    )
    return "<br>".join([
        title,
        f"Dice {point.dice:.4f}",
        f"latency {point.latency_ms:.3g} ms · size {point.size_kb:.4g} KB",
        f"{_escape(point.kind)} blocks · {_escape(point.quant)}",
        status,
    ])


def _escape(text) -> str:
    return html.escape(str(text), quote=True)


# -- helpers: traces ---------------------------------------------------------------------------

def _by_category(info: ParetoInfo, color_by: str) -> dict[str, list[PlotPoint]]:
    """Feasible, non-preset points grouped by colour, in a stable order."""
    palette = KIND_COLORS if color_by == "kind" else QUANT_COLORS
    groups: dict[str, list[PlotPoint]] = {}
    for point in info.points:
        if not point.preset and not point.infeasible:
            groups.setdefault(point.category(color_by), []).append(point)
    order = list(palette)
    return dict(sorted(groups.items(), key=lambda item: (order.index(item[0]) if item[0] in order else 99, item[0])))


def _color(category: str, color_by: str) -> str:
    return (KIND_COLORS if color_by == "kind" else QUANT_COLORS).get(category, OTHER_COLOR)


def _front_and_dominated(points: Sequence[PlotPoint], name: str, build) -> list:
    """``build(points, on_front, name)`` for the front points and for the dominated ones: two
    traces in one legend group, so the legend shows the full colour and hides the faded twin."""
    traces = []
    for on_front in (True, False):
        chosen = [p for p in points if p.on_front == on_front]
        if chosen:
            trace = build(chosen, on_front, name)
            trace.update(legendgroup=_escape(name), showlegend=not traces)
            traces.append(trace)
    return traces


def _scatter_2d(points: Sequence[PlotPoint], x: str, name: str, color: str, on_front: bool = True):
    import plotly.graph_objects as go

    return go.Scatter(
        x=[p.value(x) for p in points], y=[p.dice for p in points], mode="markers", name=_escape(name),
        customdata=[p.number for p in points], hovertext=[p.hover for p in points], hoverinfo="text",
        marker={"color": color, "size": 10 if on_front else 9, "opacity": 1.0 if on_front else DOMINATED_OPACITY,
                "line": {"width": 1, "color": "#ffffff"}},
        meta=TRIALS,
    )


def _presets_and_infeasible_2d(info: ParetoInfo, x: str, color_by: str) -> list:
    import plotly.graph_objects as go

    traces = []
    presets = [p for p in info.points if p.preset and not p.infeasible]
    traces += _front_and_dominated(presets, "hand-designed presets", lambda chosen, on_front, name: go.Scatter(
        x=[p.value(x) for p in chosen], y=[p.dice for p in chosen], mode="markers+text", name=name,
        text=[_escape(p.preset) for p in chosen], textposition="top center", textfont={"size": 11, "color": "#333"},
        customdata=[p.number for p in chosen], hovertext=[p.hover for p in chosen], hoverinfo="text",
        marker={"symbol": "diamond", "size": 14, "color": [_color(p.category(color_by), color_by) for p in chosen],
                "opacity": 1.0 if on_front else 0.5, "line": {"width": 2, "color": "#222"}},
        meta=TRIALS,
    ))
    infeasible = [p for p in info.points if p.infeasible]
    if infeasible:
        traces.append(go.Scatter(
            x=[p.value(x) for p in infeasible], y=[p.dice for p in infeasible], mode="markers",
            name="infeasible (rejected)", customdata=[p.number for p in infeasible],
            hovertext=[p.hover for p in infeasible], hoverinfo="text",
            marker={"symbol": "x-thin", "size": 10, "color": OTHER_COLOR, "line": {"width": 2, "color": OTHER_COLOR}},
            meta=TRIALS,
        ))
    return traces


def _front_line(points: Sequence[PlotPoint], x: str):
    import plotly.graph_objects as go

    return go.Scatter(
        x=[p.value(x) for p in points], y=[p.dice for p in points], mode="lines", name="Pareto front",
        line={"color": "#333333", "width": 1.5, "shape": "hv"}, hoverinfo="skip", meta={"role": "front"},
    )


def _scatter_3d(points: Sequence[PlotPoint], category: str, color: str, on_front: bool):
    import plotly.graph_objects as go

    return go.Scatter3d(
        x=[p.latency_ms for p in points], y=[p.size_kb for p in points], z=[p.dice for p in points],
        mode="markers", name=_escape(category),
        customdata=[p.number for p in points], hovertext=[p.hover for p in points], hoverinfo="text",
        marker={"color": color, "size": 5 if on_front else 4, "opacity": 1.0 if on_front else DOMINATED_OPACITY},
        meta=TRIALS,
    )


def _scatter_3d_special(points: Sequence[PlotPoint]):
    import plotly.graph_objects as go

    return go.Scatter3d(
        x=[p.latency_ms for p in points], y=[p.size_kb for p in points], z=[p.dice for p in points],
        mode="markers+text", name="presets / infeasible", text=[_escape(p.preset or "") for p in points],
        customdata=[p.number for p in points], hovertext=[p.hover for p in points], hoverinfo="text",
        marker={"symbol": ["x" if p.infeasible else "diamond" for p in points], "size": 6,
                "color": [OTHER_COLOR if p.infeasible else "#222222" for p in points]},
        meta=TRIALS,
    )


def _add_limit_lines(figure, limits: dict, x: str) -> None:
    style = {"line_dash": "dash", "line_color": "#c0392b", "line_width": 1.5}
    if "min_dice" in limits:
        figure.add_hline(y=limits["min_dice"], annotation_text=f"min Dice {limits['min_dice']:g}",
                         annotation_position="bottom right", **style)
    limit = limit_name(x)
    if limit in limits:
        figure.add_vline(x=limits[limit], annotation_text=f"max {limits[limit]:g} {UNITS[x]}",
                         annotation_position="bottom left", **style)


def _mark_knee(figure, info: ParetoInfo, x: str) -> None:
    """An arrow at the knee of the 3-objective front (what ``search export --pick knee`` takes)."""
    knee = next((p for p in info.points if p.knee), None)
    if knee is not None:
        figure.add_annotation(x=knee.value(x), y=knee.dice, text="knee", showarrow=True, arrowhead=2,
                              arrowcolor="#555", ax=26, ay=30, font={"size": 11, "color": "#333"})


def _layout(title: str, info: ParetoInfo | None) -> dict:
    suffix = f" · {_escape(info.study_name)}" if info is not None else ""
    return {
        "title": {"text": f"{title}{suffix}", "x": 0.01, "font": {"size": 15}},
        "template": "plotly_white", "hovermode": "closest", "height": 420,
        "margin": {"l": 60, "r": 20, "t": 48, "b": 50},
        "font": {"family": "-apple-system, 'Segoe UI', Roboto, Helvetica, Arial, sans-serif", "size": 12},
        "legend": {"itemclick": "toggle", "font": {"size": 11}},
    }


def _maybe_empty(figure, info: ParetoInfo):
    return figure if info.points else _empty(figure)


def _empty(figure):
    figure.add_annotation(text="no complete trials yet", showarrow=False, xref="paper", yref="paper",
                          x=0.5, y=0.5, font={"size": 14, "color": "#888"})
    return figure


def _check_choice(name: str, value: str, choices) -> None:
    if value not in choices:
        raise ValueError(f"{name}: unknown choice {value!r}; choose one of {', '.join(choices)}")
