"""`Store.write`: a transaction that fails at COMMIT is rolled back, and the thread's
connection is left outside any transaction (so its next write works)."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from splitkit.server.store import Store


def test_a_failed_commit_is_rolled_back_and_the_next_write_works(tmp_path: Path) -> None:
    store = Store(tmp_path / "store.db")
    conn = store.connection()
    # A deferred foreign key is checked at COMMIT: a real COMMIT failure, which leaves
    # SQLite's transaction open (the rollback is the caller's to do).
    conn.execute("PRAGMA foreign_keys=ON")  # outside a transaction, or it is a no-op
    with store.write() as c:
        c.execute("CREATE TABLE owner (id INTEGER PRIMARY KEY)")
        c.execute(
            "CREATE TABLE pet (id INTEGER PRIMARY KEY, owner INTEGER "
            "REFERENCES owner (id) DEFERRABLE INITIALLY DEFERRED)"
        )
    try:
        with pytest.raises(sqlite3.IntegrityError, match="FOREIGN KEY"), store.write() as c:
            c.execute("INSERT INTO pet VALUES (1, 42)")  # no owner 42: refused at COMMIT

        assert not conn.in_transaction, "a failed COMMIT left the connection in a transaction"
        assert conn.execute("SELECT count(*) FROM pet").fetchone()[0] == 0
        with store.write() as c:  # this thread's next write
            c.execute("INSERT INTO owner VALUES (42)")
            c.execute("INSERT INTO pet VALUES (1, 42)")
        assert conn.execute("SELECT count(*) FROM pet").fetchone()[0] == 1

        def other_thread() -> None:  # and the write lock was released
            with store.write() as c:
                c.execute("INSERT INTO owner VALUES (7)")

        writer = threading.Thread(target=other_thread)
        writer.start()
        writer.join(20)
        assert not writer.is_alive()
        assert conn.execute("SELECT count(*) FROM owner").fetchone()[0] == 2
    finally:
        store.close()


def test_an_error_in_the_block_rolls_back(tmp_path: Path) -> None:
    store = Store(tmp_path / "store.db")
    try:
        with pytest.raises(ZeroDivisionError), store.write() as c:
            c.execute("CREATE TABLE t (x INTEGER)")
            _ = 1 / 0
        conn = store.connection()
        assert not conn.in_transaction
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
        assert "t" not in tables
    finally:
        store.close()
