"""Line-ending normalisation and the intake key, applied to DATA before anything parses it.

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


def intake_key(normalised: bytes) -> tuple[str, str]:
    """(Message-ID, sha256) of a normalised mail: with the mailbox, the dedupe key.

    The hash leaves out the trace headers hops add (Received, Delivered-To, …), so a mail that
    arrives both by forwarding and in the mailbox is stored once. A mail without a usable
    Message-ID gets one derived from its hash, so a resend of the same bytes still finds the
    first copy; a sender reusing a Message-ID for other content is a new mail.
    """
    end = normalised.find(b"\r\n\r\n")
    head = normalised if end < 0 else normalised[:end]
    body = b"" if end < 0 else normalised[end:]
    digest = hashlib.sha256(_without_trace(head + b"\r\n") + body).hexdigest()
    m = _MESSAGE_ID.search(head)
    if m:
        try:
            return m.group(1).decode("ascii"), digest
        except UnicodeDecodeError:
            pass
    return f"{digest[:32]}@derived.invalid", digest
