"""Plotly figures of a study: Pareto fronts, a 3-D view, hypervolume over trials, two studies compared.

The data comes from :mod:`studies.plotinfo` (:func:`pareto_info` reads a study once into a
:class:`ParetoInfo`); the scatter figures and the conventions every figure follows (``meta`` roles,
customdata, legend, escaping) are :mod:`studies.scatter`; this module adds the hypervolume history,
two studies compared, the trial page's plots, and the JSON the pages carry. Its names are the ones
callers use: everything a page or test needs of the figures is importable from here.

Plotly is imported inside the functions that need it.
"""

from __future__ import annotations

from collections.abc import Sequence

from studies.metrics import AXES
from studies.plotinfo import (  # noqa: F401  (the figures' data, named here for the callers)
    ParetoInfo, PlotPoint, Recommendation, escape, front_2d, hypervolume_history, info_from_points, main_kind,
    pareto_info, recommendations, reference_point,
)
from studies.scatter import (  # noqa: F401
    COLOR_BY, KEY_COLOR, KIND_COLORS, LEGEND, OTHER_COLOR, QUANT_COLORS, TRIALS, check_choice, empty,
    front_line, layout, pareto_3d_figure, pareto_figure, scatter_2d, trial_traces,
)

STUDY_COLORS = ("#1f77b4", "#d62728")


def hypervolume_figure(*infos: ParetoInfo, reference=None):
    """Hypervolume over trials of one or more studies, against one shared reference point."""
    import plotly.graph_objects as go

    reference = reference or reference_point(*infos)
    title = "Hypervolume over trials"
    figure = go.Figure(layout=layout(title, infos[0] if len(infos) == 1 else None))
    for index, info in enumerate(infos):
        numbers, values = hypervolume_history(info, reference)
        figure.add_trace(go.Scatter(
            x=numbers, y=values, mode="lines+markers", name=escape(info.study_name),
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
    return figure if any(info.points for info in infos) else empty(figure)


def compare_figure(first: ParetoInfo, second: ParetoInfo, x: str = "latency_ms"):
    """Two studies' fronts of Dice against ``x`` on one plot; each study's dominated trials as rings."""
    import plotly.graph_objects as go

    check_choice("x", x, ("latency_ms", "size_kb"))
    figure = go.Figure(layout=layout(f"Dice vs {AXES[x].split(' (')[0]}: two studies", None))
    for index, info in enumerate((first, second)):
        color = STUDY_COLORS[index % len(STUDY_COLORS)]
        name = escape(info.study_name)
        line = front_line(front_2d(info, x), x)
        line.update(name=f"{name}: front", line_color=color, showlegend=True, legendgroup=name)
        figure.add_trace(line)
        for scatter in trial_traces(info.feasible, info.study_name, lambda chosen, on_front, label: scatter_2d(
                chosen, x, label, color, on_front)):
            scatter.update(legendgroup=name, customdata=[[number, info.study_name] for number in scatter.customdata])
            figure.add_trace(scatter)
    figure.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name="dominated: ring", hoverinfo="skip",
                                meta=LEGEND, marker={"symbol": "circle-open", "color": KEY_COLOR, "size": 9}))
    figure.update_layout(xaxis_title=AXES[x], yaxis_title=AXES["dice"])
    return figure if first.points or second.points else empty(figure)


def latency_histogram(samples: Sequence[float], title: str = "Latency distribution"):
    """Histogram of latency samples in ms, with the median marked."""
    import plotly.graph_objects as go

    figure = go.Figure(layout=layout(title, None))
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

    figure = go.Figure(layout=layout("Validation Dice per epoch", None))
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
