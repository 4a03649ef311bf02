"""The confirmed front beside the search front: one plotly figure for the dashboard and the report.

:func:`confirmed_info` computes what is drawn (the search front, the confirmed subjects with their
front, the unet reference) and :func:`confirmed_figure` draws it: Dice against latency, the search
front's trials as grey circles, each confirmed trial as a diamond at its means with error bars of
one standard deviation over seeds (filled: on the confirmed front), a dotted line from each trial's
search-time point to its confirmed one, and dashed lines at the unet reference's Dice and latency.
"""

from __future__ import annotations

import dataclasses

from studies.confirmed import Confirmed, confirmed_front, load_confirmed, reference
from studies.front import TrialPoint, front, study_points
from studies.metrics import with_spread
from studies.plotinfo import spread_texts

SEARCH_COLOR, CONFIRMED_COLOR, REFERENCE_COLOR = "#9e9e9e", "#1f77b4", "#d62728"


@dataclasses.dataclass(frozen=True)
class ConfirmedInfo:
    search_front: list[TrialPoint]
    items: list[Confirmed]  # the confirmed trials
    members: set[str]  # subjects on the confirmed front
    reference: Confirmed | None


def confirmed_info(study) -> ConfirmedInfo:
    items = load_confirmed(study)
    trials = [c for c in items if c.number is not None]
    return ConfirmedInfo(front(study_points(study)), trials, {c.subject for c in confirmed_front(items)}, reference(items))


def confirmed_figure(info: ConfirmedInfo):
    """The figure (a ``plotly.graph_objects.Figure``); a note in place of points when nothing is confirmed."""
    import plotly.graph_objects as go

    figure = go.Figure()
    search = info.search_front
    figure.add_trace(go.Scatter(
        x=[p.values["latency_ms"] for p in search], y=[p.values["dice"] for p in search], mode="markers",
        name="search front (validation, one seed)", marker=dict(color=SEARCH_COLOR, size=8),
        customdata=[p.number for p in search], text=[_search_hover(p) for p in search],
        hovertemplate="%{text}<extra>search</extra>",
    ))
    for item in info.items:
        if item.search is not None and "dice" in item.search.values:
            figure.add_trace(go.Scatter(
                x=[item.search.values["latency_ms"], item.mean("latency_ms")], y=[item.search.values["dice"], item.point.values["dice"]],
                mode="lines", line=dict(color=SEARCH_COLOR, dash="dot", width=1), showlegend=False, hoverinfo="skip"))
    for on_front in (True, False):
        chosen = [c for c in info.items if (c.subject in info.members) == on_front]
        if chosen:
            figure.add_trace(_confirmed_trace(chosen, on_front))
    if info.reference is not None:
        _reference_lines(figure, info.reference)
    if not info.items:
        figure.add_annotation(text="no confirmed trials yet: search confirm --front", showarrow=False,
                              xref="paper", yref="paper", x=0.5, y=0.5)
    split = info.items[0].dice_split if info.items else "test"
    figure.update_layout(title=f"Confirmed front (mean {split} Dice ± std over seeds) beside the search front",
                         xaxis=dict(title="latency (ms)", type="log"), yaxis=dict(title="Dice"),
                         legend=dict(orientation="h", y=-0.2), margin=dict(l=60, r=20, t=50, b=60))
    return figure


def _confirmed_trace(items: list[Confirmed], on_front: bool):
    import plotly.graph_objects as go

    key = items[0].dice_key
    return go.Scatter(
        x=[c.mean("latency_ms") for c in items], y=[c.mean(key) for c in items], mode="markers",
        name="confirmed, on its front" if on_front else "confirmed",
        error_y=dict(type="data", array=[c.std(key) for c in items], visible=True),
        error_x=dict(type="data", array=[c.std("latency_ms") for c in items], visible=True),
        marker=dict(color=CONFIRMED_COLOR if on_front else "white", size=11, symbol="diamond",
                    line=dict(color=CONFIRMED_COLOR, width=2)),
        customdata=[c.number for c in items],
        text=[_confirmed_hover(c) for c in items],
        hovertemplate="%{text}<extra>confirmed</extra>",
    )


def _search_hover(point: TrialPoint) -> str:
    texts = spread_texts(point)
    return f"#{point.number} {point.summary}<br>Dice {texts['dice']}, {texts['latency_ms']} ms"


def _confirmed_hover(item: Confirmed) -> str:
    """Means ± standard deviations over seeds."""
    key = item.dice_key
    dice, latency = (with_spread(m, item.mean(m), item.std(m)) for m in (key, "latency_ms"))
    return (f"#{item.number} {item.summary}<br>{len(item.seeds)} seeds, {item.epochs} epochs<br>"
            f"{item.dice_split} Dice {dice}, {latency} ms")


def _reference_lines(figure, unet: Confirmed) -> None:
    dice, latency = unet.mean(unet.dice_key), unet.mean("latency_ms")
    line = dict(color=REFERENCE_COLOR, dash="dash", width=1)
    figure.add_hline(y=dice, line=line, annotation_text=f"unet {dice:.3f}", annotation_position="bottom right")
    figure.add_vline(x=latency, line=line, annotation_text=f"unet {latency:.2f} ms", annotation_position="top left")


def study_confirmed_figures(study) -> dict:
    """``{"confirmed": figure JSON}`` for a page's ``figures`` (drawn into ``#fig-confirmed``), or ``{}``
    when nothing is confirmed (the empty box is hidden)."""
    from studies.figures import figure_json

    info = confirmed_info(study)
    return {"confirmed": figure_json(confirmed_figure(info))} if info.items or info.reference else {}
