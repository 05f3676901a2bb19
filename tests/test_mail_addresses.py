"""One address validation (addresses.py) and one comparison key.

The local part keeps its case (RFC 5321 §2.4), the domain is lower-cased; everything that
compares addresses goes through address_key, and rows written when addresses were stored
lower-cased keep matching.
"""

from __future__ import annotations

import asyncio
import smtplib
import time

import pytest

from gateway.addresses import address_key, checked_email, validate_address
from gateway.config import AssistantSettings, SignatureSettings
from gateway.errors import ComposeError
from gateway.jobs.assist import load_state
from gateway.mail.compose import checked_address
from gateway.mail.ids import mailbox_and_token
from gateway.mail.parse import parse_mail
from gateway.mail.signatures import choose_signature
from gateway.models import Address, Lookup
from gateway.store.mail import find_conversation

from conftest import make_mail, wait_processed


@pytest.mark.parametrize(
    ("written", "kept"),
    [
        ("Bob.Smith@Example.COM", "Bob.Smith@example.com"),
        ("  alice@customer.test ", "alice@customer.test"),
        ("Üser@Bücher.Example", "Üser@bücher.example"),  # SMTPUTF8 senders are kept
        ("x@xn--bcher-kva.example", "x@xn--bcher-kva.example"),  # domain as written
    ],
)
def test_local_part_keeps_its_case_domain_is_lower_cased(written: str, kept: str) -> None:
    assert checked_email(written) == kept
    found = validate_address(written, "Bob\t Smith")
    assert found == Address(email=kept, name="Bob Smith")
    # the key is what lower-casing the whole address always gave: old rows keep matching
    assert address_key(kept) == written.strip().lower()


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "not-an-address",
        "a@b@customer.test",
        "alice@customer.test\r\nBcc: evil@x.test",
        "alice\n@customer.test",
        "alice@customer.test\x00",
        "Alice <alice@customer.test>",
        "alice@customer.test, evil@x.test",
        '"quoted local"@customer.test',
        "a" * 300 + "@customer.test",
        "bob@localhost",
    ],
)
def test_invalid_addresses_are_refused_everywhere(bad: str) -> None:
    assert checked_email(bad) is None
    assert validate_address(bad) is None
    with pytest.raises(ComposeError):
        checked_address(bad, "customer address")


def test_display_name_with_a_line_break_rejects_the_address() -> None:
    assert validate_address("a@customer.test", "Eve\r\nBcc: x@evil.test") is None


def test_outgoing_addresses_are_ascii_with_the_case_kept() -> None:
    # compose: the same validation, ASCII only (we send without SMTPUTF8)
    assert checked_address("Bob.Smith@Example.COM", "customer") == "Bob.Smith@example.com"
    assert checked_address("x@Bücher.example", "customer") == "x@xn--bcher-kva.example"
    with pytest.raises(ComposeError, match="customer address"):
        checked_address("Üser@bücher.example", "customer address")


def test_parse_keeps_case_and_dedupes_by_key() -> None:
    raw = (
        b"From: Bob Smith <Bob.Smith@Example.COM>\r\n"
        b"To: support@example.com, Support@EXAMPLE.com\r\n"
        b"Delivered-To: Support+abcdefghij@Example.com\r\n"
        b"Subject: s\r\nMessage-ID: <m@x.test>\r\n\r\nbody\r\n"
    )
    mail = parse_mail(raw)
    assert mail.sender == Address(email="Bob.Smith@example.com", name="Bob Smith")
    assert [a.email for a in mail.to] == ["support@example.com"]
    assert mail.delivered_to == ["support+abcdefghij@example.com"]  # keys, for token routing


def test_comparisons_ignore_case() -> None:
    assert mailbox_and_token("Support+ABCDEFGHIJ@Example.com") == (
        "support@example.com",
        "abcdefghij",
    )
    sigs = SignatureSettings(domains={"example.com": "Acme"})
    assert choose_signature("Rep@EXAMPLE.com", sigs).text == "Acme"


async def _send(gw, raw: bytes, sender: str) -> None:
    def go() -> None:
        with smtplib.SMTP("127.0.0.1", gw.smtp_port, timeout=10) as s:
            s.sendmail(sender, ["support@example.com"], raw)

    await asyncio.to_thread(go)


async def test_bob_keeps_his_case_and_a_lower_case_reply_joins_his_conversation(gateway):
    first = make_mail(
        sender="Bob Smith <Bob.Smith@Example.COM>",
        to="support@example.com",
        message_id="bob1@example.com",
        extra_headers="Cc: Support@Example.com, Carol@Example.COM",
    )
    await _send(gateway, first, "Bob.Smith@Example.COM")
    await wait_processed(gateway, 1)
    conv_id, token, customer = await gateway.store.read(
        lambda db: db.execute("SELECT id, token, customer_email FROM conversations").fetchone()
    )
    assert customer == "Bob.Smith@example.com"  # replies go to the address as Bob wrote it
    people = await gateway.store.read(
        lambda db: db.execute(
            "SELECT email, role FROM participants WHERE conversation_id = ? ORDER BY email",
            [conv_id],
        ).fetchall()
    )
    # keys, and the support address in Cc (whatever its case) is no participant
    assert people == [("bob.smith@example.com", "customer"), ("carol@example.com", "cc")]

    # no In-Reply-To, only the [#TOKEN] in the subject: it needs Bob to be a participant
    reply = make_mail(
        sender="bob.smith@example.com",
        subject=f"[#{token}] one more thing",
        message_id="bob2@example.com",
    )
    await _send(gateway, reply, "bob.smith@example.com")
    await wait_processed(gateway, 2)
    rows = await gateway.store.read(
        lambda db: db.execute("SELECT conversation_id FROM messages ORDER BY id").fetchall()
    )
    assert rows == [(conv_id,), (conv_id,)]


async def test_old_lower_cased_rows_still_match(store) -> None:
    """Rows written before addresses kept their case hold the address lower-cased."""

    def setup(db):
        conv = db.execute(
            "INSERT INTO conversations (token, mailbox, subject, customer_email, status) "
            "VALUES ('abcdefghij', 'support@example.com', 's', 'bob.smith@example.com', 'open')"
        ).lastrowid
        db.execute(
            "INSERT INTO participants (conversation_id, email, role) VALUES (?, ?, 'customer')",
            [conv, "bob.smith@example.com"],
        )
        db.execute(
            "INSERT INTO messages (conversation_id, direction, message_id, annotations) "
            "VALUES (?, 'in', 'old@example.com', '[]')",
            [conv],
        )
        db.execute(
            "INSERT INTO assistant_decisions (conversation_id, message_row_id, sender, action, "
            "created_ts) VALUES (?, 0, 'bob.smith@example.com', 'reply', ?)",
            [conv, time.time()],
        )
        # a newer conversation of Bob's, stored with the case he wrote
        new = db.execute(
            "INSERT INTO conversations (token, mailbox, subject, customer_email, status) "
            "VALUES ('klmnopqrst', 'support@example.com', 's', 'Bob.Smith@example.com', 'open')"
        ).lastrowid
        message = db.execute(
            "INSERT INTO messages (conversation_id, direction, message_id, annotations) "
            "VALUES (?, 'in', 'new@example.com', '[]')",
            [new],
        ).lastrowid
        return conv, new, message

    conv, new, message = await store.write(setup)
    lookup = Lookup("token", "abcdefghij", needs_participant=True, step="subject token")
    found = await store.read(
        lambda db: find_conversation(db, "support@example.com", [lookup], "Bob.Smith@example.com")
    )
    assert found == (conv, "subject token")
    state = await store.read(lambda db: load_state(db, new, message, AssistantSettings()))
    assert state is not None and state.sender_replies == 1  # the old row counts for Bob
