"""``search compare A B``: both fronts under one reference, and which members dominate which."""

import json

import pytest

from studies import storage
from tests.conftest import run_cli
from tests.studies.helpers import make_study

A = [(0.90, 10.0, 100.0), (0.80, 5.0, 80.0)]
B = [(0.85, 12.0, 120.0), (0.95, 30.0, 300.0), (0.70, 4.0, 50.0)]


@pytest.fixture
def two_studies(tmp_path):
    url = f"sqlite:///{tmp_path / 'studies.db'}"
    opened = storage.open_storage(url)
    make_study(opened, "a", A)
    make_study(opened, "b", B)
    return url


def test_compare_json_has_one_reference_and_the_dominated_pairs(two_studies):
    result = run_cli("compare", "a", "b", "--storage", two_studies, "--json")
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    assert found["reference"] == pytest.approx({"dice": 0.0, "latency_ms": 33.0, "size_kb": 330.0})  # the worse of 1.1 x each worst
    assert found["a_dominates_b"] == [[0, 0]] and found["b_dominates_a"] == []
    assert [len(found[s]["front"]) for s in ("a", "b")] == [2, 3]
    assert found["a"]["fastest"]["number"] == 1 and found["b"]["best_dice"]["number"] == 1
    assert 0 < found["a"]["hypervolume"] < 1 and 0 < found["b"]["hypervolume"] < 1


def test_compare_text_says_who_dominates_whom(two_studies):
    result = run_cli("compare", "a", "b", "--storage", two_studies)
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert "a dominates 1 of 3 front member(s) of b:" in text
    assert "b dominates 0 of 2 front member(s) of a" in text
    assert "front size" in text and "hypervolume" in text and "knee" in text
    assert "latency 33.00 ms" in text.splitlines()[0]


@pytest.mark.parametrize("names, message", [(("a", "a"), "name two different studies"),
                                            (("a", "nope"), "no study 'nope'")])
def test_compare_refuses_bad_names_in_one_line(two_studies, names, message):
    result = run_cli("compare", *names, "--storage", two_studies)
    assert result.returncode == 2
    assert message in result.stderr and result.stderr.count("\n") == 1


def test_a_study_without_a_front_does_not_change_the_reference(two_studies):
    make_study(storage.open_storage(two_studies), "empty", [])
    found = json.loads(run_cli("compare", "a", "empty", "--storage", two_studies, "--json").stdout)
    assert found["reference"] == pytest.approx({"dice": 0.0, "latency_ms": 11.0, "size_kb": 110.0})  # a's own
    assert found["b"]["study"] == "empty" and found["b"]["front"] == [] and found["b"]["knee"] is None
