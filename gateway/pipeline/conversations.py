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

import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass

from gateway.models import ParsedMail

TOKEN_RE = re.compile(r"^[a-z0-9]{10}$")
SUBJECT_TOKEN_RE = re.compile(r"\[#([a-z0-9]{10})\]", re.IGNORECASE)
_REPLY_PREFIX_RE = re.compile(
    r"^\s*((re|fw|fwd|aw|wg|sv|vs|antw|rif|r|tr|ref|réf)\s*(\[\d+\])?\s*:\s*)+", re.IGNORECASE
)


@dataclass(frozen=True)
class Lookup:
    kind: str  # "token" (a conversation token) or "message_id"
    value: str
    needs_participant: bool = False  # only a known sender may use this key (step 4)
    step: str = ""  # which rule produced it, for `sessions show` and debugging


def new_token() -> str:
    """A conversation token: 10 characters of [a-z0-9], about 51 bits, unguessable."""
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
    return "".join(secrets.choice(alphabet) for _ in range(10))


def _tag(secret: bytes, text: str) -> str:
    return hmac.new(secret, text.encode(), hashlib.sha256).hexdigest()[:12]


def make_message_id(secret: bytes, hostname: str, token: str) -> str:
    """Our own Message-ID (without brackets): token, nonce and an HMAC over both."""
    nonce = secrets.token_hex(6)
    return f"{token}.{nonce}.{_tag(secret, f'{token}.{nonce}')}@{hostname}"


def token_from_own_message_id(secret: bytes, hostname: str, message_id: str) -> str | None:
    """The conversation token inside one of our Message-IDs, if its HMAC is right."""
    local, _, domain = message_id.rpartition("@")
    if domain.lower() != hostname.lower():
        return None
    parts = local.split(".")
    if len(parts) != 3:
        return None
    token, nonce, tag = parts
    if not TOKEN_RE.match(token) or not hmac.compare_digest(tag, _tag(secret, f"{token}.{nonce}")):
        return None
    return token


def mailbox_and_token(address: str) -> tuple[str, str | None]:
    """Split support+TOKEN@example.com into (support@example.com, TOKEN)."""
    local, at, domain = address.lower().rpartition("@")
    if not at:
        return address.lower(), None
    base, plus, tag = local.partition("+")
    if plus and TOKEN_RE.match(tag):
        return f"{base}@{domain}", tag
    if plus:
        return f"{base}@{domain}", None
    return f"{local}@{domain}", None


def normalise_subject(subject: str) -> str:
    """The subject without Re:/Fwd:/AW:… prefixes and without our [#TOKEN] marker."""
    s = SUBJECT_TOKEN_RE.sub("", subject or "")
    s = _REPLY_PREFIX_RE.sub("", s)
    return " ".join(s.split())


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
