"""Composing a reply to the customer: headers, bodies, signature, attachments. Pure.

Every header is built from validated values only, never copied from the incoming mail
(DESIGN.md, CVE-2024-6923: re-serialising a parsed header can emit an injected header):
- addresses pass mail.addresses.checked_email (email-validator; special-use test domains
  allowed; ASCII only, as we send without SMTPUTF8) or the reply is refused with ComposeError;
- display names and the subject lose CR, LF and every other control character;
- Message-IDs (ours, In-Reply-To, References) must be plain `local@domain` tokens of printable
  ASCII; anything else is dropped. They are written pre-folded, exactly as validated, because
  Python's header folding turns a long Message-ID into RFC 2047 encoded-words, which no mail
  client can thread by.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import EmailPolicy
from email.utils import format_datetime

from gateway.addresses import checked_email
from gateway.config import SignatureSettings
from gateway.errors import ComposeError
from gateway.mail.ids import make_message_id, normalise_subject
from gateway.mail.render import render_body
from gateway.mail.signatures import choose_signature

MAX_REFERENCES = 20  # ids kept in References: the thread's root and the newest ones
MAX_SUBJECT = 250
MAX_NAME = 120
_MSGID_RE = re.compile(r"^[!#-;=?-~]{1,200}@[!#-;=?-~]{1,100}$")  # printable, no <>"@ space
_CTYPE_RE = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*$")
_RAW_HEADERS = frozenset({"message-id", "in-reply-to", "references"})


class _OutgoingPolicy(EmailPolicy):
    """policy.SMTP, except that Message-ID headers are kept exactly as we folded them."""

    def header_store_parse(self, name, value):
        if name.lower() in _RAW_HEADERS and isinstance(value, str):
            return (name, value)
        return super().header_store_parse(name, value)


POLICY = _OutgoingPolicy(linesep="\r\n", refold_source="none")


@dataclass(frozen=True)
class Conversation:
    """What a reply needs to know of its conversation (read from the store by the caller)."""

    token: str
    mailbox: str  # the support address the customer wrote to: our From
    subject: str
    customer_email: str
    customer_name: str = ""
    last_message_id: str = ""  # the customer's last message: In-Reply-To
    references: Sequence[str] = ()  # the parent's References, oldest first (RFC 5322 3.6.4)


@dataclass(frozen=True)
class OutgoingAttachment:
    filename: str
    content_type: str
    data: bytes = field(repr=False)


@dataclass(frozen=True)
class ComposedMail:
    message_id: str  # ours, without brackets
    raw: bytes  # CRLF line ends, ready for DATA
    mail_from: str  # envelope sender
    rcpts: tuple[str, ...]  # envelope recipients
    subject: str
    text: str  # plain-text part, signature included
    html: str  # HTML part (the whole document), signature included
    in_reply_to: tuple[str, ...] = ()
    references: tuple[str, ...] = ()


def clean_header_text(value: str, limit: int = MAX_SUBJECT) -> str:
    """A header value with no CR/LF or other control/format characters, spaces collapsed."""
    out = []
    for ch in value or "":
        cat = unicodedata.category(ch)
        if cat in ("Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"):
            out.append(" ")
        else:
            out.append(ch)
    return " ".join("".join(out).split())[:limit]


def checked_address(address: str, what: str) -> str:
    """The address for a header of mail we send, or ComposeError naming `what`.

    The one validation (mail.addresses.checked_email: email-validator, local part as written,
    domain lower-cased, CR/LF refused), in its ascii_only form: replies are sent without
    SMTPUTF8, so the domain goes out as IDNA and an internationalised local part is refused.
    """
    email = checked_email(address, ascii_only=True)
    if email is None:
        raise ComposeError(f"{what}: {address!r} is not a usable email address")
    return email


def checked_message_id(value: str) -> str | None:
    """A Message-ID without brackets if it is a plain printable-ASCII id, else None."""
    v = (value or "").strip().strip("<>").strip()
    return v if _MSGID_RE.match(v) else None


def reply_subject(subject: str) -> str:
    """`Re: <subject>` exactly once, whatever Re:/AW:/Fwd: stack the customer's subject had."""
    base = normalise_subject(clean_header_text(subject))
    return clean_header_text(f"Re: {base or '(no subject)'}")


def thread_ids(last_message_id: str, references: Sequence[str]) -> tuple[str | None, list[str]]:
    """(In-Reply-To, References): valid ids only, no duplicates, capped to the root plus the
    newest, always ending with In-Reply-To."""
    irt = checked_message_id(last_message_id)
    chain: list[str] = []
    for mid in references:
        v = checked_message_id(mid)
        if v and v not in chain and v != irt:
            chain.append(v)
    if irt:
        chain.append(irt)
    if len(chain) > MAX_REFERENCES:
        chain = chain[:1] + chain[-(MAX_REFERENCES - 1) :]
    return irt, chain


def _fold_ids(ids: Sequence[str]) -> str:
    lines: list[str] = []
    for mid in ids:
        item = f"<{mid}>"
        if lines and len(lines[-1]) + 1 + len(item) <= 76:
            lines[-1] += " " + item
        else:
            lines.append(item)
    return "\r\n ".join(lines)


def _clean_filename(name: str) -> str:
    name = clean_header_text(name, 200).replace("/", "_").replace("\\", "_").strip(". ")
    return name or "attachment"


def _html_document(body_html: str, signature_html: str) -> str:
    sig = f'\n<div class="signature">{signature_html}</div>' if signature_html else ""
    return (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8"></head>\n<body>\n'
        f"{body_html}{sig}\n</body></html>\n"
    )


def compose_reply(
    conv: Conversation,
    *,
    body: str,
    body_format: str,
    author_name: str,
    author_email: str,
    text: str = "",
    signatures: SignatureSettings,
    secret: bytes,
    hostname: str,
    from_name: str = "",
    attachments: Sequence[OutgoingAttachment] = (),
    auto: bool = False,
    date: datetime | None = None,
) -> ComposedMail:
    """Build the reply to the customer.

    body_format: "markdown" (the assistant), "html" (HubSpot rich text from a rep) or "text".
    text: for "html", the text part as the author wrote it (a rep's `text`); "" derives it.
    author_email chooses the signature (exact domain > wildcard > default); author_name is
    only recorded by the caller, the From is the support mailbox with `from_name`.
    auto=True marks the gateway's automatic mail (Auto-Submitted, X-Auto-Response-Suppress).
    The envelope sender is mailbox+TOKEN@domain, so a bounce threads back to the conversation.
    """
    mailbox = checked_address(conv.mailbox, "support mailbox")
    customer = checked_address(conv.customer_email, "customer address")
    hostname = clean_header_text(hostname, 200).replace(" ", "")
    if not hostname or "@" in hostname:
        raise ComposeError(f"hostname: {hostname!r} cannot be used in a Message-ID")
    local, _, domain = mailbox.rpartition("@")
    token = conv.token if re.fullmatch(r"[a-z0-9]{1,64}", conv.token or "") else ""
    mail_from = f"{local}+{token}@{domain}" if token else mailbox

    text_body, html_body = render_body(body, body_format=body_format, text=text)
    sig = choose_signature(author_email or "", signatures)
    plain = text_body + (f"\n\n{sig.text}" if sig.text else "") + "\n"
    html = _html_document(html_body, sig.html)
    subject = reply_subject(conv.subject)
    message_id = make_message_id(secret, hostname, token or "noconversation")
    irt, refs = thread_ids(conv.last_message_id, conv.references)

    msg = EmailMessage(policy=POLICY)
    msg["From"] = Address(display_name=clean_header_text(from_name, MAX_NAME), addr_spec=mailbox)
    msg["To"] = Address(
        display_name=clean_header_text(conv.customer_name, MAX_NAME), addr_spec=customer
    )
    if token:
        msg["Reply-To"] = Address(
            display_name=clean_header_text(from_name, MAX_NAME), addr_spec=mail_from
        )
    msg["Subject"] = subject
    msg["Date"] = format_datetime(date or datetime.now(UTC))
    msg["Message-ID"] = f"<{message_id}>"
    if irt:
        msg["In-Reply-To"] = f"<{irt}>"
    if refs:
        msg["References"] = _fold_ids(refs)
    if auto:
        msg["Auto-Submitted"] = "auto-replied"
        msg["X-Auto-Response-Suppress"] = "All"
    msg["X-Loop"] = hostname
    msg.set_content(plain, subtype="plain", charset="utf-8", cte="quoted-printable")
    msg.add_alternative(html, subtype="html", charset="utf-8", cte="quoted-printable")
    for att in attachments:
        ctype = (att.content_type or "").lower().split(";")[0].strip()
        if not _CTYPE_RE.match(ctype):
            ctype = "application/octet-stream"
        maintype, subtype = ctype.split("/", 1)
        msg.add_attachment(
            att.data, maintype=maintype, subtype=subtype, filename=_clean_filename(att.filename)
        )
    raw = msg.as_bytes(policy=POLICY)
    return ComposedMail(
        message_id=message_id,
        raw=raw,
        mail_from=mail_from,
        rcpts=(customer,),
        subject=subject,
        text=plain,
        html=html,
        in_reply_to=(irt,) if irt else (),
        references=tuple(refs),
    )
