"""``search start --channel-keeps --rank-fractions``: every trial is compressed after training, end to end."""

from __future__ import annotations

import optuna
import pytest

from tests.conftest import run_cli
from tests.search.test_start import TINY, load


@pytest.mark.slow
def test_a_search_with_compression_stores_compressed_models(tmp_path):
    result = run_cli("start", "--budget", "2", "--study", "s", "--channel-keeps", "0.5", "--rank-fractions", "0.5",
                     *TINY, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    from evaluators.latency_model import read_ops, totals
    from space.model import build, static_costs
    from space.spec import CandidateSpec
    from studies.store import ResultStore

    complete = [t for t in load(tmp_path).get_trials() if t.state == optuna.trial.TrialState.COMPLETE]
    assert complete, result.stdout[-2000:]
    with ResultStore(f"sqlite:///{tmp_path / 'studies.db'}") as store:
        for trial in complete:
            spec = CandidateSpec.from_dict(trial.user_attrs["spec"])
            assert (spec.channel_keep, spec.rank_fraction) == (0.5, 0.5) and "keep0.5 rank0.5" in trial.user_attrs["summary"]
            compression = trial.user_attrs["training"]["compression"]
            assert compression["fine_tune_epochs"] == 1 and compression["low_rank"]["ranks"]
            assert len(trial.user_attrs["dice_history"]) == 2  # the training's epochs; the fine-tune's is extra
            macs = totals(read_ops(store.artifact(trial._trial_id)))["macs"]
            assert macs == trial.user_attrs["macs"] < static_costs(build(spec)).macs / 2
