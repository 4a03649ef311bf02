"""The search configuration: its training keys, and studies made before those keys existed."""

from __future__ import annotations

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
