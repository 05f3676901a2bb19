"""Threading decisions: which lookups can place a mail in an existing conversation, in order.

Pure functions: they turn a parsed mail into an ordered list of `Lookup`s; the store runs them
against its index (store/mail.py) and takes the first hit. The order is DESIGN.md's:
1. a reply token in a recipient (support+TOKEN@), envelope, To, Cc, Delivered-To, X-Original-To;
2. our own Message-IDs in In-Reply-To/References, whose HMAC makes them unforgeable;
3. In-Reply-To, then References newest first, against every Message-ID we stored or sent;
4. a [#TOKEN] in the subject, accepted only when the sender already takes part;
5. otherwise a new conversation. Never the subject alone.
"""

from __future__ import annotations

from collections.abc import Iterable

from gateway.mail.ids import SUBJECT_TOKEN_RE, mailbox_and_token, token_from_own_message_id
from gateway.models import Lookup, ParsedMail


def thread_lookups(
    mail: ParsedMail,
    *,
    recipients: Iterable[str],
    secret: bytes,
    hostname: str,
) -> list[Lookup]:
    """The ordered keys that may place this mail in an existing conversation."""
    out: list[Lookup] = []
    seen: set[tuple[str, str]] = set()

    def add(kind: str, value: str, step: str, needs_participant: bool = False) -> None:
        if value and (kind, value) not in seen:
            seen.add((kind, value))
            out.append(Lookup(kind, value, needs_participant, step))

    # 1. reply token in any recipient header or the envelope
    addrs = list(recipients) + [a.email for a in mail.to + mail.cc] + list(mail.delivered_to)
    for addr in addrs:
        _, token = mailbox_and_token(addr)
        if token:
            add("token", token, "recipient token")
    # References are oldest first; newest first is the right order to try
    chain = list(mail.in_reply_to) + list(reversed(mail.references))
    # 2. our own, HMAC-tagged Message-IDs
    for mid in chain:
        token = token_from_own_message_id(secret, hostname, mid)
        if token:
            add("token", token, "our Message-ID")
    # 3. any Message-ID we stored or sent
    for mid in chain:
        add("message_id", mid, "In-Reply-To" if mid in mail.in_reply_to else "References")
    # 4. subject token, only for participants
    for m in SUBJECT_TOKEN_RE.finditer(mail.subject or ""):
        add("token", m.group(1).lower(), "subject token", needs_participant=True)
    return out
