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
    /sidecar?study=S&number=N                 its JSON sidecar, as 'search export --trial N' writes it
    /preview?study=S&number=N&index=I&image=input|truth|prediction   PNG
    /static/plotly.min.js, /static/app.js, /static/style.css

Modules: :mod:`~studies.web.app` (what the pages read: one storage, loaded studies, a payload
cache), :mod:`~studies.web.routes` (one function per route, the glue to :mod:`studies.pages` and
:mod:`studies.views`), :mod:`~studies.web.handler` (HTTP: methods, the Host check, responses),
:mod:`~studies.web.server` (binding and serving).
"""

from studies.web.server import DashboardServer, make_server, serve

__all__ = ["DashboardServer", "make_server", "serve"]
