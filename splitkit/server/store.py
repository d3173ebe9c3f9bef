"""SQLite storage: the schema, per-thread connections and transactions.

The database runs in WAL mode so readers never wait for the writer. Every change runs in
``write()``: one ``BEGIN IMMEDIATE`` transaction, so a check and the change it guards are
atomic across threads *and* processes sharing the file. Within one process a lock queues
writers first; SQLite's busy timeout then only has to arbitrate between processes.

Inside ``with store.no_wait():`` (the event loop's fast lane, ``fastlane.py``) this thread
never waits, neither for the lock nor for another process: ``write()`` and ``read()`` raise
:class:`Busy` instead, and the fast lane hands the request to the thread pool, where the
same code waits as usual. Nothing was committed when :class:`Busy` is raised.

``durable=False`` (a temporary database, deleted when the server stops) turns off the
fsyncs (``synchronous=OFF``): they protect only against an OS crash or power loss, which
a temporary file does not outlive in any useful way, and they were most of a commit's cost
(~150-250 us of ~300 us on a virtual disk). A crash of the process itself loses nothing
either way: the data is in the OS's cache.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import orjson

from .cursors import PageCursors
from .ids import new_id

_BUSY_TIMEOUT_S = 30.0

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS environments (
    seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS spaces (
    seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, environment_id TEXT NOT NULL,
    created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS workbooks (
    seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, space_id TEXT NOT NULL,
    environment_id TEXT NOT NULL, sample TEXT,
    created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL, doc TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS workbooks_space ON workbooks (space_id);
CREATE TABLE IF NOT EXISTS sheets (
    seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, workbook_id TEXT NOT NULL,
    created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL, doc TEXT NOT NULL,
    n_total INTEGER NOT NULL DEFAULT 0, n_valid INTEGER NOT NULL DEFAULT 0,
    n_error INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS sheets_workbook ON sheets (workbook_id, seq);
-- seq is dense per sheet (1, 2, 3, ...): page k is a range scan on the primary key.
-- vseq is dense per sheet and validity (filter=valid|error: the same range scan, on
-- records_valid), and rid is the record id (ids=...). Older files: see _RECORD_COLUMNS.
CREATE TABLE IF NOT EXISTS records (
    sheet INTEGER NOT NULL, seq INTEGER NOT NULL, doc BLOB NOT NULL,
    valid INTEGER, vseq INTEGER, rid TEXT,
    PRIMARY KEY (sheet, seq)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS jobs (
    seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, environment_id TEXT NOT NULL,
    space_id TEXT, workbook_id TEXT, parent_id TEXT, part INTEGER, status TEXT NOT NULL,
    created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL,
    started_ms INTEGER, finished_ms INTEGER,
    doc TEXT NOT NULL, context TEXT NOT NULL,
    -- on a parent: part counts kept in the transaction that ends a part (O(1) per part),
    -- and the round bookkeeping that makes job:parts-completed exactly-once per round
    parts_total INTEGER NOT NULL DEFAULT 0, parts_completed INTEGER NOT NULL DEFAULT 0,
    parts_failed INTEGER NOT NULL DEFAULT 0, parts_canceled INTEGER NOT NULL DEFAULT 0,
    parts_round INTEGER NOT NULL DEFAULT 0, parts_completed_round INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS jobs_parent ON jobs (parent_id, part) WHERE parent_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS jobs_environment ON jobs (environment_id, seq);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, topic TEXT NOT NULL,
    domain TEXT NOT NULL, environment_id TEXT NOT NULL, space_id TEXT, job_id TEXT,
    created_ms INTEGER NOT NULL, acknowledged_ms INTEGER, doc TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS events_created ON events (created_ms);
"""

# columns added to records after the first release, and how to fill them in an older file
_RECORD_COLUMNS = ("valid INTEGER", "vseq INTEGER", "rid TEXT")
_RECORD_BACKFILL = """
UPDATE records SET valid = json_extract(CAST(doc AS TEXT), '$.valid') = 1,
                   rid = json_extract(CAST(doc AS TEXT), '$.id');
UPDATE records SET vseq = ranked.n FROM (
    SELECT sheet, seq, ROW_NUMBER() OVER (PARTITION BY sheet, valid ORDER BY seq) AS n
    FROM records) AS ranked
WHERE records.sheet = ranked.sheet AND records.seq = ranked.seq
"""
RECORD_INDEXES = """
CREATE INDEX IF NOT EXISTS records_valid ON records (sheet, valid, vseq);
CREATE INDEX IF NOT EXISTS records_id ON records (rid);
"""


class Busy(Exception):
    """Inside ``no_wait()``: the store would have had to wait (nothing was written)."""


class Store:
    """One SQLite database file, shared by every thread (and process) that opens it.
    ``durable``: fsync at checkpoints (``synchronous=NORMAL``); False for a temporary file."""

    def __init__(self, path: Path | str, *, durable: bool = True) -> None:
        self.path = str(path)
        self.durable = durable
        self.page_cursors = PageCursors()  # where the pages of a listing ended (events)
        self._local = threading.local()
        self._write_lock = threading.Lock()
        self._connections: list[sqlite3.Connection] = []
        self._connections_lock = threading.Lock()
        self._closed = False
        conn = self.connection()
        conn.execute("PRAGMA journal_mode=WAL")
        self._init_schema()
        self.account_id, self.environment_id = self._ensure_defaults()

    # -- connections -------------------------------------------------------------------

    @contextmanager
    def no_wait(self) -> Iterator[None]:
        """In this thread, until the block ends: :class:`Busy` rather than any wait."""
        self._local.no_wait = True
        try:
            yield
        finally:
            self._local.no_wait = False

    def _waits(self) -> bool:
        return not getattr(self._local, "no_wait", False)

    def connection(self) -> sqlite3.Connection:
        """This thread's connection (opened on first use; autocommit, transactions explicit).
        Inside ``no_wait()``: its twin with no busy timeout (SQLite answers busy at once)."""
        wait = self._waits()
        name = "conn" if wait else "conn_nowait"
        conn: sqlite3.Connection | None = getattr(self._local, name, None)
        if conn is None:
            if self._closed:
                raise RuntimeError(f"store {self.path} is closed")
            timeout = _BUSY_TIMEOUT_S if wait else 0.0
            # check_same_thread=False only so close() may close it; one thread uses it.
            conn = sqlite3.connect(
                self.path, timeout=timeout, isolation_level=None, check_same_thread=False
            )
            conn.execute(f"PRAGMA synchronous={'NORMAL' if self.durable else 'OFF'}")
            conn.execute("PRAGMA cache_size=-16384")  # 16 MB per connection, one per thread
            conn.execute(f"PRAGMA busy_timeout={int(timeout * 1000)}")
            setattr(self._local, name, conn)
            with self._connections_lock:
                self._connections.append(conn)
        return conn

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """A ``BEGIN IMMEDIATE`` transaction: committed on success, rolled back on error."""
        wait = self._waits()
        conn = self.connection()
        if not self._write_lock.acquire(blocking=wait):
            raise Busy(self.path)
        try:
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                if wait or not _is_busy(exc):
                    raise
                raise Busy(self.path) from exc
            try:
                yield conn
                conn.execute("COMMIT")  # inside: a failed COMMIT must roll back too
            except BaseException as exc:
                # A COMMIT that failed may have ended the transaction itself (SQLite rolls
                # back on some errors): roll back only what is still open, so the real
                # error is the one raised and the connection is left outside a transaction.
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                if not wait and isinstance(exc, sqlite3.OperationalError) and _is_busy(exc):
                    raise Busy(self.path) from exc
                raise
        finally:
            self._write_lock.release()

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """A read transaction: every query inside sees the same snapshot."""
        conn = self.connection()
        conn.execute("BEGIN")
        try:
            yield conn
        except sqlite3.OperationalError as exc:
            if not self._waits() and _is_busy(exc):
                raise Busy(self.path) from exc
            raise
        finally:
            conn.execute("COMMIT")

    def close(self) -> None:
        """Close every connection this store opened (call once the server has stopped)."""
        self._closed = True
        with self._connections_lock:
            for conn in self._connections:
                conn.close()
            self._connections.clear()
        self._local = threading.local()

    # -- schema and defaults -------------------------------------------------------------

    def _init_schema(self) -> None:
        with self.write() as conn:
            _run(conn, SCHEMA)
            present = {row[1] for row in conn.execute("PRAGMA table_info(records)")}
            missing = [c for c in _RECORD_COLUMNS if c.split()[0] not in present]
            for column in missing:
                conn.execute(f"ALTER TABLE records ADD COLUMN {column}")
            if missing:  # a file from before these columns: fill them once
                _run(conn, _RECORD_BACKFILL)
            _run(conn, RECORD_INDEXES)

    def _ensure_defaults(self) -> tuple[str, str]:
        """The account and the default environment, created once per database file."""
        with self.write() as conn:
            found = dict(conn.execute("SELECT key, value FROM meta").fetchall())
            if "environment_id" in found:
                return found["account_id"], found["environment_id"]
            account_id, environment_id = new_id("account"), new_id("environment")
            doc = {
                "id": environment_id,
                "accountId": account_id,
                "name": "Embedded",
                "isProd": False,
                "guestAuthentication": ["shared_link"],
                "features": {},
                "metadata": {},
                "namespaces": [],
            }
            conn.execute(
                "INSERT INTO environments (id, doc) VALUES (?, ?)",
                (environment_id, orjson.dumps(doc).decode()),
            )
            conn.executemany(
                "INSERT INTO meta (key, value) VALUES (?, ?)",
                [("account_id", account_id), ("environment_id", environment_id)],
            )
            return account_id, environment_id


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    text = str(exc)
    return "locked" in text or "busy" in text


def _run(conn: sqlite3.Connection, script: str) -> None:
    """Each statement of ``script`` inside the caller's transaction (no executescript:
    it would commit)."""
    for statement in script.split(";"):
        if statement.strip():
            conn.execute(statement)
