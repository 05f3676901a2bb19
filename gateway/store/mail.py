"""Store verbs that place a processed mail in its conversation.

`record_mail` runs inside the single writer's transaction, so finding the conversation and
writing the message cannot race with another mail of the same thread: two replies processed
at once still land in one conversation.

Participants (issue 16 item 1): the customer, and every address in From/To/Cc of the mails
that participants sent (support addresses left out). A mail that joins a conversation from
anyone else (a stranger who learnt a Message-ID of the thread) is kept and threaded, but
marked `outside_sender` and adds nobody: not its sender, not its To/Cc. Senders of a trusted
domain (`[senders] trusted_domains`) count as participants.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from sqlite_utils import Database

from gateway.addresses import address_key
from gateway.mail.ids import mailbox_and_token, new_token, normalise_subject
from gateway.models import OUTSIDE_SENDER, Address, Lookup, ParsedMail
from gateway.store.db import inserted_id, now_iso


@dataclass(frozen=True)
class Recorded:
    conversation_id: int
    message_row_id: int
    new_conversation: bool
    matched_by: str  # the threading step that matched, or "new"
    already_done: bool = False
    outside_sender: bool = False  # joined by headers from a non-participant (never automated)


def is_participant(
    db: Database, conversation_id: int, email: str, trusted_domains: frozenset[str] = frozenset()
) -> bool:
    """Whether `email` takes part in the conversation: a participant row, or a sender of a
    trusted domain (or a subdomain of one)."""
    key = address_key(email)
    if not key:
        return False
    domain = key.rpartition("@")[2]
    if any(domain == d or domain.endswith("." + d) for d in trusted_domains):
        return True
    return bool(
        db.execute(
            "SELECT 1 FROM participants WHERE conversation_id = ? AND email = ?",
            [conversation_id, key],
        ).fetchone()
    )


def find_conversation(
    db: Database, mailbox: str, lookups: list[Lookup], sender: str
) -> tuple[int, str] | None:
    """Run the lookups in order; the first hit wins. Every lookup is scoped to the mailbox."""
    for lk in lookups:
        if lk.kind == "token":
            row = db.execute(
                "SELECT id FROM conversations WHERE token = ? AND mailbox = ?", [lk.value, mailbox]
            ).fetchone()
        else:
            row = db.execute(
                "SELECT conversation_id FROM message_ids WHERE mailbox = ? AND message_id = ?",
                [mailbox, lk.value],
            ).fetchone()
        if row is None:
            continue
        if lk.needs_participant and not is_participant(db, row[0], sender):
            continue  # a quoted ticket number from a stranger does not open the door
        return row[0], lk.step
    return None


def record_mail(
    db: Database,
    *,
    raw_id: int,
    mailbox: str,
    mail: ParsedMail,
    annotations: frozenset[str],
    lookups: list[Lookup],
    support_addresses: frozenset[str] = frozenset(),
    customer: Address | bool | None = True,
    customer_shown: str = "",
    trusted_domains: frozenset[str] = frozenset(),
) -> Recorded:
    """Write the message and its conversation (new or found) in the caller's transaction.

    `customer`: whom the mail belongs to (pipeline.conversations.requester; True = its
    sender); a new conversation takes it as its customer, and a found one checks it against
    the participants (see the module docstring). `customer_shown` is the sender as written
    when no address validated, kept as the customer's name so a person can tell who it was.
    Idempotent: a raw mail that already has its message returns that message unchanged.
    """
    done = db.execute(
        "SELECT id, conversation_id FROM messages WHERE raw_id = ?", [raw_id]
    ).fetchone()
    if done:
        return Recorded(done[1], done[0], False, "already recorded", already_done=True)

    sender = mail.sender.email if mail.sender else ""
    who = mail.sender if customer is True else customer if isinstance(customer, Address) else None
    ts = now_iso()
    found = find_conversation(db, mailbox, lookups, who.email if who else "")
    outside = False
    if found:
        conv_id, matched_by = found
        new = False
        outside = not is_participant(db, conv_id, who.email if who else "", trusted_domains)
        if outside:
            annotations = annotations | {OUTSIDE_SENDER}
    else:
        new, matched_by = True, "new"
        cur = db.execute(
            "INSERT INTO conversations (token, mailbox, subject, customer_email, customer_name, "
            "status, created_at, updated_at, last_message_at, message_count) "
            "VALUES (?, ?, ?, ?, ?, 'open', ?, ?, ?, 0)",
            [
                new_token(),
                mailbox,
                normalise_subject(mail.subject) or "(no subject)",
                who.email if who else "",
                (who.name if who else customer_shown)[:200],
                ts,
                ts,
                ts,
            ],
        )
        conv_id = inserted_id(cur)

    cur = db.execute(
        "INSERT INTO messages (conversation_id, raw_id, direction, message_id, in_reply_to, "
        "references_, subject, sender_email, sender_name, recipients, date, created_at, text, "
        "html, new_text, annotations, attachments, author, defects) "
        "VALUES (?, ?, 'in', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            conv_id,
            raw_id,
            mail.message_id,
            json.dumps(mail.in_reply_to),
            json.dumps(mail.references),
            mail.subject,
            sender,
            mail.sender.name if mail.sender else "",
            json.dumps({"to": [a.email for a in mail.to], "cc": [a.email for a in mail.cc]}),
            mail.date,
            ts,
            mail.text,
            mail.html,
            mail.new_text,
            json.dumps(sorted(annotations)),
            json.dumps([_attachment_meta(a) for a in mail.attachments]),
            mail.sender.name if mail.sender else "",
            json.dumps(mail.defects),
        ],
    )
    msg_id = inserted_id(cur)
    db.execute(
        "INSERT OR IGNORE INTO message_ids (mailbox, message_id, conversation_id, direction) "
        "VALUES (?, ?, ?, 'in')",
        [mailbox, mail.message_id, conv_id],
    )
    if not outside:
        _add_participants(db, conv_id, who, mail, support_addresses | {address_key(mailbox)})
    db.execute(
        "UPDATE conversations SET updated_at = ?, last_message_at = ?, "
        "message_count = message_count + 1 WHERE id = ?",
        [ts, ts, conv_id],
    )
    db.execute("UPDATE raw_mails SET state = 'processed' WHERE id = ?", [raw_id])
    return Recorded(conv_id, msg_id, new, matched_by, outside_sender=outside)


def _add_participants(
    db: Database, conv_id: int, who: Address | None, mail: ParsedMail, support: frozenset[str]
) -> None:
    """The mail's customer (role customer) and the other people it was written to (role cc):
    From, To and Cc, without support addresses (nor their +token forms). Participants hold
    address keys: case never decides a match. A form mailer whose Reply-To is the customer
    is not one: it wrote on the customer's behalf."""
    rows: list[tuple[str, str]] = []
    if who is not None:
        rows.append((address_key(who.email), "customer"))
    if mail.sender is not None and (who is None or mail.sender.email == who.email):
        rows.append((address_key(mail.sender.email), "customer"))
    rows += [(address_key(a.email), "cc") for a in mail.to + mail.cc]
    for key, role in rows:
        plain = mailbox_and_token(key)[0]
        if key in support or plain in support:
            continue
        db.execute(
            "INSERT OR IGNORE INTO participants (conversation_id, email, role) VALUES (?, ?, ?)",
            [conv_id, key, role],
        )


def _attachment_meta(a) -> dict:
    meta = asdict(a)
    meta.pop("data", None)
    return meta


def quarantine(db: Database, raw_id: int, error: str, detail: str) -> int:
    """Set a mail aside with its error; the mails behind it keep flowing."""
    db.execute("UPDATE raw_mails SET state = 'quarantined' WHERE id = ?", [raw_id])
    cur = db.execute(
        "INSERT INTO quarantine (raw_id, error, detail, created_at, state) "
        "VALUES (?, ?, ?, ?, 'held')",
        [raw_id, error[:2000], detail[:20000], now_iso()],
    )
    return inserted_id(cur)


def record_outgoing(
    db: Database,
    *,
    conversation_id: int,
    message_id: str,
    subject: str,
    text: str,
    html: str = "",
    author: str = "",
    sender_email: str = "",
    to: list[str] | None = None,
    in_reply_to: list[str] | None = None,
    references: list[str] | None = None,
) -> int:
    """Keep a mail we send, and index its Message-ID so the customer's answer threads back.

    (django-helpdesk indexed only inbound Message-IDs, so every reply to its own mail opened
    a new ticket.)
    """
    mailbox = db.execute(
        "SELECT mailbox FROM conversations WHERE id = ?", [conversation_id]
    ).fetchone()[0]
    ts = now_iso()
    cur = db.execute(
        "INSERT INTO messages (conversation_id, direction, message_id, in_reply_to, references_, "
        "subject, sender_email, sender_name, recipients, date, created_at, text, html, new_text, "
        "annotations, attachments, author, defects) "
        "VALUES (?, 'out', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '[]', '[]', ?, '[]')",
        [
            conversation_id,
            message_id,
            json.dumps(in_reply_to or []),
            json.dumps(references or []),
            subject,
            sender_email or mailbox,
            author,
            json.dumps({"to": to or [], "cc": []}),
            ts,
            ts,
            text,
            html,
            text,
            author,
        ],
    )
    row_id = inserted_id(cur)
    db.execute(
        "INSERT OR IGNORE INTO message_ids (mailbox, message_id, conversation_id, direction) "
        "VALUES (?, ?, ?, 'out')",
        [mailbox, message_id, conversation_id],
    )
    db.execute(
        "UPDATE conversations SET updated_at = ?, message_count = message_count + 1 WHERE id = ?",
        [ts, conversation_id],
    )
    return row_id
