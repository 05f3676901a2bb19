"""kill -9 the real daemon while clients are sending: every 250 is kept, exactly once."""

from __future__ import annotations

import multiprocessing
import os
import smtplib
import sqlite3
import threading
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest

from gateway.errors import TransientError
from gateway.jobs.process_mail import parse_off_loop

from conftest import make_mail, write_config
from helpers.daemon import Daemon
from helpers.waiting import wait_until


@pytest.fixture
def daemon(tmp_path: Path):
    def config(smtp_port: int, http_port: int) -> Path:
        return write_config(
            tmp_path,
            **{
                '"127.0.0.1:2525"': f'"127.0.0.1:{smtp_port}"',
                '"127.0.0.1:8025"': f'"127.0.0.1:{http_port}"',
                "max_sessions = 50": "max_sessions = 100",
            },
        )

    d = Daemon(config, tmp_path / "daemon.log")
    yield d
    d.kill9()


def db_rows(tmp_path: Path, sql: str) -> list[tuple]:
    conn = sqlite3.connect(tmp_path / "state" / "gateway.db")
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def wait_all_processed(tmp_path: Path, timeout: float = 30) -> None:
    wait_until(
        lambda: db_rows(tmp_path, "SELECT COUNT(*) FROM raw_mails WHERE state = 'pending'")[0][0]
        == 0,
        timeout,
        "mails still pending after restart",
    )


@pytest.mark.slow
def test_sigkill_during_intake_loses_nothing_and_duplicates_nothing(daemon, tmp_path):
    daemon.start()
    acked: list[str] = []
    unacked: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def client(n: int) -> None:
        for i in range(200):
            if stop.is_set():
                return
            mid = f"c{n}-{i}@customer.test"
            try:
                with smtplib.SMTP("127.0.0.1", daemon.smtp_port, timeout=5) as s:
                    s.sendmail(
                        "a@customer.test", ["support@example.com"], make_mail(message_id=mid)
                    )
                with lock:
                    acked.append(mid)
            except (OSError, smtplib.SMTPException):
                with lock:
                    unacked.append(mid)
                return

    threads = [threading.Thread(target=client, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    wait_until(lambda: len(acked) >= 150, 60, "150 acknowledged mails")
    daemon.kill9()  # right after a stream of 250s, with sessions in flight
    stop.set()
    for t in threads:
        t.join()
    assert len(acked) >= 150

    daemon.start()
    # the clients that saw no 250 send again, as a real MTA would
    for mid in unacked:
        with smtplib.SMTP("127.0.0.1", daemon.smtp_port, timeout=5) as s:
            s.sendmail("a@customer.test", ["support@example.com"], make_mail(message_id=mid))
    wait_all_processed(tmp_path)
    assert daemon.stop() == 0

    counts = dict(db_rows(tmp_path, "SELECT message_id, COUNT(*) FROM raw_mails GROUP BY 1"))
    missing = [m for m in acked if m not in counts]
    assert not missing, f"{len(missing)} acknowledged mails lost"
    assert all(n == 1 for n in counts.values()), "a mail was stored twice"
    assert set(counts) == set(acked) | set(unacked)
    per_msg = db_rows(
        tmp_path, "SELECT message_id, COUNT(*) FROM messages GROUP BY 1 HAVING COUNT(*) > 1"
    )
    assert per_msg == []
    assert db_rows(tmp_path, "SELECT COUNT(*) FROM messages")[0][0] == len(counts)


@pytest.mark.slow
def test_sigkill_during_processing_resumes(daemon, tmp_path):
    daemon.start()
    mids = [f"p{i}@customer.test" for i in range(60)]
    with smtplib.SMTP("127.0.0.1", daemon.smtp_port, timeout=5) as s:
        for mid in mids:
            s.sendmail("a@customer.test", ["support@example.com"], make_mail(message_id=mid))
    daemon.kill9()  # jobs queued or half-run, leases held by a dead process
    daemon.start()
    wait_all_processed(tmp_path, timeout=60)
    assert daemon.stop() == 0
    rows = db_rows(tmp_path, "SELECT message_id, COUNT(*) FROM messages GROUP BY 1")
    assert sorted(r[0] for r in rows) == sorted(mids)
    assert all(r[1] == 1 for r in rows)


def _parser_thread() -> int:
    return threading.get_ident()


def _dies(raw: bytes) -> None:
    os._exit(1)  # as an OOM kill or a crash in C code would end a parser process


async def test_mail_is_parsed_off_the_event_loop():
    assert await parse_off_loop(None, _parser_thread) != threading.get_ident()


async def test_a_dead_parser_process_is_transient_so_the_job_retries():
    ctx = multiprocessing.get_context("forkserver")
    with ProcessPoolExecutor(1, mp_context=ctx) as pool:
        with pytest.raises(TransientError, match="parser process died"):
            await parse_off_loop(pool, _dies, b"")
