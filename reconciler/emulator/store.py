"""The emulated org's state: one SQLite table per Dataverse table, in a file or in memory.

A many-to-many relationship (``tables.RELATIONSHIPS``) keeps its pairs in a table of its own
named as its intersect table, keyed by the pair: one row per associated pair.

Rows are plain dicts keyed by column name. Booleans are stored as 0/1 and text columns use
``COLLATE NOCASE`` because Dataverse compares strings without regard to case. Every write
bumps a global version counter, which backs ``versionnumber`` and so the ETag.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from reconciler.dataverse.tables import RELATIONSHIPS, TABLES, Column, Relationship, Table, Type
from reconciler.errors import ReconcilerError

_SQL_TYPES = {
    Type.STRING: "TEXT COLLATE NOCASE",
    Type.MEMO: "TEXT COLLATE NOCASE",
    Type.INT: "INTEGER",
    Type.BOOL: "INTEGER",
    Type.GUID: "TEXT",
    Type.DATETIME: "TEXT",
    Type.CHOICE: "INTEGER",
    Type.CHOICES: "TEXT",
    Type.LOOKUP: "TEXT",
}

Row = dict[str, Any]
SCHEMA_VERSION = 1
"""Bump when a table's columns change: old files are refused, not misread. A new table needs
no bump: opening a file creates the tables it lacks."""


class StoreError(ReconcilerError):
    """The database file cannot be used by this emulator."""


def _q(name: str) -> str:
    return f'"{name}"'


class Store:
    """SQLite-backed rows. One connection, serialised by a lock; WAL when on a file."""

    def __init__(self, path: str | Path = ":memory:", *, busy_timeout_ms: int = 5000) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._lock = threading.RLock()
        self._depth = 0
        try:
            if self.path != ":memory:":
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
            self._db.create_function("casefold", 1, _casefold, deterministic=True)
            self._create_schema()
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise StoreError(f"{self.path} is not an emulator database ({exc})") from None
        schema = self.meta("schema")
        if schema not in (None, str(SCHEMA_VERSION)):
            self._db.close()
            raise StoreError(
                f"{self.path} was written by another emulator version (schema {schema}, this "
                f"one reads {SCHEMA_VERSION}); delete it or pick another --db"
            )

    def close(self) -> None:
        self._db.close()

    # -- schema and metadata -------------------------------------------------------------
    def _create_schema(self) -> None:
        with self.transaction():
            self._db.execute("CREATE TABLE IF NOT EXISTS _meta (key TEXT PRIMARY KEY, value TEXT)")
            for table in TABLES.values():
                columns = ", ".join(
                    f"{_q(c.name)} {_SQL_TYPES[c.type]}"
                    + (" PRIMARY KEY" if c.name == table.primary_key else "")
                    for c in table.columns.values()
                )
                self._db.execute(f"CREATE TABLE IF NOT EXISTS {_q(table.logical_name)} ({columns})")
                for lookup in table.lookups():
                    index = f"ix_{table.logical_name}_{lookup.name}"
                    self._db.execute(
                        f"CREATE INDEX IF NOT EXISTS {_q(index)} "
                        f"ON {_q(table.logical_name)} ({_q(lookup.name)})"
                    )
            for relationship in RELATIONSHIPS.values():
                first, second = relationship.first_attribute, relationship.second_attribute
                self._db.execute(
                    f"CREATE TABLE IF NOT EXISTS {_q(relationship.intersect)} ("
                    f"{_q(first)} TEXT NOT NULL, {_q(second)} TEXT NOT NULL, "
                    f"PRIMARY KEY ({_q(first)}, {_q(second)}))"
                )
                index = f"ix_{relationship.intersect}_{second}"
                self._db.execute(
                    f"CREATE INDEX IF NOT EXISTS {_q(index)} "
                    f"ON {_q(relationship.intersect)} ({_q(second)})"
                )

    def initialise(self, populate: Callable[[Store], None]) -> bool:
        """Run ``populate`` once per database, atomically (two processes may open a new file)."""
        with self.transaction():
            if self.meta("version") is not None:
                return False
            self.set_meta("version", "0")
            self.set_meta("schema", str(SCHEMA_VERSION))
            populate(self)
            return True

    def meta(self, key: str) -> str | None:
        found = self._db.execute("SELECT value FROM _meta WHERE key = ?", (key,)).fetchone()
        return None if found is None else str(found[0])

    def set_meta(self, key: str, value: str) -> None:
        self._db.execute(
            "INSERT INTO _meta (key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    def next_version(self) -> int:
        version = int(self.meta("version") or "0") + 1
        self.set_meta("version", str(version))
        return version

    # -- transactions --------------------------------------------------------------------
    @contextmanager
    def transaction(self) -> Iterator[None]:
        """All-or-nothing; nests as savepoints (a $batch change set inside a request)."""
        with self._lock:
            name = f"sp{self._depth}"
            self._db.execute("BEGIN IMMEDIATE" if self._depth == 0 else f"SAVEPOINT {name}")
            self._depth += 1
            try:
                yield
            except BaseException:
                self._depth -= 1
                if self._depth == 0:
                    self._db.execute("ROLLBACK")
                else:
                    self._db.execute(f"ROLLBACK TO {name}")
                    self._db.execute(f"RELEASE {name}")
                raise
            self._depth -= 1
            self._db.execute("COMMIT" if self._depth == 0 else f"RELEASE {name}")

    # -- rows ----------------------------------------------------------------------------
    def _decode(self, table: Table, names: Sequence[str], values: Sequence[Any]) -> Row:
        row: Row = {}
        for name, value in zip(names, values, strict=True):
            if value is not None and table.columns[name].type is Type.BOOL:
                value = bool(value)
            row[name] = value
        return row

    def get(self, table: Table, record_id: str) -> Row | None:
        cursor = self._db.execute(
            f"SELECT * FROM {_q(table.logical_name)} WHERE {_q(table.primary_key)} = ?",
            (record_id,),
        )
        found = cursor.fetchone()
        if found is None:
            return None
        return self._decode(table, [d[0] for d in cursor.description], found)

    def insert(self, table: Table, row: Mapping[str, Any]) -> None:
        names = list(row)
        self._db.execute(
            f"INSERT INTO {_q(table.logical_name)} ({', '.join(map(_q, names))}) "
            f"VALUES ({', '.join('?' for _ in names)})",
            [_encode(v) for v in row.values()],
        )

    def update(self, table: Table, record_id: str, changes: Mapping[str, Any]) -> None:
        assignments = ", ".join(f"{_q(name)} = ?" for name in changes)
        self._db.execute(
            f"UPDATE {_q(table.logical_name)} SET {assignments} WHERE {_q(table.primary_key)} = ?",
            [*(_encode(v) for v in changes.values()), record_id],
        )

    def delete(self, table: Table, record_id: str) -> None:
        self._db.execute(
            f"DELETE FROM {_q(table.logical_name)} WHERE {_q(table.primary_key)} = ?",
            (record_id,),
        )

    def exists(self, table: Table, record_id: str) -> bool:
        found = self._db.execute(
            f"SELECT 1 FROM {_q(table.logical_name)} WHERE {_q(table.primary_key)} = ?",
            (record_id,),
        ).fetchone()
        return found is not None

    def referencing(self, table: Table, column: Column, record_id: str) -> list[str]:
        """Ids of rows in ``table`` whose lookup ``column`` points at ``record_id``."""
        cursor = self._db.execute(
            f"SELECT {_q(table.primary_key)} FROM {_q(table.logical_name)} "
            f"WHERE {_q(column.name)} = ?",
            (record_id,),
        )
        return [str(r[0]) for r in cursor.fetchall()]

    def select(
        self,
        table: Table,
        *,
        where: str = "",
        params: Sequence[Any] = (),
        order: Sequence[tuple[Column, bool]] = (),
        limit: int | None = None,
        offset: int = 0,
        after: str | None = None,
    ) -> list[Row]:
        """Rows matching a compiled filter, in order; ``after`` pages by primary key."""
        clauses = [f"({where})"] if where else []
        values = list(params)
        if after is not None:
            clauses.append(f"{_q(table.primary_key)} > ?")
            values.append(after)
        sql = f"SELECT * FROM {_q(table.logical_name)}"
        if clauses:
            sql += " WHERE " + " AND ".join(clauses)
        ordering = [f"{_q(c.name)} {'DESC' if desc else 'ASC'}" for c, desc in order]
        sql += " ORDER BY " + ", ".join([*ordering, _q(table.primary_key)])
        if limit is not None:
            sql += " LIMIT ? OFFSET ?"
            values += [limit, offset]
        cursor = self._db.execute(sql, values)
        names = [d[0] for d in cursor.description]
        return [self._decode(table, names, r) for r in cursor.fetchall()]

    def count(self, table: Table, where: str = "", params: Sequence[Any] = ()) -> int:
        sql = f"SELECT COUNT(*) FROM {_q(table.logical_name)}"
        found = self._db.execute(f"{sql} WHERE {where}" if where else sql, params).fetchone()
        return int(found[0])

    # -- many-to-many pairs ----------------------------------------------------------------
    def associate(self, relationship: Relationship, first_id: str, second_id: str) -> bool:
        """Record the pair; False if it was already there."""
        cursor = self._db.execute(
            f"INSERT OR IGNORE INTO {_q(relationship.intersect)} "
            f"({_q(relationship.first_attribute)}, {_q(relationship.second_attribute)}) "
            "VALUES (?, ?)",
            (first_id, second_id),
        )
        return cursor.rowcount > 0

    def disassociate(self, relationship: Relationship, first_id: str, second_id: str) -> bool:
        """Forget the pair; False if it was not there."""
        cursor = self._db.execute(
            f"DELETE FROM {_q(relationship.intersect)} "
            f"WHERE {_q(relationship.first_attribute)} = ? "
            f"AND {_q(relationship.second_attribute)} = ?",
            (first_id, second_id),
        )
        return cursor.rowcount > 0

    def forget(self, relationship: Relationship, attribute: str, record_id: str) -> None:
        """Forget every pair whose ``attribute`` (one of the two) is ``record_id``."""
        self._db.execute(
            f"DELETE FROM {_q(relationship.intersect)} WHERE {_q(attribute)} = ?", (record_id,)
        )

    def related(
        self,
        relationship: Relationship,
        own: str,
        other: Table,
        ids: Sequence[str],
        *,
        limit: int,
    ) -> dict[str, list[Row]]:
        """For each of ``ids`` (values of the intersect attribute ``own``), the rows of
        ``other`` associated with it, ordered by their primary key, at most ``limit`` each."""
        theirs = (
            relationship.second_attribute
            if own == relationship.first_attribute
            else relationship.first_attribute
        )
        found: dict[str, list[Row]] = {record_id: [] for record_id in ids}
        for start in range(0, len(ids), _IDS_AT_ONCE):
            chunk = list(ids[start : start + _IDS_AT_ONCE])
            cursor = self._db.execute(
                f"SELECT i.{_q(own)}, o.* FROM {_q(relationship.intersect)} AS i "
                f"JOIN {_q(other.logical_name)} AS o "
                f"ON o.{_q(other.primary_key)} = i.{_q(theirs)} "
                f"WHERE i.{_q(own)} IN ({', '.join('?' for _ in chunk)}) "
                f"ORDER BY i.{_q(own)}, o.{_q(other.primary_key)}",
                chunk,
            )
            names = [d[0] for d in cursor.description][1:]
            for owner, *values in cursor.fetchall():
                rows = found[str(owner)]
                if len(rows) < limit:
                    rows.append(self._decode(other, names, values))
        return found


_IDS_AT_ONCE = 500
"""Ids per ``IN (...)`` list: well under SQLite's cap on parameters per statement."""


def _casefold(value: Any) -> Any:
    """Dataverse compares text without regard to case, beyond ASCII too (``$filter``)."""
    return value.casefold() if isinstance(value, str) else value


def _encode(value: Any) -> Any:
    if isinstance(value, bool):
        return int(value)
    return value
