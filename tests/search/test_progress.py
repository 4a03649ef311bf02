"""The reporters: one class per output mode, chosen by name, all keeping the same contract."""

import io
import json
from types import SimpleNamespace

import optuna
import pytest

from search.progress import REPORTERS, BarReporter, JsonReporter, QuietReporter, Reporter, make_reporter

OBJECTIVES = ("dice", "latency_ms", "size_kb")
CONFIG = SimpleNamespace(objectives=OBJECTIVES, budget=3, storage="sqlite:///x.db", workers=1, timeout=None)
DATA = SimpleNamespace(describe=lambda: "synthetic 8 images")


def _study():
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(study_name="demo", directions=["maximize", "minimize", "minimize"])
    return study


def _add(study, dice, latency, size_kb):
    attrs = {"dice": dice, "latency_ms": latency, "size_bytes": int(size_kb * 1024), "summary": "std w8 float32"}
    study.add_trial(optuna.trial.create_trial(values=[dice, latency, size_kb], user_attrs=attrs))


def _run(mode, config=CONFIG):
    out, err = io.StringIO(), io.StringIO()
    reporter = make_reporter(mode, out, err)
    study = _study()
    reporter.begin(study, config, DATA)
    _add(study, 0.8, 2.0, 10)
    _add(study, 0.7, 1.0, 5)
    reporter.update(study.get_trials())
    reporter.update(study.get_trials())  # a trial is reported once
    reporter.note("hello")
    reporter.end(study)
    return out.getvalue(), err.getvalue()


def test_the_registry_names_every_mode_and_refuses_others_listing_them():
    assert REPORTERS == {"bar": BarReporter, "quiet": QuietReporter, "json": JsonReporter}
    assert all(issubclass(cls, Reporter) for cls in REPORTERS.values())
    with pytest.raises(ValueError, match="bar, quiet, json"):
        make_reporter("fancy")


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_only_the_bar_shows_progress_and_only_on_a_terminal_wide_enough(monkeypatch):
    monkeypatch.setenv("COLUMNS", "100")
    assert [make_reporter(mode, err=_Terminal()).shows_progress for mode in REPORTERS] == [True, False, False]
    assert not make_reporter("bar", err=io.StringIO()).shows_progress  # a log file
    monkeypatch.setenv("COLUMNS", "0")
    assert not make_reporter("bar", err=_Terminal()).shows_progress


def test_json_writes_one_event_per_line():
    out, err = _run("json")
    events = [json.loads(line) for line in out.splitlines()]
    assert [e["event"] for e in events] == ["start", "trial", "trial", "note", "end"]
    assert events[0]["budget"] == 3 and events[0]["finished"] == 0
    assert [e["number"] for e in events[1:3]] == [0, 1]
    assert len(events[-1]["front"]) == 2 and events[-1]["states"] == {"complete": 2}
    assert err == ""


def test_quiet_shows_messages_on_stderr_and_only_the_summary_on_stdout():
    out, err = _run("quiet")
    assert "study 'demo'" in err and "hello" in err
    assert "#0" not in out.split("Pareto front")[0]
    assert "demo: 2 complete" in out and "Pareto front (2 trials)" in out


def test_bar_without_a_terminal_ends_each_trial_line_with_its_progress():
    out, _ = _run("bar")
    lines = out.splitlines()
    trial_lines = [line for line in lines if line.startswith("#")]
    assert len(trial_lines) == 2
    assert "[2/3," in trial_lines[0] and "ETA" in trial_lines[0]
    assert "hello" in lines and "Pareto front (2 trials)" in out


def test_with_a_timeout_the_eta_is_the_time_left_when_that_comes_first():
    out = io.StringIO()
    reporter, study = make_reporter("bar", out, io.StringIO()), _study()
    reporter.begin(study, SimpleNamespace(**{**vars(CONFIG), "budget": 400, "timeout": 90}), DATA)
    reporter.started -= 60  # 2 trials in a minute: 398 more would take over 3 hours
    _add(study, 0.8, 2.0, 10)
    _add(study, 0.7, 1.0, 5)
    reporter.update(study.get_trials())
    etas = [line.rsplit("ETA ", 1)[1] for line in out.getvalue().splitlines() if line.startswith("#")]
    assert len(etas) == 2 and all(eta.startswith(("1:29", "1:30")) for eta in etas), etas
