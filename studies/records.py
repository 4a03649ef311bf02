"""The project's own tables, beside Optuna's in the same database.

SQLAlchemy 2 declarative models on their own ``MetaData`` (``Base.metadata``), so creating them
never touches Optuna's tables. Every table name starts with ``naslite_``. Rows are keyed by
Optuna's ``trial_id`` (``FrozenTrial._trial_id``, unique across studies in one database); there is
no foreign key to Optuna's tables, whose schema belongs to Optuna.

Read and write them through :class:`studies.store.ResultStore`, not directly.

Schema versions: ``SCHEMA_VERSION`` is the version this code writes. A database written by a newer
nas-lite is refused (see :func:`studies.storage.schema.check_database`); a database of an older
version is upgraded by the functions in ``UPGRADES`` when a writer opens it.
"""

from __future__ import annotations

import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Integer, LargeBinary, MetaData, String, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

SCHEMA_VERSION = 2
"""Version of the ``naslite_`` tables written by this code. 2 added checkpoints, confirmations, teachers,
calibration samples and latency models."""


def _tables_only(connection) -> None:
    """An upgrade that only adds tables: ``create_all`` (run before the upgrades) made them."""


UPGRADES: dict[int, Any] = {1: _tables_only}
"""``{old_version: function(connection)}`` that brings a database from ``old_version`` to the next."""


def utcnow() -> datetime.datetime:
    """Naive UTC now (SQLite keeps no time zone; every timestamp in these tables is UTC)."""
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)


class Base(DeclarativeBase):
    """Declarative base with its own metadata (separate from Optuna's ``BaseModel``)."""

    metadata = MetaData()


class SchemaVersion(Base):
    """One row: the version of the ``naslite_`` tables in this database."""

    __tablename__ = "naslite_schema"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    updated: Mapped[datetime.datetime] = mapped_column(DateTime, default=utcnow, nullable=False)


class Artifact(Base):
    """The ``.tflite`` bytes of one trial, as measured. One per trial (``trial_id`` is unique)."""

    __tablename__ = "naslite_artifacts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    trial_id: Mapped[int] = mapped_column(Integer, nullable=False, unique=True, index=True)
    study_name: Mapped[str] = mapped_column(String(512), nullable=False, index=True)
    trial_number: Mapped[int] = mapped_column(Integer, nullable=False)
    sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    size: Mapped[int] = mapped_column(Integer, nullable=False)
    data: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    created: Mapped[datetime.datetime] = mapped_column(DateTime, default=utcnow, nullable=False)


class Measurement(Base):
    """One latency measurement of a trial's model on one device; a trial may have several."""

    __tablename__ = "naslite_measurements"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    trial_id: Mapped[int] = mapped_column(Integer, nullable=False, index=True)
    device: Mapped[str] = mapped_column(String(512), nullable=False)
    device_info: Mapped[dict] = mapped_column(JSON, nullable=False, default=dict)
    protocol: Mapped[dict] = mapped_column(JSON, nullable=False, default=dict)
    stats: Mapped[dict] = mapped_column(JSON, nullable=False, default=dict)
    created: Mapped[datetime.datetime] = mapped_column(DateTime, default=utcnow, nullable=False)


class Preview(Base):
    """One validation image of a trial with its truth and predicted mask, all PNG bytes."""

    __tablename__ = "naslite_previews"
    __table_args__ = (UniqueConstraint("trial_id", "position", name="uq_naslite_previews_trial_position"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    trial_id: Mapped[int] = mapped_column(Integer, nullable=False, index=True)
    index: Mapped[int] = mapped_column("position", Integer, nullable=False)
    image: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    truth: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    prediction: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)


class Checkpoint(Base):
    """Where a trial's training stopped (weights, optimizer state, epochs), so that a promoted rung
    of the same candidate goes on from it. Dropped once that promotion completed."""

    __tablename__ = "naslite_checkpoints"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    trial_id: Mapped[int] = mapped_column(Integer, nullable=False, unique=True, index=True)
    epochs: Mapped[int] = mapped_column(Integer, nullable=False)
    data: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    created: Mapped[datetime.datetime] = mapped_column(DateTime, default=utcnow, nullable=False)


class Confirmation(Base):
    """One confirming retraining of a trial (or of a reference preset) with one seed: what
    ``search confirm`` measured, and the converted model of that seed."""

    __tablename__ = "naslite_confirmations"
    __table_args__ = (UniqueConstraint("study_name", "subject", "epochs", "seed", name="uq_naslite_confirmations_run"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_name: Mapped[str] = mapped_column(String(512), nullable=False, index=True)
    subject: Mapped[str] = mapped_column(String(128), nullable=False)  # "trial:17" or "preset:unet"
    epochs: Mapped[int] = mapped_column(Integer, nullable=False)
    seed: Mapped[int] = mapped_column(Integer, nullable=False)
    figures: Mapped[dict] = mapped_column(JSON, nullable=False, default=dict)
    tflite: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    created: Mapped[datetime.datetime] = mapped_column(DateTime, default=utcnow, nullable=False)


class Teacher(Base):
    """A study's distillation teacher: its probabilities on the study's training images (``.npy``
    bytes, in the order of the split) and what it is (``source``: a preset name or ``trial:N``)."""

    __tablename__ = "naslite_teachers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_name: Mapped[str] = mapped_column(String(512), nullable=False, unique=True, index=True)
    source: Mapped[str] = mapped_column(String(128), nullable=False)
    figures: Mapped[dict] = mapped_column(JSON, nullable=False, default=dict)
    targets: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    created: Mapped[datetime.datetime] = mapped_column(DateTime, default=utcnow, nullable=False)


class CalibrationSample(Base):
    """One measured calibration candidate of a device's latency model (``search device calibrate``)."""

    __tablename__ = "naslite_calibration_samples"
    __table_args__ = (UniqueConstraint("device", "key", name="uq_naslite_calibration_device_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    device: Mapped[str] = mapped_column(String(512), nullable=False, index=True)
    key: Mapped[str] = mapped_column(String(64), nullable=False)  # SHA-256 of the spec and protocol
    sample: Mapped[dict] = mapped_column(JSON, nullable=False)  # spec, op features, measured stats
    created: Mapped[datetime.datetime] = mapped_column(DateTime, default=utcnow, nullable=False)


class LatencyModelRecord(Base):
    """A fitted latency model of a device (``evaluators.latency_model.LatencyModel`` as JSON)."""

    __tablename__ = "naslite_latency_models"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    device: Mapped[str] = mapped_column(String(512), nullable=False, index=True)
    model: Mapped[dict] = mapped_column(JSON, nullable=False)
    created: Mapped[datetime.datetime] = mapped_column(DateTime, default=utcnow, nullable=False)
