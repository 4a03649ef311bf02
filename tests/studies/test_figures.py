"""Figures of a real SQLite study: point counts, front membership, presets, constraints, hypervolume."""

from __future__ import annotations

import numpy as np
import optuna
import pytest

from studies import figures, front
from tests.studies.factory import SPREAD_TEXTS, add_preset, add_trial, attrs_for, create_study, sample_study, spec_for, spread_study

COMPLETE = 10  # sample_study's COMPLETE trials: 7 searched, 2 presets, 1 infeasible (plus a FAIL and a PRUNED)


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """Read-only for the tests of this module (built once: a SQLite study takes about a second)."""
    return sample_study(f"sqlite:///{tmp_path_factory.mktemp('figures') / 'figures.db'}", "demo", complete=COMPLETE)


@pytest.fixture(scope="module")
def info(study):
    return figures.pareto_info(study)


def trial_traces(figure):
    return [trace for trace in figure.data if (trace.meta or {}).get("role") == "trials"]


def plotted_numbers(figure) -> list[int]:
    return sorted(int(n) for trace in trial_traces(figure) for n in trace.customdata)


def complete_numbers(study) -> list[int]:
    return sorted(t.number for t in study.get_trials(states=(optuna.trial.TrialState.COMPLETE,)))


@pytest.mark.parametrize("x", ["latency_ms", "size_kb"])
@pytest.mark.parametrize("color_by", ["kind", "quant"])
def test_every_complete_trial_is_one_point(study, info, x, color_by):
    figure = figures.pareto_figure(info, x, color_by)
    assert plotted_numbers(figure) == complete_numbers(study)
    for trace in trial_traces(figure):
        assert len(trace.x) == len(trace.y) == len(trace.customdata) == len(trace.hovertext)


def test_3d_view_holds_every_complete_trial(study, info):
    figure = figures.pareto_3d_figure(info, "quant")
    assert plotted_numbers(figure) == complete_numbers(study)
    assert all(trace.type == "scatter3d" for trace in trial_traces(figure))


def test_front_matches_optunas_best_trials_and_excludes_infeasible(study, info):
    expected = {t.number for t in study.best_trials}  # optuna leaves out trials whose constraints are violated
    assert {p.number for p in info.front} == expected
    infeasible = [p for p in info.points if p.infeasible]
    assert [p.infeasible for p in infeasible] == ["latency 55 ms > max 40 ms"]
    assert not infeasible[0].on_front


def test_front_matches_optunas_best_trials_when_only_optuna_5_knows_a_trial_is_infeasible(tmp_path):
    study = create_study(f"sqlite:///{tmp_path / 'optuna5.db'}", "optuna5")
    for index in range(5):
        add_trial(study, index)
    study.add_trial(optuna.trial.create_trial(  # would dominate every other trial
        state=optuna.trial.TrialState.COMPLETE, values=[0.99, 1.0, 10.0],
        user_attrs=attrs_for(spec_for(98), 0.99, 1.0, 10.0), constraints={"max_latency_ms": 0.5},
    ))
    info = figures.pareto_info(study)
    expected = {t.number for t in study.best_trials}
    assert 5 not in expected and {p.number for p in info.front} == expected
    assert info.points[-1].infeasible and not info.points[-1].on_front


def test_front_points_are_filled_and_dominated_ones_rings_of_the_same_colour(info):
    figure = figures.pareto_figure(info, "latency_ms")
    front = {p.number for p in info.front}
    by_number = {p.number: p for p in info.points}
    for trace in trial_traces(figure):
        assert trace.marker.opacity == 1.0, trace.name  # no blending: a dominated point keeps its category's colour
        if trace.name == "infeasible (rejected)":
            continue
        colours = trace.marker.color if isinstance(trace.marker.color, tuple) else [trace.marker.color] * len(trace.customdata)
        for number, colour in zip(trace.customdata, colours):
            assert trace.marker.symbol.endswith("-open") == (number not in front), (trace.name, number)
            assert colour == figures.KIND_COLORS[by_number[number].kind]


def test_palette_tells_every_category_apart_and_the_legend_shows_full_colours(info):
    import space

    for palette, names in ((figures.KIND_COLORS, space.BLOCK_KINDS), (figures.QUANT_COLORS, space.QUANT_MODES)):
        assert set(names) <= set(palette)  # no kind or mode of the space falls back to the grey of the rest
        colours = list(palette.values()) + [figures.OTHER_COLOR, figures.KEY_COLOR]
        assert len(set(colours)) == len(colours)
    figure = figures.pareto_figure(info, "latency_ms")
    shown = [t for t in figure.data if t.showlegend is not False]
    assert all((t.meta or {}).get("role") in ("legend", "knee", "front") or t.name == "infeasible (rejected)" for t in shown)
    keys = {t.name: t.marker for t in shown if (t.meta or {}).get("role") == "legend"}
    for kind in {p.kind for p in info.points if not p.preset and not p.infeasible}:
        assert keys[kind].color == figures.KIND_COLORS[kind] and keys[kind].symbol == "circle"
    assert keys["dominated: ring"].symbol == "circle-open" and "hand-designed presets" in keys


def test_front_line_joins_the_two_objective_front_in_order(info):
    figure = figures.pareto_figure(info, "latency_ms")
    line = next(trace for trace in figure.data if (trace.meta or {}).get("role") == "front")
    points = [(p.latency_ms, p.dice) for p in info.feasible]
    expected = sorted(
        (lat, dice) for lat, dice in points
        if not any(l2 <= lat and d2 >= dice and (l2, d2) != (lat, dice) for l2, d2 in points)
    )
    assert list(zip(line.x, line.y)) == expected
    assert line.line.shape == "hv" and line.hoverinfo == "skip"


def test_presets_are_marked_apart_with_symbol_and_a_leader_line_label(info):
    figure = figures.pareto_figure(info, "latency_ms")
    presets = [trace for trace in trial_traces(figure) if trace.name == "hand-designed presets"]
    assert presets and all(trace.marker.symbol.startswith("diamond") for trace in presets)
    labels = sorted(a.text for a in figure.layout.annotations if a.name in ("preset", "knee"))
    knee = f"knee #{info.knee}"
    assert labels == ["unet-depthwise · " + knee, "unet-standard"]  # the knee of this study is a preset
    preset_numbers = {int(n) for trace in presets for n in trace.customdata}
    others = {int(n) for trace in trial_traces(figure) if trace not in presets for n in trace.customdata}
    assert preset_numbers == {p.number for p in info.points if p.preset}
    assert not preset_numbers & others


def label_boxes(figure, view):
    from studies import labels

    boxes = []
    for a in figure.layout.annotations:
        if a.name in ("preset", "knee"):
            x, y = labels.to_pixels(a.x, a.y, *view)
            boxes.append(labels.label_box((x + a.ax, y + a.ay), a.text))
    return boxes


def test_preset_labels_on_one_spot_do_not_collide(tmp_path):
    study = create_study(f"sqlite:///{tmp_path / 'crowd.db'}", "crowd")
    for index in range(6):
        add_trial(study, index)
    for index, name in enumerate(("unet", "unet-int8", "group", "group-int8")):
        add_trial(study, 10 + index, preset=name)
        study.add_trial(optuna.trial.create_trial(  # four presets within a hair of each other
            values=[0.7 + index * 1e-4, 20.0 + index * 1e-3, 300.0],
            user_attrs=attrs_for(spec_for(index), 0.7, 20.0, 300.0, preset=f"{name}-twin")))
    info = figures.pareto_info(study)
    figure = figures.pareto_figure(info, "latency_ms")
    boxes = label_boxes(figure, (figure.layout.xaxis.range, figure.layout.yaxis.range))
    assert len(boxes) == 9  # eight presets and the knee
    from studies.labels import overlap

    assert all(overlap(a, b) == 0 for i, a in enumerate(boxes) for b in boxes[i + 1:])


def test_one_far_trial_does_not_squeeze_the_front(tmp_path):
    study = create_study(f"sqlite:///{tmp_path / 'far.db'}", "far", config={})
    for index in range(6):
        add_trial(study, index)
    study.add_trial(optuna.trial.create_trial(  # dominated and ten times slower than anything else
        values=[0.3, 400.0, 2000.0], user_attrs=attrs_for(spec_for(1), 0.3, 400.0, 2000.0)))
    add_preset(study, "unet", spec_for(2), 0.35, 300.0, 1500.0)  # a far preset: the note counts it
    info = figures.pareto_info(study)
    figure = figures.pareto_figure(info, "latency_ms")
    low, high = figure.layout.xaxis.range
    front_x = [p.latency_ms for p in info.front]
    assert low <= min(front_x) and max(front_x) <= high < 400.0
    assert (max(front_x) - min(front_x)) / (high - low) > 0.7  # the front spans most of the axis
    # the far one, one below the front and the preset
    assert "zoomed to the front: 3 of 8 trials outside, 1 of them presets" in figure.layout.xaxis.title.text
    buttons = [b.label for b in figure.layout.updatemenus[0].buttons]
    assert buttons == ["front", "all trials", "log axis"]
    assert figure.layout.updatemenus[0].buttons[2].args[0]["xaxis.type"] == "log"
    scene = figures.pareto_3d_figure(info).layout  # the same rule in 3-D, over the 3-objective front
    for axis, metric in (("xaxis", "latency_ms"), ("yaxis", "size_kb"), ("zaxis", "dice")):
        low, high = scene.scene[axis].range
        assert all(low <= p.value(metric) <= high for p in info.front), axis
    assert scene.scene.xaxis.range[1] < 400.0 and scene.scene.yaxis.range[1] < 2000.0 and scene.scene.zaxis.range[0] > 0.3
    assert "zoomed to the front: " in scene.title.text and "of 8 trials outside, 1 of them presets" in scene.title.text
    every = scene.updatemenus[0].buttons[1].args[0]
    assert every["scene.xaxis.autorange"] and every["scene.zaxis.autorange"] and "zoomed" not in every["title.text"]
    assert scene.updatemenus[0].buttons[2].args[0]["scene.xaxis.type"] == "log"
    eye = np.array([scene.scene.camera.eye[k] for k in "xyz"])
    assert eye @ np.ones(3) / np.linalg.norm(eye) / np.sqrt(3) < 0.5  # not along the front's diagonal


def test_hover_summarises_the_trial(info):
    point = next(p for p in info.points if p.preset == "unet-standard")
    assert f"trial #{point.number}" in point.hover
    assert "preset unet-standard" in point.hover
    # no dice_ci95 stored: the bare value; latency_cv 0.04 over 50 runs: 30 * 1.2533 * 0.04 / sqrt(50)
    assert "Dice 0.900<br>" in point.hover and "latency 30.00 ± 0.21 ms" in point.hover


def test_hover_carries_the_dice_interval_test_dice_latency_spread_and_ties(tmp_path):
    info = figures.pareto_info(spread_study(f"sqlite:///{tmp_path / 'spread.db'}"))
    hover = {p.number: p.hover for p in info.points}
    dice, test, latency = SPREAD_TEXTS[0]
    assert f"Dice {dice} · test {test}<br>latency {latency} ms" in hover[0]
    assert "Dice 0.600<br>latency 5.00 ms" in hover[1] and "±" not in hover[1]
    assert "(a tie with #2)" in hover[0] and "(a tie with #0)" in hover[2] and "tie" not in hover[1]
    traced = [text for t in figures.pareto_figure(info).data if (t.meta or {}).get("role") == "trials" for text in t.hovertext]
    assert hover[0] in traced


def test_colour_by_kind_or_quant_names_the_categories(info):
    kinds = {t.name for t in trial_traces(figures.pareto_figure(info, color_by="kind"))}
    quants = {t.name for t in trial_traces(figures.pareto_figure(info, color_by="quant"))}
    extra = {"hand-designed presets", "infeasible (rejected)"}
    assert kinds - extra <= set(figures.KIND_COLORS) and len(kinds - extra) >= 3
    assert quants - extra <= set(figures.QUANT_COLORS) and len(quants - extra) >= 3
    with pytest.raises(ValueError, match="choose one of kind, quant"):
        figures.pareto_figure(info, color_by="colour")


def test_constraint_lines_where_set(tmp_path, info):
    latency = figures.pareto_figure(info, "latency_ms")
    lines = {(s.type, s.x0 if s.x0 == s.x1 else None, s.y0 if s.y0 == s.y1 else None) for s in latency.layout.shapes}
    assert ("line", 40.0, None) in lines and ("line", None, 0.5) in lines
    size = figures.pareto_figure(info, "size_kb")  # no max_size_kb in the config: only the Dice line
    assert [(s.y0, s.y1) for s in size.layout.shapes if s.type == "line"] == [(0.5, 0.5)]

    bare = create_study(f"sqlite:///{tmp_path / 'bare.db'}", "bare", config={})
    add_trial(bare, 0)
    assert [s.type for s in figures.pareto_figure(figures.pareto_info(bare)).layout.shapes] == ["circle"]  # the knee


def test_the_constant_mask_is_a_dotted_line_where_the_study_stored_it(tmp_path):
    study = create_study(f"sqlite:///{tmp_path / 'mask.db'}", "mask", config={})
    add_trial(study, 0)
    study.set_user_attr("constant_mask", [0.5, 0.7])
    figure = figures.pareto_figure(figures.pareto_info(study))
    (line,) = [s for s in figure.layout.shapes if s.type == "line"]
    assert (line.y0, line.y1, line.line.dash) == (0.6, 0.6, "dot")
    assert [a.text for a in figure.layout.annotations if a.text.startswith("constant mask")] == ["constant mask 0.600"]


def test_hypervolume_history_follows_studies_pareto_and_never_falls(study, info):
    reference = figures.reference_point(info)
    assert reference == {"dice": 0.0, "latency_ms": 40.0, "size_kb": pytest.approx(1.1 * 1900.0)}
    losses = np.array([[1 - p.dice, p.latency_ms / 40.0, p.size_kb / reference["size_kb"]] for p in info.feasible])
    expected = optuna._hypervolume.compute_hypervolume(losses[np.all(losses <= 1, axis=1)], np.ones(3))
    numbers, values = figures.hypervolume_history(info)
    assert numbers == sorted(t.number for t in study.trials)  # every finished trial, failed ones included
    assert all(b >= a for a, b in zip(values, values[1:]))
    assert values[-1] == pytest.approx(expected)
    figure = figures.hypervolume_figure(info)
    assert list(figure.data[0].y) == values


def test_knee_is_labelled_with_its_number_and_is_on_the_front(study, info):
    knee = front.knee(front.study_points(study))
    assert info.knee == knee.number and knee.number in {p.number for p in info.front}
    figure = figures.pareto_figure(info, "latency_ms")
    arrows = [a for a in figure.layout.annotations if a.name == "knee"]
    assert len(arrows) == 1 and arrows[0].text.endswith(f"knee #{knee.number}") and arrows[0].x == knee.values["latency_ms"]
    ring = [s for s in figure.layout.shapes if s.name == "knee"]
    assert len(ring) == 1 and (ring[0].xanchor, ring[0].yanchor) == (knee.values["latency_ms"], knee.values["dice"])
    assert [t.name for t in figure.data if (t.meta or {}).get("role") == "knee"] == [f"knee #{knee.number}"]
    ring_3d = [t for t in figures.pareto_3d_figure(info).data if (t.meta or {}).get("role") == "knee"]
    assert list(ring_3d[0].text) == [f"knee #{knee.number}"]


def test_3d_legend_names_presets_and_infeasible_apart(info):
    figure = figures.pareto_3d_figure(info)
    shown = {t.name for t in figure.data if t.showlegend is not False}
    assert {"hand-designed presets", "infeasible (rejected)"} <= shown
    assert not any("/" in name for name in shown)


def test_recommendations_are_the_pick_rules_choices(study, info):
    from studies import pareto

    chosen = figures.recommendations(info)
    points = front.study_points(study)
    expected: dict[int, list[str]] = {}
    for rule in ("knee", "max-dice", "min-latency"):
        expected.setdefault(pareto.pick(points, rule).number, []).append(rule)
    assert {r.point.number: list(r.rules) for r in chosen} == expected
    assert chosen[0].rules[0] == "knee" and chosen[0].point.knee


def test_two_studies_fronts_on_one_plot(tmp_path, info):
    other = create_study(f"sqlite:///{tmp_path / 'other.db'}", "other")
    for index in range(6):
        add_trial(other, index, seed=7)
    second = figures.pareto_info(other)
    figure = figures.compare_figure(info, second, "latency_ms")
    fronts = [t for t in figure.data if (t.meta or {}).get("role") == "front"]
    assert [t.name for t in fronts] == ["demo: front", "other: front"]
    studies = {pair[1] for trace in trial_traces(figure) for pair in trace.customdata}
    assert studies == {"demo", "other"}
    assert len(plotted_numbers_pairs(figure)) == len(info.feasible) + len(second.feasible)
    history = figures.hypervolume_figure(info, second)
    assert [t.name for t in history.data] == ["demo", "other"]


def plotted_numbers_pairs(figure):
    return [tuple(pair) for trace in trial_traces(figure) for pair in trace.customdata]


def test_names_are_escaped_in_figures(tmp_path):
    name = "<script>alert(1)</script>"
    study = create_study(f"sqlite:///{tmp_path / 'x.db'}", name)
    add_trial(study, 0, preset="<b>evil</b>")
    info = figures.pareto_info(study)
    figure = figures.pareto_figure(info)
    assert "<script>" not in figure.layout.title.text and "&lt;script&gt;" in figure.layout.title.text
    assert "<b>evil</b>" not in info.points[0].hover and "&lt;b&gt;evil" in info.points[0].hover


def test_empty_study_draws_empty_figures_with_a_note(tmp_path):
    study = create_study(f"sqlite:///{tmp_path / 'empty.db'}", "empty")
    info = figures.pareto_info(study)
    for figure in figures.study_figures(info).values():
        assert any("no complete trials yet" in a["text"] for a in figure["layout"].get("annotations", []))
