"""Versioned schema migrations, applied at start by every process that opens the store.

Each migration is a function registered on one `Migrations` set (sqlite-utils >= 4), applied
in its own transaction and recorded in `_sqlite_migrations`, so a daemon and a CLI starting at
the same time never apply one twice. Add new migrations at the end; never edit an applied one.
"""

from __future__ import annotations

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

migrations = Migrations("gateway")


@migrations()
def m001_intake(db: Database) -> None:
    # The mail exactly as received, with its envelope: the truth everything else derives from.
    db["raw_mails"].create(
        {
            "id": int,
            "received_at": str,
            "source": str,  # smtp | imap
            "mailbox": str,  # the support address it was accepted for
            "envelope_from": str,
            "rcpt_tos": str,  # JSON list
            "peer": str,
            "helo": str,
            "message_id": str,  # header Message-ID, or derived from the hash
            "sha256": str,  # of the normalised raw
            "size": int,
            "raw": bytes,
            "state": str,  # pending | processed | quarantined
        },
        pk="id",
        not_null={"mailbox", "message_id", "sha256", "raw", "state"},
        defaults={"state": "pending"},
    )
    db["raw_mails"].create_index(["mailbox", "message_id", "sha256"], unique=True)
    db["raw_mails"].create_index(["received_at"])

    db["conversations"].create(
        {
            "id": int,
            "token": str,  # reply token in support+TOKEN@ and [#TOKEN] subjects
            "mailbox": str,
            "subject": str,
            "customer_email": str,
            "customer_name": str,
            "status": str,  # open | handed_off | closed
            "created_at": str,
            "updated_at": str,
            "last_message_at": str,
            "message_count": int,
        },
        pk="id",
        not_null={"token", "mailbox", "status"},
        defaults={"status": "open", "message_count": 0},
    )
    db["conversations"].create_index(["token"], unique=True)
    db["conversations"].create_index(["mailbox", "customer_email"])
    db["conversations"].create_index(["last_message_at"])

    db["messages"].create(
        {
            "id": int,
            "conversation_id": int,
            "raw_id": int,  # null for mail we composed
            "direction": str,  # in | out
            "message_id": str,
            "in_reply_to": str,  # JSON list
            "references_": str,  # JSON list
            "subject": str,
            "sender_email": str,
            "sender_name": str,
            "recipients": str,  # JSON {"to": [...], "cc": [...]}
            "date": str,
            "created_at": str,
            "text": str,
            "html": str,
            "new_text": str,
            "annotations": str,  # JSON list of names (models.py)
            "attachments": str,  # JSON list of metadata; bytes stay in raw_mails
            "author": str,  # for outgoing mail: who wrote it (rep name, assistant)
            "defects": str,  # JSON list
        },
        pk="id",
        foreign_keys=[("conversation_id", "conversations", "id"), ("raw_id", "raw_mails", "id")],
        not_null={"conversation_id", "direction", "message_id"},
    )
    db["messages"].create_index(["conversation_id", "id"])
    db["messages"].create_index(["raw_id"], unique=True)

    # Every Message-ID we received or sent, per mailbox: the threading index (DESIGN.md step 3).
    db["message_ids"].create(
        {"mailbox": str, "message_id": str, "conversation_id": int, "direction": str},
        pk=("mailbox", "message_id"),
        foreign_keys=[("conversation_id", "conversations", "id")],
    )

    db["participants"].create(
        {"conversation_id": int, "email": str, "role": str},
        pk=("conversation_id", "email"),
        foreign_keys=[("conversation_id", "conversations", "id")],
    )
    db["participants"].create_index(["email"])

    db["jobs"].create(
        {
            "id": int,
            "kind": str,
            "payload": str,  # JSON
            "dedupe_key": str,  # an enqueue with the same key is a no-op
            "state": str,  # queued | running | done | dead
            "attempts": int,
            "run_after": float,  # unix time
            "lease_until": float,
            "last_error": str,
            "created_at": str,
            "updated_at": str,
        },
        pk="id",
        not_null={"kind", "state"},
        defaults={"state": "queued", "attempts": 0, "run_after": 0, "lease_until": 0},
    )
    db["jobs"].create_index(["dedupe_key"], unique=True)
    db.execute(
        "CREATE INDEX idx_jobs_due ON jobs(state, run_after) WHERE state IN ('queued', 'running')"
    )

    db["quarantine"].create(
        {
            "id": int,
            "raw_id": int,
            "error": str,
            "detail": str,
            "created_at": str,
            "state": str,  # held | retried
        },
        pk="id",
        foreign_keys=[("raw_id", "raw_mails", "id")],
        defaults={"state": "held"},
    )
    db["quarantine"].create_index(["raw_id"])
    db["quarantine"].create_index(["state"])

    # Small key/value facts that outlive a restart (generated secret, HubSpot ids, tokens).
    db["kv"].create({"key": str, "value": str, "updated_at": str}, pk="key")
