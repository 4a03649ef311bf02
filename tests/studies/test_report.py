"""``search report``: one self-contained HTML file (opened in Chromium by test_browser.py)."""

from __future__ import annotations

import json
import re

import pytest

from studies import pages
from studies.report import write_report
from tests.conftest import run_cli
from tests.studies.factory import SPREAD_TEXTS, add_trial, create_study, sample_study, spread_study

HOSTILE = "<script>alert(1)</script>"


@pytest.fixture(scope="module")
def url(tmp_path_factory):
    address = f"sqlite:///{tmp_path_factory.mktemp('report') / 'studies.db'}"
    sample_study(address, "demo", complete=8)
    add_trial(create_study(address, HOSTILE), 0)
    return address


def page_data(text: str) -> dict:
    block = re.search(r'<script type="application/json" id="page-data">(.*?)</script>', text, re.S).group(1)
    return json.loads(block)


def test_report_is_one_file_with_its_own_plotly(url, tmp_path):
    path = write_report(url, tmp_path / "report.html", study="demo")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html"]
    text = path.read_text(encoding="utf-8")
    assert pages.plotly_js() in text
    assert not re.search(r"<(script|img|iframe)[^>]*\ssrc=", text, re.I)
    assert not re.search(r"<link[^>]*href=\"(?!data:)", text, re.I)  # only the empty data: favicon
    assert "default-src 'none'" in text  # the page itself forbids any request
    data = page_data(text)
    assert set(data["figure_sets"]) == {"kind", "quant"}
    assert data["poll"] is None and data["trial_path"] is None
    points = [n for t in data["figure_sets"]["kind"]["latency"]["data"] if (t.get("meta") or {}).get("role") == "trials"
              for n in t["customdata"]]
    assert len(points) == 8
    assert sum(row["front"] for row in data["rows"]) == data["summary"]["front"] > 0


def test_report_recommends_trials_with_commands_and_marks_the_knee(url, tmp_path):
    import optuna

    from studies import front, pareto

    data = page_data(write_report(url, tmp_path / "report.html", study="demo").read_text(encoding="utf-8"))
    knee = pareto.pick(front.study_points(optuna.load_study(study_name="demo", storage=url)), "knee").number
    first = data["recommended"][0]
    assert first["number"] == knee and first["labels"][0] == "knee"
    assert first["command"] == f"search export --study demo --storage {url} --trial {knee} -o model.tflite"
    knee_rows = [row for row in data["rows"] if "knee" in row["picks"]]
    assert [row["number"] for row in knee_rows] == [knee] and knee_rows[0]["front"]  # in the front table too


def test_report_tables_show_dice_with_its_interval_and_the_ties(tmp_path):
    url = f"sqlite:///{tmp_path / 'spread.db'}"
    spread_study(url)
    data = page_data(write_report(url, tmp_path / "report.html", study="spread").read_text(encoding="utf-8"))
    assert ["dice", "Dice ± 95%", "spread"] in data["columns"] and ["test_dice", "test Dice ± 95%", "spread"] in data["columns"]
    rows = {row["number"]: row for row in data["rows"]}
    assert (rows[0]["texts"]["dice"], rows[0]["texts"]["test_dice"], rows[0]["texts"]["latency_ms"]) == SPREAD_TEXTS[0]
    assert rows[1]["texts"]["dice"] == SPREAD_TEXTS[1][0] and rows[0]["ties"] == [2]
    assert all(row["front"] for row in rows.values())  # the tie keeps both: the front table shows 0 and 2 as tied


def test_report_escapes_names(url, tmp_path):
    text = write_report(url, tmp_path / "hostile.html", study=HOSTILE).read_text(encoding="utf-8")
    assert HOSTILE not in text and "&lt;script&gt;alert(1)&lt;/script&gt;" in text


def test_cli_writes_the_latest_study_by_default(url, tmp_path):
    result = run_cli("report", "--storage", url, "-o", tmp_path / "latest.html")
    assert result.returncode == 0, result.stderr
    assert "wrote" in result.stderr
    assert page_data((tmp_path / "latest.html").read_text(encoding="utf-8"))["study"] == HOSTILE


@pytest.mark.parametrize("args, message", [
    (["--study", "nope"], "no study 'nope'"),
    (["-o", "{tmp}/missing/r.html"], "does not exist"),
    (["-o", "{tmp}"], "is a folder"),
])
def test_cli_bad_input_is_one_line_and_status_2(url, tmp_path, args, message):
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    if "-o" not in args:
        args += ["-o", str(tmp_path / "r.html")]
    if "--study" not in args:  # else the default study taken is named on stderr first
        args += ["--study", "demo"]
    result = run_cli("report", "--storage", url, *args)
    assert result.returncode == 2 and message in result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
