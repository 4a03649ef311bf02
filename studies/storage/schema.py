"""What a database holds: whether it is nas-lite's at all, the version of the ``naslite_`` tables, upgrades.

A database is nas-lite's when it is new or empty, or already holds nas-lite's or Optuna's tables;
any other SQLite file belongs to another application and is refused before anything is written.
"""

from __future__ import annotations

import sqlalchemy

from studies import records
from studies.optuna_internals import optuna_table_names
from studies.storage.engine import connect_url, engine_kwargs

_MARKERS = (records.SchemaVersion.__tablename__, "version_info")
"""Tables only a nas-lite (or Optuna) database has: with one of them, extra tables are tolerated."""


def check_database(parsed: sqlalchemy.URL, *, create: bool = True) -> frozenset[str]:
    """The names of the database's tables, read without writing (none for a new file).

    ``ValueError`` (one line) for a file that is not a SQLite database, one of another application,
    or one written by a newer nas-lite; for a reader (``create=False``) also one whose ``naslite_``
    tables need an upgrade.
    """
    if parsed.drivername.startswith("sqlite") and create and not _exists(parsed):
        return frozenset()  # a new file: nothing to check, nothing to keep
    engine = sqlalchemy.create_engine(connect_url(parsed, create=False), **engine_kwargs(parsed, create=False))
    try:
        with engine.connect() as connection:
            tables = frozenset(sqlalchemy.inspect(connection).get_table_names())
            _check_owner(parsed, tables)
            version = _version(connection) if records.SchemaVersion.__tablename__ in tables else None
    except sqlalchemy.exc.DatabaseError as error:
        raise open_error(parsed, error) from error
    finally:
        engine.dispose()
    where = parsed.render_as_string(hide_password=True)
    if version is not None and version > records.SCHEMA_VERSION:
        raise _too_new(where, version)
    if not create and version is not None and version < records.SCHEMA_VERSION:
        raise ValueError(f"{where} holds results of schema {version}; run 'search start --storage URL' once to upgrade it, then read it")
    return tables


def _too_new(where: str, version: int) -> ValueError:
    return ValueError(
        f"{where} was written by a newer nas-lite (result schema {version}, this one knows up to "
        f"{records.SCHEMA_VERSION}); upgrade nas-lite (pip install -U nas-lite) to open it"
    )


def _exists(parsed: sqlalchemy.URL) -> bool:
    from pathlib import Path

    return Path(parsed.database).exists()


def _check_owner(parsed: sqlalchemy.URL, tables: set[str]) -> None:
    if not parsed.drivername.startswith("sqlite"):
        return  # a server database is shared on purpose; its other schemas are not ours to judge
    tables = {name for name in tables if not name.startswith("sqlite_")}
    known = optuna_table_names() | set(records.Base.metadata.tables) | {"alembic_version"}
    if not tables or any(marker in tables for marker in _MARKERS) or tables <= known:
        return
    foreign = sorted(tables - known)
    listed = ", ".join(foreign[:4]) + (", ..." if len(foreign) > 4 else "")
    raise ValueError(
        f"{parsed.database} is another application's database (tables {listed}); "
        "pass the path of a nas-lite database or a new file name"
    )


def _version(connection) -> int | None:
    return connection.execute(sqlalchemy.select(sqlalchemy.func.max(records.SchemaVersion.version))).scalar()


def ensure_tables(engine: sqlalchemy.Engine) -> None:
    """Create the ``naslite_`` tables if missing, record the schema version, apply ``records.UPGRADES``."""
    records.Base.metadata.create_all(engine)
    with engine.begin() as connection:
        version = _version(connection)
        if version is None:
            connection.execute(sqlalchemy.insert(records.SchemaVersion).values(id=1, version=records.SCHEMA_VERSION))
            return
        if version > records.SCHEMA_VERSION:  # upgraded by another process since check_database
            raise _too_new("the database", version)
        if version == records.SCHEMA_VERSION:
            return  # current: opening writes nothing
        while version < records.SCHEMA_VERSION:
            if version not in records.UPGRADES:
                raise ValueError(f"result schema {version} cannot be upgraded by this nas-lite; export your models with the nas-lite that wrote it")
            records.UPGRADES[version](connection)
            version += 1
        connection.execute(sqlalchemy.update(records.SchemaVersion).values(version=version, updated=records.utcnow()))


def empty_tables_for_reading(engine: sqlalchemy.Engine) -> sqlalchemy.Engine:
    """Give a SQLite reader's ``engine`` on a database without ``naslite_`` tables empty ones: each
    connection attaches an in-memory schema that holds them (SQLite looks there after the file), so a
    reader of a database Optuna alone wrote finds no results instead of failing, and writes nothing."""
    from sqlalchemy.schema import CreateTable

    attached = sqlalchemy.MetaData()
    for table in records.Base.metadata.sorted_tables:
        table.to_metadata(attached, schema="naslite_empty")
    statements = [str(CreateTable(table).compile(dialect=engine.dialect)) for table in attached.sorted_tables]

    def attach(dbapi_connection, connection_record) -> None:
        dbapi_connection.execute("ATTACH DATABASE ':memory:' AS naslite_empty")
        for statement in statements:
            dbapi_connection.execute(statement)
        dbapi_connection.execute("PRAGMA query_only = ON")  # a reader's write fails here too, never vanishes

    sqlalchemy.event.listen(engine, "connect", attach)
    return engine


def open_error(parsed: sqlalchemy.URL, error: Exception) -> ValueError:
    """The one-line ``ValueError`` for a database that could not be opened."""
    reason = str(getattr(error, "orig", error)).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    where = parsed.render_as_string(hide_password=True)
    if "not a database" in reason:
        return ValueError(f"{parsed.database} is not a SQLite database; pass the path of a nas-lite database or a new file name")
    return ValueError(f"cannot open {where}: {reason}; check the URL, the server and the permissions")
