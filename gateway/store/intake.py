"""Store verbs for intake: the one write that must be durable before the SMTP 250."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from sqlite_utils import Database

from gateway.models import IncomingMail, JobKind
from gateway.store.db import inserted_id, now_iso
from gateway.store.jobs import enqueue


@dataclass(frozen=True)
class StoredRaw:
    """A raw mail as intake stored it, for the process_mail job."""

    id: int
    mailbox: str
    envelope_from: str  # the SMTP MAIL FROM ("" for a null sender)
    rcpt_tos: list[str]
    message_id: str  # the intake key's Message-ID
    state: str  # pending | processed | quarantined
    source: str  # smtp | imap
    raw: bytes = field(repr=False)


def load_raw(db: Database, raw_id: int) -> StoredRaw | None:
    row = db.execute(
        "SELECT mailbox, envelope_from, rcpt_tos, message_id, raw, state, source "
        "FROM raw_mails WHERE id = ?",
        [raw_id],
    ).fetchone()
    if row is None:
        return None
    mailbox, envelope_from, rcpt_json, message_id, raw, state, source = row
    return StoredRaw(
        id=raw_id,
        mailbox=mailbox,
        envelope_from=envelope_from,
        rcpt_tos=json.loads(rcpt_json or "[]"),
        message_id=message_id,
        state=state,
        source=source,
        raw=raw,
    )


def raw_bytes(db: Database, raw_id: int) -> bytes | None:
    """The stored (normalised) bytes of a raw mail: the truth its attachments come from."""
    row = db.execute("SELECT raw FROM raw_mails WHERE id = ?", [raw_id]).fetchone()
    return None if row is None else row[0]


def accept_raw(db: Database, mail: IncomingMail) -> tuple[int, bool]:
    """Insert the raw mail and its processing job; return (raw id, was it a duplicate).

    The intake key (mailbox, Message-ID, sha256 of the normalised raw) makes this idempotent: a
    client that resends after a dropped connection, or the same mail fetched over IMAP after it
    came by SMTP, finds the row already there and gets the same id back.
    """
    existing = db.execute(
        "SELECT id FROM raw_mails WHERE mailbox = ? AND message_id = ? AND sha256 = ?",
        [mail.mailbox, mail.message_id, mail.sha256],
    ).fetchone()
    if existing:
        return existing[0], True
    cur = db.execute(
        "INSERT INTO raw_mails (received_at, source, mailbox, envelope_from, rcpt_tos, peer, "
        "helo, message_id, sha256, size, raw, state) VALUES (?,?,?,?,?,?,?,?,?,?,?, 'pending')",
        [
            now_iso(),
            mail.source,
            mail.mailbox,
            mail.envelope_from,
            json.dumps(mail.rcpt_tos),
            mail.peer,
            mail.helo,
            mail.message_id,
            mail.sha256,
            len(mail.raw),
            mail.raw,
        ],
    )
    raw_id = inserted_id(cur)
    enqueue(db, JobKind.PROCESS_MAIL, {"raw_id": raw_id}, dedupe_key=f"process:{raw_id}")
    return raw_id, False
