"""HTML pages of the dashboard and the report, filled from ``studies/templates``.

Escaping rule: every value that came from the database goes through :func:`esc` (``html.escape``)
before it enters a template, or travels as JSON inside ``<script type="application/json">`` with
``<``, ``>`` and ``&`` escaped (:func:`script_json`); ``studies/static/app.js`` writes such data with
``textContent`` only. A study called ``<script>alert(1)</script>`` therefore shows as text.
"""

from __future__ import annotations

import dataclasses
import functools
import html
import json
import string
from importlib import resources
from typing import Any
from urllib.parse import urlencode

from studies import figures
from studies.metrics import size_kb

COLOR_LABELS = figures.COLOR_BY
DASHBOARD_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
"""Content-Security-Policy of every dashboard page: its own scripts and data, nothing else."""
REPORT_CSP = (
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data: blob:; "
    "base-uri 'none'; form-action 'none'"
)
"""The report's policy: inline code only, so opening it can make no network request at all."""


@dataclasses.dataclass(frozen=True)
class Assets:
    """How a page gets its CSS and scripts: linked from the server, or inlined (the report)."""

    head: str
    scripts: str
    csp_meta: str = ""
    source: str = ""


def served_assets(source: str) -> Assets:
    """Assets of a dashboard page: the server's ``/static`` files (CSP comes as an HTTP header)."""
    return Assets(
        head='<link rel="stylesheet" href="/static/style.css">',
        scripts='<script src="/static/plotly.min.js"></script>\n<script src="/static/app.js"></script>',
        source=esc(source),
    )


def inlined_assets(source: str) -> Assets:
    """Assets of the report: CSS, plotly.js and the page script inlined in the one file."""
    return Assets(
        head=f"<style>\n{static_text('style.css')}\n</style>",
        scripts=f"<script>\n{plotly_js()}\n</script>\n<script>\n{static_text('app.js')}\n</script>",
        csp_meta=f'<meta http-equiv="Content-Security-Policy" content="{REPORT_CSP}">',
        source=esc(source),
    )


# -- helpers -----------------------------------------------------------------------------------

def esc(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def script_json(data: Any) -> str:
    """JSON safe inside ``<script type="application/json">``: no ``</script>`` can close it."""
    text = json.dumps(data, separators=(",", ":"), default=str)
    for raw, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(raw, escaped)
    return text


def url(path: str, **query: Any) -> str:
    """A local URL with its query encoded (study names may hold any character)."""
    query = {key: value for key, value in query.items() if value is not None}
    return f"{path}?{urlencode(query)}" if query else path


@functools.cache
def template(name: str) -> string.Template:
    return string.Template(resources.files("studies").joinpath("templates", name).read_text(encoding="utf-8"))


@functools.cache
def static_text(name: str) -> str:
    return resources.files("studies").joinpath("static", name).read_text(encoding="utf-8")


@functools.cache
def plotly_js() -> str:
    """plotly.js from the installed plotly package (never a CDN)."""
    from plotly.offline import get_plotlyjs

    return get_plotlyjs()


def fmt(value: Any) -> str:
    """A value for a table cell, unescaped: floats to 4 significant decimals, counts grouped."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.4f}".rstrip("0").rstrip(".") if abs(value) < 1000 else f"{value:,.1f}"
    if isinstance(value, dict):
        return ", ".join(f"{k}: {fmt(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return ", ".join(fmt(v) for v in value)
    return str(value)


def table(headers: list[str] | None, rows: list, css: str = "") -> str:
    """An HTML table with every cell escaped."""
    head = "<thead><tr>" + "".join(f"<th>{esc(h)}</th>" for h in headers) + "</tr></thead>" if headers else ""
    body = "".join("<tr>" + "".join(f"<td>{esc(fmt(cell))}</td>" for cell in row) + "</tr>" for row in rows)
    return f'<table class="{esc(css)}">{head}<tbody>{body}</tbody></table>'


def key_values(pairs, css: str = "kv") -> str:
    rows = "".join(f"<tr><th>{esc(k)}</th><td>{esc(fmt(v))}</td></tr>" for k, v in pairs)
    return f'<table class="{esc(css)}"><tbody>{rows}</tbody></table>'


def study_options(names: list[str], selected: str | None) -> str:
    return "".join(
        f'<option value="{esc(name)}"{" selected" if name == selected else ""}>{esc(name)}</option>' for name in names
    )


def layout(title: str, body: str, page_data: dict, assets: Assets, nav: str = "", home: str = "/") -> str:
    return template("layout.html").substitute(
        title=esc(title), body=body, page_data=script_json(page_data), head=assets.head, scripts=assets.scripts,
        csp=assets.csp_meta, nav=nav, home=esc(home), version=esc(_version()), source=assets.source,
    )


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("nas-lite")
    except Exception:  # noqa: BLE001 - not installed: a checkout
        return "(checkout)"


def _nav(links: list[tuple[str, str]]) -> str:
    return "".join(f'<a href="{esc(href)}">{esc(text)}</a>' for text, href in links)


# -- pages -------------------------------------------------------------------------------------

HINT = (
    "Click a point to open its trial. Filled points are on the Pareto front of Dice, latency and size, rings are "
    "dominated; ◆ hand-designed presets; × infeasible (rejected by a constraint). The line joins the front of the "
    "two plotted objectives; the large ring marks the knee (what 'search export --pick knee' takes). The plots open "
    "zoomed to the front: 'all trials' or 'log axis' above a plot shows every trial. ± is a measurement's own "
    "uncertainty: half the 95% bootstrap interval of Dice over the images, the standard error of the median "
    "latency. The front counts differences within it as ties; ≈ #N marks a member tied with #N in every objective."
)


TRIAL_TABLE = (
    '<section><h2>Trials <label class="muted"><input type="checkbox" id="front-only"> front only</label></h2>'
    '<div class="table-wrap"><table id="trials" class="trials"></table></div></section>'
)


def study_page(names: list[str], payload: dict, refresh_ms: int, assets: Assets) -> str:
    """The dashboard's study page; figures and table are drawn by app.js from the page data."""
    name = payload["study"]
    others = [n for n in names if n != name]
    compare = (
        f'<a class="button light" href="{esc(url("/compare", a=name, b=others[0]))}">compare with another study</a>'
        if others else ""
    )
    body = template("study.html").substitute(
        study=esc(name), home="/", color_options=_color_options(payload["color_by"]), compare_link=compare,
        study_selector=f'<label>study <select name="study" class="nav-select">{study_options(names, name)}</select></label>',
        hint=esc(HINT),
        tables=TRIAL_TABLE,
    )
    page = {
        "kind": "study", "study": name, "poll": url("/api/study", study=name), "refresh_ms": refresh_ms,
        "trial_path": "/trial", **payload,
    }
    return layout(f"Study {name}", body, page, assets, nav=_nav([("studies", "/studies")]))


def _color_options(selected: str) -> str:
    return "".join(
        f'<option value="{esc(key)}"{" selected" if key == selected else ""}>{esc(label)}</option>'
        for key, label in COLOR_LABELS.items()
    )


def trial_page(detail: dict, assets: Assets) -> str:
    """A trial's page: spec stage by stage, metrics, latency, training curve, previews, download."""
    study, number = detail["study"], detail["number"]
    plots = {}
    if detail["latency_samples"]:
        plots["latency-hist"] = figures.figure_json(figures.latency_histogram(detail["latency_samples"]))
    if detail["dice_history"]:
        plots["dice-history"] = figures.figure_json(figures.dice_history_figure(detail["dice_history"]))
    body = template("trial.html").substitute(
        number=esc(number), state=esc(detail["state"]), summary=esc(detail["summary"] or ""),
        preset=f' <span class="badge preset">preset {esc(detail["preset"])}</span>' if detail["preset"] else "",
        picks="".join(f' <span class="badge pick">{esc(label)}</span>' for label in detail["export"]["labels"]),
        download=_download(detail), commands=_export_commands(detail), study_url=esc(url("/", study=study)), study=esc(study),
        reasons="".join(f'<p class="reason"><b>{esc(k)}:</b> {esc(v)}</p>' for k, v in detail["reasons"]),
        stages=table(["stage", "level", "channels", "kind", "groups", "dilation", "label"], detail["stages"], "spec")
        if detail["stages"] else "",
        settings=key_values(detail["settings"]),
        metrics=key_values(detail["metrics"] + [("started", detail["started"]), ("completed", detail["completed"]),
                                               ("trial id", detail["trial_id"])]),
        latency_plot=_plot_or_note("latency-hist", plots, "no latency samples stored for this trial"),
        measurements=_measurements(detail["measurements"]),
        history_plot=_plot_or_note("dice-history", plots, "no Dice history recorded for this trial"),
        previews=_previews(detail),
    )
    page = {"kind": "trial", "study": study, "number": number, "figures": plots}
    nav = _nav([("studies", "/studies"), (f"study {study}", url("/", study=study))])
    return layout(f"Trial #{number} · {study}", body, page, assets, nav=nav)


def _download(detail: dict) -> str:
    artifact = detail["artifact"]
    if not artifact:
        return '<span class="muted">no .tflite stored for this trial</span>'
    query = {"study": detail["study"], "number": detail["number"]}
    size = f"{size_kb(artifact['size']):.1f} KB"
    return (f'<a class="button" href="{esc(url("/artifact", **query))}" download>Download .tflite</a> '
            f'<a class="button light" href="{esc(url("/sidecar", **query))}" download>Download sidecar .json</a> '
            f'<span class="muted">{esc(size)} · sha256 <code>{esc(artifact["sha256"][:16])}…</code></span>')


def _export_commands(detail: dict) -> str:
    """The ``search export`` lines for this trial: by number, and by each pick rule that chooses it now."""
    export = detail["export"]
    lines = [("this trial", export["command"])]
    lines += [("or by its rule (whatever the study holds then)", command) for command in export["pick_commands"]]
    return "".join(f'<p class="muted">{esc(note)}</p><pre class="command"><code>{esc(command)}</code></pre>'
                   for note, command in lines)


def _plot_or_note(key: str, plots: dict, note: str) -> str:
    return f'<div id="fig-{key}" class="plot"></div>' if key in plots else f'<p class="muted">{esc(note)}</p>'


def _measurements(measurements: list[dict]) -> str:
    if not measurements:
        return '<p class="muted">no measurements stored for this trial</p>'
    parts = []
    for m in measurements:
        parts.append(
            f'<div class="measurement"><h3>{esc(m["device"])} <span class="muted">{esc(m["created"] or "")}</span></h3>'
            f'<div class="columns three"><div><h4>device</h4>{key_values(m["device_info"].items())}</div>'
            f'<div><h4>protocol</h4>{key_values(m["protocol"].items())}</div>'
            f'<div><h4>statistics</h4>{key_values(m["stats"].items())}</div></div></div>'
        )
    return "".join(parts)


def _previews(detail: dict) -> str:
    if not detail["previews"]:
        return '<p class="muted">no preview images stored for this trial</p>'
    figures_html = []
    for index in range(detail["previews"]):
        images = "".join(
            f'<span class="shot"><img src="{esc(url("/preview", study=detail["study"], number=detail["number"], index=index, image=part))}" '
            f'alt="{part}" title="{part}"><small>{part}</small></span>'
            for part in ("input", "truth", "prediction")
        )
        figures_html.append(f'<figure class="preview">{images}<figcaption>sample {index + 1}</figcaption></figure>')
    return f'<div class="previews">{"".join(figures_html)}</div>'


def compare_page(names: list[str], first: str, second: str, payload: dict, refresh_ms: int, assets: Assets) -> str:
    """Two studies' fronts on one plot, and their hypervolume curves."""
    body = template("compare.html").substitute(
        first=esc(first), second=esc(second), compare_path="/compare",
        first_options=study_options(names, first), second_options=study_options(names, second),
    )
    page = {"kind": "compare", "poll": url("/api/compare", a=first, b=second), "refresh_ms": refresh_ms,
            "trial_path": "/trial", **payload}
    return layout(f"Compare {first} and {second}", body, page, assets, nav=_nav([("studies", "/studies")]))


def message_page(heading: str, message: str, assets: Assets) -> str:
    body = template("message.html").substitute(heading=esc(heading), message=esc(message))
    return layout(heading, body, {"kind": "message"}, assets, nav=_nav([("studies", "/studies")]))


def studies_page(infos: list, assets: Assets) -> str:
    """Every study in the database (``studies.storage.StudyInfo`` list), newest activity first."""
    if not infos:
        return message_page("No study yet", "The database holds no study. Start one with 'search start'.", assets)
    ordered = sorted(infos, key=lambda i: i.last_activity.isoformat() if i.last_activity else "", reverse=True)
    rows = []
    for info in ordered:
        link = f'<a href="{esc(url("/", study=info.name))}" class="name">{esc(info.name)}</a>'
        states = ", ".join(f"{n} {state.lower()}" for state, n in sorted(info.states.items()))
        last = info.last_activity.isoformat(sep=" ", timespec="seconds") if info.last_activity else "–"
        metrics = ", ".join(info.metric_names or info.directions)
        rows.append(f"<tr><td>{link}</td><td class=\"value\">{info.n_trials}</td><td>{esc(states or '–')}</td>"
                    f"<td>{esc(metrics)}</td><td>{esc(last)}</td></tr>")
    head = "".join(f"<th>{h}</th>" for h in ("study", "trials", "states", "objectives", "last activity"))
    body = (f'<section class="page-head"><h1>Studies</h1></section><div class="table-wrap"><table class="trials">'
            f'<thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table></div>')
    return layout("Studies", body, {"kind": "studies"}, assets, nav=_nav([("studies", "/studies")]))
