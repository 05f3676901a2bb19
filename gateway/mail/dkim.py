"""DKIM signing of outgoing replies (dkimpy), so the customer's provider trusts our From.

Signed once, before the mail is stored for delivery: a resend after a crash carries the same
signature and the same bytes.
"""

from __future__ import annotations

import dkim

from gateway.errors import ComposeError

SIGNED_HEADERS = (
    b"from", b"to", b"subject", b"date", b"message-id", b"in-reply-to", b"references",
    b"reply-to", b"mime-version", b"content-type", b"auto-submitted",
)  # fmt: skip


def dkim_sign(raw: bytes, *, selector: str, domain: str, key_pem: str) -> bytes:
    """The mail with a DKIM-Signature header (relaxed/relaxed, rsa-sha256) in front."""
    try:
        header = dkim.sign(
            raw,
            selector.encode(),
            domain.encode(),
            key_pem.encode(),
            include_headers=[h for h in SIGNED_HEADERS if h + b":" in raw.lower()],
            canonicalize=(b"relaxed", b"relaxed"),
        )
    except dkim.DKIMException as exc:
        raise ComposeError(f"DKIM signing failed: {exc}") from exc
    return header + raw
