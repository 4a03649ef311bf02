"""``ResultStore``: the ``.tflite`` artifacts, latency measurements and previews of trials.

The rows live in the ``naslite_`` tables (:mod:`studies.records`) of the same database as
Optuna's storage, keyed by Optuna's ``trial_id`` (``FrozenTrial._trial_id`` or
``Trial._trial_id``; unique across the studies of one database).

Contract:

- Every method is one transaction in one session scope (:meth:`ResultStore.session`): it is
  written completely or not at all, and retried while the database is locked. A full disk is an
  ``OSError`` that says so.
- Getters return plain Python values (``bytes``, ``dict``, ``list``), never ORM objects, and
  ``None`` or ``[]`` for a trial with nothing stored.
- Saving again for the same trial replaces the artifact (or the previews); measurements
  accumulate.

Example::

    store = ResultStore("sqlite:///studies.db")
    digest = store.save_artifact(trial._trial_id, study.study_name, trial.number, tflite)
    store.save_measurement(trial._trial_id, "local", {"cpu": "x86_64"}, {"runs": 50}, {"p50_ms": 3.1})
    assert hashlib.sha256(store.artifact(trial._trial_id)).hexdigest() == digest
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import sqlalchemy
from sqlalchemy.orm import Session, sessionmaker

from studies import records, storage

T = TypeVar("T")
CLAIM, BEAT = "claimed_by", "heartbeat"  # the figures of a confirming run under way (see claim_confirmation)


class ResultStore:
    """The project's own rows in the database at ``url`` (``sqlite:///...`` or ``postgresql://...``).

    Opening checks the database like :func:`studies.storage.open_storage` (same errors) and
    creates the ``naslite_`` tables if missing; ``create=False`` refuses a missing SQLite file
    (``FileNotFoundError``) instead of creating it. Use as a context manager, or call
    :meth:`close`, to release the connections.
    """

    def __init__(self, url: str = storage.DEFAULT_URL, *, create: bool = True):
        self.url = url
        self.engine = storage.create_engine(url, create=create)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    # -- plumbing ---------------------------------------------------------------------------------
    @contextlib.contextmanager
    def session(self) -> Iterator[Session]:
        """The one session scope: commit when the block ends, roll back (and re-raise) on error."""
        session = self._sessions()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def _run(self, work: Callable[[Session], T]) -> T:
        """``work(session)`` in one transaction, retried while the database is locked."""

        def once() -> T:
            with self.session() as session:
                return work(session)

        try:
            return storage.retry_locked(once)
        except sqlalchemy.exc.OperationalError as error:
            if not any(text in str(error.orig) for text in ("disk is full", "No space left on device")):  # SQLite, PostgreSQL
                raise
            raise OSError(
                f"the disk that holds {storage.shown(self.url)} is full, nothing of this write was kept; "
                "free some space, then run the same command again"
            ) from error

    def close(self) -> None:
        """Release the connections (the store cannot be used afterwards)."""
        self.engine.dispose()

    def __enter__(self) -> "ResultStore":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    # -- artifacts --------------------------------------------------------------------------------
    def save_artifact(self, trial_id: int, study_name: str, trial_number: int, tflite: bytes) -> str:
        """Store the ``.tflite`` bytes of a trial atomically; return their SHA-256 (hex).

        Replaces an artifact already stored for ``trial_id``. A failure leaves the previous state.
        """
        data = bytes(tflite)
        if not data:
            raise ValueError(f"trial {trial_number}: the .tflite artifact is empty; nothing to store")
        digest = hashlib.sha256(data).hexdigest()

        def work(session: Session) -> None:
            session.execute(sqlalchemy.delete(records.Artifact).where(records.Artifact.trial_id == trial_id))
            session.add(records.Artifact(
                trial_id=trial_id, study_name=study_name, trial_number=trial_number,
                sha256=digest, size=len(data), data=data,
            ))

        self._run(work)
        return digest

    def artifact(self, trial_id: int) -> bytes | None:
        """The stored ``.tflite`` bytes of ``trial_id``, or ``None``."""
        return self._run(lambda s: s.scalar(
            sqlalchemy.select(records.Artifact.data).where(records.Artifact.trial_id == trial_id)
        ))

    def artifact_sha256(self, trial_id: int) -> str | None:
        """The SHA-256 (hex) of the stored artifact of ``trial_id``, or ``None``; does not load the bytes."""
        return self._run(lambda s: s.scalar(
            sqlalchemy.select(records.Artifact.sha256).where(records.Artifact.trial_id == trial_id)
        ))

    def artifact_info(self, trial_id: int) -> dict[str, Any] | None:
        """``{"trial_id", "study_name", "trial_number", "sha256", "size", "created"}`` without the bytes, or ``None``."""
        columns = (records.Artifact.trial_id, records.Artifact.study_name, records.Artifact.trial_number,
                   records.Artifact.sha256, records.Artifact.size, records.Artifact.created)
        row = self._run(lambda s: s.execute(
            sqlalchemy.select(*columns).where(records.Artifact.trial_id == trial_id)
        ).first())
        return dict(row._mapping) if row is not None else None

    def artifact_trial_ids(self, study_name: str) -> set[int]:
        """The ``trial_id`` of every trial of ``study_name`` that has an artifact."""
        return set(self._run(lambda s: s.scalars(
            sqlalchemy.select(records.Artifact.trial_id).where(records.Artifact.study_name == study_name)
        ).all()))

    # -- measurements -----------------------------------------------------------------------------
    def save_measurement(self, trial_id: int, device: str, device_info: dict, protocol: dict, stats: dict) -> None:
        """Add one latency measurement: ``device`` name (or URL), its info, the protocol and statistics.

        All three dicts must be JSON-serialisable. A trial may have several measurements.
        """
        def work(session: Session) -> None:
            session.add(records.Measurement(
                trial_id=trial_id, device=device, device_info=dict(device_info),
                protocol=dict(protocol), stats=dict(stats),
            ))

        self._run(work)

    def measurements(self, trial_id: int) -> list[dict[str, Any]]:
        """``[{"device", "device_info", "protocol", "stats", "created"}]`` of ``trial_id``, oldest first."""
        def work(session: Session) -> list[dict[str, Any]]:
            rows = session.scalars(
                sqlalchemy.select(records.Measurement)
                .where(records.Measurement.trial_id == trial_id)
                .order_by(records.Measurement.created, records.Measurement.id)
            ).all()
            return [
                {"device": r.device, "device_info": r.device_info, "protocol": r.protocol,
                 "stats": r.stats, "created": r.created}
                for r in rows
            ]

        return self._run(work)

    # -- previews ---------------------------------------------------------------------------------
    def save_previews(self, trial_id: int, previews: list[tuple[bytes, bytes, bytes]]) -> None:
        """Store ``[(input_png, truth_png, prediction_png), ...]`` for ``trial_id``, replacing earlier ones."""
        rows = []
        for index, triple in enumerate(previews):
            if len(triple) != 3:
                raise ValueError(f"previews[{index}]: expected (input, truth, prediction) PNG bytes, got {len(triple)} items")
            image, truth, prediction = (bytes(part) for part in triple)
            rows.append(dict(trial_id=trial_id, index=index, image=image, truth=truth, prediction=prediction))

        def work(session: Session) -> None:
            session.execute(sqlalchemy.delete(records.Preview).where(records.Preview.trial_id == trial_id))
            session.add_all(records.Preview(**row) for row in rows)

        self._run(work)

    def previews(self, trial_id: int) -> list[tuple[bytes, bytes, bytes]]:
        """The ``(input_png, truth_png, prediction_png)`` previews of ``trial_id`` in saved order."""
        def work(session: Session) -> list[tuple[bytes, bytes, bytes]]:
            rows = session.scalars(
                sqlalchemy.select(records.Preview)
                .where(records.Preview.trial_id == trial_id)
                .order_by(records.Preview.index)
            ).all()
            return [(r.image, r.truth, r.prediction) for r in rows]

        return self._run(work)

    # -- checkpoints ------------------------------------------------------------------------------
    def save_checkpoint(self, trial_id: int, epochs: int, data: bytes) -> None:
        """Keep where ``trial_id``'s training stopped (``evaluators.train.Checkpoint.to_bytes()``)."""
        def work(session: Session) -> None:
            session.execute(sqlalchemy.delete(records.Checkpoint).where(records.Checkpoint.trial_id == trial_id))
            session.add(records.Checkpoint(trial_id=trial_id, epochs=epochs, data=bytes(data)))

        self._run(work)

    def checkpoint(self, trial_id: int) -> bytes | None:
        return self._run(lambda s: s.scalar(
            sqlalchemy.select(records.Checkpoint.data).where(records.Checkpoint.trial_id == trial_id)
        ))

    def drop_checkpoint(self, trial_id: int) -> None:
        self._run(lambda s: s.execute(sqlalchemy.delete(records.Checkpoint).where(records.Checkpoint.trial_id == trial_id)))

    # -- confirmations ----------------------------------------------------------------------------
    def save_confirmation(self, study_name: str, subject: str, epochs: int, seed: int, figures: dict, tflite: bytes) -> None:
        """Record one confirming run (replacing a run of the same subject, epochs and seed)."""
        def work(session: Session) -> None:
            row = records.Confirmation
            session.execute(sqlalchemy.delete(row).where(
                row.study_name == study_name, row.subject == subject, row.epochs == epochs, row.seed == seed))
            session.add(row(study_name=study_name, subject=subject, epochs=epochs, seed=seed,
                            figures=dict(figures), tflite=bytes(tflite)))

        self._run(work)

    def confirmations(self, study_name: str) -> list[dict[str, Any]]:
        """``[{"subject", "epochs", "seed", "figures", "created"}]`` of a study, without the models."""
        row = records.Confirmation
        columns = (row.subject, row.epochs, row.seed, row.figures, row.created)
        rows = self._run(lambda s: s.execute(
            sqlalchemy.select(*columns).where(row.study_name == study_name).order_by(row.subject, row.epochs, row.seed)
        ).all())
        return [dict(r._mapping) for r in rows if CLAIM not in r.figures]  # a claim is work under way, not a result

    def confirmation_model(self, study_name: str, subject: str, epochs: int, seed: int) -> bytes | None:
        row = records.Confirmation
        return self._run(lambda s: s.scalar(sqlalchemy.select(row.tflite).where(
            row.study_name == study_name, row.subject == subject, row.epochs == epochs, row.seed == seed))) or None

    def claim_confirmation(self, study_name: str, subject: str, epochs: int, seed: int, owner: str, is_stale) -> bool:
        """Claim one confirming run for ``owner``: True when it was free (no row), or claimed by an
        owner that ``is_stale(claim_figures)`` says is gone. A finished run is never claimed.

        A claim is a row whose figures hold ``CLAIM`` (the owner) and ``BEAT`` (its last heartbeat,
        seconds since the epoch) and whose model is empty; :meth:`save_confirmation` replaces it."""
        import time

        row = records.Confirmation
        where = (row.study_name == study_name, row.subject == subject, row.epochs == epochs, row.seed == seed)

        def work(session: Session) -> bool:
            figures = session.scalar(sqlalchemy.select(row.figures).where(*where))
            if figures is not None and (CLAIM not in figures or not is_stale(figures)):
                return False
            session.execute(sqlalchemy.delete(row).where(*where))
            session.add(row(study_name=study_name, subject=subject, epochs=epochs, seed=seed,
                            figures={CLAIM: owner, BEAT: time.time()}, tflite=b""))
            return True

        try:
            return self._run(work)
        except sqlalchemy.exc.IntegrityError:
            return False  # another process claimed it in the same instant

    def beat_confirmation(self, study_name: str, subject: str, epochs: int, seed: int, owner: str) -> None:
        """Renew ``owner``'s claim on a run (see :meth:`claim_confirmation`)."""
        import time

        row = records.Confirmation
        self._run(lambda s: s.execute(sqlalchemy.update(row).where(
            row.study_name == study_name, row.subject == subject, row.epochs == epochs, row.seed == seed,
            sqlalchemy.func.length(row.tflite) == 0,
        ).values(figures={CLAIM: owner, BEAT: time.time()})))

    # -- teachers ---------------------------------------------------------------------------------
    def save_teacher(self, study_name: str, source: str, targets: bytes, figures: dict) -> None:
        """Keep ``study_name``'s distillation teacher (its targets as ``.npy`` bytes), replacing an earlier one."""
        def work(session: Session) -> None:
            session.execute(sqlalchemy.delete(records.Teacher).where(records.Teacher.study_name == study_name))
            session.add(records.Teacher(study_name=study_name, source=source, targets=bytes(targets), figures=dict(figures)))

        self._run(work)

    def teacher(self, study_name: str) -> dict[str, Any] | None:
        """``{"source", "targets", "figures"}`` of the study's teacher, or ``None``."""
        row = self._run(lambda s: s.execute(sqlalchemy.select(
            records.Teacher.source, records.Teacher.targets, records.Teacher.figures,
        ).where(records.Teacher.study_name == study_name)).first())
        return dict(row._mapping) if row is not None else None

    # -- space ------------------------------------------------------------------------------------
    def stored_bytes(self, trial_ids: set[int] | None = None, study_name: str | None = None) -> dict[str, int]:
        """Bytes of ``{"artifacts", "previews", "measurements", "checkpoints", "confirmations"}``: of the
        trials ``trial_ids`` (and the confirmations of ``study_name``), or of the whole database."""
        r = records
        text = lambda column: sqlalchemy.func.coalesce(sqlalchemy.func.length(sqlalchemy.cast(column, sqlalchemy.String)), 0)  # noqa: E731
        blob = lambda column: sqlalchemy.func.coalesce(sqlalchemy.func.length(column), 0)  # noqa: E731
        sums = {
            "artifacts": (r.Artifact, blob(r.Artifact.data)),
            "previews": (r.Preview, blob(r.Preview.image) + blob(r.Preview.truth) + blob(r.Preview.prediction)),
            "measurements": (r.Measurement, text(r.Measurement.device_info) + text(r.Measurement.protocol) + text(r.Measurement.stats)),
            "checkpoints": (r.Checkpoint, blob(r.Checkpoint.data)),
            "confirmations": (r.Confirmation, blob(r.Confirmation.tflite) + text(r.Confirmation.figures)),
        }

        def work(session: Session) -> dict[str, int]:
            found = {}
            for kind, (table, size) in sums.items():
                query = sqlalchemy.select(sqlalchemy.func.coalesce(sqlalchemy.func.sum(size), 0))
                if table is r.Confirmation and study_name is not None:
                    query = query.where(table.study_name == study_name)
                elif table is not r.Confirmation and trial_ids is not None:
                    query = query.where(table.trial_id.in_(list(trial_ids)))
                found[kind] = int(session.scalar(query))
            return found

        return self._run(work)

    def database_bytes(self) -> dict[str, int] | None:
        """``{"total", "free"}`` bytes of an SQLite file (free: pages ``VACUUM`` would give back);
        ``{"total"}`` of a PostgreSQL database; ``None`` for another database."""
        if self.engine.dialect.name == "postgresql":
            return {"total": int(self._run(lambda s: s.scalar(sqlalchemy.text("SELECT pg_database_size(current_database())"))))}
        if self.engine.dialect.name != "sqlite":
            return None

        def work(session: Session) -> dict[str, int]:
            pragma = lambda name: int(session.scalar(sqlalchemy.text(f"PRAGMA {name}")))  # noqa: E731
            page = pragma("page_size")
            return {"total": pragma("page_count") * page, "free": pragma("freelist_count") * page}

        return self._run(work)

    def drop_models(self, trial_ids: set[int]) -> int:
        """Delete the artifacts and previews of ``trial_ids`` (measurements stay); return the bytes they held."""
        ids = list(trial_ids)
        freed = self.stored_bytes(set(ids))

        def work(session: Session) -> None:
            session.execute(sqlalchemy.delete(records.Artifact).where(records.Artifact.trial_id.in_(ids)))
            session.execute(sqlalchemy.delete(records.Preview).where(records.Preview.trial_id.in_(ids)))

        self._run(work)
        return freed["artifacts"] + freed["previews"]

    def vacuum(self) -> None:
        """Give the free pages back to the file system (SQLite's and PostgreSQL's ``VACUUM``)."""
        with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            storage.retry_locked(lambda: connection.exec_driver_sql("VACUUM"))
            if self.engine.dialect.name == "sqlite":  # in WAL mode the rewritten pages sit in the log until then
                storage.retry_locked(lambda: connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)"))
