"""``search dashboard``: a local, read-only web app over a study database (stdlib ``http.server``).

Contract:

- GET and HEAD only; any other method is ``405`` with ``Allow: GET, HEAD``. No endpoint writes to
  the database.
- Binds 127.0.0.1 unless told otherwise. While bound to loopback it answers only requests whose
  ``Host`` is a loopback name (``403`` otherwise), so a web page elsewhere cannot read the study
  through DNS rebinding.
- Works offline: plotly.js is served from the installed plotly package at ``/static/plotly.min.js``;
  pages carry a Content-Security-Policy that allows this server only.
- Names from the database are escaped in every page (:mod:`studies.pages`).

Routes (names travel in the query string, so any study name works)::

    /                       study page (?study=NAME&color=kind|quant); the latest study by default
    /studies                every study in the database
    /trial?study=S&number=N trial page
    /compare?a=S&b=T        two studies' fronts on one plot
    /api/studies            JSON: the studies
    /api/study?study=S&color=C[&version=V]    JSON: figures, rows, summary ({"unchanged": true} if V is current)
    /api/trial?study=S&number=N               JSON: one trial's details
    /api/compare?a=S&b=T[&version=V]          JSON: the compare figures
    /artifact?study=S&number=N                the trial's .tflite
    /preview?study=S&number=N&index=I&image=input|truth|prediction   PNG
    /static/plotly.min.js, /static/app.js, /static/style.css
"""

from __future__ import annotations

import ipaddress
import json
import re
import socket
import sys
import threading
import traceback
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from studies import figures, pages, views

LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost"}
STATIC = {
    "/static/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/static/style.css": ("style.css", "text/css; charset=utf-8"),
}
PREVIEW_PARTS = ("input", "truth", "prediction")


class NotFound(LookupError):
    """A page or a named thing that does not exist (404)."""


class Dashboard:
    """The dashboard's state: one storage, one result store, loaded studies and a payload cache."""

    def __init__(self, url: str, study: str | None = None, refresh_seconds: float = 3.0):
        from studies.storage import load_study, open_storage, storage_url
        from studies.store import ResultStore

        self.storage = open_storage(url, create=False, heartbeat_interval=None)
        self.source = storage_url(self.storage)
        self.results = ResultStore(url, create=False)
        self.refresh_ms = max(200, int(refresh_seconds * 1000))
        self.assets = pages.served_assets(self.source)
        self._studies: dict[str, object] = {}
        self._cache: dict[tuple, tuple[str, dict]] = {}
        self._lock = threading.Lock()
        self.default_study = load_study(self.storage, study).study_name if study else None

    # -- reading ---------------------------------------------------------------------------------
    def names(self) -> list[str]:
        """Study names, oldest first."""
        return [s.study_name for s in sorted(self.storage.get_all_studies(), key=lambda s: s._study_id)]

    def latest_name(self) -> str | None:
        from studies.storage import latest_study, list_studies

        if self.default_study:
            return self.default_study
        infos = list_studies(self.storage)
        return latest_study(infos).name if infos else None

    def study(self, name: str | None):
        """The loaded study ``name`` (kept, so Optuna's cache of finished trials is reused)."""
        import optuna

        if not name:
            raise ValueError("name a study: ?study=NAME")
        with self._lock:
            if name in self._studies:
                return self._studies[name]
        try:
            study = optuna.load_study(study_name=name, storage=self.storage)
        except KeyError:
            raise NotFound(f"no study named {name!r} in {self.source}") from None
        with self._lock:
            return self._studies.setdefault(name, study)

    def study_payload(self, name: str, color_by: str = "kind", known: str | None = None) -> dict:
        """The study page's data, rebuilt only when the study changed (``unchanged`` if ``known`` is current)."""
        if color_by not in figures.COLOR_BY:
            raise ValueError(f"color: unknown choice {color_by!r}; choose one of {', '.join(figures.COLOR_BY)}")
        study = self.study(name)
        version = views.study_version(study)
        if known == version:
            return {"version": version, "unchanged": True}
        return self._cached(("study", name, color_by), version, lambda: views.study_payload(study, color_by))

    def compare_payload(self, first: str, second: str, known: str | None = None) -> dict:
        studies = (self.study(first), self.study(second))
        version = "|".join(views.study_version(s) for s in studies)
        if known == version:
            return {"version": version, "unchanged": True}

        def build():
            infos = [figures.pareto_info(s) for s in studies]
            return {
                "version": version,
                "figures": {
                    "latency": figures.figure_json(figures.compare_figure(*infos, x="latency_ms")),
                    "size": figures.figure_json(figures.compare_figure(*infos, x="size_kb")),
                    "hypervolume": figures.figure_json(figures.hypervolume_figure(*infos)),
                },
            }

        return self._cached(("compare", first, second), version, build)

    def _cached(self, key: tuple, version: str, build) -> dict:
        with self._lock:
            hit = self._cache.get(key)
        if hit and hit[0] == version:
            return hit[1]
        payload = build()
        payload["version"] = version
        with self._lock:
            self._cache[key] = (version, payload)
        return payload

    def trial(self, name: str, number: int):
        try:
            return views.find_trial(self.study(name), number)
        except LookupError as error:
            raise NotFound(str(error)) from None

    def close(self) -> None:
        self.results.close()
        self.storage.engine.dispose()


# -- HTTP ---------------------------------------------------------------------------------------

class DashboardServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, dashboard: Dashboard):
        self.dashboard = dashboard
        host = address[0]
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.loopback_only = _is_loopback(host)
        super().__init__(address, Handler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{port}/"


class Handler(BaseHTTPRequestHandler):
    """Routes GET/HEAD to the dashboard; every other method is 405."""

    server_version = "nas-lite-dashboard"
    protocol_version = "HTTP/1.1"

    # -- methods -------------------------------------------------------------------------------
    def do_GET(self):
        self._handle(send_body=True)

    def do_HEAD(self):
        self._handle(send_body=False)

    def _not_allowed(self):
        self._drain_body()
        self._send(HTTPStatus.METHOD_NOT_ALLOWED, b"405 method not allowed: the dashboard is read-only\n",
                   "text/plain; charset=utf-8", {"Allow": "GET, HEAD"})

    def __getattr__(self, name):
        # Any do_<METHOD> other than GET and HEAD (POST, PUT, DELETE, PATCH, OPTIONS, made-up ones).
        if name.startswith("do_"):
            return self._not_allowed
        raise AttributeError(name)

    # -- dispatch ------------------------------------------------------------------------------
    def _handle(self, send_body: bool):
        self._send_body = send_body
        if not self._host_allowed():
            self._send(HTTPStatus.FORBIDDEN, b"403 forbidden: the dashboard answers loopback host names only\n",
                       "text/plain; charset=utf-8")
            return
        parts = urlsplit(self.path)
        query = parse_qs(parts.query, keep_blank_values=True)
        route = ROUTES.get(parts.path)
        api = parts.path.startswith("/api/")
        try:
            if route is None:
                raise NotFound(f"no page at {parts.path}")
            route(self, query)
        except NotFound as error:
            self._error(HTTPStatus.NOT_FOUND, str(error), api)
        except (ValueError, LookupError) as error:
            self._error(HTTPStatus.BAD_REQUEST, str(error), api)
        except (BrokenPipeError, ConnectionResetError):
            pass
        except Exception as error:  # noqa: BLE001 - one failing request must not stop the server
            traceback.print_exc(file=sys.stderr)
            self._error(HTTPStatus.INTERNAL_SERVER_ERROR, f"{type(error).__name__}: {error}", api)

    def _host_allowed(self) -> bool:
        if not self.server.loopback_only:
            return True
        host = self.headers.get("Host")
        if host is None:
            return True
        name = re.sub(r":\d+$", "", host.strip()).strip("[]").lower()
        return name in LOOPBACK_NAMES or _is_loopback(name)

    # -- pages ---------------------------------------------------------------------------------
    def page_study(self, query):
        board = self.dashboard
        name = _param(query, "study", required=False) or board.latest_name()
        if name is None:
            self._html(pages.message_page(
                "No study yet", f"{board.source} holds no study. Start one with 'search start', then reload.",
                board.assets))
            return
        color = _param(query, "color", required=False) or "kind"
        payload = board.study_payload(name, color)
        self._html(pages.study_page(board.names(), payload, board.refresh_ms, board.assets))

    def page_studies(self, query):
        from studies.storage import list_studies

        self._html(pages.studies_page(list_studies(self.dashboard.storage), self.dashboard.assets))

    def page_trial(self, query):
        board = self.dashboard
        name, number = _param(query, "study"), _number(query)
        board.trial(name, number)
        detail = views.trial_detail(board.study(name), number, board.results)
        self._html(pages.trial_page(detail, board.assets))

    def page_compare(self, query):
        board = self.dashboard
        names = board.names()
        first = _param(query, "a", required=False) or board.latest_name()
        second = _param(query, "b", required=False) or next((n for n in names if n != first), first)
        if first is None:
            raise NotFound(f"{board.source} holds no study yet")
        payload = board.compare_payload(first, second)
        self._html(pages.compare_page(names, first, second, payload, board.refresh_ms, board.assets))

    # -- data ----------------------------------------------------------------------------------
    def api_studies(self, query):
        from studies.storage import list_studies

        self._json({"studies": [info.to_dict() for info in list_studies(self.dashboard.storage)]})

    def api_study(self, query):
        color = _param(query, "color", required=False) or "kind"
        known = _param(query, "version", required=False)
        self._json(self.dashboard.study_payload(_param(query, "study"), color, known))

    def api_trial(self, query):
        board = self.dashboard
        name, number = _param(query, "study"), _number(query)
        board.trial(name, number)
        self._json(views.trial_detail(board.study(name), number, board.results))

    def api_compare(self, query):
        known = _param(query, "version", required=False)
        self._json(self.dashboard.compare_payload(_param(query, "a"), _param(query, "b"), known))

    def file_artifact(self, query):
        board = self.dashboard
        name, number = _param(query, "study"), _number(query)
        trial = board.trial(name, number)
        data = board.results.artifact(trial._trial_id)
        if data is None:
            raise NotFound(f"trial #{number} of {name!r} has no stored .tflite")
        filename = _safe_filename(f"{name}-trial{number}.tflite")
        self._send(HTTPStatus.OK, data, "application/octet-stream",
                   {"Content-Disposition": f'attachment; filename="{filename}"'})

    def file_preview(self, query):
        board = self.dashboard
        name, number = _param(query, "study"), _number(query)
        index, part = _number(query, "index"), _param(query, "image")
        if part not in PREVIEW_PARTS:
            raise ValueError(f"image: choose one of {', '.join(PREVIEW_PARTS)}")
        previews = board.results.previews(board.trial(name, number)._trial_id)
        if not 0 <= index < len(previews):
            raise NotFound(f"trial #{number} has {len(previews)} previews; no index {index}")
        self._send(HTTPStatus.OK, previews[index][PREVIEW_PARTS.index(part)], "image/png",
                   {"Cache-Control": "max-age=3600"})

    def file_plotly(self, query):
        self._send(HTTPStatus.OK, _plotly_bytes(), "text/javascript; charset=utf-8", {"Cache-Control": "max-age=86400"})

    def file_static(self, query):
        name, content_type = STATIC[urlsplit(self.path).path]
        self._send(HTTPStatus.OK, pages.static_text(name).encode(), content_type, {"Cache-Control": "no-cache"})

    @property
    def dashboard(self) -> Dashboard:
        return self.server.dashboard

    # -- responses -----------------------------------------------------------------------------
    def _html(self, text: str):
        self._send(HTTPStatus.OK, text.encode(), "text/html; charset=utf-8")

    def _json(self, data):
        self._send(HTTPStatus.OK, json.dumps(data, default=str).encode(), "application/json")

    def _error(self, status: HTTPStatus, message: str, api: bool):
        if api:
            body, content_type = json.dumps({"error": message}).encode(), "application/json"
        else:
            heading = f"{status.value} {status.phrase}"
            body, content_type = pages.message_page(heading, message, self.dashboard.assets).encode(), "text/html; charset=utf-8"
        self._send(status, body, content_type)

    def _send(self, status, body: bytes, content_type: str, headers: dict | None = None):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Content-Security-Policy", pages.DASHBOARD_CSP)
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("X-Frame-Options", "DENY")
        self.send_header("Referrer-Policy", "no-referrer")
        if "Cache-Control" not in (headers or {}):
            self.send_header("Cache-Control", "no-store")
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if getattr(self, "_send_body", True) and self.command != "HEAD":
            self.wfile.write(body)

    def _drain_body(self):
        length = self.headers.get("Content-Length")
        if length and length.isdigit() and int(length) <= 1 << 20:
            self.rfile.read(int(length))
        else:
            self.close_connection = True

    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass  # quiet: the dashboard prints its address once; errors go to stderr with a traceback


ROUTES = {
    "/": Handler.page_study,
    "/studies": Handler.page_studies,
    "/trial": Handler.page_trial,
    "/compare": Handler.page_compare,
    "/api/studies": Handler.api_studies,
    "/api/study": Handler.api_study,
    "/api/trial": Handler.api_trial,
    "/api/compare": Handler.api_compare,
    "/artifact": Handler.file_artifact,
    "/preview": Handler.file_preview,
    "/static/plotly.min.js": Handler.file_plotly,
    **{path: Handler.file_static for path in STATIC},
}


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


def _safe_filename(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)[:120] or "model.tflite"


_PLOTLY_LOCK = threading.Lock()
_PLOTLY: list[bytes] = []


def _plotly_bytes() -> bytes:
    with _PLOTLY_LOCK:
        if not _PLOTLY:
            _PLOTLY.append(pages.plotly_js().encode())
        return _PLOTLY[0]


def _is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# -- entry points -------------------------------------------------------------------------------

def make_server(url: str, study: str | None = None, host: str = "127.0.0.1", port: int = 8080,
                refresh_seconds: float = 3.0) -> DashboardServer:
    """A dashboard server bound to ``host:port`` (``port=0``: any free port); not yet serving.

    Errors: those of :func:`studies.storage.open_storage` (missing database, bad URL), a
    ``LookupError`` for an unknown ``study``, an ``OSError`` that names the address when it cannot bind.
    """
    if not 0 <= port <= 65535:
        raise ValueError(f"--port: {port} is not a TCP port; choose 1 to 65535 (0: any free port)")
    dashboard = Dashboard(url, study, refresh_seconds)
    try:
        return DashboardServer((host, port), dashboard)
    except OSError as error:
        dashboard.close()
        reason = error.strerror or str(error)
        raise OSError(f"cannot listen on {host}:{port}: {reason}; pass another --port (0 picks a free one) or --host") from None


def serve(url: str, study: str | None = None, host: str = "127.0.0.1", port: int = 8080,
          refresh_seconds: float = 3.0, out=sys.stderr) -> None:
    """Serve the dashboard until Ctrl+C."""
    server = make_server(url, study, host, port, refresh_seconds)
    if not server.loopback_only:
        print(f"search: warning: listening on {host}, not loopback: anyone who can reach this machine can read "
              "the study and download its models (the dashboard has no login)", file=out)
    print(f"nas-lite dashboard on {server.url} ({server.dashboard.source}); Ctrl+C stops it", file=out, flush=True)
    try:
        server.serve_forever(poll_interval=0.5)
    except KeyboardInterrupt:
        print("dashboard stopped", file=out)
    finally:
        server.server_close()
        server.dashboard.close()
