"""Binding and serving the dashboard: :func:`make_server` and :func:`serve`."""

from __future__ import annotations

import socket
import sys
from http.server import ThreadingHTTPServer

from studies.web.app import DashboardApp
from studies.web.handler import RequestHandler, is_loopback_name


class DashboardServer(ThreadingHTTPServer):
    """A threading HTTP server over one :class:`DashboardApp` (``server.app``)."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, app: DashboardApp):
        self.app = app
        host = address[0]
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.loopback_only = is_loopback_name(host)
        super().__init__(address, RequestHandler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{port}/"


def make_server(url: str, study: str | None = None, host: str = "127.0.0.1", port: int = 8080,
                refresh_seconds: float = 3.0) -> DashboardServer:
    """A dashboard server bound to ``host:port`` (``port=0``: any free port); not yet serving.

    Errors: those of :func:`studies.storage.open_storage` (missing database, bad URL), a
    ``LookupError`` for an unknown ``study``, a ``ValueError`` that names the address when it cannot bind
    (a port in use or not allowed, an address not here: the user's choice, answered with exit status 2).
    """
    if not 0 <= port <= 65535:
        raise ValueError(f"--port: {port} is not a TCP port; choose 1 to 65535 (0: any free port)")
    app = DashboardApp(url, study, refresh_seconds)
    try:
        return DashboardServer((host, port), app)
    except OSError as error:
        app.close()
        reason = error.strerror or str(error)
        raise ValueError(f"cannot listen on {host}:{port}: {reason}; pass another --port (0 picks a free one) or --host") from None


def serve(url: str, study: str | None = None, host: str = "127.0.0.1", port: int = 8080,
          refresh_seconds: float = 3.0, out=sys.stderr) -> None:
    """Serve the dashboard until Ctrl+C."""
    server = make_server(url, study, host, port, refresh_seconds)
    if not server.loopback_only:
        print(f"search: warning: listening on {host}, not loopback: anyone who can reach this machine can read "
              "the study and download its models (the dashboard has no login)", file=out)
    print(f"nas-lite dashboard on {server.url} ({server.app.source}); Ctrl+C stops it", file=out, flush=True)
    try:
        server.serve_forever(poll_interval=0.5)
    except KeyboardInterrupt:
        print("dashboard stopped", file=out)
    finally:
        server.server_close()
        server.app.close()
