"""Every mail-like file of the shared corpora survives parse_mail + classify, in bounded time."""

from __future__ import annotations

import re
import time
from collections import Counter

import pytest

from gateway.mail.parse import parse_mail
from gateway.models import NO_AUTOMATION, Address, Attachment, ParsedMail
from gateway.pipeline.classify import bounced_message_ids, classify

from helpers.corpora import mail_files


def _check_types(mail: ParsedMail) -> None:
    assert isinstance(mail.message_id, str) and mail.message_id and "<" not in mail.message_id
    assert all(isinstance(i, str) and "<" not in i for i in mail.in_reply_to + mail.references)
    assert len(mail.references) <= 100
    assert isinstance(mail.subject, str) and "\n" not in mail.subject
    for addr in [mail.sender, mail.reply_to, mail.forwarded_from, *mail.to, *mail.cc]:
        if addr is not None:
            assert isinstance(addr, Address) and "@" in addr.email
            assert not re.search(r"[\r\n]", addr.email + addr.name)
            assert addr.email.split("@")[1] == addr.email.split("@")[1].lower()
    assert all(d == d.lower() and "@" in d for d in mail.delivered_to)
    assert mail.date == "" or re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", mail.date)
    for text in (mail.text, mail.html, mail.new_text, mail.subject):
        assert isinstance(text, str)
        text.encode("utf-8")  # no lone surrogates
    assert len(mail.text) <= 1_100_000
    for att in mail.attachments:
        assert isinstance(att, Attachment) and isinstance(att.data, bytes)
        assert att.size == len(att.data) and "<" not in att.content_id
    assert isinstance(mail.headers, dict) and len(mail.headers) <= 64
    assert all(isinstance(d, str) for d in mail.defects)


def test_corpora_parse_and_classify(capsys: pytest.CaptureFixture[str]) -> None:
    files = mail_files()
    assert len(files) > 300, "the corpora README promises ~450 files"
    started = time.monotonic()
    with_defects = 0
    found: Counter[str] = Counter()
    for path in files:
        raw = re.sub(rb"\r\n|\r|\n", b"\r\n", path.read_bytes())
        mail = parse_mail(raw)
        annotations = classify(mail, envelope_from=None, own_domain="acme.example")
        _check_types(mail)
        assert isinstance(annotations, frozenset) and annotations <= NO_AUTOMATION, path
        ids = bounced_message_ids(mail, raw)
        assert isinstance(ids, list) and all(isinstance(i, str) for i in ids)
        with_defects += bool(mail.defects)
        found.update(annotations)
    elapsed = time.monotonic() - started  # reported, not asserted: speed is measured in bench/
    # The corpora hold real bounces and auto-replies: the classifier must find them.
    assert found["bounce"] >= 9 and found["auto_reply"] >= 2
    with capsys.disabled():
        print(
            f"\ncorpora: {len(files)} mails, {with_defects} with defects, {elapsed:.1f}s, "
            f"annotations {dict(sorted(found.items()))}"
        )
