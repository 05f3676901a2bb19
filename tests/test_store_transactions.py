"""Writers outside the daemon (the CLI) take the write lock at BEGIN, so they wait instead of
failing with "database is locked" when the daemon commits between their read and their write."""

from __future__ import annotations

import sqlite3

import pytest

from gateway.store.db import connect, write_transaction
from gateway.store.queries import kv_get, kv_set


def test_write_transaction_holds_the_write_lock_from_begin(tmp_path):
    path = tmp_path / "gateway.db"
    cli, daemon = connect(path), connect(path)
    daemon.conn.execute("PRAGMA busy_timeout=0")
    with write_transaction(cli):
        assert kv_get(cli, "k") is None  # read first, as request_handoff does
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            kv_set(daemon, "other", "daemon")  # the daemon waits for us, not the other way
        kv_set(cli, "k", "cli")
    kv_set(daemon, "other", "daemon")
    assert kv_get(daemon, "k") == "cli" and kv_get(cli, "other") == "daemon"


def test_a_deferred_transaction_is_what_failed(tmp_path):
    """The failure write_transaction prevents: read, the daemon commits, then write -> BUSY."""
    path = tmp_path / "gateway.db"
    cli, daemon = connect(path), connect(path)
    kv_set(daemon, "seed", "1")
    with pytest.raises(sqlite3.OperationalError, match="locked"), cli.atomic():
        kv_get(cli, "seed")
        kv_set(daemon, "seed", "2")
        kv_set(cli, "k", "cli")


def test_write_transaction_rolls_back_on_error(tmp_path):
    db = connect(tmp_path / "gateway.db")
    with pytest.raises(RuntimeError), write_transaction(db):
        kv_set(db, "k", "v")
        raise RuntimeError("boom")
    assert kv_get(db, "k") is None and not db.conn.in_transaction
