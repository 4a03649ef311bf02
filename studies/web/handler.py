"""HTTP for the dashboard: GET/HEAD dispatched through :data:`studies.web.routes.ROUTES`, every
other method 405, the loopback ``Host`` check, errors as pages or JSON, the security headers."""

from __future__ import annotations

import ipaddress
import json
import re
import sys
import traceback
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlsplit

from studies import pages
from studies.web.app import NotFound
from studies.web.routes import ROUTES

LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost"}


def is_loopback(host: str) -> bool:
    """Whether ``host`` is ``localhost`` or a loopback address, by the standard library alone (no
    name is resolved: DNS could answer anything). The Pi agent keeps the same function
    (``evaluators.agent``): neither may import the other's package."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def is_loopback_name(host: str) -> bool:
    """:func:`is_loopback`, or one of the other names Debian gives the loopback address."""
    return host in LOOPBACK_NAMES or is_loopback(host)


class RequestHandler(BaseHTTPRequestHandler):
    """One request: routes GET/HEAD to :data:`ROUTES`; every other method is 405."""

    server_version = "nas-lite-dashboard"
    protocol_version = "HTTP/1.1"

    @property
    def app(self):
        """The :class:`~studies.web.app.DashboardApp` this server reads."""
        return self.server.app

    # -- methods -------------------------------------------------------------------------------
    def do_GET(self):
        self._handle(send_body=True)

    def do_HEAD(self):
        self._handle(send_body=False)

    def _not_allowed(self):
        self._drain_body()
        self.send(HTTPStatus.METHOD_NOT_ALLOWED, b"405 method not allowed: the dashboard is read-only\n",
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
            self.send(HTTPStatus.FORBIDDEN, b"403 forbidden: the dashboard answers loopback host names only\n",
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
        return is_loopback_name(re.sub(r":\d+$", "", host.strip()).strip("[]").lower())

    # -- responses (called by the routes) ------------------------------------------------------
    def html(self, text: str):
        self.send(HTTPStatus.OK, text.encode(), "text/html; charset=utf-8")

    def json(self, data):
        self.send(HTTPStatus.OK, json.dumps(data, default=str).encode(), "application/json")

    def send(self, status, body: bytes, content_type: str, headers: dict | None = None):
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

    def _error(self, status: HTTPStatus, message: str, api: bool):
        if api:
            body, content_type = json.dumps({"error": message}).encode(), "application/json"
        else:
            heading = f"{status.value} {status.phrase}"
            body, content_type = pages.message_page(heading, message, self.app.assets).encode(), "text/html; charset=utf-8"
        self.send(status, body, content_type)

    def _drain_body(self):
        length = self.headers.get("Content-Length")
        if length and length.isdigit() and int(length) <= 1 << 20:
            self.rfile.read(int(length))
        else:
            self.close_connection = True

    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass  # quiet: the dashboard prints its address once; errors go to stderr with a traceback
