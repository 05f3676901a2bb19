"""Plain data passed between the stages: what intake parsed, what the pipeline decided.

No behaviour lives here, so every module can import it without pulling in I/O.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Address:
    """A validated mailbox: `email` is lower-cased in the domain, `name` is display text only."""

    email: str
    name: str = ""


@dataclass(frozen=True)
class Attachment:
    filename: str
    content_type: str
    size: int
    sha256: str
    content_id: str = ""  # inline images keep theirs, so HTML `cid:` links still resolve
    inline: bool = False
    undecodable: bool = False  # kept as the raw part because it could not be decoded
    data: bytes = field(default=b"", repr=False)


@dataclass(frozen=True)
class ParsedMail:
    """What the pipeline reads of one mail. The raw bytes in the store remain the truth."""

    message_id: str  # without angle brackets; derived from the hash when the mail has none
    in_reply_to: list[str]  # Message-IDs, without angle brackets, in header order
    references: list[str]  # oldest first, as in the header
    subject: str
    sender: Address | None  # From (or Sender / Reply-To / envelope when From is unusable)
    reply_to: Address | None
    to: list[Address]
    cc: list[Address]
    delivered_to: list[str]  # Delivered-To and X-Original-To values, lower-cased
    date: str  # ISO-8601 UTC, or "" when absent/unparseable
    text: str  # full plain text (HTML converted when there is no text part)
    html: str
    new_text: str  # the new part of a reply: no quoted history, no signature
    attachments: list[Attachment]
    headers: dict[str, str]  # selected raw header values used by classification, lower-case keys
    forwarded_from: Address | None = None  # original sender when the mail was forwarded to us
    defects: list[str] = field(default_factory=list)  # what the parser had to work around


# Annotation names set by classification (pipeline/classify.py).
AUTO_REPLY = "auto_reply"
OUT_OF_OFFICE = "out_of_office"
BOUNCE = "bounce"
MAILING_LIST = "mailing_list"
OWN_MAIL = "own_mail"
NOREPLY = "noreply"
FORWARDING_CONFIRMATION = "forwarding_confirmation"
# Set when recording (store/mail.py): joined a conversation by headers from a non-participant.
OUTSIDE_SENDER = "outside_sender"
ABUSE_REPORT = "abuse_report"  # an ARF feedback-loop report (RFC 5965)
AUTO_ACKNOWLEDGEMENT = "auto_acknowledgement"  # another help desk's "we received your request"
CHALLENGE_RESPONSE = "challenge_response"  # "confirm you are a human to deliver your mail"

# Annotations that forbid automatic answers and automatic handoffs.
NO_AUTOMATION = frozenset(
    {
        AUTO_REPLY,
        OUT_OF_OFFICE,
        BOUNCE,
        MAILING_LIST,
        OWN_MAIL,
        NOREPLY,
        FORWARDING_CONFIRMATION,
        OUTSIDE_SENDER,
        ABUSE_REPORT,
        AUTO_ACKNOWLEDGEMENT,
        CHALLENGE_RESPONSE,
    }
)


@dataclass(frozen=True)
class IncomingMail:
    """A mail as an intake edge accepted it, before anything parsed it."""

    source: str  # smtp | imap
    mailbox: str  # the support address it is for (lower-case, +token stripped)
    envelope_from: str
    rcpt_tos: list[str]
    raw: bytes = field(repr=False)
    message_id: str  # from the header, or derived from the hash
    sha256: str  # of the normalised raw: with mailbox and message_id, the intake key
    peer: str = ""
    helo: str = ""


class JobKind(enum.StrEnum):
    """Every job kind, named once. The values are what the `jobs.kind` column holds, so they
    never change (a renamed value would orphan the jobs already stored under the old one).
    The store enqueues some of them inside its own transactions, hence this low home."""

    PROCESS_MAIL = "process_mail"  # parse, classify and thread one accepted raw mail
    ASSIST = "assist"  # the assistant's decision on a conversation
    HANDOFF = "handoff"  # open the HubSpot thread for a conversation
    PUBLISH = "hubspot_publish"  # later customer mails on a handed-off conversation
    REP_REPLY = "rep_reply"  # a rep's HubSpot reply, to be mailed to the customer
    BOUNCE = "bounce_report"  # a bounce of one of our replies, reported on the thread
    SEND_REPLY = "send_reply"  # compose and relay one reply


@dataclass(frozen=True)
class Job:
    id: int
    kind: str
    payload: dict
    attempts: int
    dedupe_key: str | None = None


@dataclass(frozen=True)
class Lookup:
    kind: str  # "token" (a conversation token) or "message_id"
    value: str
    needs_participant: bool = False  # only a known sender may use this key (step 4)
    step: str = ""  # which rule produced it, for `sessions show` and debugging
