"""The live bar on a real terminal (a pty): drawn when it fits, per-trial progress lines when it does not."""

import fcntl
import os
import pty
import struct
import subprocess
import sys
import termios

import pytest

from tests.conftest import ROOT

SCRIPT = """
import optuna
from types import SimpleNamespace
from search.progress import make_reporter

optuna.logging.set_verbosity(optuna.logging.WARNING)
config = SimpleNamespace(objectives=("dice", "latency_ms", "size_kb"), budget=3, storage="sqlite:///x.db", workers=1, timeout=None)
study = optuna.create_study(study_name="demo", directions=["maximize", "minimize", "minimize"])
reporter = make_reporter("bar")
reporter.begin(study, config, SimpleNamespace(describe=lambda: "synthetic"))
for dice in (0.8, 0.7):
    attrs = {"dice": dice, "latency_ms": 10 * dice, "size_bytes": 1024, "summary": "std w8"}
    study.add_trial(optuna.trial.create_trial(values=[dice, 10 * dice, 1.0], user_attrs=attrs))
    reporter.update(study.get_trials())
reporter.end(study)
"""


def _run_in_terminal(columns: int, env: dict | None = None) -> tuple[str, str]:
    """Run SCRIPT with stderr on a pty ``columns`` wide; return (stdout, what the terminal got)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    environment = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    environment.update(PYTHONPATH=str(ROOT), **(env or {}))
    process = subprocess.Popen([sys.executable, "-c", SCRIPT], stdout=subprocess.PIPE, stderr=slave, env=environment, text=True)
    os.close(slave)
    screen = b""
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        screen += chunk
    out = process.stdout.read()
    assert process.wait(timeout=60) == 0, screen.decode(errors="replace")
    os.close(master)
    return out, screen.decode(errors="replace")


@pytest.mark.parametrize("columns, env", [(0, None), (100, {"COLUMNS": "0"})])
def test_a_zero_width_terminal_gets_per_trial_progress_lines_instead_of_the_bar(columns, env):
    out, screen = _run_in_terminal(columns, env)
    assert "trials:" not in screen  # no bar drawn
    lines = [line for line in out.splitlines() if line.startswith("#")]
    assert len(lines) == 2 and "[1/3," in lines[0] and "[2/3," in lines[1] and "ETA" in lines[1]


def test_a_wide_terminal_gets_the_live_bar():
    out, screen = _run_in_terminal(100)
    assert "trials:" in screen and "2/3" in screen
    assert "ETA" not in out  # the bar shows it
