"""Line-ending normalisation, the intake key and the Message-ID a mail is known by, applied to
DATA before anything parses it.

Why here: Python's parser treats a bare LF as a line end, so `Subject: x\\nBcc: y` inside a
CRLF mail would become two headers (a header injection that other servers do not see). A mail
that uses CRLF is taken to mean CRLF: a bare CR or LF in its header block becomes a space (the
header stays one header), in its body a CRLF. A mail whose line ends are mostly bare LF is an
LF-only mail from a broken client or a file (perhaps with a CRLF header prepended by a relay),
and its line ends are converted as they are.
NUL bytes are removed everywhere. The normalised bytes are what the store keeps and hashes.
"""

from __future__ import annotations

import hashlib
import re

_BARE = re.compile(rb"\r(?!\n)|(?<!\r)\n")
_MESSAGE_ID = re.compile(rb"^message-id:[ \t]*(?:\r\n[ \t]+)?<([^<>\s]{1,250})>", re.I | re.M)


def normalise(data: bytes) -> bytes:
    if b"\0" in data:
        data = data.replace(b"\0", b"")
    crlf = data.count(b"\r\n")
    if crlf == data.count(b"\n") == data.count(b"\r"):
        return data  # clean CRLF (nearly every mail): no copy; it matters at 25 MB × sessions
    if crlf == 0 or data.count(b"\n") > 2 * crlf:
        return _BARE.sub(b"\n", data.replace(b"\r\n", b"\n")).replace(b"\n", b"\r\n")
    end = data.find(b"\r\n\r\n")
    if end < 0:
        head, body = data, b""
    else:
        head, body = data[: end + 4], data[end + 4 :]
    head = _BARE.sub(b" ", head)
    body = _BARE.sub(b"\r\n", body)
    return head + body


def header_block_size(data: bytes) -> int:
    """Bytes before the blank line that ends the headers (all of it when there is none)."""
    end = data.find(b"\r\n\r\n")
    return len(data) if end < 0 else end


# Headers that each hop adds on the way: the same mail fetched from a mailbox carries more of
# them than the copy a forwarding rule sent us, so they are not part of what makes it the same.
_TRACE = (
    b"received", b"return-path", b"delivered-to", b"x-original-to", b"x-received",
    b"arc-seal", b"arc-message-signature", b"arc-authentication-results",
    b"authentication-results", b"received-spf", b"x-spam-status", b"x-spam-score",
    b"x-spam-flag", b"x-virus-scanned", b"x-gm-message-state",
)  # fmt: skip
_FIELD = re.compile(rb"(?m)^(?=[^ \t\r\n])")


def _without_trace(head: bytes) -> bytes:
    fields = [f for f in _FIELD.split(head) if f]
    return b"".join(f for f in fields if f.split(b":", 1)[0].strip().lower() not in _TRACE)


DERIVED_DOMAIN = "derived.invalid"  # RFC 2606 §2: .invalid can never be a real domain


def header_message_id(data: bytes) -> str | None:
    """The Message-ID (without brackets) of a header block, or None when it has no usable one.

    The first `Message-ID:` field (RFC 5322 §3.6.4) whose value is one `<id>` of at most 250
    printable ASCII characters without spaces, optionally folded onto the next line. `data` is
    a normalised mail (CRLF) or just its header fields (an IMAP HEADER.FIELDS literal); only
    the part before the first blank line is read. This rule is the intake key's and decides
    what the store knows a mail by: changing it changes the key of mails already stored.
    """
    end = data.find(b"\r\n\r\n")
    m = _MESSAGE_ID.search(data if end < 0 else data[:end])
    if m is None:
        return None
    try:
        return m.group(1).decode("ascii")
    except UnicodeDecodeError:
        return None


def content_digest(normalised: bytes) -> str:
    """sha256 (hex) of a normalised mail without the trace headers hops add (Received, …)."""
    end = normalised.find(b"\r\n\r\n")
    head = normalised if end < 0 else normalised[:end]
    digest = hashlib.sha256(_without_trace(head + b"\r\n"))
    if end >= 0:
        digest.update(memoryview(normalised)[end:])  # the body hashed in place, not copied
    return digest.hexdigest()


def message_id_of(normalised: bytes, digest: str | None = None) -> str:
    """The Message-ID a mail is known by: its header's, else one derived from its content.

    The one rule for intake (the dedupe key) and parse (ParsedMail.message_id), so the id the
    store indexes is the id threading and classification see. A derived id is
    `<first 32 hex of content_digest>@derived.invalid`: the same mail (even fetched again with
    more Received headers, or as an LF-only copy once normalised) derives the same id.
    `digest` is content_digest(normalised) when the caller has it already.
    """
    found = header_message_id(normalised)
    if found is not None:
        return found
    return f"{(digest or content_digest(normalised))[:32]}@{DERIVED_DOMAIN}"


def intake_key(normalised: bytes) -> tuple[str, str]:
    """(Message-ID, sha256) of a normalised mail: with the mailbox, the dedupe key.

    The hash leaves out the trace headers hops add (Received, Delivered-To, …), so a mail that
    arrives both by forwarding and in the mailbox is stored once. A mail without a usable
    Message-ID gets one derived from its hash (message_id_of), so a resend of the same bytes
    still finds the first copy; a sender reusing a Message-ID for other content is a new mail.
    """
    digest = content_digest(normalised)
    return message_id_of(normalised, digest), digest
