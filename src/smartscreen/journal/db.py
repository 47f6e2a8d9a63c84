"""A small SQL connection wrapper that speaks SQLite and PostgreSQL with one dialect of SQL.

Statements use ``?`` placeholders on both; they are rewritten to ``%s`` for psycopg.
SQLite runs in WAL mode with ``synchronous=FULL``: a committed transaction survives a
process kill and a power cut.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

from smartscreen.errors import StorageError

logger = logging.getLogger(__name__)

SqlValue = str | int | float | bytes | None


class Dialect(StrEnum):
    SQLITE = "sqlite"
    POSTGRESQL = "postgresql"


class Database:
    """One connection, serialised by a lock; open one per thread of heavy use or per process."""

    def __init__(self, connection: Any, dialect: Dialect, url_for_display: str) -> None:
        self._conn = connection
        self.dialect = dialect
        self.url_for_display = url_for_display
        self._lock = threading.RLock()
        self._depth = 0

    @classmethod
    def open(cls, url: str) -> Database:
        """Open ``sqlite:///relative/or//absolute/path.db``, ``sqlite:///:memory:`` or ``postgresql://...``.

        A PostgreSQL URL may carry ``?schema=NAME``: the schema is created if missing and
        used as the search path (tests use it to keep runs apart).
        """
        parts = urlsplit(url)
        if parts.scheme == "sqlite":
            return cls._open_sqlite(url)
        if parts.scheme in ("postgresql", "postgres"):
            return cls._open_postgresql(url)
        raise StorageError(f"unsupported journal URL {url!r}: use sqlite:///path.db or postgresql://user@host/db")

    @classmethod
    def _open_sqlite(cls, url: str) -> Database:
        raw_path = url[len("sqlite:///") :] if url.startswith("sqlite:///") else ""
        if not raw_path:
            raise StorageError(f"SQLite URL {url!r} has no path: use sqlite:///var/journal.db")
        if raw_path != ":memory:":
            Path(raw_path).parent.mkdir(parents=True, exist_ok=True)
        try:
            conn = sqlite3.connect(raw_path, isolation_level=None, check_same_thread=False, timeout=30.0)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA busy_timeout=30000")
        except sqlite3.Error as e:
            raise StorageError(f"cannot open SQLite journal {raw_path}: {e}") from e
        return cls(conn, Dialect.SQLITE, url)

    @classmethod
    def _open_postgresql(cls, url: str) -> Database:
        try:
            import psycopg
        except ImportError as e:  # psycopg is a runtime dependency; a broken install is worth a clear message
            raise StorageError("PostgreSQL journal needs psycopg: pip install 'psycopg[binary]'") from e
        parts = urlsplit(url)
        query = parse_qs(parts.query)
        schema = query.pop("schema", [None])[0]
        clean = urlunsplit(parts._replace(scheme="postgresql", query=urlencode(query, doseq=True)))
        display = urlunsplit(parts._replace(netloc=parts.hostname or "", query=""))
        try:
            conn = psycopg.connect(clean, autocommit=True, connect_timeout=10)
            if schema:
                if not schema.replace("_", "").isalnum():
                    raise StorageError(f"schema name {schema!r} must be alphanumeric/underscore")
                conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
                conn.execute(f'SET search_path TO "{schema}"')
        except psycopg.Error as e:
            raise StorageError(f"cannot connect to PostgreSQL journal {display}: {e}") from e
        return cls(conn, Dialect.POSTGRESQL, display)

    def _sql(self, sql: str) -> str:
        return sql.replace("?", "%s") if self.dialect is Dialect.POSTGRESQL else sql

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """All statements inside commit together, or none do. Nested use joins the outer transaction."""
        with self._lock:
            outer = self._depth == 0
            if outer:
                self._conn.execute("BEGIN IMMEDIATE" if self.dialect is Dialect.SQLITE else "BEGIN")
            self._depth += 1
            try:
                yield
            except BaseException:
                self._depth -= 1
                if outer:
                    self._conn.execute("ROLLBACK")
                raise
            self._depth -= 1
            if outer:
                self._conn.execute("COMMIT")

    def execute(self, sql: str, params: Sequence[SqlValue] = ()) -> int:
        """Run one statement; returns the affected row count."""
        with self._lock:
            try:
                cursor = self._conn.execute(self._sql(sql), tuple(params))
            except Exception as e:
                raise StorageError(f"journal statement failed: {e} [{sql.split()[0]} ...]") from e
            return int(cursor.rowcount)

    def query(self, sql: str, params: Sequence[SqlValue] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            try:
                cursor = self._conn.execute(self._sql(sql), tuple(params))
                return [tuple(row) for row in cursor.fetchall()]
            except Exception as e:
                raise StorageError(f"journal query failed: {e} [{sql.split()[0]} ...]") from e

    def script(self, statements: Sequence[str]) -> None:
        """Run DDL statements in one transaction."""
        with self.transaction():
            for statement in statements:
                self.execute(statement)

    @property
    def autoincrement_pk(self) -> str:
        """Column definition of an append-only sequence primary key in this dialect."""
        return "INTEGER PRIMARY KEY AUTOINCREMENT" if self.dialect is Dialect.SQLITE else "BIGSERIAL PRIMARY KEY"

    def close(self) -> None:
        with self._lock:
            self._conn.close()
