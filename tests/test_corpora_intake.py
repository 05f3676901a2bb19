"""Every mail of the shared corpora through the real SMTP intake and processing: none lost."""

from __future__ import annotations

import asyncio
import dataclasses
import re
import smtplib

import pytest

from gateway.mail.normalise import header_block_size, normalise
from gateway.service import Gateway

from conftest import wait_processed
from helpers.corpora import mail_files


@pytest.mark.slow  # about 10 s: every corpus mail through SMTP and the worker
async def test_every_corpus_mail_is_accepted_processed_and_kept(settings):
    files = mail_files()
    smtp = dataclasses.replace(settings.smtp, max_message_size=25 * 1024 * 1024)
    gw = Gateway(dataclasses.replace(settings, smtp=smtp))
    await gw.start()
    try:

        def send_all() -> list[str]:
            """Send every file; return the refusals that the limits do not explain."""
            refused = []
            with smtplib.SMTP("127.0.0.1", gw.smtp_port, timeout=30) as s:
                for i, path in enumerate(files):
                    # each file becomes a distinct mail, even where fixtures share a Message-ID;
                    # line ends as an SMTP client sends them (the corpus README asks for CRLF)
                    data = re.sub(rb"\r?\n", b"\r\n", path.read_bytes())
                    raw = b"X-Corpus-File: %d\r\n" % i + data
                    try:
                        s.sendmail("corpus@customer.test", ["support@example.com"], raw)
                    except smtplib.SMTPDataError as exc:
                        s.rset()
                        if exc.smtp_code == 552 and header_block_size(normalise(raw)) > limit:
                            too_big.append(path)  # a header bomb, refused like Postfix would
                            continue
                        refused.append(f"{path}: {exc}")
            return refused

        limit = settings.smtp.max_header_bytes
        too_big: list = []
        refused = await asyncio.to_thread(send_all)
        assert refused == []
        assert len(too_big) <= 2, too_big  # flanker's long-header.eml: a 200 KB Subject
        files = [f for f in files if f not in too_big]
        await wait_processed(gw, len(files), within=120)
        stats = await gw.store.read(
            lambda db: db.execute(
                "SELECT COUNT(*), SUM(state = 'processed'), SUM(state = 'quarantined') "
                "FROM raw_mails"
            ).fetchone()
        )
        quarantined = await gw.store.read(
            lambda db: db.execute("SELECT error FROM quarantine").fetchall()
        )
        assert stats[0] == len(files), "a mail that got 250 is missing"
        assert quarantined == [], quarantined
        assert stats[1] == len(files)
        messages = await gw.store.read(
            lambda db: db.execute("SELECT COUNT(*) FROM messages").fetchone()[0]
        )
        assert messages == len(files)
    finally:
        await gw.stop(drain_seconds=5)
