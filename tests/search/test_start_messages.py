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


def test_a_lower_budget_says_what_it_withdrew_and_that_nothing_is_left_to_run(tmp_path):
    import optuna

    from search.config import SearchConfig
    from tests.studies.factory import add_trial

    config = SearchConfig(study="s", storage=f"sqlite:///{tmp_path / 'studies.db'}", budget=5, data_limit=12)
    study = optuna.create_study(study_name="s", storage=config.storage, directions=config.directions)
    study.set_metric_names(list(config.objectives))
    study.set_user_attr("config", config.to_dict())
    for index in range(2):
        add_trial(study, index)
    for _ in range(3):
        study.add_trial(optuna.trial.create_trial(state=optuna.trial.TrialState.WAITING))
    result = run_cli("start", "--budget", "2", "--study", "s", cwd=tmp_path, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "--budget 2: withdrew 3 waiting trial(s) beyond it; they will not run" in result.stdout
    assert "the study has finished 2 trials, its budget of 2: nothing to run" in result.stdout
    assert "s: 2 complete, 3 withdrawn" in result.stdout  # withdrawn trials are not reported as failed
