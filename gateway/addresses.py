"""Email addresses: one validation for intake and compose, one key for comparing them.

Validation is email-validator's syntax check (no DNS: a customer's domain is never looked up,
and special-use test domains pass, since dropping a real sender loses the conversation).
The address is kept as written except for its domain, which is lower-cased: RFC 5321 §2.4
says the local part may be case-sensitive, so a reply goes to `Bob.Smith@example.com` exactly
as Bob wrote it, while domains are case-insensitive (RFC 5321 §2.4, RFC 4343).

Comparisons are another matter: in practice every mailbox provider treats the local part
case-insensitively, and customers' mail clients do not keep its case, so wherever addresses
are compared or indexed (participants, rate limits, support addresses, dedupe) the code uses
`address_key`, never the address itself.
"""

from __future__ import annotations

import re

from gateway.models import Address

__all__ = ["MAX_ADDRESS_CHARS", "address_key", "checked_email", "validate_address"]

MAX_ADDRESS_CHARS = 320  # a cheap bound before validating; email-validator allows 254
_LINE_BREAK = re.compile(r"[\r\n\0]")


def checked_email(address: str, *, ascii_only: bool = False) -> str | None:
    """The address as stored and sent (local part as written, domain lower-cased), or None.

    None when email-validator rejects it, or it holds CR, LF or NUL (a header injection).
    ascii_only is for headers of mail we send without SMTPUTF8 (RFC 6531): an
    internationalised local part is refused and the domain comes in its IDNA `xn--` form.
    """
    address = (address or "").strip()
    if not address or len(address) > MAX_ADDRESS_CHARS or _LINE_BREAK.search(address):
        return None
    # imported here: email-validator pulls in dnspython, which `mail-gateway --help` and the
    # config loader of every CLI command should not pay for
    from email_validator import EmailNotValidError, validate_email

    try:
        info = validate_email(
            address,
            check_deliverability=False,
            allow_smtputf8=not ascii_only,
            test_environment=True,
        )
    except (EmailNotValidError, ValueError, TypeError, UnicodeError):
        return None
    local, _, domain = address.rpartition("@")
    return f"{local}@{info.ascii_domain if ascii_only else domain.lower()}"


def validate_address(address: str, name: str = "") -> Address | None:
    """A validated Address (see checked_email) with its display name on one line, or None.

    A display name holding CR or LF (an encoded word can smuggle them in) rejects the
    address: such a header was crafted, not written.
    """
    if _LINE_BREAK.search(name or ""):
        return None
    email = checked_email(address)
    if email is None:
        return None
    return Address(email=email, name=" ".join((name or "").split()))


def address_key(email: str) -> str:
    """The form in which addresses are compared and indexed: the whole address lower-cased.

    str.lower, not casefold: participants and rate-limit rows written before addresses kept
    their case hold `address.lower()`, and a key must keep matching them.
    """
    return (email or "").strip().lower()
