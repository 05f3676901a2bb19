"""IMAP intake under stress: the daemon killed mid-sync, and a 10,000-mail first sync."""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from pathlib import Path

import pytest

from gateway.store import queries

from conftest import make_mail
from dovecot import account, count, dovecot_server, imap_config, imap_settings, wait_count  # noqa: F401 (fixtures)
from helpers.daemon import Daemon
from helpers.waiting import wait_until


def many(prefix: str, n: int) -> list[bytes]:
    return [make_mail(message_id=f"{prefix}{i}@customer.test", subject=f"Q{i}") for i in range(n)]


def db_one(tmp_path: Path, sql: str):
    path = tmp_path / "state" / "gateway.db"
    if not path.exists():
        return None
    conn = sqlite3.connect(path, timeout=10)
    try:
        return conn.execute(sql).fetchone()
    except sqlite3.OperationalError:  # the daemon has not created the tables yet
        return None
    finally:
        conn.close()


@pytest.mark.slow
def test_daemon_killed_mid_sync_loses_nothing_and_stores_nothing_twice(dovecot, tmp_path):
    n, user = 4000, "killed"
    dovecot.fill_maildir(user, many("k", n))
    daemon = Daemon(
        lambda smtp_port, http_port: imap_config(
            tmp_path,
            [account(dovecot, user)],
            **{
                '"127.0.0.1:2525"': f'"127.0.0.1:{smtp_port}"',
                '"127.0.0.1:8025"': f'"127.0.0.1:{http_port}"',
            },
        ),
        tmp_path / "daemon.log",
    )
    try:
        daemon.start()
        progress = lambda: db_one(tmp_path, "SELECT done FROM imap_state")  # noqa: E731
        wait_until(lambda: (progress() or (0,))[0] >= 300, 60, "300 mails synced")
        daemon.kill9()  # mid-sync: a batch may be fetched, committed or half-acted upon
        done_at_kill = progress()[0]
        assert 0 < done_at_kill < n, done_at_kill
        print(f"\nkilled with {done_at_kill}/{n} mails synced")

        daemon.start()
        wait_until(
            lambda: (
                db_one(
                    tmp_path,
                    "SELECT COUNT(*) FROM imap_state WHERE first_sync_done = 1 AND state = 'idle' "
                    "AND after_pending = '[]'",
                )
                == (1,)
            ),
            90,
            "the first sync to finish",
        )
        wait_until(
            lambda: (
                db_one(tmp_path, "SELECT COUNT(*) FROM raw_mails WHERE state = 'pending'") == (0,)
            ),
            90,
            "every mail processed",
        )
        assert daemon.stop() == 0
    finally:
        daemon.kill9()
    assert db_one(tmp_path, "SELECT COUNT(*), COUNT(DISTINCT message_id) FROM raw_mails") == (
        n,
        n,
    )
    assert db_one(tmp_path, "SELECT COUNT(*), COUNT(DISTINCT message_id) FROM messages") == (n, n)
    assert db_one(tmp_path, "SELECT COUNT(*) FROM quarantine") == (0,)
    flags = dovecot.flags(user)
    assert len(flags) == n and all("\\Seen" in f for f in flags.values())


@pytest.mark.slow
@pytest.mark.timeout(180)
async def test_first_sync_of_10000_mails_shows_progress(dovecot, tmp_path, caplog):
    from gateway.service import Gateway

    n, user = 10_000, "tenk"
    dovecot.fill_maildir(user, many("t", n))
    settings = imap_settings(tmp_path, [account(dovecot, user)])
    caplog.set_level(logging.INFO, logger="gateway.intake.imap")
    gw = Gateway(settings)
    started = time.monotonic()
    await gw.start()
    seen_progress: list[tuple[int, int]] = []
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            st = await gw.store.read(queries.status)
            folder = next(iter(st["imap"].values()), None)
            if folder and folder["total"]:
                seen_progress.append((folder["done"], folder["total"]))
                if folder["first_sync_done"]:
                    break
            await __import__("asyncio").sleep(0.1)  # samples the progress: not a wait
        elapsed = time.monotonic() - started
        print(f"\n10,000-mail first sync: {elapsed:.1f}s ({n / elapsed:.0f} mails/s)")
        assert folder["done"] == folder["total"] == n, folder
        assert await count(gw, "SELECT COUNT(*) FROM raw_mails WHERE source = 'imap'") == n
        # progress was visible part way, in the store (status) and in the log
        assert any(0 < done < total for done, total in seen_progress), seen_progress
        progress_lines = [r.getMessage() for r in caplog.records if "/10000 mails" in r.message]
        assert len(progress_lines) >= 3, progress_lines
        print(json.dumps(folder, indent=1)[:300])
    finally:
        await gw.stop(drain_seconds=2)


async def test_since_limits_only_the_first_sync(dovecot, tmp_path):
    from gateway.service import Gateway

    user = "since"
    old = make_mail(message_id="old@customer.test")
    dovecot.append(user, old)
    with dovecot.client(user) as c:  # make the one mail old: an internal date in 2020
        c.select("INBOX")
        c.append("INBOX", "", '"01-Jan-2020 10:00:00 +0000"', make_mail(message_id="o2@x.test"))
        c.uid("STORE", "1", "+FLAGS", "(\\Deleted)")
        c.expunge()
    dovecot.append(user, make_mail(message_id="new@customer.test"))
    settings = imap_settings(tmp_path, [account(dovecot, user, since="2025-01-01")])
    gw = Gateway(settings)
    await gw.start()
    try:
        await wait_count(
            gw, "SELECT COUNT(*) FROM imap_state WHERE first_sync_done = 1 AND state = 'idle'", 1
        )
        assert await count(gw, "SELECT COUNT(*) FROM raw_mails") == 1
        # after the first sync, UIDs decide: an old-dated mail that appears now is read
        with dovecot.client(user) as c:
            c.append("INBOX", "", '"01-Jan-2020 10:00:00 +0000"', make_mail(message_id="o3@x"))
        await wait_count(gw, "SELECT COUNT(*) FROM raw_mails", 2)
    finally:
        await gw.stop(drain_seconds=2)
