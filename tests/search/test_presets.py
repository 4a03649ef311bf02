"""Enqueued presets teach the sampler: inside the space they carry their parameters."""

from __future__ import annotations

import optuna
import pytest

from evaluators.data import load_dataset
from evaluators.devices import LocalDevice
from search.config import SearchConfig
from search.loop import _top_up
from search.pipeline import latency_protocol
from search.trial import TrialContext, evaluate
from space.presets import PRESETS, preset, presets_for
from space.sampling import SearchSpace, in_space, params_of
from space.spec import BLOCK_KINDS
from studies.storage import open_storage
from studies.store import ResultStore


DEFAULT = presets_for()  # the presets of the default search
OPT_IN = ("resunet", "resunet-int8", "mobilenetv2-unet", "mobilenetv2-unet-int8")


@pytest.mark.parametrize("name", DEFAULT)
def test_every_preset_of_the_default_search_lies_in_the_default_space(name):
    assert in_space(preset(name, 32), SearchSpace())


def test_the_opt_in_presets_join_the_search_of_their_kinds_inside_its_space():
    assert len(DEFAULT) == 14 and set(PRESETS) - set(DEFAULT) == set(OPT_IN)  # 7 float presets and their int8
    assert set(presets_for(("standard", "residual"))) - set(DEFAULT) == {"resunet", "resunet-int8"}
    assert presets_for(BLOCK_KINDS) == list(PRESETS)
    space = SearchSpace(block_kinds=BLOCK_KINDS)
    assert all(in_space(preset(name, 32), space) for name in PRESETS)


@pytest.mark.parametrize("narrowing, outside", [
    ({"base_widths": (8, 12)}, set(DEFAULT)),
    ({"quant_modes": ("float32", "float16")}, {name for name in DEFAULT if name.endswith("-int8")}),
    ({"block_kinds": ("standard", "depthwise")}, {name for name in DEFAULT if name.split("-")[0] in ("group", "shuffle", "fire")}),
    ({"depths": (3,)}, set(DEFAULT)),
    ({"dilations": (1, 2)}, {name for name in DEFAULT if name.startswith(("dilated", "group-dilated"))}),
])
def test_a_narrowed_space_leaves_presets_out(narrowing, outside):
    space = SearchSpace(**narrowing)
    assert {name for name in DEFAULT if not in_space(preset(name, 32), space)} == outside


def test_the_opt_in_presets_are_enqueued_with_parameters_when_their_kinds_are_searched(tmp_path):
    url = f"sqlite:///{tmp_path / 'studies.db'}"
    config = SearchConfig(storage=url, study="s", budget=len(PRESETS), enqueue_presets=True, image_size=32,
                          block_kinds=BLOCK_KINDS)
    study = optuna.create_study(study_name="s", storage=open_storage(url), directions=config.directions)
    _top_up(study, config)
    waiting = {trial.user_attrs["preset"]: trial for trial in study.trials}
    assert sorted(waiting) == sorted(PRESETS)
    for name in OPT_IN:
        assert waiting[name].user_attrs["preset_params"] is True
        assert waiting[name].system_attrs["fixed_params"] == params_of(preset(name, 32), config.space)


def test_presets_are_enqueued_with_parameters_and_the_study_records_them(tmp_path):
    url = f"sqlite:///{tmp_path / 'studies.db'}"
    config = SearchConfig(storage=url, study="s", budget=len(DEFAULT), enqueue_presets=True, data_limit=24,
                          image_size=32, epochs=1, batch_size=8, threads=1, quant_modes=("float32", "float16"))
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(study_name="s", storage=open_storage(url), directions=config.directions)
    _top_up(study, config)

    waiting = {trial.user_attrs["preset"]: trial for trial in study.trials}
    assert sorted(waiting) == sorted(DEFAULT)  # the opt-in kinds' presets wait for a search of those kinds
    order = list(waiting)  # each int8 twin right after its float preset (it reuses that training)
    assert order[:4] == ["unet", "unet-int8", "group", "group-int8"]
    assert all(order[order.index(name) - 1] == name.removesuffix("-int8") for name in order if name.endswith("-int8"))
    for name, trial in waiting.items():
        inside = not name.endswith("-int8")  # int8 is not among this space's quant modes
        assert trial.user_attrs.get("preset_params", False) is inside
        expected = params_of(preset(name, 32), config.space) if inside else {}
        assert trial.system_attrs["fixed_params"] == expected

    data = load_dataset("synthetic", 32, 3, seed=0, limit=24)
    context = TrialContext(config, data, LocalDevice(threads=1), ResultStore(url), latency_protocol(1))
    trial = study.ask()  # the first enqueued preset: unet
    study.tell(trial, evaluate(trial, context))
    done = study.trials[trial.number]
    assert done.state == optuna.trial.TrialState.COMPLETE
    assert done.user_attrs["preset"] == "unet"
    assert done.params == {key: value for key, value in params_of(preset("unet", 32), config.space).items()
                           if key in done.distributions}
    assert {"depth", "base_width", "quant", "enc0_kind", "bottleneck_kind"} <= set(done.params)
    assert done.user_attrs["summary"] == "std,std,std,std|std w16 32px float32"
