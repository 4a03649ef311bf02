"""The search configuration: its training keys, and studies made before those keys existed."""

from __future__ import annotations

import dataclasses
import json

import pytest

from search.config import BEFORE_KEYS, SearchConfig, merge_with_stored
from tests.conftest import run_cli


def test_training_defaults_are_a_cosine_schedule_at_batch_8():
    config = SearchConfig()
    assert (config.batch_size, config.learning_rate, config.lr_schedule) == (8, 2e-3, "cosine")


def test_a_study_stored_before_the_schedule_keys_continues_as_it_was_trained():
    old = SearchConfig(study="old").to_dict()
    for key in BEFORE_KEYS:
        del old[key]
    old["batch_size"] = 16
    continued = merge_with_stored(SearchConfig(study="old"), set(), old)
    assert (continued.batch_size, continued.learning_rate, continued.lr_schedule) == (16, 1e-3, "constant")
    new = SearchConfig(study="new", learning_rate=5e-3).to_dict()
    assert SearchConfig.from_stored(new).learning_rate == 5e-3


def test_another_learning_rate_for_a_stored_study_is_refused():
    stored = SearchConfig(study="s").to_dict()
    with pytest.raises(ValueError, match="--learning-rate: study 's' was made with 0.002"):
        merge_with_stored(SearchConfig(study="s", learning_rate=1e-2), {"learning_rate"}, stored)


@pytest.mark.parametrize("flags, message", [
    (("--learning-rate", "0"), "learning-rate: must be positive, got 0.0"),
    (("--lr-schedule", "linear"), "invalid choice: 'linear'"),
])
def test_bad_training_flags_are_one_line_and_status_2(tmp_path, flags, message):
    result = run_cli("start", "--budget", "1", *flags, cwd=tmp_path)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr
    assert not list(tmp_path.glob("studies.db*"))


def test_the_config_the_parser_and_the_toml_reader_are_read_off_one_table(tmp_path):
    from search.cli import build_parser
    from search.options import OPTIONS, read_toml

    assert [field.name for field in dataclasses.fields(SearchConfig)] == [option.name for option in OPTIONS]
    assert all(getattr(SearchConfig, option.name) == option.default for option in OPTIONS)
    start = build_parser()._subparsers._group_actions[0].choices["start"]
    dests = {action.dest for action in start._actions}
    assert {option.name for option in OPTIONS} <= dests
    (tmp_path / "all.toml").write_text("\n".join(f"{o.name.replace('_', '-')} = {_toml(o.default)}" for o in OPTIONS
                                                 if o.default not in (None, ())))
    assert set(read_toml(tmp_path / "all.toml")) == {o.name for o in OPTIONS if o.default not in (None, ())}


def _toml(value):
    return json.dumps(list(value) if isinstance(value, tuple) else value)


@pytest.mark.parametrize("name, word, toml_value, problem", [
    ("budget", "3.5", 3.5, "3.5'? is not a whole number"),  # the flag quotes the word it was given
    ("timeout", "soon", "soon", "'soon' is not a number"),
    ("data_limit", "0", 0, "must be at least 1, got 0"),
    ("min_dice", "1.5", 1.5, "must be between 0 and 1, got 1.5"),
    ("max_latency_ms", "nan", float("nan"), "nan is not a finite number"),
])
def test_flags_and_the_toml_file_are_checked_alike(tmp_path, name, word, toml_value, problem):
    import argparse

    from search.options import BY_NAME, parser_type, read_toml

    with pytest.raises(argparse.ArgumentTypeError, match=problem):
        parser_type(BY_NAME[name])(word)
    (tmp_path / "c.toml").write_text(f"{name} = {'nan' if word == 'nan' else json.dumps(toml_value)}\n")
    with pytest.raises(ValueError, match=f"c.toml: {name}: {problem}"):
        read_toml(tmp_path / "c.toml")
    with pytest.raises(ValueError, match=problem):
        SearchConfig(**{name: toml_value})


def test_continuing_keeps_the_kept_keys_and_not_the_run_keys():
    stored = SearchConfig(study="s", budget=6, sampler="random", devices=("http://pi:8765",), timeout=5.0, workers=2).to_dict()
    continued = merge_with_stored(SearchConfig(study="s"), set(), stored)
    assert (continued.budget, continued.sampler, continued.devices) == (6, "random", ("http://pi:8765",))
    assert (continued.timeout, continued.workers) == (None, 1)  # a run key applies to its run
    lower = merge_with_stored(SearchConfig(study="s", budget=2, timeout=9.0), {"budget", "timeout"}, stored)
    assert (lower.budget, lower.timeout, lower.sampler) == (2, 9.0, "random")


def test_a_key_an_old_study_lacks_is_compared_with_what_it_ran_with():
    old = SearchConfig(study="old").to_dict()
    del old["synthetic_count"]
    with pytest.raises(ValueError, match="--synthetic-count: study 'old' was made with 256, not 64"):
        merge_with_stored(SearchConfig(study="old", synthetic_count=64), {"synthetic_count"}, old)


def test_stored_values_older_versions_ran_are_read_as_they_ran():
    stored = {**SearchConfig(study="old").to_dict(), "data_limit": 0, "enqueue_presets": 1}
    config = SearchConfig.from_stored(stored)
    assert (config.data_limit, config.enqueue_presets) == (None, True)


def test_latency_is_one_thread_on_the_cpu_clock_here_and_four_threads_of_wall_time_on_a_board():
    assert (SearchConfig().latency_clock, SearchConfig().threads) == ("cpu", 1)
    board = SearchConfig(devices=("http://pi:8765",))
    assert (board.latency_clock, board.threads) == ("wall", 4)
    assert (SearchConfig(threads=2).latency_clock, SearchConfig(latency_clock="wall").threads) == ("wall", 4)
    with pytest.raises(ValueError, match="add --threads 1"):
        SearchConfig(latency_clock="cpu", threads=2)
    old = {key: value for key, value in SearchConfig(study="old").to_dict().items() if key != "latency_clock"}
    assert SearchConfig.from_stored(old).latency_clock == "wall"  # made before the key: it ran on the wall clock


def test_rungs_auto_is_a_ladder_of_the_epochs_and_off_or_one_rung_is_one_fidelity():
    assert (SearchConfig().rungs, SearchConfig().epochs) == ((1, 3, 9), 9)
    assert SearchConfig(epochs=18).rungs == (2, 6, 18)
    assert (SearchConfig(epochs=1).rungs, SearchConfig(epochs=1).epochs) == (None, 1)
    assert (SearchConfig(rungs="off").rungs, SearchConfig(rungs="off").epochs) == (None, 9)
    assert (SearchConfig(rungs=(4,)).rungs, SearchConfig(rungs=(4,)).epochs) == (None, 4)
    assert (SearchConfig(rungs=(2, 6)).rungs, SearchConfig(rungs=(2, 6)).epochs) == ((2, 6), 6)
    stored = SearchConfig(study="old", rungs="off").to_dict()
    del stored["rungs"]  # a study from before rungs trained every candidate its epochs
    assert SearchConfig.from_stored(stored).rungs is None
    assert SearchConfig.from_stored(SearchConfig(study="new").to_dict()).rungs == (1, 3, 9)
