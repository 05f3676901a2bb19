"""Composition of replies: threading headers, subject, header injection, HTML, signatures;
the reply's thread context as production reads it from the store (RFC 5322 §3.6.4)."""

from __future__ import annotations

import email
import email.policy
import json
from datetime import UTC, datetime

import pytest

from gateway.config import SignatureSettings
from gateway.errors import ComposeError, NotFound
from gateway.mail.compose import (
    MAX_REFERENCES,
    Conversation,
    OutgoingAttachment,
    compose_reply,
    reply_subject,
)
from gateway.mail.htmltext import html_to_text
from gateway.mail.ids import token_from_own_message_id
from gateway.mail.render import markdown_to_html, sanitise_html
from gateway.mail.signatures import choose_signature
from gateway.store.db import Store
from gateway.store.deliveries import thread_context
from gateway.store.mail import record_outgoing

SECRET = b"test-secret"
HOST = "gw.example.com"
SIGS = SignatureSettings(
    default="--\nExample Support",
    domains={
        "example.com": "--\nExample HQ",
        "*.example.com": "--\nExample (regional)",
        "*.eu.example.com": "--\nExample Europe",
        "partner.test": "--\nPartner desk",
    },
    html={"partner.test": "<p>Partner <b>desk</b><script>alert(1)</script></p>"},
)


def conv(**kw) -> Conversation:
    base = {
        "token": "abcde12345",
        "mailbox": "support@example.com",
        "subject": "Help with my order",
        "customer_email": "alice@customer.test",
        "customer_name": "Alice Customer",
        "last_message_id": "m2@customer.test",
        "references": ("m1@customer.test", "abcde12345.x.y@gw.example.com"),
    }
    base.update(kw)
    return Conversation(**base)


def compose(c: Conversation | None = None, **kw):
    args = {
        "body": "Hello Alice,\n\nyour order **12345** ships today.",
        "body_format": "markdown",
        "author_name": "Bob Rep",
        "author_email": "bob@example.com",
        "signatures": SIGS,
        "secret": SECRET,
        "hostname": HOST,
        "from_name": "Example Support",
    }
    args.update(kw)
    return compose_reply(c or conv(), **args)


def parse(raw: bytes):
    return email.message_from_bytes(raw, policy=email.policy.default)


def parts(msg) -> dict[str, str]:
    return {
        p.get_content_type(): p.get_content().replace("\r\n", "\n")
        for p in msg.walk()
        if p.get_content_type() in ("text/plain", "text/html")
    }


def test_threading_headers_and_own_message_id():
    mail = compose()
    msg = parse(mail.raw)
    assert msg["In-Reply-To"] == "<m2@customer.test>"
    assert msg["References"].split() == [
        "<m1@customer.test>",
        "<abcde12345.x.y@gw.example.com>",
        "<m2@customer.test>",
    ]
    assert msg["Message-ID"] == f"<{mail.message_id}>"
    assert token_from_own_message_id(SECRET, HOST, mail.message_id) == "abcde12345"
    assert msg["From"].addresses[0].addr_spec == "support@example.com"
    assert msg["From"].addresses[0].display_name == "Example Support"
    assert msg["To"].addresses[0].addr_spec == "alice@customer.test"
    assert msg["Reply-To"].addresses[0].addr_spec == "support+abcde12345@example.com"
    assert msg["X-Loop"] == HOST
    assert msg["Date"].datetime.tzinfo is not None
    assert mail.mail_from == "support+abcde12345@example.com"
    assert mail.rcpts == ("alice@customer.test",)
    assert b"\r\n" in mail.raw and b"\n" not in mail.raw.replace(b"\r\n", b"")


def test_long_message_ids_are_never_encoded_words():
    long_id = "A" * 90 + ".outlook@namprd01.prod.outlook.example.com"
    mail = compose(
        conv(last_message_id=f"<{long_id}>", references=[f"r{i}@x.test" for i in 30 * [0]])
    )
    head = mail.raw.split(b"\r\n\r\n")[0]
    assert b"=?" not in head
    msg = parse(mail.raw)
    assert msg["In-Reply-To"] == f"<{long_id}>"
    for line in head.split(b"\r\n"):
        assert len(line) <= 998


def test_references_capped_keeping_root_and_newest_and_in_reply_to_last():
    refs = [f"m{i}@customer.test" for i in range(50)]
    mail = compose(conv(references=refs, last_message_id="last@customer.test"))
    ids = parse(mail.raw)["References"].split()
    assert len(ids) == MAX_REFERENCES
    assert ids[0] == "<m0@customer.test>"
    assert ids[-2] == "<m49@customer.test>"
    assert ids[-1] == "<last@customer.test>"


def test_invalid_ids_dropped_not_copied():
    mail = compose(
        conv(
            last_message_id="ok@customer.test",
            references=["bad id@x.test", "x\r\nBcc: evil@x.test", "<fine@x.test>"],
        )
    )
    msg = parse(mail.raw)
    assert msg["References"].split() == ["<fine@x.test>", "<ok@customer.test>"]
    assert msg["Bcc"] is None


async def thread(
    store: Store, mails: list[tuple[str, str, list[str], list[str]]], token: str = "abcde12345"
) -> int:
    """A conversation of (direction, Message-ID, In-Reply-To, References), oldest first."""

    def add(db) -> int:
        cid = db.execute(
            "INSERT INTO conversations (token, mailbox, subject, customer_email, customer_name,"
            " status, created_at, updated_at, last_message_at, message_count) VALUES "
            "(?, 'support@example.com', 'Order', 'alice@customer.test', 'Alice',"
            " 'open', 'now', 'now', 'now', 0)",
            [token],
        ).lastrowid
        for direction, mid, irt, refs in mails:
            if direction == "out":
                record_outgoing(
                    db,
                    conversation_id=cid,
                    message_id=mid,
                    subject="Re: Order",
                    text="ok",
                    in_reply_to=irt,
                    references=refs,
                )
                continue
            db.execute(
                "INSERT INTO messages (conversation_id, direction, message_id, in_reply_to, "
                "references_, subject) VALUES (?, 'in', ?, ?, ?, 'Order')",
                [cid, mid, json.dumps(irt), json.dumps(refs)],
            )
        return cid

    return await store.write(add)


async def reply_headers(store: Store, cid: int) -> tuple[str | None, list[str]]:
    """In-Reply-To and References of a reply composed the production way."""
    ctx = await store.read(lambda db: thread_context(db, cid))
    msg = parse(compose(ctx).raw)
    return msg["In-Reply-To"], (msg["References"] or "").split()


async def test_thread_context_follows_the_parents_references(store):
    # the customer answered our first reply; then we sent a second one (not an ancestor)
    cid = await thread(
        store,
        [
            ("in", "m1@customer.test", [], []),
            ("out", "r1@gw.example.com", ["m1@customer.test"], ["m1@customer.test"]),
            (
                "in",
                "m2@customer.test",
                ["r1@gw.example.com"],
                ["m1@customer.test", "r1@gw.example.com"],
            ),
            ("out", "r2@gw.example.com", ["m2@customer.test"], ["m1@customer.test"]),
        ],
    )
    irt, refs = await reply_headers(store, cid)
    assert irt == "<m2@customer.test>"
    assert refs == ["<m1@customer.test>", "<r1@gw.example.com>", "<m2@customer.test>"]
    ctx = await store.read(lambda db: thread_context(db, cid))
    assert (ctx.token, ctx.mailbox, ctx.customer_email) == (
        "abcde12345",
        "support@example.com",
        "alice@customer.test",
    )


async def test_thread_context_without_references_uses_a_single_in_reply_to(store):
    one = await thread(store, [("in", "m2@customer.test", ["m1@customer.test"], [])])
    assert await reply_headers(store, one) == (
        "<m2@customer.test>",
        ["<m1@customer.test>", "<m2@customer.test>"],
    )
    # two ids in In-Reply-To say nothing certain about the line of descent (RFC 5322 §3.6.4)
    two = await thread(
        store, [("in", "m3@customer.test", ["a@x.test", "b@x.test"], [])], token="fghij67890"
    )
    assert await reply_headers(store, two) == ("<m3@customer.test>", ["<m3@customer.test>"])


async def test_thread_context_of_an_unknown_conversation(store):
    with pytest.raises(NotFound):
        await store.read(lambda db: thread_context(db, 999))


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        ("Help with my order", "Re: Help with my order"),
        ("Re: Help", "Re: Help"),
        ("RE: Re: AW: Fwd: Help", "Re: Help"),
        ("Re[2]: SV: Help", "Re: Help"),
        ("", "Re: (no subject)"),
        ("[#abcde12345] Re: Help", "Re: Help"),
    ],
)
def test_subject_never_stacks(subject, expected):
    assert reply_subject(subject) == expected
    assert parse(compose(conv(subject=subject)).raw)["Subject"] == expected


def test_crlf_injection_in_subject_and_name_is_neutralised():
    mail = compose(
        conv(
            subject="Hi\r\nBcc: victim@evil.test\r\n\r\n<html>",
            customer_name="Alice\r\nBcc: victim@evil.test",
        ),
        from_name="Support\nX-Evil: 1",
    )
    msg = parse(mail.raw)
    head = mail.raw.split(b"\r\n\r\n")[0].decode()
    assert msg["Bcc"] is None and msg["X-Evil"] is None
    assert "\nBcc:" not in head and "\nX-Evil" not in head
    assert msg["Subject"].startswith("Re: Hi Bcc: victim@evil.test")
    assert msg["To"].addresses[0].addr_spec == "alice@customer.test"
    assert mail.rcpts == ("alice@customer.test",)


@pytest.mark.parametrize(
    "address",
    [
        "alice@customer.test\r\nBcc: evil@x.test",
        "alice@customer.test, evil@x.test",
        "Alice <alice@customer.test>",
        "not-an-address",
        "",
        "a@b@customer.test",
    ],
)
def test_bad_customer_address_is_refused(address):
    with pytest.raises(ComposeError):
        compose(conv(customer_email=address))


def test_bad_mailbox_is_refused():
    with pytest.raises(ComposeError):
        compose(conv(mailbox="support@example.com\nBcc: x@y.test"))


def test_rep_html_is_sanitised_and_has_text_alternative():
    body = (
        '<p onclick="steal()">Hi <b>Alice</b>,</p><script>alert(1)</script>'
        '<p style="x">See <a href="javascript:alert(1)">this</a> and '
        '<a href="https://example.com/faq">the FAQ</a>.</p><img src=x onerror=alert(1)>'
        "<ul><li>one</li><li>two</li></ul>"
    )
    mail = compose(body=body, body_format="html", author_email="bob@partner.test")
    p = parts(parse(mail.raw))
    html, text = p["text/html"], p["text/plain"]
    for bad in ("script", "onclick", "onerror", "javascript:", "style="):
        assert bad not in html
    assert "<b>Alice</b>" in html and 'href="https://example.com/faq"' in html
    assert "Hi Alice," in text
    assert "the FAQ <https://example.com/faq>" in text
    assert "- one\n- two" in text
    assert "alert" not in text
    # the partner.test HTML signature is sanitised too, and its text derived from it
    assert "Partner <b>desk</b>" in html and "alert" not in html
    assert text.rstrip().endswith("Partner desk")


def test_markdown_body_and_signature_in_both_parts():
    mail = compose()
    msg = parse(mail.raw)
    assert msg.get_content_type() == "multipart/alternative"
    p = parts(msg)
    assert "<strong>12345</strong>" in p["text/html"]
    assert "Example HQ" in p["text/html"] and "Example HQ" in p["text/plain"]
    assert p["text/plain"].startswith("Hello Alice,")
    assert mail.text == p["text/plain"]


def test_signature_html_escapes_text_signatures():
    sigs = SignatureSettings(default="--\n<script>alert(1)</script> & Co")
    mail = compose(signatures=sigs, author_email="x@other.test")
    html = parts(parse(mail.raw))["text/html"]
    assert "<script>" not in html and "&lt;script&gt;" in html and "&amp; Co" in html


def test_auto_headers_only_for_automatic_mail():
    auto = parse(compose(auto=True).raw)
    assert auto["Auto-Submitted"] == "auto-replied"
    assert auto["X-Auto-Response-Suppress"] == "All"
    manual = parse(compose().raw)
    assert manual["Auto-Submitted"] is None and manual["X-Auto-Response-Suppress"] is None


def test_attachments_make_multipart_mixed():
    atts = [
        OutgoingAttachment("invoice.pdf", "application/pdf", b"%PDF-1.4 data"),
        OutgoingAttachment("../../etc/pa\r\nsswd", "text/x-bad type", b"hello"),
    ]
    msg = parse(compose(attachments=atts).raw)
    assert msg.get_content_type() == "multipart/mixed"
    files = list(msg.iter_attachments())
    assert files[0].get_filename() == "invoice.pdf"
    assert files[0].get_content() == b"%PDF-1.4 data"
    assert "/" not in files[1].get_filename() and "\n" not in files[1].get_filename()
    assert files[1].get_content_type() == "application/octet-stream"
    body = msg.get_body(("html", "plain"))
    assert body is not None and "12345" in body.get_content()


def test_fixed_date():
    d = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
    assert parse(compose(date=d).raw)["Date"].datetime == d


@pytest.mark.parametrize(
    ("sender", "why", "text"),
    [
        ("bob@example.com", 'exact domain "example.com"', "Example HQ"),
        ("ann@sales.example.com", 'wildcard "*.example.com"', "Example (regional)"),
        ("ann@fr.eu.example.com", 'wildcard "*.eu.example.com"', "Example Europe"),
        ("ann@eu.example.com", 'wildcard "*.example.com"', "Example (regional)"),
        ("Bob@EXAMPLE.COM", 'exact domain "example.com"', "Example HQ"),
        ("rep@partner.test", 'exact domain "partner.test"', "Partner desk"),
        ("rep@notexample.com", "default", "Example Support"),
        ("rep@other.test", "default", "Example Support"),
        ("", "default", "Example Support"),
    ],
)
def test_signature_choice(sender, why, text):
    sig = choose_signature(sender, SIGS)
    assert sig.why == why
    assert text in sig.text
    _t, h, w = sig
    assert w == why and text.split()[0] in h


def test_no_signature_configured():
    sig = choose_signature("a@b.test", SignatureSettings())
    assert sig.text == "" and sig.html == "" and sig.why.startswith("none")


def test_render_helpers():
    assert "<script" not in markdown_to_html("hi <script>x()</script>")
    assert sanitise_html('<a href="https://x.test" onclick="y">z</a>') == (
        '<a href="https://x.test" rel="noopener noreferrer">z</a>'
    )
    assert html_to_text("<blockquote><p>quoted</p></blockquote><p>new</p>") == "> quoted\n\nnew"
