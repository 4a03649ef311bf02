"""The scatter figures of a study (Dice against latency or size, and the 3-D view) and the pieces
:mod:`studies.figures` shares with them: layout, colours, trial traces.

Conventions every figure follows (the dashboard and the tests rely on them):

- every trace that holds trials has ``meta == {"role": "trials"}`` and one ``customdata`` entry
  per point: the trial number, so a click can open that trial's page;
- the legend is drawn by legend-only traces (``meta == {"role": "legend"}``, no points) in the full
  colour of each category, so an entry never shows a dominated point's style; the trial traces of
  a category share its ``legendgroup`` and hide their own entries;
- a front member is a filled marker, a dominated trial an open one of the same colour and full
  opacity, so a dominated point never takes the colour of another category;
- lines (the front, the limits) carry no customdata and skip hover;
- names that came from users (study, preset, reason) are HTML-escaped before plotly sees them.

Plotly is imported inside the functions that need it.
"""

from __future__ import annotations

from collections.abc import Sequence

from studies import labels
from studies.metrics import AXES, UNITS, limit_name
from studies.plotinfo import (
    BLOCK_KINDS, ParetoInfo, PlotPoint, escape, front_2d, front_view, front_view_3d, outside,
)

COLOR_BY = {"kind": "main block kind", "quant": "quant mode"}
# Paul Tol's "muted" colour-blind-safe palette: nine hues no two of which look alike.
PALETTE = ("#332288", "#ddcc77", "#117733", "#cc6677", "#88ccee", "#882255", "#44aa99", "#999933", "#aa4499")
KIND_COLORS = dict(zip(BLOCK_KINDS, PALETTE))
QUANT_COLORS = dict(zip(("float32", "dynamic", "float16", "int8", "int16x8", "int8-qat"), PALETTE))
OTHER_COLOR = "#8c8c8c"
KEY_COLOR = "#444444"
TRIALS = {"role": "trials"}
LEGEND = {"role": "legend"}
PRESETS = "hand-designed presets"
INFEASIBLE = "infeasible (rejected)"
CAMERA_EYE = {"x": 1.9, "y": -1.2, "z": 0.7}
"""Where the 3-D view looks from. Not plotly's default (1.25, 1.25, 1.25): a front trades Dice for
latency and size, so it runs along that very diagonal and would collapse into the middle of the view."""
ZOOM_NOTE = "zoomed to the front: {count} of {total} trials outside"
PRESETS_OUTSIDE = ", {presets} of them presets"
MENU_2D = {"x": 1, "y": 1.02, "xanchor": "right", "yanchor": "bottom", "direction": "left"}
MENU_3D = {"x": 1.02, "y": 0.04, "xanchor": "left", "yanchor": "bottom", "direction": "down"}
"""Where the zoom buttons go: over a 2-D plot's top right corner; in 3-D, where the title's second
line is, under the legend instead."""


# -- the figures ---------------------------------------------------------------------------------
def pareto_figure(info: ParetoInfo, x: str = "latency_ms", color_by: str = "kind"):
    """Dice against ``x`` (``latency_ms`` or ``size_kb``), zoomed to the front: dominated trials as
    rings, the front joined, presets and the knee labelled with leader lines that do not collide."""
    import plotly.graph_objects as go

    check_choice("x", x, ("latency_ms", "size_kb"))
    check_choice("color_by", color_by, COLOR_BY)
    figure = go.Figure(layout=layout(f"Dice vs {AXES[x].split(' (')[0]}", info))
    figure.add_trace(front_line(front_2d(info, x), x))
    groups = by_category(info, color_by)
    for category, points in groups.items():
        figure.add_traces(trial_traces(points, category, lambda chosen, on_front, name: scatter_2d(
            chosen, x, name, color(category, color_by), on_front)))
    figure.add_traces(_presets_and_infeasible_2d(info, x, color_by))
    figure.add_traces(_knee_2d(info, x))
    if info.knee_point is not None:
        figure.add_shape(_knee_ring(info.knee_point, x))
    figure.add_traces(legend_keys(info, groups, color_by))
    _add_limit_lines(figure, info.limits, x)
    _add_constant_mask_line(figure, info.constant_mask_dice)
    figure.update_layout(xaxis_title=AXES[x], yaxis_title=AXES["dice"], legend_title_text=COLOR_BY[color_by],
                         uirevision=f"{info.study_name}:{x}")
    _zoom_to_front(figure, info, x)
    return maybe_empty(figure, info)


def pareto_3d_figure(info: ParetoInfo, color_by: str = "kind"):
    """Dice, latency and size in 3-D, zoomed to the front like :func:`pareto_figure`; front members
    filled, dominated trials as rings."""
    import plotly.graph_objects as go

    check_choice("color_by", color_by, COLOR_BY)
    figure = go.Figure(layout=layout("Dice, latency and size", info))
    groups = by_category(info, color_by)
    for category, points in groups.items():
        figure.add_traces(trial_traces(points, category, lambda chosen, on_front, name: _scatter_3d(
            chosen, name, color(category, color_by), on_front)))
    presets = [p for p in info.points if p.preset and not p.infeasible]
    figure.add_traces(trial_traces(presets, PRESETS, lambda chosen, on_front, name: _scatter_3d(
        chosen, name, [color(p.category(color_by), color_by) for p in chosen], on_front, "diamond")))
    infeasible = [p for p in info.points if p.infeasible]
    if infeasible:
        figure.add_trace(_scatter_3d(infeasible, INFEASIBLE, OTHER_COLOR, True, "x"))
        figure.data[-1].update(showlegend=True)
    knee = info.knee_point
    if knee is not None:
        figure.add_trace(go.Scatter3d(
            x=[knee.latency_ms], y=[knee.size_kb], z=[knee.dice], mode="markers+text", name=f"knee #{knee.number}",
            text=[f"knee #{knee.number}"], textposition="top center", hovertext=[knee.hover], hoverinfo="text",
            customdata=[knee.number], meta={"role": "knee"},
            marker={"symbol": "circle-open", "size": 12, "color": KEY_COLOR, "line": {"width": 2}},
        ))
    figure.add_traces(legend_keys(info, groups, color_by, three_d=True))
    figure.update_layout(
        scene={"xaxis_title": AXES["latency_ms"], "yaxis_title": AXES["size_kb"], "zaxis_title": "Dice",
               "camera": {"eye": CAMERA_EYE}},
        legend_title_text=COLOR_BY[color_by], margin={"l": 0, "r": 0, "t": 64, "b": 0}, uirevision=info.study_name,
    )
    _zoom_3d_to_front(figure, info)
    return maybe_empty(figure, info)


# -- shared with studies.figures -----------------------------------------------------------------
def layout(title: str, info: ParetoInfo | None) -> dict:
    suffix = f" · {escape(info.study_name)}" if info is not None else ""
    return {
        "title": {"text": f"{title}{suffix}", "x": 0.01, "font": {"size": 15}},
        "template": "plotly_white", "hovermode": "closest", "height": 420,
        "margin": {"l": 60, "r": 20, "t": 48, "b": 50},
        "font": {"family": "-apple-system, 'Segoe UI', Roboto, Helvetica, Arial, sans-serif", "size": 12},
        "legend": {"itemclick": "toggle", "font": {"size": 11}, "tracegroupgap": 0},
    }


def maybe_empty(figure, info: ParetoInfo):
    return figure if info.points else empty(figure)


def empty(figure):
    figure.add_annotation(text="no complete trials yet", showarrow=False, xref="paper", yref="paper",
                          x=0.5, y=0.5, font={"size": 14, "color": "#888"})
    return figure


def check_choice(name: str, value: str, choices) -> None:
    if value not in choices:
        raise ValueError(f"{name}: unknown choice {value!r}; choose one of {', '.join(choices)}")


def by_category(info: ParetoInfo, color_by: str) -> dict[str, list[PlotPoint]]:
    """Feasible, non-preset points grouped by colour, in a stable order."""
    order = list(KIND_COLORS if color_by == "kind" else QUANT_COLORS)
    groups: dict[str, list[PlotPoint]] = {}
    for point in info.points:
        if not point.preset and not point.infeasible:
            groups.setdefault(point.category(color_by), []).append(point)
    return dict(sorted(groups.items(), key=lambda item: (order.index(item[0]) if item[0] in order else 99, item[0])))


def color(category: str, color_by: str) -> str:
    return (KIND_COLORS if color_by == "kind" else QUANT_COLORS).get(category, OTHER_COLOR)


def trial_traces(points: Sequence[PlotPoint], name: str, build) -> list:
    """``build(points, on_front, name)`` for the front points and for the dominated ones: two traces
    in the legend group ``name``, neither with a legend entry of its own (see :func:`legend_keys`)."""
    traces = []
    for on_front in (True, False):
        chosen = [p for p in points if p.on_front == on_front]
        if chosen:
            traces.append(build(chosen, on_front, name).update(legendgroup=escape(name), showlegend=False))
    return traces


def legend_keys(info: ParetoInfo, groups: dict, color_by: str, three_d: bool = False) -> list:
    """Legend-only traces (no points): one filled marker per category (as front members are drawn),
    the presets' diamond, and the key to open (dominated) markers."""
    import plotly.graph_objects as go

    def key(name, symbol, shade, group=None):
        trace, nothing = (go.Scatter3d, {"z": [None]}) if three_d else (go.Scatter, {})
        return trace(x=[None], y=[None], **nothing, mode="markers", name=name, legendgroup=group or f"key:{name}",
                     meta=LEGEND, hoverinfo="skip", marker={"symbol": symbol, "color": shade, "size": 6 if three_d else 9})

    if not info.points:
        return []
    keys = [key(escape(category), "circle", color(category, color_by), escape(category)) for category in groups]
    if any(p.preset and not p.infeasible for p in info.points):
        keys.append(key(PRESETS, "diamond", KEY_COLOR, PRESETS))
    return keys + [key("dominated: ring", "circle-open", KEY_COLOR)]


def scatter_2d(points: Sequence[PlotPoint], x: str, name: str, shade, on_front: bool = True, symbol: str = "circle"):
    import plotly.graph_objects as go

    return go.Scatter(
        x=[p.value(x) for p in points], y=[p.dice for p in points], mode="markers", name=escape(name),
        customdata=[p.number for p in points], hovertext=[p.hover for p in points], hoverinfo="text",
        marker=_marker(shade, on_front, symbol, 10), meta=TRIALS,
    )


def front_line(points: Sequence[PlotPoint], x: str):
    import plotly.graph_objects as go

    return go.Scatter(
        x=[p.value(x) for p in points], y=[p.dice for p in points], mode="lines", name="Pareto front",
        line={"color": "#333333", "width": 1.5, "shape": "hv"}, hoverinfo="skip", meta={"role": "front"},
    )


# -- helpers -------------------------------------------------------------------------------------
def _marker(shade, on_front: bool, symbol: str, size: int) -> dict:
    if on_front:
        return {"symbol": symbol, "color": shade, "size": size, "opacity": 1.0, "line": {"width": 1, "color": "#ffffff"}}
    return {"symbol": f"{symbol}-open", "color": shade, "size": size - 1, "opacity": 1.0, "line": {"width": 2, "color": shade}}


def _presets_and_infeasible_2d(info: ParetoInfo, x: str, color_by: str) -> list:
    presets = [p for p in info.points if p.preset and not p.infeasible]
    traces = trial_traces(presets, PRESETS, lambda chosen, on_front, name: scatter_2d(
        chosen, x, name, [color(p.category(color_by), color_by) for p in chosen], on_front, "diamond"))
    for trace in traces:
        trace.marker.update(size=14)
        if not trace.marker.symbol.endswith("-open"):
            trace.marker.line.update(width=2, color="#222222")
    infeasible = [p for p in info.points if p.infeasible]
    if infeasible:
        trace = scatter_2d(infeasible, x, INFEASIBLE, OTHER_COLOR, True, "x-thin")
        trace.marker.update(line={"width": 2, "color": OTHER_COLOR})
        traces.append(trace)
    return traces


def _knee_2d(info: ParetoInfo, x: str) -> list:
    """The knee of the 3-objective front (what ``search export --pick knee`` takes): a ring of fixed
    pixel size drawn as a shape, which takes no clicks from the point under it, and its legend key."""
    import plotly.graph_objects as go

    knee = info.knee_point
    if knee is None:
        return []
    ring = {"symbol": "circle-open", "size": 20, "color": KEY_COLOR, "line": {"width": 2}}
    return [go.Scatter(x=[None], y=[None], mode="markers", name=f"knee #{knee.number}", hoverinfo="skip",
                       meta={"role": "knee"}, marker=ring)]


def _knee_ring(knee: PlotPoint, x: str) -> dict:
    return {"type": "circle", "xref": "x", "yref": "y", "xsizemode": "pixel", "ysizemode": "pixel",
            "xanchor": knee.value(x), "yanchor": knee.dice, "x0": -10, "x1": 10, "y0": -10, "y1": 10,
            "line": {"color": KEY_COLOR, "width": 2}, "name": "knee"}


def _scatter_3d(points: Sequence[PlotPoint], name: str, shade, on_front: bool, symbol: str = "circle"):
    import plotly.graph_objects as go

    marker = _marker(shade, on_front, symbol, 5)
    marker.pop("line")
    return go.Scatter3d(
        x=[p.latency_ms for p in points], y=[p.size_kb for p in points], z=[p.dice for p in points],
        mode="markers", name=escape(name), customdata=[p.number for p in points],
        hovertext=[p.hover for p in points], hoverinfo="text", marker=marker, meta=TRIALS,
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


def _add_constant_mask_line(figure, dice: float | None) -> None:
    """What a model must beat to have learned anything: the Dice of the better constant mask."""
    if dice is not None:
        figure.add_hline(y=dice, annotation_text=f"constant mask {dice:.3f}", annotation_position="top left",
                         line_dash="dot", line_color="#7f7f7f", line_width=1.5)


def _zoom_to_front(figure, info: ParetoInfo, x: str) -> None:
    """Axes around the front, labels placed for that view, and buttons for every trial or a log axis;
    a note on the x axis's title says how many trials the view leaves out."""
    ranges = front_view(info, x)
    if ranges is not None:
        _add_labels(figure, info, x, ranges)
        _zoom(figure, info, ranges, {x: "xaxis", "dice": "yaxis"}, "xaxis.title.text", AXES[x], MENU_2D)


def _zoom_3d_to_front(figure, info: ParetoInfo) -> None:
    """The 2-D plots' rule in 3-D: the scene around the front, the note under the figure's title."""
    ranges = front_view_3d(info)
    if ranges is not None:
        axes = {"latency_ms": "scene.xaxis", "size_kb": "scene.yaxis", "dice": "scene.zaxis"}
        _zoom(figure, info, ranges, axes, "title.text", figure.layout.title.text, MENU_3D)


def _zoom(figure, info: ParetoInfo, ranges: dict, axes: dict[str, str], note_at: str, plain: str, menu: dict) -> None:
    """Set each metric's axis (``axes``: metric -> layout path such as ``xaxis`` or ``scene.zaxis``)
    to its range; when that leaves trials out, say how many in a line under the ``plain`` text at
    ``note_at`` and offer buttons (placed by ``menu``): the front, all trials, and Dice against
    log-scaled other axes."""
    zoomed = {f"{axis}.range": ranges[metric] for metric, axis in axes.items()}
    for path, value in zoomed.items():
        figure.layout[path] = value
    left_out = outside(info, ranges)
    if not left_out:
        return
    # The note rides on a title, where no label or point can be under it.
    note = f"{plain}<br><sup>{_zoom_note(left_out, len(info.points))}</sup>"
    figure.layout[note_at] = note
    linear = {f"{axis}.type": "linear" for axis in axes.values()}
    every = {**linear, **{f"{axis}.autorange": True for axis in axes.values()}, note_at: plain}
    log = {f"{axis}.type": "log" for metric, axis in axes.items() if metric != "dice"}
    figure.update_layout(updatemenus=[{
        "type": "buttons", "showactive": True, "active": 0, **menu, "pad": {"r": 0, "t": 0},
        "font": {"size": 11}, "bgcolor": "#ffffff", "bordercolor": "#d8dee4",
        "buttons": [
            {"label": "front", "method": "relayout", "args": [{**linear, **zoomed, note_at: note}]},
            {"label": "all trials", "method": "relayout", "args": [every]},
            {"label": "log axis" if len(log) == 1 else "log axes", "method": "relayout", "args": [{**every, **log}]},
        ],
    }])


def _zoom_note(left_out: list[PlotPoint], total: int) -> str:
    presets = sum(1 for p in left_out if p.preset)
    return ZOOM_NOTE.format(count=len(left_out), total=total) + (PRESETS_OUTSIDE.format(presets=presets) if presets else "")


def _add_labels(figure, info: ParetoInfo, x: str, ranges: dict) -> None:
    """Preset names and ``knee #N`` on leader lines, placed by :func:`studies.labels.place` for ``ranges``."""
    named = [(p, _label(p)) for p in info.points if p.knee or (p.preset and not p.infeasible)]
    pixels = {p.number: labels.to_pixels(p.value(x), p.dice, ranges[x], ranges["dice"]) for p in info.points}
    offsets = labels.place([pixels[p.number] for p, _ in named], [text for _, text in named], list(pixels.values()))
    for (point, text), (ax, ay) in zip(named, offsets):
        figure.add_annotation(
            x=point.value(x), y=point.dice, text=text, ax=ax, ay=ay, showarrow=True, arrowhead=0, arrowwidth=1,
            arrowcolor="#777777", standoff=6, bgcolor="rgba(255,255,255,0.85)", borderpad=1,
            font={"size": 11, "color": "#222" if point.knee else "#333"}, name="knee" if point.knee else "preset",
        )


def _label(point: PlotPoint) -> str:
    knee = f"knee #{point.number}" if point.knee else ""
    return " · ".join(part for part in (escape(point.preset) if point.preset else "", knee) if part)
