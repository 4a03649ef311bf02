"""The dashboard's entry points at their first address; the dashboard itself is :mod:`studies.web`."""

from studies.web import make_server, serve  # noqa: F401
from studies.web.routes import ROUTES  # noqa: F401
