"""The sampler registry: every ``--sampler`` name has a factory; an unknown name lists them."""

import optuna
import pytest

from search import config as search_config
from search.config import SearchConfig
from search.samplers import SAMPLER_NAMES, SAMPLERS, make_sampler, sampler_factory


def test_the_registry_is_what_the_config_accepts():
    assert SAMPLER_NAMES == tuple(SAMPLERS) == tuple(search_config.SAMPLERS)


@pytest.mark.parametrize("name, cls", [
    ("tpe", optuna.samplers.TPESampler),
    ("nsga2", optuna.samplers.NSGAIISampler),
    ("random", optuna.samplers.RandomSampler),
])
def test_each_name_makes_its_sampler(name, cls):
    assert isinstance(make_sampler(SearchConfig(sampler=name, budget=20)), cls)


def test_nsga2_population_follows_the_budget():
    assert make_sampler(SearchConfig(sampler="nsga2", budget=50))._population_size == 10


def test_an_unknown_name_lists_the_choices():
    with pytest.raises(ValueError, match="tpe, nsga2, random, gp"):
        sampler_factory("cmaes")
