"""One function per route, ``route(request, query)``: read from the app, render with
:mod:`studies.pages` or :mod:`studies.views`, answer through the request's ``html``/``json``/``send``.

``request`` is the :class:`studies.web.handler.RequestHandler` of the call (its ``app`` is the
:class:`studies.web.app.DashboardApp`); ``query`` is the parsed query string.
"""

from __future__ import annotations

import json
import re
import threading
from http import HTTPStatus
from pathlib import Path
from urllib.parse import urlsplit

from studies import pages
from studies.export import sidecar_path
from studies.web.app import NotFound

STATIC = {
    "/static/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/static/style.css": ("style.css", "text/css; charset=utf-8"),
}
PREVIEW_PARTS = ("input", "truth", "prediction")


# -- pages ----------------------------------------------------------------------------------------
def study_page(request, query):
    app = request.app
    name = _param(query, "study", required=False) or app.latest_name()
    if name is None:
        request.html(pages.message_page(
            "No study yet", f"{app.source} holds no study. Start one with 'search start', then reload.", app.assets))
        return
    color = _param(query, "color", required=False) or "kind"
    payload = app.study_payload(name, color)
    request.html(pages.study_page(app.names(), payload, app.refresh_ms, app.assets))


def studies_page(request, query):
    request.html(pages.studies_page(request.app.infos(), request.app.assets))


def trial_page(request, query):
    app = request.app
    detail = app.trial_detail(_param(query, "study"), _number(query))
    request.html(pages.trial_page(detail, app.assets))


def compare_page(request, query):
    app = request.app
    names = app.names()
    first = _param(query, "a", required=False) or app.latest_name()
    second = _param(query, "b", required=False) or next((n for n in names if n != first), first)
    if first is None:
        raise NotFound(f"{app.source} holds no study yet")
    payload = app.compare_payload(first, second)
    request.html(pages.compare_page(names, first, second, payload, app.refresh_ms, app.assets))


# -- data -----------------------------------------------------------------------------------------
def api_studies(request, query):
    request.json({"studies": [info.to_dict() for info in request.app.infos()]})


def api_study(request, query):
    color = _param(query, "color", required=False) or "kind"
    known = _param(query, "version", required=False)
    request.json(request.app.study_payload(_param(query, "study"), color, known))


def api_trial(request, query):
    request.json(request.app.trial_detail(_param(query, "study"), _number(query)))


def api_compare(request, query):
    known = _param(query, "version", required=False)
    request.json(request.app.compare_payload(_param(query, "a"), _param(query, "b"), known))


# -- files ----------------------------------------------------------------------------------------
def artifact(request, query):
    app = request.app
    name, number = _param(query, "study"), _number(query)
    data = app.results.artifact(app.trial(name, number)._trial_id)
    if data is None:
        raise NotFound(f"trial #{number} of {name!r} has no stored .tflite")
    request.send(HTTPStatus.OK, data, "application/octet-stream",
                 {"Content-Disposition": f'attachment; filename="{_model_filename(name, number)}"'})


def sidecar(request, query):
    """The sidecar of the stored model, as ``search export --trial N`` writes it (same stem as /artifact's file)."""
    name, number = _param(query, "study"), _number(query)
    data = json.dumps(request.app.sidecar(name, number), indent=2, default=str).encode() + b"\n"
    filename = sidecar_path(Path(_model_filename(name, number))).name
    request.send(HTTPStatus.OK, data, "application/json", {"Content-Disposition": f'attachment; filename="{filename}"'})


def preview(request, query):
    app = request.app
    name, number = _param(query, "study"), _number(query)
    index, part = _number(query, "index"), _param(query, "image")
    if part not in PREVIEW_PARTS:
        raise ValueError(f"image: choose one of {', '.join(PREVIEW_PARTS)}")
    previews = app.results.previews(app.trial(name, number)._trial_id)
    if not 0 <= index < len(previews):
        raise NotFound(f"trial #{number} has {len(previews)} previews; no index {index}")
    request.send(HTTPStatus.OK, previews[index][PREVIEW_PARTS.index(part)], "image/png", {"Cache-Control": "max-age=3600"})


def plotly(request, query):
    request.send(HTTPStatus.OK, _plotly_bytes(), "text/javascript; charset=utf-8", {"Cache-Control": "max-age=86400"})


def static(request, query):
    name, content_type = STATIC[urlsplit(request.path).path]
    request.send(HTTPStatus.OK, pages.static_text(name).encode(), content_type, {"Cache-Control": "no-cache"})


ROUTES = {
    "/": study_page,
    "/studies": studies_page,
    "/trial": trial_page,
    "/compare": compare_page,
    "/api/studies": api_studies,
    "/api/study": api_study,
    "/api/trial": api_trial,
    "/api/compare": api_compare,
    "/artifact": artifact,
    "/sidecar": sidecar,
    "/preview": preview,
    "/static/plotly.min.js": plotly,
    **{path: static for path in STATIC},
}


# -- query parameters -----------------------------------------------------------------------------
def _param(query: dict, name: str, required: bool = True) -> str | None:
    values = query.get(name)
    if not values or values[0] == "":
        if required:
            raise ValueError(f"missing query parameter {name!r}")
        return None
    return values[0]


def _number(query: dict, name: str = "number") -> int:
    text = _param(query, name)
    if not re.fullmatch(r"\d{1,9}", text):
        raise ValueError(f"{name}: expected a whole number, got {text!r}")
    return int(text)


def _model_filename(study: str, number: int) -> str:
    return _safe_filename(f"{study}-trial{number}.tflite")


def _safe_filename(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)[:120] or "model.tflite"


_PLOTLY_LOCK = threading.Lock()
_PLOTLY: list[bytes] = []


def _plotly_bytes() -> bytes:
    with _PLOTLY_LOCK:
        if not _PLOTLY:
            _PLOTLY.append(pages.plotly_js().encode())
        return _PLOTLY[0]
