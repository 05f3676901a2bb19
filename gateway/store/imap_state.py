"""Store verbs for IMAP intake: where each folder's sync stands, kept with the mails themselves.

Why in the store: "exactly once" needs the last stored UID to advance in the same transaction
as the mails it covers. A crash before the commit fetches them again; a crash after it finds
them stored, and the after-actions still due (`after_pending`) are applied at the next start.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlite_utils import Database

from gateway.models import IncomingMail
from gateway.store.db import now_iso
from gateway.store.intake import accept_raw


@dataclass(frozen=True)
class FolderState:
    uidvalidity: int
    last_uid: int
    done: int
    after_pending: list[int]
    first_sync_done: bool


@dataclass(frozen=True)
class Skipped:
    uid: int
    size: int
    message_id: str
    reason: str


def load_state(db: Database, account: str, folder: str) -> FolderState | None:
    row = db.execute(
        "SELECT uidvalidity, last_uid, done, after_pending, first_sync_done FROM imap_state "
        "WHERE account = ? AND folder = ?",
        [account, folder],
    ).fetchone()
    if row is None or row[0] is None:
        return None
    return FolderState(row[0], row[1], row[2], json.loads(row[3] or "[]"), bool(row[4]))


def reset_folder(db: Database, account: str, folder: str, uidvalidity: int) -> None:
    """A new folder, or one whose UIDVALIDITY changed: every UID is new again.

    Re-reading the folder stores nothing twice: the intake key finds the mails already there.
    """
    db.execute(
        "INSERT INTO imap_state (account, folder, uidvalidity, last_uid, done, total, state, "
        "error, after_pending, first_sync_done, updated_at) "
        "VALUES (?, ?, ?, 0, 0, 0, 'syncing', '', '[]', 0, ?) "
        "ON CONFLICT(account, folder) DO UPDATE SET uidvalidity = excluded.uidvalidity, "
        "last_uid = 0, done = 0, total = 0, after_pending = '[]', first_sync_done = 0, "
        "updated_at = excluded.updated_at",
        [account, folder, uidvalidity, now_iso()],
    )


def set_state(
    db: Database,
    account: str,
    folder: str,
    state: str,
    *,
    error: str = "",
    total: int | None = None,
    first_sync_done: bool | None = None,
) -> None:
    db.execute(
        "INSERT INTO imap_state (account, folder, state, error, updated_at) VALUES (?,?,?,?,?) "
        "ON CONFLICT(account, folder) DO UPDATE SET state = excluded.state, "
        "error = excluded.error, updated_at = excluded.updated_at",
        [account, folder, state, error[:500], now_iso()],
    )
    if total is not None:
        db.execute(
            "UPDATE imap_state SET total = ? WHERE account = ? AND folder = ?",
            [total, account, folder],
        )
    if first_sync_done is not None:
        db.execute(
            "UPDATE imap_state SET first_sync_done = ? WHERE account = ? AND folder = ?",
            [int(first_sync_done), account, folder],
        )


def known_messages(
    db: Database, mailbox: str, heads: Iterable[tuple[str, int]]
) -> set[tuple[str, int]]:
    """The (Message-ID, size) pairs already stored for the mailbox: no need to fetch those.

    Same Message-ID *and* same size, so a sender reusing a Message-ID for another mail (a
    different size, nearly always) is still fetched; the intake key decides in the end.
    """
    found = set()
    for mid, size in heads:
        row = db.execute(
            "SELECT 1 FROM raw_mails WHERE mailbox = ? AND message_id = ? AND size = ? LIMIT 1",
            [mailbox, mid, size],
        ).fetchone()
        if row:
            found.add((mid, size))
    return found


def commit_batch(
    db: Database,
    account: str,
    folder: str,
    uidvalidity: int,
    *,
    mails: list[IncomingMail],
    handled_uids: list[int],
    skipped: list[Skipped],
    last_uid: int,
) -> list[tuple[int, bool]]:
    """Store the mails and advance last_uid in one transaction (run inside `store.write`).

    `handled_uids` (stored now or found stored) get their after-action recorded as due; it is
    cleared by `clear_after` once the server confirmed it.
    """
    results = [accept_raw(db, m) for m in mails]
    now = now_iso()
    # a mail skipped before and handled now (the size limit was raised) is counted once
    uids = [*handled_uids, *(x.uid for x in skipped)]
    seen_before = _skipped_uids(db, account, folder, uidvalidity, uids)
    if handled_uids:
        db.execute(
            f"DELETE FROM imap_skipped WHERE account = ? AND folder = ? AND uidvalidity = ? "
            f"AND uid IN ({','.join('?' * len(handled_uids))})",
            [account, folder, uidvalidity, *handled_uids],
        )
    for s in skipped:
        db.execute(
            "INSERT OR IGNORE INTO imap_skipped (account, folder, uidvalidity, uid, size, "
            "message_id, reason, created_at) VALUES (?,?,?,?,?,?,?,?)",
            [account, folder, uidvalidity, s.uid, s.size, s.message_id, s.reason, now],
        )
    row = db.execute(
        "SELECT after_pending FROM imap_state WHERE account = ? AND folder = ?",
        [account, folder],
    ).fetchone()
    pending = sorted(set(json.loads(row[0] or "[]")) | set(handled_uids))
    db.execute(
        "UPDATE imap_state SET last_uid = MAX(last_uid, ?), done = done + ?, "
        "after_pending = ?, updated_at = ? WHERE account = ? AND folder = ? AND uidvalidity = ?",
        [
            last_uid,
            len(set(uids) - seen_before),
            json.dumps(pending),
            now,
            account,
            folder,
            uidvalidity,
        ],
    )
    return results


def _skipped_uids(
    db: Database, account: str, folder: str, uidvalidity: int, uids: list[int]
) -> set[int]:
    if not uids:
        return set()
    rows = db.execute(
        f"SELECT uid FROM imap_skipped WHERE account = ? AND folder = ? AND uidvalidity = ? "
        f"AND uid IN ({','.join('?' * len(uids))})",
        [account, folder, uidvalidity, *uids],
    ).fetchall()
    return {r[0] for r in rows}


def skipped_within(
    db: Database, account: str, folder: str, uidvalidity: int, max_size: int
) -> list[int]:
    """UIDs left in the mailbox as too big that the current size limit admits (it was raised):
    the poller reads them at its next connection."""
    rows = db.execute(
        "SELECT uid FROM imap_skipped WHERE account = ? AND folder = ? AND uidvalidity = ? "
        "AND reason = 'too big' AND size <= ? ORDER BY uid",
        [account, folder, uidvalidity, max_size],
    ).fetchall()
    return [r[0] for r in rows]


def clear_after(db: Database, account: str, folder: str, uids: Iterable[int]) -> None:
    row = db.execute(
        "SELECT after_pending FROM imap_state WHERE account = ? AND folder = ?",
        [account, folder],
    ).fetchone()
    if row is None:
        return
    left = sorted(set(json.loads(row[0] or "[]")) - set(uids))
    db.execute(
        "UPDATE imap_state SET after_pending = ? WHERE account = ? AND folder = ?",
        [json.dumps(left), account, folder],
    )


def forwarding_source(db: Database, message_row_id: int) -> dict[str, Any] | None:
    """What the forwarding-confirmation details are read from, for a recorded message.

    Keys: raw_id, mailbox, received_at (ISO-8601 UTC), subject, sender_email, sender_name,
    text. None when there is no such message.
    """
    row = db.execute(
        "SELECT m.raw_id, r.mailbox, r.received_at, m.subject, m.sender_email, "
        "m.sender_name, m.text FROM messages m JOIN raw_mails r ON r.id = m.raw_id "
        "WHERE m.id = ?",
        [message_row_id],
    ).fetchone()
    if row is None:
        return None
    keys = ("raw_id", "mailbox", "received_at", "subject", "sender_email", "sender_name", "text")
    return dict(zip(keys, row, strict=True))


def record_forwarding_confirmation(
    db: Database, raw_id: int, mailbox: str, details: dict, received_at: str
) -> None:
    db.execute(
        "INSERT OR REPLACE INTO forwarding_confirmations (raw_id, mailbox, provider, code, "
        "link, received_at) VALUES (?,?,?,?,?,?)",
        [
            raw_id,
            mailbox,
            details.get("provider", ""),
            details.get("code", ""),
            details.get("link", ""),
            received_at,
        ],
    )


# -- for `mail-gateway status` ---------------------------------------------------------------


def imap_status(db: Database) -> dict[str, dict]:
    """Per "account folder": sync state, progress (done/total), last UID and skipped mails."""
    out: dict[str, dict] = {}
    for account, folder, uv, last_uid, done, total, state, error, pending, first in db.execute(
        "SELECT account, folder, uidvalidity, last_uid, done, total, state, error, "
        "after_pending, first_sync_done FROM imap_state ORDER BY account, folder"
    ):
        skipped = [
            {"uid": r[0], "size": r[1], "message_id": r[2], "reason": r[3]}
            for r in db.execute(
                "SELECT uid, size, message_id, reason FROM imap_skipped WHERE account = ? AND "
                "folder = ? AND uidvalidity = ? ORDER BY uid LIMIT 20",
                [account, folder, uv],
            )
        ]
        out[f"{account} {folder}"] = {
            "state": state,
            "done": done,
            "total": max(total or 0, done or 0),
            "first_sync_done": bool(first),
            "last_uid": last_uid,
            "uidvalidity": uv,
            "after_pending": len(json.loads(pending or "[]")),
            "skipped": skipped,
            "error": error or "",
        }
    return out


def forwarding_confirmations(db: Database) -> list[dict]:
    return [
        {"provider": r[0], "code": r[1], "link": r[2], "received_at": r[3], "mailbox": r[4]}
        for r in db.execute(
            "SELECT provider, code, link, received_at, mailbox FROM forwarding_confirmations "
            "ORDER BY raw_id DESC LIMIT 20"
        )
    ]
