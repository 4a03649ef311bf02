"""Shared fixtures: tiny seeded data and a way to run the real command line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATASETS = ROOT.parent / "shared" / "datasets"
SMALL_NUCLEI = ROOT / "tests" / "data" / "dsb2018_small"  # shipped: real data for the default tier


def run_cli(*args, cwd=None, env=None, timeout=600, input=None) -> subprocess.CompletedProcess:
    """Run ``search ARGS`` in a fresh interpreter with this checkout first on the path."""
    environment = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "search", *map(str, args)],
        cwd=cwd, env=environment, capture_output=True, text=True, timeout=timeout, input=input,
    )


@pytest.fixture
def cli():
    return run_cli


@pytest.fixture(scope="session")
def shared_datasets() -> Path:
    """``../shared/datasets``: only for tests marked ``shared`` (the default tier has no ``shared/``)."""
    if not SHARED_DATASETS.is_dir():
        pytest.fail(f"{SHARED_DATASETS} is missing: tests need ../shared/datasets beside the checkout")
    return SHARED_DATASETS


@pytest.fixture(scope="session")
def small_nuclei() -> Path:
    """120 real dsb2018 pairs at 64x64, shipped in the repository (CC0; see its README)."""
    return SMALL_NUCLEI


@pytest.fixture(scope="session")
def postgres_url():
    """A real PostgreSQL server on loopback for the session (``NASLITE_TEST_POSTGRES_URL`` to use another).

    Started from Debian's ``postgresql`` package (``bash .ci/run`` installs it) in a temporary
    folder; the tests that use it fail, not skip, when it is missing.
    """
    import glob
    import shutil
    import socket
    import tempfile

    given = os.environ.get("NASLITE_TEST_POSTGRES_URL")
    if given:
        yield given
        return
    binaries = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not binaries:
        pytest.fail("PostgreSQL is not installed: apt-get install postgresql (bash .ci/run does), or set NASLITE_TEST_POSTGRES_URL")
    bindir = Path(binaries[-1]).parent
    folder = Path(tempfile.mkdtemp(prefix="naslite-pg-"))
    as_postgres = []
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        shutil.chown(folder, "postgres")
        as_postgres = ["runuser", "-u", "postgres", "--"]
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    data = folder / "data"
    run = lambda *command: subprocess.run([*as_postgres, *map(str, command)], check=True, capture_output=True)  # noqa: E731
    run(bindir / "initdb", "-D", data, "-A", "trust", "-U", "postgres")
    run(bindir / "pg_ctl", "-D", data, "-l", folder / "server.log", "-w", "start",
        "-o", f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c max_connections=200")
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        run(bindir / "pg_ctl", "-D", data, "-m", "immediate", "stop")
        shutil.rmtree(folder, ignore_errors=True)


TINY_SEARCH = (
    "--data", "synthetic", "--data-limit", "40", "--image-size", "32", "--epochs", "2", "--rungs", "off",
    "--batch-size", "8", "--depths", "3", "--widths", "4,8", "--threads", "1", "--quant-modes", "float32,int8",
    "--no-presets",
)


@pytest.fixture(scope="session")
def tiny_search(tmp_path_factory):
    """``(folder, url, study_name)``: one real ``search start`` trial at 32x32, made once per session.

    Tests read it and must not change it (export writes its files into their own ``tmp_path``).
    """
    folder = tmp_path_factory.mktemp("tiny-search")
    result = run_cli("start", "--budget", "1", "--study", "tiny", "--quiet", *TINY_SEARCH, cwd=folder)
    if result.returncode != 0:
        pytest.fail(f"search start failed: {result.stderr[-3000:]}")
    return folder, f"sqlite:///{folder / 'studies.db'}", "tiny"
