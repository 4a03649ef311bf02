"""search.pipeline: the clock, the protocol and the JSON form shared by every caller of the steps."""

import dataclasses
import math
import time

import numpy as np
import pytest

from search.pipeline import SEARCH_MIN_SECONDS, Stopwatch, duration, jsonable, latency_protocol


def test_nested_phases_count_for_themselves_only():
    clock = Stopwatch()
    with clock.phase("train"):
        time.sleep(0.05)
        with clock.phase("convert"):
            time.sleep(0.1)
    summary = clock.summary()
    assert summary["train"] >= 0.05 and summary["convert"] >= 0.1
    assert summary["train"] + summary["convert"] == pytest.approx(summary["total"], abs=0.005)  # not counted twice


@pytest.mark.parametrize("seconds, text", [(0, "0:00"), (59.9, "0:59"), (61, "1:01"), (3599, "59:59"), (3661, "1:01:01")])
def test_duration_reads_as_minutes_then_hours(seconds, text):
    assert duration(seconds) == text


def test_one_latency_protocol_for_every_evaluation():
    protocol = latency_protocol(1, "cpu")
    assert (protocol.threads, protocol.clock, protocol.min_seconds) == (1, "cpu", SEARCH_MIN_SECONDS)
    with pytest.raises(ValueError, match="'cpu' times one thread"):
        latency_protocol(4, "cpu")


def test_jsonable_gives_what_json_holds():
    @dataclasses.dataclass
    class Point:
        x: float
        tags: tuple

    value = {1: np.float32(0.5), "inf": math.inf, "nan": float("nan"), "point": Point(np.int64(3), ("a", np.bool_(True)))}
    assert jsonable(value) == {"1": 0.5, "inf": None, "nan": None, "point": {"x": 3, "tags": ["a", True]}}
    assert type(jsonable(np.int64(3))) is int


def test_a_stage_resumed_through_the_pipeline_goes_on_from_its_checkpoint():
    """The seam of rungs: train 1 epoch of a 2-epoch schedule, then resume for the second."""
    from evaluators.data import load_dataset
    from search.pipeline import train
    from space.spec import uniform

    data = load_dataset("synthetic", 32, 3, seed=0, limit=16)
    spec = uniform("standard", depth=3, base_width=4, input_size=32)
    training = dict(batch_size=8, seed=0, learning_rate=2e-3, schedule="cosine")
    clock, epochs_seen = Stopwatch(), []
    first = train(spec, data, 1, training, clock, horizon=2)
    second = train(spec, data, 1, training, clock, lambda epoch, dice: epochs_seen.append(epoch),
                   horizon=2, resume=first.history.checkpoint)
    assert first.history.checkpoint.epochs == 1 and second.history.checkpoint.epochs == 2
    assert epochs_seen == [2]  # numbered on from the first stage
    assert "train" in clock.summary() and second.info["training_form"] == "native"


def test_finish_scores_validation_with_its_interval_and_the_test_split_for_reporting():
    from evaluators.data import load_dataset
    from evaluators.devices import LocalDevice
    from search.pipeline import finish, latency_protocol, train
    from space.spec import uniform

    data = load_dataset("synthetic", 32, 3, seed=0, limit=30, test_fraction=0.2)
    spec = uniform("standard", depth=3, base_width=4, input_size=32)
    clock = Stopwatch()
    trained = train(spec, data, 1, dict(batch_size=8, seed=0, learning_rate=2e-3, schedule="cosine"), clock)
    protocol = latency_protocol(1).__class__(warmup=1, runs=5, min_seconds=0, threads=1)
    figures = finish(spec, trained, data, LocalDevice(threads=1), protocol, clock).figures
    assert len(figures["dice_per_image"]) == len(data.val_images) and len(figures["test_dice_per_image"]) == len(data.test_images)
    assert figures["dice_ci95"][0] <= figures["dice"] <= figures["dice_ci95"][1]
    assert "test_dice" in figures and figures["latency_runs"] >= 5
    assert figures["latency_ms"] in figures["latency_attempts_ms"]  # the kept attempt, beside the others (the front's tolerance)
    without = finish(spec, trained, load_dataset("synthetic", 32, 3, seed=0, limit=30), LocalDevice(threads=1), protocol, clock)
    assert not any(key.startswith("test_") for key in without.figures)
