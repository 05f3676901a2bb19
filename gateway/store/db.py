"""Opening the SQLite store, and the single writer that commits concurrent work together.

Why one writer thread: SQLite allows one writer at a time anyway, and an fsync per SMTP
message caps intake near the disk's fsync rate (about 400/s on a 2 ms disk). The writer takes
every write that is waiting, runs each in its own savepoint inside one transaction and commits
once (group commit): under load many 250s share one fsync, and one failing write never
aborts its neighbours. Reads run on their own connections in a thread pool (WAL lets them run
beside the writer).
"""

from __future__ import annotations

import contextlib
import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from sqlite_utils import Database

from gateway.errors import TransientError
from gateway.store.schema import migrations

if TYPE_CHECKING:
    import asyncio  # imported where used: the CLI opens the store without an event loop

log = logging.getLogger(__name__)

# What the rest of the gateway may name from SQLite: the connection type of the store verbs and
# the error SQLite raises. Only store/ imports sqlite3 and sqlite_utils (an import-linter
# contract), so these are the names to use elsewhere.
__all__ = ["Database", "SQLiteError", "Store", "connect", "write_transaction"]
SQLiteError = sqlite3.Error
T = TypeVar("T")

MAX_BATCH = 512  # writes per transaction; bounds the latency one commit adds to the first


def connect(path: str | Path, *, migrate: bool = True) -> Database:
    """A connection with the durability settings the gateway relies on.

    synchronous=FULL in WAL mode fsyncs the log at every commit: once COMMIT returns, a power
    cut cannot take the mail back. That is what lets intake answer 250.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=30)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA busy_timeout=30000")
    db = Database(conn)
    if migrate:
        migrations.apply(db)
    return db


def pending_migrations(path: str | Path) -> list[str]:
    """For `mail-gateway doctor`: prove the store is writable (take the write lock, let it go)
    and name the migrations not applied yet, without applying them.

    Raises sqlite3.Error or OSError when the file cannot be opened or locked.
    """
    db = connect(path, migrate=False)
    try:
        db.conn.execute("BEGIN IMMEDIATE")
        db.conn.execute("ROLLBACK")
        return [m.name for m in migrations.pending(db)]
    finally:
        db.conn.close()


@contextlib.contextmanager
def write_transaction(db: Database) -> Iterator[Database]:
    """One transaction that takes the write lock at BEGIN (BEGIN IMMEDIATE), for writers outside
    the daemon's writer thread (the CLI).

    A deferred BEGIN that reads first and writes later cannot wait for the lock in WAL mode:
    when the daemon commits in between, SQLite answers SQLITE_BUSY at once ("database is
    locked"), busy_timeout or not (sqlite.org/wal.html, "Sometimes Queries Return SQLITE_BUSY").
    Taking the lock first makes busy_timeout apply.
    """
    db.conn.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        if db.conn.in_transaction:
            db.conn.execute("ROLLBACK")
        raise
    db.conn.execute("COMMIT")


class _Write:
    __slots__ = ("fn", "future", "loop")

    def __init__(self, fn: Callable[[Database], Any], future: asyncio.Future, loop):
        self.fn = fn
        self.future = future
        self.loop = loop


class Store:
    """The daemon's handle on the database: `await store.write(fn)` and `await store.read(fn)`.

    `fn` is a plain function over a sqlite-utils Database (the verbs in store/*.py), so the same
    verbs serve the daemon (through the writer) and the CLI (called directly).
    """

    def __init__(self, path: str | Path, *, read_threads: int = 4):
        self.path = Path(path)
        self._db = connect(self.path)
        self._queue: queue.SimpleQueue[_Write | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="store-writer", daemon=True)
        self._local = threading.local()
        self._reader_conns: list[sqlite3.Connection] = []
        self._readers = ThreadPoolExecutor(read_threads, thread_name_prefix="store-read")
        self._closed = False
        self.commits = 0  # transactions committed: with `writes`, shows the grouping at work
        self.writes = 0
        self._thread.start()

    # -- writing ---------------------------------------------------------------------------

    async def write(self, fn: Callable[[Database], T]) -> T:
        """Run fn in the writer's next transaction; return once that transaction is durable."""
        if self._closed:
            raise TransientError("store is closed")
        import asyncio

        loop = asyncio.get_running_loop()
        fut: asyncio.Future = loop.create_future()
        self._queue.put(_Write(fn, fut, loop))
        return await fut

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            while len(batch) < MAX_BATCH:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    self._queue.put(None)  # finish this batch, then stop
                    break
                batch.append(nxt)
            self._commit(batch)

    def _commit(self, batch: list[_Write]) -> None:
        conn = self._db.conn
        results: list[tuple[_Write, bool, Any]] = []
        try:
            conn.execute("BEGIN IMMEDIATE")
            for i, w in enumerate(batch):
                sp = f"w{i}"
                conn.execute(f"SAVEPOINT {sp}")
                try:
                    value = w.fn(self._db)
                except BaseException as exc:  # the write's own failure: only it is undone
                    if conn.in_transaction:
                        conn.execute(f"ROLLBACK TO {sp}")
                        conn.execute(f"RELEASE {sp}")
                    results.append((w, False, exc))
                else:
                    conn.execute(f"RELEASE {sp}")
                    results.append((w, True, value))
            conn.execute("COMMIT")
            self.commits += 1
            self.writes += len(batch)
        except sqlite3.Error as exc:  # the commit itself failed (disk full, I/O): all retry
            log.error("store commit failed: %s", exc)
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            err = TransientError(f"store commit failed: {exc}")
            results = [(w, False, err) for w in batch]
        # one wake-up of each waiting event loop per batch, not one per write: each
        # call_soon_threadsafe writes to the loop's self-pipe and costs it a syscall to read
        by_loop: dict[int, list[tuple[asyncio.Future, bool, Any]]] = {}
        loops = {}
        for w, ok, value in results:
            by_loop.setdefault(id(w.loop), []).append((w.future, ok, value))
            loops[id(w.loop)] = w.loop
        for key, settled in by_loop.items():
            loops[key].call_soon_threadsafe(_settle_all, settled)

    # -- reading ---------------------------------------------------------------------------

    async def read(self, fn: Callable[[Database], T]) -> T:
        """Run fn on a reader connection in the thread pool (sees every committed write)."""
        import asyncio

        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._readers, self._read, fn)

    def _read(self, fn: Callable[[Database], T]) -> T:
        db = getattr(self._local, "db", None)
        if db is None:
            db = self._local.db = connect(self.path, migrate=False)
            self._reader_conns.append(db.conn)
        return fn(db)

    # -- life cycle -------------------------------------------------------------------------

    def close(self) -> None:
        """Finish the queued writes, then stop the writer and the readers."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(None)
        self._thread.join(timeout=30)
        self._readers.shutdown(wait=True)
        for conn in self._reader_conns:
            conn.close()
        self._db.conn.close()


def _settle_all(settled: list[tuple[asyncio.Future, bool, Any]]) -> None:
    for fut, ok, value in settled:
        if fut.cancelled():
            continue
        if ok:
            fut.set_result(value)
        else:
            fut.set_exception(value)


def inserted_id(cur: sqlite3.Cursor) -> int:
    """The rowid the INSERT on `cur` just made.

    sqlite3 types `lastrowid` as Optional (None before any INSERT); after one it is the rowid,
    so None here means a statement that was not an INSERT, a bug.
    """
    if cur.lastrowid is None:
        raise RuntimeError("no rowid: the statement was not an INSERT")
    return cur.lastrowid


def now_iso(ts: float | None = None) -> str:
    """ISO-8601 UTC with milliseconds: sortable as text, readable in `sessions show`."""
    t = time.time() if ts is None else ts
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1000):03d}Z"
