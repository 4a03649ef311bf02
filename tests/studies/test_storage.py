"""open_storage / ResultStore on a real SQLite file: creation, refusals, round trips."""

from __future__ import annotations

import hashlib

import pytest
import sqlalchemy

from studies import records, storage
from studies.store import ResultStore
from tests.reliability.helpers import rows_digest
from tests.studies.helpers import TINY_TFLITE, make_study


def test_open_storage_creates_optuna_and_naslite_tables(tmp_path):
    url = f"sqlite:///{tmp_path / 'studies.db'}"
    storage.open_storage(url)
    engine = sqlalchemy.create_engine(url)
    with engine.connect() as connection:
        tables = set(sqlalchemy.inspect(connection).get_table_names())
        version = connection.execute(sqlalchemy.text("select version from naslite_schema")).scalar()
        journal = connection.exec_driver_sql("PRAGMA journal_mode").scalar()
    assert {"studies", "trials", "naslite_artifacts", "naslite_measurements", "naslite_previews"} <= tables
    assert version == records.SCHEMA_VERSION
    assert journal == "wal"


def test_unknown_scheme_lists_valid_forms():
    with pytest.raises(ValueError, match="sqlite:///.*postgresql://"):
        storage.open_storage("mysql://user@host/db")
    with pytest.raises(ValueError, match="not valid"):
        storage.open_storage("studies.db")


def test_missing_folder_and_missing_file(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        storage.open_storage(f"sqlite:///{tmp_path / 'nope' / 'studies.db'}")
    with pytest.raises(FileNotFoundError, match="search start"):
        storage.open_storage(f"sqlite:///{tmp_path / 'studies.db'}", create=False)
    assert not (tmp_path / "studies.db").exists()


def test_file_that_is_not_a_database_is_left_alone(tmp_path):
    path = tmp_path / "notes.db"
    path.write_bytes(b"these are my notes, not a database\n" * 10)
    before = path.read_bytes()
    with pytest.raises(ValueError, match="not a SQLite database"):
        storage.open_storage(f"sqlite:///{path}")
    with pytest.raises(ValueError, match="not a SQLite database"):
        ResultStore(f"sqlite:///{path}")
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.db"]


def test_newer_schema_is_refused_and_data_kept(tmp_path):
    path = tmp_path / "studies.db"
    url = f"sqlite:///{path}"
    make_study(storage.open_storage(url), "s", [(0.8, 10.0, 100.0)])
    with ResultStore(url) as store:
        store.save_artifact(1, "s", 0, b"model")
    engine = sqlalchemy.create_engine(url)
    with engine.begin() as connection:
        connection.execute(sqlalchemy.text("update naslite_schema set version = :v"), {"v": records.SCHEMA_VERSION + 1})
    engine.dispose()
    before = rows_digest(path)  # not the bytes: closing a reader checkpoints the WAL into the file
    with pytest.raises(ValueError, match="newer nas-lite.*upgrade nas-lite"):
        storage.open_storage(url)
    with pytest.raises(ValueError, match="newer nas-lite"):
        ResultStore(url)
    assert rows_digest(path) == before
    engine = sqlalchemy.create_engine(url)
    with engine.connect() as connection:
        assert connection.execute(sqlalchemy.text("select data from naslite_artifacts")).scalar() == b"model"
        assert connection.execute(sqlalchemy.text("select count(*) from trials")).scalar() == 1


def _schema_version(url: str) -> int:
    engine = sqlalchemy.create_engine(url)
    with engine.connect() as connection:
        version = connection.execute(sqlalchemy.text("select version from naslite_schema")).scalar()
    engine.dispose()
    return version


def test_older_schema_is_upgraded_by_upgrades_and_readers_leave_it_alone(tmp_path, monkeypatch):
    """A database of the current version, opened by a nas-lite one version newer whose ``UPGRADES``
    brings it up: readers refuse it unchanged; the first writer upgrades it once, keeping the data."""
    path = tmp_path / "studies.db"
    url = f"sqlite:///{path}"
    make_study(storage.open_storage(url), "s", [(0.8, 10.0, 100.0)])
    with ResultStore(url) as store:
        store.save_artifact(1, "s", 0, b"model")
    old = records.SCHEMA_VERSION
    calls = []

    def upgrade(connection):
        calls.append(old)
        connection.execute(sqlalchemy.text("create table naslite_upgraded (id integer primary key)"))

    monkeypatch.setattr(records, "SCHEMA_VERSION", old + 1)
    monkeypatch.setitem(records.UPGRADES, old, upgrade)
    before = rows_digest(path)
    with pytest.raises(ValueError, match=f"schema {old}; run 'search start --storage URL' once to upgrade it"):
        storage.load_study(url, "s")
    with pytest.raises(ValueError, match="once to upgrade it"):
        ResultStore(url, create=False)
    assert rows_digest(path) == before and not calls

    storage.open_storage(url)
    assert calls == [old] and _schema_version(url) == old + 1
    with ResultStore(url, create=False) as store:
        assert store.artifact(1) == b"model"
    assert storage.load_study(url, "s").trials[0].values == [0.8, 10.0, 100.0]
    storage.open_storage(url)
    assert calls == [old]  # current now: opening again upgrades nothing


def test_older_schema_without_an_upgrade_is_refused_and_kept(tmp_path, monkeypatch):
    path = tmp_path / "studies.db"
    url = f"sqlite:///{path}"
    make_study(storage.open_storage(url), "s", [(0.8, 10.0, 100.0)])
    monkeypatch.setattr(records, "SCHEMA_VERSION", records.SCHEMA_VERSION + 1)
    before = rows_digest(path)
    with pytest.raises(ValueError, match="cannot be upgraded by this nas-lite"):
        storage.open_storage(url)
    assert rows_digest(path) == before


def test_store_round_trip(tmp_path):
    url = f"sqlite:///{tmp_path / 'studies.db'}"
    tflite = TINY_TFLITE.read_bytes()
    with ResultStore(url) as store:
        digest = store.save_artifact(7, "s", 3, tflite)
        assert digest == hashlib.sha256(tflite).hexdigest()
        assert store.artifact(7) == tflite
        assert store.artifact_sha256(7) == digest
        assert store.artifact_info(7)["size"] == len(tflite)
        assert store.artifact_trial_ids("s") == {7}
        assert store.artifact(8) is None and store.artifact_sha256(8) is None
        assert store.save_artifact(7, "s", 3, b"replaced") == hashlib.sha256(b"replaced").hexdigest()
        assert store.artifact(7) == b"replaced"

        store.save_measurement(7, "local", {"cpu": "x86"}, {"runs": 20}, {"p50_ms": 3.0})
        store.save_measurement(7, "pi://pi4:8765", {"model": "Pi 4"}, {"runs": 50}, {"p50_ms": 30.0})
        found = store.measurements(7)
        assert [m["device"] for m in found] == ["local", "pi://pi4:8765"]
        assert found[1]["stats"] == {"p50_ms": 30.0} and found[1]["device_info"] == {"model": "Pi 4"}
        assert store.measurements(8) == []

        previews = [(b"in0", b"truth0", b"pred0"), (b"in1", b"truth1", b"pred1")]
        store.save_previews(7, previews)
        assert store.previews(7) == previews
        store.save_previews(7, previews[:1])
        assert store.previews(7) == previews[:1]
    # a second store on the same file sees the rows
    with ResultStore(url, create=False) as store:
        assert store.artifact(7) == b"replaced"


def test_failed_write_leaves_nothing(tmp_path):
    url = f"sqlite:///{tmp_path / 'studies.db'}"
    with ResultStore(url) as store:
        with pytest.raises(RuntimeError):
            with store.session() as session:
                session.add(records.Artifact(trial_id=1, study_name="s", trial_number=0, sha256="x", size=1, data=b"x"))
                session.flush()
                raise RuntimeError("crash in the middle of a write")
        assert store.artifact(1) is None
        with pytest.raises(ValueError, match="empty"):
            store.save_artifact(1, "s", 0, b"")
        assert store.artifact(1) is None


def test_list_and_load_studies(tmp_path):
    url = f"sqlite:///{tmp_path / 'studies.db'}"
    opened = storage.open_storage(url)
    make_study(opened, "first", [(0.5, 10.0, 100.0)])
    make_study(opened, "second", [(0.6, 10.0, 100.0), (0.7, 12.0, 90.0)])
    infos = storage.list_studies(url)
    assert [(i.name, i.n_trials, i.states) for i in infos] == [("first", 1, {"COMPLETE": 1}), ("second", 2, {"COMPLETE": 2})]
    assert infos[1].metric_names == ("dice", "latency_ms", "size_kb")
    assert storage.load_study(url).study_name == "second"
    with pytest.raises(LookupError, match="available: first, second"):
        storage.load_study(url, "third")


@pytest.mark.postgres
def test_postgres_round_trip(postgres_url):
    """On the real server of the ``postgres_url`` fixture (tests/conftest.py)."""
    import uuid

    import optuna

    url = postgres_url
    opened = storage.open_storage(url)
    name = f"pg-{uuid.uuid4().hex[:8]}"
    study = make_study(opened, name, [(0.8, 10.0, 100.0), (0.7, 5.0, 50.0)])
    trial_id = study.trials[0]._trial_id
    with ResultStore(url) as store:
        digest = store.save_artifact(trial_id, name, 0, TINY_TFLITE.read_bytes())
        store.save_measurement(trial_id, "local", {"cpu": "x"}, {"runs": 3}, {"p50_ms": 1.5})
        store.save_previews(trial_id, [(b"a", b"b", b"c")])
        assert hashlib.sha256(store.artifact(trial_id)).hexdigest() == digest
        assert store.measurements(trial_id)[0]["stats"] == {"p50_ms": 1.5}
        assert store.previews(trial_id) == [(b"a", b"b", b"c")]
    assert name in [info.name for info in storage.list_studies(url)]
    loaded = storage.load_study(opened, name)  # a URL opens read-only; optimize needs the writer
    loaded.optimize(lambda trial: (0.5, 1.0, 1.0), n_trials=1)  # heartbeat path on PostgreSQL
    assert [t.state for t in loaded.trials].count(optuna.trial.TrialState.COMPLETE) == 3


MODEL = TINY_TFLITE.read_bytes()


def test_a_schema_1_database_is_upgraded_by_its_first_writer_and_keeps_its_rows(tmp_path):
    """Schema 2 added checkpoints and confirmations: a database written by schema 1 gets them."""
    url = f"sqlite:///{tmp_path / 'studies.db'}"
    with ResultStore(url) as store:
        store.save_artifact(1, "s", 0, MODEL)
    engine = sqlalchemy.create_engine(url)
    with engine.begin() as connection:  # what schema 1 wrote
        connection.exec_driver_sql("drop table naslite_checkpoints")
        connection.exec_driver_sql("drop table naslite_confirmations")
        for table in ("naslite_teachers", "naslite_calibration_samples", "naslite_latency_models"):
            connection.exec_driver_sql(f"drop table {table}")
        connection.exec_driver_sql("update naslite_schema set version = 1")
    with pytest.raises(ValueError, match="schema 1; run 'search start"):
        ResultStore(url, create=False)  # a reader does not upgrade
    with ResultStore(url) as store:
        assert store.artifact(1) == MODEL
        store.save_checkpoint(1, 2, b"weights")
        store.save_confirmation("s", "trial:0", 12, 0, {"test_dice": 0.8}, MODEL)
        assert store.checkpoint(1) == b"weights"
        assert [c["figures"] for c in store.confirmations("s")] == [{"test_dice": 0.8}]
    with engine.connect() as connection:
        assert connection.exec_driver_sql("select version from naslite_schema").scalar() == 2


def test_checkpoints_and_confirmations_round_trip(tmp_path):
    with ResultStore(f"sqlite:///{tmp_path / 'studies.db'}") as store:
        store.save_checkpoint(5, 2, b"a")
        store.save_checkpoint(5, 6, b"b")  # the later rung replaces the earlier one
        assert store.checkpoint(5) == b"b"
        store.drop_checkpoint(5)
        assert store.checkpoint(5) is None
        for seed in (1, 0):
            store.save_confirmation("s", "preset:unet", 12, seed, {"seed": seed}, MODEL)
        store.save_confirmation("s", "preset:unet", 12, 0, {"seed": "again"}, MODEL)
        assert [(c["seed"], c["figures"]) for c in store.confirmations("s")] == [(0, {"seed": "again"}), (1, {"seed": 1})]
        assert store.confirmation_model("s", "preset:unet", 12, 1) == MODEL
        assert store.confirmations("other") == []
        store.save_teacher("s", "unet", b"npy", {"dice": 0.8})
        store.save_teacher("s", "trial:3", b"npy2", {})
        assert store.teacher("s") == {"source": "trial:3", "targets": b"npy2", "figures": {}} and store.teacher("t") is None
