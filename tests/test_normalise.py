"""Line-ending normalisation and the intake key (pure functions)."""

from __future__ import annotations

import pytest

from gateway.intake.imap_client import Fetched
from gateway.intake.routing import Routes
from gateway.mail.normalise import (
    header_block_size,
    header_message_id,
    intake_key,
    message_id_of,
    normalise,
)
from gateway.mail.parse import parse_mail


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        # a CRLF mail: bare LF/CR in the header block fold into the header, never split it
        (
            b"A: 1\r\nSubject: x\nBcc: y\r\n\r\nbody\r\n",
            b"A: 1\r\nSubject: x Bcc: y\r\n\r\nbody\r\n",
        ),
        (b"A: 1\r\nSubject: x\rBcc: y\r\n\r\nb\r\n", b"A: 1\r\nSubject: x Bcc: y\r\n\r\nb\r\n"),
        # ... and in the body become line ends
        (
            b"A: 1\r\nB: 2\r\n\r\none\ntwo\rthree\r\n",
            b"A: 1\r\nB: 2\r\n\r\none\r\ntwo\r\nthree\r\n",
        ),
        # an LF-only mail (a file, a broken client) is converted as it is
        (b"A: 1\nB: 2\n\nbody\n", b"A: 1\r\nB: 2\r\n\r\nbody\r\n"),
        # an LF mail with one CRLF header prepended by a relay is still an LF mail
        (
            b"Received: x\r\nA: 1\nB: 2\nC: 3\n\nbody\n",
            b"Received: x\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\nbody\r\n",
        ),
        # NUL bytes are removed
        (b"A: 1\x00\r\n\r\nb\x00ody\r\n", b"A: 1\r\n\r\nbody\r\n"),
    ],
)
def test_normalise(raw: bytes, expected: bytes):
    assert normalise(raw) == expected


def test_intake_key_uses_message_id_or_derives_one():
    mid, digest = intake_key(b"Message-ID: <abc@x.test>\r\nSubject: s\r\n\r\nbody\r\n")
    assert mid == "abc@x.test" and len(digest) == 64
    mid1, d1 = intake_key(b"Subject: s\r\n\r\nbody\r\n")
    mid2, d2 = intake_key(b"Subject: s\r\n\r\nbody\r\n")
    assert mid1 == mid2 and mid1.endswith("@derived.invalid") and d1 == d2
    assert intake_key(b"Subject: s\r\n\r\nother\r\n")[0] != mid1
    # a Message-ID folded onto the next line is still found
    assert intake_key(b"Message-ID:\r\n <folded@x.test>\r\n\r\nb\r\n")[0] == "folded@x.test"
    # but one in the body is not a header
    assert intake_key(b"Subject: s\r\n\r\nMessage-ID: <body@x.test>\r\n")[0] != "body@x.test"


def test_intake_key_ignores_trace_headers_added_by_hops():
    mail = b"From: a@x.test\r\nMessage-ID: <m@x.test>\r\nSubject: s\r\n\r\nbody\r\n"
    hopped = (
        b"Return-Path: <a@x.test>\r\nDelivered-To: support@example.com\r\n"
        b"Received: from mx.x.test\r\n  by imap.example.com; Tue, 24 Nov 2026\r\n" + mail
    )
    assert intake_key(hopped) == intake_key(mail)
    changed = mail.replace(b"Subject: s", b"Subject: t")
    assert intake_key(changed)[1] != intake_key(mail)[1]


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (b"Message-ID: <a.b@x.test>", "a.b@x.test"),
        (b"message-id:\t<short>", "short"),  # no @: still the key the store has
        (b"Message-ID: bare@x.test", None),  # brackets are required
        (b"Message-ID: <with space@x.test>", None),
        (b"Message-ID: <" + b"x" * 251 + b">", None),
        (b"Message-ID: <caf\xc3\xa9@x.test>", None),  # not ASCII
        (b"Message-ID: junk\r\nMessage-ID: <second@x.test>", "second@x.test"),
    ],
)
def test_one_message_id_rule_for_intake_parse_and_imap(head: bytes, expected: str | None):
    mail = head + b"\r\nFrom: a@x.test\r\nSubject: s\r\n\r\nbody\r\n"
    assert header_message_id(mail) == expected
    mid, digest = intake_key(mail)
    assert mid == message_id_of(mail) == (expected or f"{digest[:32]}@derived.invalid")
    # parse gives the id the store keys on (it no longer needs overwriting in process_mail)
    assert parse_mail(mail).message_id == mid
    assert parse_mail(mail.replace(b"\r\n", b"\n")).message_id == mid
    # the IMAP poller's pre-fetch check reads the same rule from a HEADER.FIELDS literal
    literal = head.split(b"\r\n")[-1 if expected == "second@x.test" else 0] + b"\r\n\r\n"
    assert Fetched(uid=1, size=1, data=literal).message_id == (expected or "")


def test_derived_message_id_ignores_trace_headers():
    mail = b"From: a@x.test\r\nSubject: no id\r\n\r\nbody\r\n"
    fetched_again = b"Received: from mx by imap; Tue, 24 Nov 2026\r\n" + mail
    assert message_id_of(fetched_again) == message_id_of(mail)
    assert parse_mail(fetched_again).message_id == parse_mail(mail).message_id
    assert header_message_id(b"Subject: s\r\n\r\nMessage-ID: <body@x.test>\r\n") is None


def test_header_block_size():
    assert header_block_size(b"A: 1\r\nB: 2\r\n\r\nbody") == len(b"A: 1\r\nB: 2")
    assert header_block_size(b"A: 1\r\nB: 2") == len(b"A: 1\r\nB: 2")


def test_routes():
    r = Routes(frozenset({"support@example.com"}), frozenset({"help.example.org"}))
    assert r.mailbox_for("Support@Example.com") == "support@example.com"
    assert r.mailbox_for("support+abcdefghij@example.com") == "support@example.com"
    assert r.mailbox_for("x@help.example.org") == "x@help.example.org"
    assert r.mailbox_for("support@example.com.evil.test") is None
    assert r.mailbox_for("other@example.com") is None
    assert r.mailbox_for("support@example.com\r\nRCPT TO:<x@y>") is None
    assert r.mailbox_for("") is None
