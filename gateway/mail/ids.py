"""Our ids and tokens: conversation tokens, HMAC-tagged Message-IDs, plus-address tokens, subjects.

Pure functions shared by intake (routing), threading, the store and reply composition. Our own
Message-IDs (RFC 5322 §3.6.4) carry the conversation token and an HMAC over it, so a reply that
quotes one can be placed without trusting anything else in the mail.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

from gateway.addresses import address_key

TOKEN_RE = re.compile(r"^[a-z0-9]{10}$")
SUBJECT_TOKEN_RE = re.compile(r"\[#([a-z0-9]{10})\]", re.IGNORECASE)
_REPLY_PREFIX_RE = re.compile(
    r"^\s*((re|fw|fwd|aw|wg|sv|vs|antw|rif|r|tr|ref|réf)\s*(\[\d+\])?\s*:\s*)+", re.IGNORECASE
)


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
    """Split support+TOKEN@example.com into (support@example.com, TOKEN), both as address_key
    forms (lower-cased): support mailboxes are compared, never written into a header from here."""
    key = address_key(address)
    local, at, domain = key.rpartition("@")
    if not at:
        return key, None
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
