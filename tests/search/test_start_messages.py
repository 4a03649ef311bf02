"""`search start` says at once what it is doing before the first trial: opening the study, loading the data."""

from tests.conftest import run_cli


def test_start_names_the_study_and_the_data_it_loads_before_any_slow_step(tmp_path):
    # an unreachable board stops the start right after loading: no training, no study left behind
    result = run_cli("start", "--budget", "1", "--study", "s", "--data-limit", "12", "--device", "http://127.0.0.1:9", cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "opening study 's' in sqlite:///studies.db"
    assert lines[1] == "loading data: 12 generated pairs at 32x32 ..."
    assert lines[2].startswith("loaded in ") and lines[2].endswith(" s")
    assert not (tmp_path / "studies.db").exists()


def test_quiet_start_says_the_same_on_stderr(tmp_path):
    result = run_cli("start", "--quiet", "--budget", "1", "--data-limit", "12", "--device", "http://127.0.0.1:9", cwd=tmp_path)
    assert result.stdout == ""
    assert "opening study 'search-" in result.stderr and "loading data: 12 generated pairs" in result.stderr
