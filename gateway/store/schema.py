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
    db.table("raw_mails").create(
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
    db.table("raw_mails").create_index(["mailbox", "message_id", "sha256"], unique=True)
    db.table("raw_mails").create_index(["received_at"])

    db.table("conversations").create(
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
    db.table("conversations").create_index(["token"], unique=True)
    db.table("conversations").create_index(["mailbox", "customer_email"])
    db.table("conversations").create_index(["last_message_at"])

    db.table("messages").create(
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
    db.table("messages").create_index(["conversation_id", "id"])
    db.table("messages").create_index(["raw_id"], unique=True)

    # Every Message-ID we received or sent, per mailbox: the threading index (DESIGN.md step 3).
    db.table("message_ids").create(
        {"mailbox": str, "message_id": str, "conversation_id": int, "direction": str},
        pk=("mailbox", "message_id"),
        foreign_keys=[("conversation_id", "conversations", "id")],
    )

    db.table("participants").create(
        {"conversation_id": int, "email": str, "role": str},
        pk=("conversation_id", "email"),
        foreign_keys=[("conversation_id", "conversations", "id")],
    )
    db.table("participants").create_index(["email"])

    db.table("jobs").create(
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
    db.table("jobs").create_index(["dedupe_key"], unique=True)
    db.execute(
        "CREATE INDEX idx_jobs_due ON jobs(state, run_after) WHERE state IN ('queued', 'running')"
    )

    db.table("quarantine").create(
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
    db.table("quarantine").create_index(["raw_id"])
    db.table("quarantine").create_index(["state"])

    # Small key/value facts that outlive a restart (generated secret, HubSpot ids, tokens).
    db.table("kv").create({"key": str, "value": str, "updated_at": str}, pk="key")


@migrations()
def m005_delivery(db: Database) -> None:
    # One row per outgoing mail, keyed by what asked for it (the HubSpot message id, the
    # assistant job key): the same reply is composed and sent at most once. The composed raw
    # bytes are kept before the first attempt, so a retry after a crash re-sends the very same
    # message (same Message-ID) instead of composing a new one.
    db.table("deliveries").create(
        {
            "id": int,
            "source_key": str,
            "conversation_id": int,
            "state": str,  # queued | sending | sent | failed
            "auto": int,  # 1 for the assistant's automatic mail
            "message_id": str,  # ours, without brackets
            "mail_from": str,  # envelope sender
            "rcpts": str,  # JSON list of envelope recipients
            "subject": str,
            "text": str,
            "html": str,
            "author": str,
            "sender_email": str,  # the rep's (or assistant's) address: chose the signature
            "in_reply_to": str,  # JSON list
            "references_": str,  # JSON list
            "raw": bytes,
            "attempts": int,
            "last_error": str,
            "smtp_code": int,
            "smtp_reply": str,
            "meta": str,  # JSON: whatever the caller needs later (HubSpot thread/message ids)
            "message_row_id": int,  # messages.id once sent
            "created_at": str,
            "updated_at": str,
            "first_attempt_at": float,  # unix time; the retry window counts from here
            "next_attempt_at": float,
            "sent_at": str,
        },
        pk="id",
        foreign_keys=[("conversation_id", "conversations", "id")],
        not_null={"source_key", "conversation_id", "state", "message_id", "raw"},
        defaults={"state": "queued", "attempts": 0, "auto": 0},
    )
    db.table("deliveries").create_index(["source_key"], unique=True)
    db.table("deliveries").create_index(["conversation_id", "id"])
    db.table("deliveries").create_index(["state", "next_attempt_at"])


@migrations()
def m002_hubspot(db: Database) -> None:
    # One row per conversation handed to HubSpot: each step's result, recorded when done, so
    # a crash resumes at the next step and a retry never creates a second anything.
    db.table("handoffs").create(
        {
            "conversation_id": int,
            "state": str,  # pending | done | dead
            "trigger": str,  # assistant | auto | person
            "reason": str,
            "requested_at": str,
            "updated_at": str,
            "contact_id": str,
            "thread_id": str,
            "ticket_id": str,
            "thread_linked": int,
            "note_id": str,
            "note_attempted": int,  # a create was sent: on retry, look before creating again
            "comment_id": str,
            "comment_attempted": int,
            "last_error": str,
        },
        pk="conversation_id",
        foreign_keys=[("conversation_id", "conversations", "id")],
        defaults={
            "state": "pending",
            "thread_linked": 0,
            "note_attempted": 0,
            "comment_attempted": 0,
        },
    )
    # Every message of ours that is in a HubSpot thread, and the id HubSpot gave it: a
    # message is published once, and a message HubSpot echoes back is known to be ours.
    db.table("hubspot_messages").create(
        {
            "message_row_id": int,
            "conversation_id": int,
            "hubspot_message_id": str,
            "thread_id": str,
            "published_at": str,
        },
        pk="message_row_id",
        foreign_keys=[("message_row_id", "messages", "id")],
    )
    db.table("hubspot_messages").create_index(["hubspot_message_id"])
    db.table("hubspot_messages").create_index(["conversation_id"])
    # Reps' messages as HubSpot announced them (webhook or poll), once per HubSpot message id:
    # the durable write that lets the webhook answer 2xx at once and process later.
    db.table("hubspot_events").create(
        {
            "hubspot_message_id": str,
            "thread_id": str,
            "source": str,  # channel-webhook | app-webhook | poll
            "received_at": str,
            "payload": str,  # JSON: the message when the event carried it
            "outcome": str,  # pending | delivered | skipped: why | failed: reply
        },
        pk="hubspot_message_id",
        defaults={"outcome": "pending"},
    )


@migrations()
def m004_assistant(db: Database) -> None:
    # Sentiment (VADER compound -1..1 and its label) and language (ISO 639-1) of each customer
    # mail, computed when it is recorded.
    for column, kind in (("sentiment", float), ("sentiment_label", str), ("language", str)):
        db.table("messages").add_column(column, kind)
    # The escalation facts the handoff reads for its internal comment and the ticket:
    # reason(s) joined by "; ", the summary (ticket description), the sentiment and language
    # of the escalated mails, and when the assistant escalated (it never answers after that).
    for column, kind in (
        ("escalation_reason", str),
        ("summary", str),
        ("sentiment", float),
        ("sentiment_label", str),
        ("language", str),
        ("escalated_at", str),
    ):
        db.table("conversations").add_column(column, kind)
    # One row per customer mail the assistant decided on: its audit trail, and the counts
    # behind the reply limits (per conversation, per sender and window).
    db.table("assistant_decisions").create(
        {
            "id": int,
            "conversation_id": int,
            "message_row_id": int,  # the newest customer mail of the burst it answered
            "sender": str,  # the customer's address (rate limit per sender)
            "action": str,  # reply | escalate
            "reasons": str,  # JSON list
            "confidence": float,
            "source": str,  # article title / backend that produced the answer
            "markdown": str,  # the reply as enqueued for delivery
            "created_at": str,
            "created_ts": float,  # unix time, for the rate-limit window
        },
        pk="id",
        foreign_keys=[("conversation_id", "conversations", "id")],
        not_null={"conversation_id", "message_row_id", "action"},
    )
    db.table("assistant_decisions").create_index(["conversation_id", "message_row_id"], unique=True)
    db.table("assistant_decisions").create_index(["sender", "created_ts"])


@migrations()
def m003_imap(db: Database) -> None:
    # Where each IMAP folder's sync stands: the UID range already stored under a UIDVALIDITY,
    # first-sync progress, and the UIDs whose after-action (seen/move/delete) is still due.
    db.table("imap_state").create(
        {
            "account": str,  # user@host:port
            "folder": str,
            "uidvalidity": int,
            "last_uid": int,  # every UID <= this is stored (or skipped on purpose)
            "done": int,  # progress of the current (first or re-) sync
            "total": int,
            "state": str,  # connecting | syncing | idle | polling | error
            "error": str,
            "after_pending": str,  # JSON list of UIDs stored but not yet marked/moved/deleted
            "first_sync_done": int,  # 1 once a full pass ended: `since` applies only before
            "updated_at": str,
        },
        pk=("account", "folder"),
        defaults={
            "last_uid": 0,
            "done": 0,
            "total": 0,
            "after_pending": "[]",
            "first_sync_done": 0,
        },
    )
    # Mails left in the mailbox on purpose (too big): shown by `mail-gateway status`.
    db.table("imap_skipped").create(
        {
            "account": str,
            "folder": str,
            "uidvalidity": int,
            "uid": int,
            "size": int,
            "message_id": str,
            "reason": str,
            "created_at": str,
        },
        pk=("account", "folder", "uidvalidity", "uid"),
    )
    # Providers' forwarding confirmations (SMTP or IMAP): the admin finishes the set-up by hand.
    db.table("forwarding_confirmations").create(
        {
            "raw_id": int,
            "mailbox": str,
            "provider": str,
            "code": str,
            "link": str,
            "received_at": str,
        },
        pk="raw_id",
    )


@migrations()
def m006_ticket_attempted(db: Database) -> None:
    # A first ticket create needs no lookup before it (saves one HubSpot call per handoff);
    # a retry after an attempt looks first.
    db.execute("ALTER TABLE handoffs ADD COLUMN ticket_attempted INTEGER NOT NULL DEFAULT 0")


@migrations()
def m007_publish_left_out(db: Database) -> None:
    # The customer's files a publish went without (JSON list of {name, size, why}): the
    # ticket's note names them, so a rep knows to ask for them.
    db.execute("ALTER TABLE hubspot_messages ADD COLUMN left_out TEXT")


@migrations()
def m008_mailbox_tokens(db: Database) -> None:
    # OAuth 2.0 tokens of the mailboxes the gateway logs in to with XOAUTH2 (store/tokens.py):
    # one row per login ("imap:<account>" or "relay"), with what `mailbox status` shows.
    db.table("mailbox_tokens").create(
        {
            "login": str,  # "imap:user@host:port" or "relay"
            "provider": str,  # microsoft | google | generic
            "flow": str,  # client_credentials | device_code | service_account | refresh_token
            "access_token": str,
            "expires_at": float,  # unix time the access token stops working
            "refresh_token": str,  # delegated flows: kept across restarts
            "updated_at": str,
            "last_login_at": str,  # last XOAUTH2 login the server accepted
            "last_error": str,  # the last refusal (provider or server), one line
            "last_error_at": str,
        },
        pk="login",
        defaults={"access_token": "", "expires_at": 0.0, "refresh_token": "", "last_error": ""},
    )


@migrations()
def m009_jobs_due_by_kind(db: Database) -> None:
    # The worker claims per kind (each kind has its own slots): without the kind first, a
    # claim for a kind with nothing due walks every due job of the others (a burst's backlog).
    db.execute(
        "CREATE INDEX idx_jobs_kind_due ON jobs(kind, state, run_after) "
        "WHERE state IN ('queued', 'running')"
    )
