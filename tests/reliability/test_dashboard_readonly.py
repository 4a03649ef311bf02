"""The dashboard never changes the database: a checksum of every row before it starts and after every
endpoint was hit with every method. (Binding 127.0.0.1 by default and escaping names are tested in
tests/studies/test_dashboard.py.)"""

from __future__ import annotations

from urllib.parse import quote

import pytest

from tests.reliability.helpers import integrity, rows_digest
from tests.studies.factory import add_results, add_trial, create_study, sample_study
from tests.studies.served import fetch, running_dashboard

HOSTILE = "<script>alert(1)</script>"


@pytest.fixture
def database(tmp_path):
    path = tmp_path / "studies.db"
    url = f"sqlite:///{path}"
    demo = sample_study(url, "demo", complete=6)
    add_results(url, demo.trials[0], b"TFL3" + bytes(range(256)) * 4)
    hostile = create_study(url, HOSTILE)
    add_trial(hostile, 0, preset=HOSTILE)
    return path, url


def targets() -> dict[str, list[str]]:
    """Every route of the dashboard with the queries that reach its pages, errors and edge cases."""
    name = quote(HOSTILE)
    return {
        "/": ["", "?study=demo", "?study=demo&color=quant", f"?study={name}", "?study=nope", "?study=demo&state=COMPLETE"],
        "/studies": ["", "?delete=demo"],
        "/trial": ["?study=demo&number=0", "?study=demo&number=1", f"?study={name}&number=0", "?study=demo&number=x"],
        "/compare": ["", f"?a=demo&b={name}"],
        "/api/studies": [""],
        "/api/study": ["?study=demo", "?study=demo&version=stale", f"?study={name}&color=quant", "?study=demo&color=red"],
        "/api/trial": ["?study=demo&number=0", "?study=demo&number=99"],
        "/api/compare": [f"?a=demo&b={name}", "?a=demo&b=demo&version=x"],
        "/artifact": ["?study=demo&number=0", "?study=demo&number=1"],
        "/sidecar": ["?study=demo&number=0", "?study=demo&number=99"],
        "/preview": ["?study=demo&number=0&index=0&image=input", "?study=demo&number=0&index=1&image=prediction",
                     "?study=demo&number=0&index=0&image=../../studies.db"],
        "/static/plotly.min.js": [""],
        "/static/app.js": [""],
        "/static/style.css": [""],
    }


def test_no_endpoint_and_no_method_changes_the_database(database):
    from studies.web.routes import ROUTES

    path, url = database
    before = rows_digest(path)
    assert set(targets()) == set(ROUTES), "a new route: add it to targets()"
    statuses = set()
    with running_dashboard(url, refresh_seconds=0.2) as served:
        base = served.url.rstrip("/")
        for route, queries in targets().items():
            for query in queries:
                for method in ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "BREW"):
                    body = b"state=COMPLETE&values=1,2,3&delete=1" if method not in ("GET", "HEAD", "OPTIONS") else None
                    status = fetch(base + route + query, method=method, data=body)[0]
                    statuses.add(status)
                    assert status < 500, (method, route + query, status)
                    if method not in ("GET", "HEAD"):
                        assert status == 405, (method, route + query, status)
    assert {200, 400, 404, 405} <= statuses
    assert rows_digest(path) == before
    assert integrity(path) == "ok"
