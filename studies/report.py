"""``search report``: one self-contained HTML file with a study's figures and its front table.

The file carries its own plotly.js, CSS and page script (the dashboard's ``app.js``), and a
Content-Security-Policy that allows inline code only: opened from disk it makes no network request.
Both colourings (block kind, quant mode) are embedded, so the colour selector works offline.
"""

from __future__ import annotations

import datetime
import os
from pathlib import Path

from studies import figures, pages, views
from studies.confirmed_figures import study_confirmed_figures
from studies.files import write_atomically
from studies.storage.urls import DEFAULT_URL

REPORT_TABLES = (
    '<section><h2>Pareto front <span class="muted">best Dice first</span></h2>'
    '<div class="table-wrap"><table id="front" class="trials"></table></div></section>'
    '<details><summary>All $count trials</summary>'
    '<div class="table-wrap"><table id="trials" class="trials"></table></div></details>'
)


def build_report(study, source: str = "") -> str:
    """The report of an Optuna ``study`` as one HTML string."""
    info = figures.pareto_info(study)
    rows = views.trial_rows(study, info)
    assets = pages.inlined_assets(source)
    page = {
        "kind": "report", "study": study.study_name, "trial_path": None, "poll": None, "color_by": "kind",
        "sort": {"key": "dice", "dir": -1},
        "figure_sets": {color: {**figures.study_figures(info, color), **study_confirmed_figures(study)} for color in figures.COLOR_BY},
        "columns": views.columns(rows), "rows": rows,
        "summary": views.study_summary(study, info),
        "recommended": views.recommended(info, source or DEFAULT_URL),
    }
    created = datetime.datetime.now().isoformat(sep=" ", timespec="seconds")
    body = pages.template("study.html").substitute(
        study=pages.esc(study.study_name), home="", color_options=pages._color_options("kind"), compare_link="",
        study_selector=f'<span class="muted">report written {pages.esc(created)}</span>',
        hint=pages.esc(pages.HINT.replace("Click a point to open its trial. ", "")),
        tables=REPORT_TABLES.replace("$count", str(len(rows))),
    )
    return pages.layout(f"Report {study.study_name}", body, page, assets, home="#")


def write_report(url: str, output: str | os.PathLike, study: str | None = None) -> Path:
    """Write the report of ``study`` (the latest if ``None``) in the database at ``url`` to ``output``.

    Errors: those of :func:`studies.storage.open_storage` and :func:`studies.storage.load_study`,
    ``FileNotFoundError`` when the output's folder is missing, ``IsADirectoryError`` when it is a folder.
    """
    path = _checked_output(Path(output))
    from studies.storage import load_study, open_storage, storage_url

    storage = open_storage(url, create=False, heartbeat_interval=None)
    try:
        text = build_report(load_study(storage, study), storage_url(storage))
    finally:
        storage.engine.dispose()
    write_atomically(path, text.encode("utf-8"))
    return path


def _checked_output(path: Path) -> Path:
    if path.is_dir():
        raise IsADirectoryError(f"-o {path} is a folder; name a file such as {path / 'report.html'}")
    if not path.absolute().parent.is_dir():
        raise FileNotFoundError(f"-o {path}: folder {path.absolute().parent} does not exist; create it or choose another path")
    return path
