"""parse_mail: real-shaped mails in, ParsedMail out, never an exception."""

from __future__ import annotations

import base64
import re
from email import policy
from email.parser import BytesParser

import pytest

from gateway.addresses import address_key
from gateway.mail.htmltext import html_to_text
from gateway.mail.normalise import intake_key, message_id_of, normalise
from gateway.mail.parse import parse_mail


def crlf(text: str | bytes) -> bytes:
    """What the SMTP layer hands to parse_mail: bare LF and bare CR normalised to CRLF."""
    data = text.encode("utf-8") if isinstance(text, str) else text
    return re.sub(rb"\r\n|\r|\n", b"\r\n", data)


GMAIL_REPLY = """\
Return-Path: <anna.meier@gmail.com>
Delivered-To: support@acme.example
X-Original-To: Support+T42@acme.example
MIME-Version: 1.0
Date: Tue, 3 Sep 2024 10:15:02 +0200
References: <first.1@acme.example>
 <CAJx8=abc123@mail.gmail.com>,<reply.2@acme.example>
In-Reply-To: <reply.2@acme.example>
Message-ID: <CAJx8=def456@mail.gmail.com>
Subject: Re: Invoice 2024-117 is wrong
From: Anna Meier <Anna.Meier@GMAIL.com>
To: ACME Support <support@acme.example>
Content-Type: multipart/alternative; boundary="000000000000a1b2c3"

--000000000000a1b2c3
Content-Type: text/plain; charset="UTF-8"

Hi,

the amount is still 120 EUR instead of 100 EUR. Can you fix it?

--
Anna Meier
Head of Purchasing

On Mon, Sep 2, 2024 at 4:01 PM ACME Support <support@acme.example> wrote:

> Hello Anna,
> we corrected the invoice.
>

--000000000000a1b2c3
Content-Type: text/html; charset="UTF-8"

<div dir="ltr">Hi,<br><br>the amount is still 120 EUR instead of 100 EUR.</div>

--000000000000a1b2c3--
"""


def test_gmail_reply_threading_and_new_text() -> None:
    mail = parse_mail(crlf(GMAIL_REPLY))
    assert mail.message_id == "CAJx8=def456@mail.gmail.com"
    assert mail.in_reply_to == ["reply.2@acme.example"]
    assert mail.references == [
        "first.1@acme.example",
        "CAJx8=abc123@mail.gmail.com",
        "reply.2@acme.example",
    ]
    assert mail.sender is not None
    # the local part keeps its case (RFC 5321 §2.4), the domain is lower-cased; matching
    # goes through address_key
    assert mail.sender.email == "Anna.Meier@gmail.com"
    assert address_key(mail.sender.email) == "anna.meier@gmail.com"
    assert mail.sender.name == "Anna Meier"
    assert [a.email for a in mail.to] == ["support@acme.example"]
    assert mail.delivered_to == ["support@acme.example", "support+t42@acme.example"]
    assert mail.date == "2024-09-03T08:15:02Z"
    assert mail.subject == "Re: Invoice 2024-117 is wrong"
    assert "we corrected the invoice" in mail.text  # the full text keeps the history
    assert "120 EUR instead of 100 EUR" in mail.new_text
    assert "wrote:" not in mail.new_text
    assert "corrected" not in mail.new_text
    assert "Head of Purchasing" not in mail.new_text
    assert mail.html.startswith('<div dir="ltr">')
    assert mail.forwarded_from is None


OUTLOOK_REPLY = """\
From: "Berger, Tom" <tom.berger@contoso.example>
To: "support@acme.example" <support@acme.example>
Subject: AW: Ticket: printer offline
Date: Wed, 4 Sep 2024 07:01:10 +0000
Message-ID: <AM0PR10MB1234ABCD@AM0PR10MB1234.EURPRD10.PROD.OUTLOOK.COM>
In-Reply-To: <gw.77.1725000000@acme.example>
Thread-Index: AQHa/abc
Content-Type: text/plain; charset="iso-8859-1"
Content-Transfer-Encoding: quoted-printable
MIME-Version: 1.0

The printer still does not work after the restart. Gr=FC=DFe

From: ACME Support <support@acme.example>
Sent: Tuesday, September 3, 2024 5:00 PM
To: Berger, Tom <tom.berger@contoso.example>
Subject: Ticket: printer offline

Please restart the printer.
"""


def test_outlook_reply_in_reply_to_only_and_quote_header() -> None:
    mail = parse_mail(crlf(OUTLOOK_REPLY))
    assert mail.in_reply_to == ["gw.77.1725000000@acme.example"]
    assert mail.references == []
    assert "Grüße" in mail.text  # quoted-printable latin-1 decoded
    assert mail.new_text.startswith("The printer still does not work")
    assert "Please restart" not in mail.new_text
    assert "Sent:" not in mail.new_text
    assert mail.sender is not None and mail.sender.name == "Berger, Tom"
    assert mail.forwarded_from is None  # a reply, not a forward


PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)


def _inline_and_attachment_mail() -> bytes:
    png_b64 = base64.encodebytes(PNG).decode()
    pdf_b64 = base64.encodebytes(b"%PDF-1.4 fake").decode()
    return crlf(
        f"""\
From: Carla <carla@example.org>
To: support@acme.example
Subject: screenshot
Message-ID: <img.1@example.org>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="mixed"

--mixed
Content-Type: multipart/related; boundary="rel"

--rel
Content-Type: text/html; charset=utf-8

<p>See the error:</p><img src="cid:ii_lx1@example.org" alt="shot"><p>Thanks &amp; bye</p>
--rel
Content-Type: image/png; name="shot.png"
Content-Disposition: inline; filename="shot.png"
Content-Transfer-Encoding: base64
Content-ID: <ii_lx1@example.org>

{png_b64}
--rel--

--mixed
Content-Type: application/pdf; name="invoice.pdf"
Content-Disposition: attachment; filename="invoice.pdf"
Content-Transfer-Encoding: base64

{pdf_b64}
--mixed--
"""
    )


def test_inline_image_and_attachment() -> None:
    mail = parse_mail(_inline_and_attachment_mail())
    by_name = {a.filename: a for a in mail.attachments}
    image = by_name["shot.png"]
    assert image.content_id == "ii_lx1@example.org"
    assert image.inline is True
    assert image.content_type == "image/png"
    assert image.data == PNG and image.size == len(PNG)
    pdf = by_name["invoice.pdf"]
    assert pdf.inline is False and pdf.data == b"%PDF-1.4 fake"
    assert pdf.content_type == "application/pdf" and not pdf.undecodable
    # no text/plain part: the HTML is converted
    assert "See the error:" in mail.text and "Thanks & bye" in mail.text
    assert "<p>" not in mail.text


def test_unknown_charset_is_decoded_with_a_defect() -> None:
    raw = crlf(
        b"From: x@example.org\nSubject: =?x-unknown-42?Q?caf=E9?=\nMessage-ID: <u@example.org>\n"
        b"Content-Type: text/plain; charset=x-unknown-42\n\nCaf\xc3\xa9 ist ge\xc3\xb6ffnet\n"
    )
    mail = parse_mail(raw)
    assert "Café ist geöffnet" in mail.text
    assert any("charset" in d for d in mail.defects)
    assert isinstance(mail.subject, str)
    mail.subject.encode("utf-8")  # no lone surrogates survive


def test_undecodable_message_part_is_kept_raw() -> None:
    raw = crlf(
        """\
From: x@example.org
Subject: broken enclosure
Message-ID: <b@example.org>
Content-Type: multipart/mixed; boundary="b"

--b
Content-Type: text/plain

see attached
--b
Content-Type: message/rfc822

--b--
"""
    )
    mail = parse_mail(raw)
    assert mail.text.startswith("see attached")
    kept = [a for a in mail.attachments if a.content_type == "message/rfc822"]
    assert len(kept) == 1
    assert kept[0].undecodable is True
    assert any("message/rfc822" in d for d in mail.defects)


def test_header_injection_in_lf_only_subject_stays_one_header() -> None:
    # What Python does: its feed parser ends a header line at a bare CR as well as at LF, so
    # "Subject: x<CR>Bcc: y" yields a real Bcc header whether or not the SMTP layer normalised
    # bare CR/LF to CRLF first (checked below with the stdlib parser itself). parse_mail never
    # exposes Bcc: no field, no recipient, not in `headers`; the Subject is one clean line.
    injected = (
        b"From: a@example.org\nTo: support@acme.example\nSubject: x\rBcc: y@evil.example\n\nhi\n"
    )
    normalised = crlf(injected)
    assert b"Subject: x\r\nBcc: y@evil.example\r\n" in normalised
    assert BytesParser(policy=policy.default).parsebytes(normalised)["bcc"] == "y@evil.example"
    for raw in (injected, normalised):
        mail = parse_mail(raw)
        assert mail.subject == "x"
        assert [a.email for a in mail.to] == ["support@acme.example"] and mail.cc == []
        assert mail.sender is not None and mail.sender.email == "a@example.org"
        assert "evil" not in repr(mail.headers) and mail.reply_to is None

    # A folded continuation " Bcc: y" stays inside the Subject after normalisation: no Bcc header.
    folded = crlf(
        b"From: a@example.org\nTo: support@acme.example\nSubject: x\n Bcc: y@evil.example\n\nhi\n"
    )
    assert BytesParser(policy=policy.default).parsebytes(folded)["bcc"] is None
    mail = parse_mail(folded)
    assert mail.subject == "x Bcc: y@evil.example"
    assert [a.email for a in mail.to] == ["support@acme.example"] and mail.cc == []


def test_missing_message_id_is_derived_deterministically() -> None:
    lf = b"From: a@example.org\nSubject: no id\n\nbody\n"
    first = parse_mail(lf)
    second = parse_mail(crlf(lf))
    assert first.message_id == second.message_id == message_id_of(normalise(lf))
    assert first.message_id == intake_key(normalise(lf))[0]  # what the store keys on
    assert first.message_id.endswith("@derived.invalid")
    assert len(first.message_id.split("@")[0]) == 32
    assert parse_mail(lf + b"other\n").message_id != first.message_id
    garbage = parse_mail(b"Message-ID: \nFrom: a@example.org\n\nx")
    assert garbage.message_id.endswith("@derived.invalid")


def test_address_with_cr_lf_is_dropped() -> None:
    # Encoded words can smuggle CR/LF into a display name; Python then raises ValueError while
    # building the address list. Such names never survive; plain addresses are still recovered.
    raw = crlf(
        "From: Eve <eve@example.org>\n"
        "To: =?utf-8?q?x=0D=0ABcc=3A_victim=40example=2Ecom?= <ok@example.org>\n"
        "Cc: =?utf-8?q?a=0Ab?= <a@example.org>, good@Example.ORG\n"
        "Subject: s\n\nbody\n"
    )
    mail = parse_mail(raw)
    everyone = mail.to + mail.cc
    assert all("\r" not in a.email + a.name and "\n" not in a.email + a.name for a in everyone)
    assert "victim@example.com" not in [a.email for a in everyone]
    assert "good@example.org" in [a.email for a in mail.cc]
    assert any("to" in d.lower() and "ValueError" in d for d in mail.defects)
    bad_name = [a for a in everyone if a.email in ("ok@example.org", "a@example.org")]
    assert all(a.name == "" for a in bad_name)


@pytest.mark.timeout(30)  # unbounded work would take minutes; speed itself is bench/'s business
def test_header_bomb_parses_within_time() -> None:
    many = b"".join(b"X-Spam-%d: v\r\n" % i for i in range(100_000))
    bombs = [
        many + b"From: a@example.org\r\nSubject: bomb\r\n\r\nbody\r\n",
        b"Subject: " + b"A" * 10_000_000 + b"\r\nFrom: a@example.org\r\n\r\nbody\r\n",
        b"Content-Type: multipart/mixed; boundary=b0\r\n\r\n"
        + b"".join(
            b"--b%d\r\nContent-Type: multipart/mixed; boundary=b%d\r\n\r\n" % (i - 1, i)
            for i in range(1, 10_000)
        ),
        b"Content-Type: multipart/mixed; boundary=x\r\n\r\n"
        + b"--x\r\nContent-Type: text/plain\r\n\r\nhi\r\n" * 20_000,
    ]
    for raw in bombs:
        mail = parse_mail(raw)
        assert mail.defects, "the work-around must be recorded"
        assert len(mail.text) <= 1_000_000
        assert len(mail.headers) < 50


def test_forwarded_mail_original_sender() -> None:
    raw = crlf(
        """\
From: Petra Lang <petra.lang@acme-partner.example>
To: support@acme.example
Subject: Fwd: Broken delivery
Message-ID: <fwd.1@acme-partner.example>
Content-Type: text/plain; charset=utf-8

Can you look at this customer's problem?

---------- Forwarded message ---------
From: Jürgen Kunde <j.kunde@customer.example>
Date: Mon, 2 Sep 2024 at 09:12
Subject: Broken delivery
To: Petra Lang <petra.lang@acme-partner.example>

The parcel arrived damaged.
"""
    )
    mail = parse_mail(raw)
    assert mail.forwarded_from is not None
    assert mail.forwarded_from.email == "j.kunde@customer.example"
    assert mail.forwarded_from.name == "Jürgen Kunde"
    assert mail.sender is not None and mail.sender.email == "petra.lang@acme-partner.example"

    apple = crlf(
        "From: a@example.org\nSubject: Fwd: x\nContent-Type: text/plain\n\nFYI\n\n"
        "Begin forwarded message:\n\n> From: Bob <bob@example.net>\n> Subject: x\n\n> hello\n"
    )
    fwd = parse_mail(apple).forwarded_from
    assert fwd is not None and fwd.email == "bob@example.net"


def test_sender_fallbacks_and_bad_dates() -> None:
    mail = parse_mail(
        b"From: not an address\r\nReply-To: r@example.org\r\nDate: yesterday\r\n\r\nx"
    )
    assert mail.sender is not None and mail.sender.email == "r@example.org"
    assert mail.date == ""
    assert any("Date" in d for d in mail.defects)
    env = parse_mail(b"Subject: none\r\n\r\nx", envelope_from="bounce@Example.NET")
    assert env.sender is not None and env.sender.email == "bounce@example.net"


def test_references_cap_and_bare_tokens() -> None:
    refs = " ".join(f"<r{i}@example.org>" for i in range(250))
    head = f"From: a@example.org\r\nReferences: {refs}\r\nIn-Reply-To: bare@example.org\r\n"
    mail = parse_mail(head.encode() + b"\r\nx")
    assert len(mail.references) == 100
    assert mail.references[0] == "r150@example.org" and mail.references[-1] == "r249@example.org"
    assert mail.in_reply_to == ["bare@example.org"]


def test_never_raises_on_garbage() -> None:
    for raw in (b"", b"\x00\xff" * 1000, b":\r\n\r\n", b"Content-Type: multipart/mixed\r\n\r\n--"):
        mail = parse_mail(raw)
        assert mail.message_id.endswith("@derived.invalid")


def test_html_to_text_quotes_and_skips_scripts() -> None:
    text = html_to_text(
        "<html><head><style>p{}</style></head><body><p>Hello</p><script>x()</script>"
        "<blockquote><p>old text</p></blockquote><ul><li>one</li></ul></body></html>"
    )
    assert "Hello" in text and "x()" not in text and "p{}" not in text
    assert "> old text" in text
    assert "- one" in text


@pytest.mark.timeout(30)  # the quadratic case took ~110 s; no wall-clock assertion here
def test_reply_stripping_is_bounded_on_pathological_text() -> None:
    # mail-parser-reply's quote-header regexes are quadratic in the line length: 100 KB of
    # "On Mon wrote " on one line took ~110 s before long lines were parked.
    raw = b"From: a@example.org\r\nContent-Type: text/plain\r\n\r\n" + b"On Mon wrote " * 8000
    mail = parse_mail(raw)
    assert mail.new_text == mail.text.strip() and len(mail.text) > 100_000


def test_long_lines_survive_reply_stripping() -> None:
    long_line = "word " * 200
    body = f"{long_line}\n\nOn Mon, Sep 2, 2024 at 4:01 PM Bob <bob@example.org> wrote:\n> old\n"
    mail = parse_mail(crlf(f"From: a@example.org\nContent-Type: text/plain\n\n{body}"))
    assert mail.new_text == long_line.strip()
