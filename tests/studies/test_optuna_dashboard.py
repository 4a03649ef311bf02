"""The study database opens in optuna-dashboard, with the metric names shown.

The study is made by a real ``search start`` (the session's ``tiny_search``) and served by
optuna-dashboard's own WSGI app (``optuna_dashboard.wsgi(storage_url)``), called in-process the
way a WSGI server would call it.
"""

from __future__ import annotations

import csv
import io
import json
from wsgiref.util import setup_testing_defaults

import pytest

import optuna_dashboard  # in the `test` extra: missing means a broken install, so fail, not skip

METRIC_NAMES = ["dice", "latency_ms", "size_kb"]


def get(app, path: str) -> tuple[str, str]:
    """``(status, body)`` of ``GET path`` on the WSGI ``app``."""
    environ = {"PATH_INFO": path, "REQUEST_METHOD": "GET", "HTTP_ACCEPT_ENCODING": ""}
    setup_testing_defaults(environ)
    answer = {}

    def start_response(status, headers, exc_info=None):
        answer["status"] = status

    body = b"".join(app(environ, start_response))
    return answer["status"], body.decode()


@pytest.mark.slow  # about 30 s or more: the default tier stays under 15 minutes
def test_optuna_dashboard_serves_the_study_with_metric_names(tiny_search):
    _, url, name = tiny_search
    app = optuna_dashboard.wsgi(url)  # what `optuna-dashboard sqlite:///studies.db` serves

    status, body = get(app, "/api/studies")
    assert status.startswith("200"), body[:500]
    studies = {s["study_name"]: s for s in json.loads(body)["study_summaries"]}
    assert name in studies
    assert studies[name]["directions"] == ["maximize", "minimize", "minimize"]
    study_id = studies[name]["study_id"]

    status, body = get(app, f"/api/studies/{study_id}")
    assert status.startswith("200"), body[:500]
    detail = json.loads(body)
    assert detail["objective_names"] == METRIC_NAMES
    assert len(detail["trials"]) == 1 and len(detail["trials"][0]["values"]) == 3
    assert detail["best_trials"]  # the Pareto front the dashboard draws
    assert {a["key"] for a in detail["union_user_attrs"]} >= {"spec", "dice", "latency_ms", "size_bytes"}

    status, body = get(app, f"/api/studies/{study_id}/plot/pareto_front")
    assert status.startswith("200"), body[:500]
    assert all(metric in body for metric in METRIC_NAMES)  # the axis titles

    status, body = get(app, f"/csv/{study_id}")
    assert status.startswith("200"), body[:500]
    header = next(csv.reader(io.StringIO(body)))
    assert header[:5] == ["Number", "State", *METRIC_NAMES]

    status, body = get(app, "/dashboard")
    assert status.startswith("200") and "<html" in body.lower()
