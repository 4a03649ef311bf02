"""Fixtures the reliability tests share."""

import pytest

from tests.studies.helpers import TINY_TFLITE, make_study


@pytest.fixture
def database(tmp_path):
    """``(path, url)`` of a database that holds study ``earlier`` with two trials and an artifact."""
    from studies.storage import open_storage
    from studies.store import ResultStore

    path = tmp_path / "studies.db"
    url = f"sqlite:///{path}"
    study = make_study(open_storage(url), "earlier", [(0.8, 10.0, 100.0), (0.7, 5.0, 50.0)])
    with ResultStore(url) as store:
        store.save_artifact(study.trials[0]._trial_id, "earlier", 0, TINY_TFLITE.read_bytes())
    return path, url
