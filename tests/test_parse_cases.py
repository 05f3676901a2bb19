"""Every customer mail readable (issue 14 items 1, 2, 4, 6): the field cases of ../shared/cases
(copied into tests/data/cases) with their right values, the kinds they stand for, and
properties: arbitrary bytes never crash the parser; a broken header never costs the subject,
the sender or the text."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.mail.parse import parse_mail
from gateway.models import ParsedMail
from gateway.pipeline.handoff import files_to_upload

CASES = Path(__file__).resolve().parent / "data" / "cases"


def crlf(data: bytes) -> bytes:
    """What the SMTP intake hands to the parser: line ends normalised to CRLF."""
    return re.sub(rb"\r\n|\r|\n", b"\r\n", data)


def case(name: str) -> ParsedMail:
    return parse_mail(crlf((CASES / f"{name}.eml").read_bytes()))


def files(mail: ParsedMail) -> list[tuple[str, str, bytes]]:
    return [(a.filename, a.content_type, a.data) for a in mail.attachments]


def meta(mail: ParsedMail) -> dict:
    """A stored message row's attachments, as the publish step selects from them."""
    return {
        "attachments": [
            {
                "filename": a.filename,
                "content_type": a.content_type,
                "size": a.size,
                "inline": a.inline,
                "undecodable": a.undecodable,
            }
            for a in mail.attachments
        ]
    }


# --------------------------------------------------------------------------- the field cases


def assert_readable(mail: ParsedMail, subject: str, sender: str, text: str) -> None:
    assert mail.subject == subject
    assert mail.sender is not None and mail.sender.email == sender
    assert mail.text == text
    assert mail.new_text == text  # nothing quoted in these: the whole text is new


def test_case_iso2022jp_body_without_charset_is_japanese_text():
    mail = case("charset-iso2022jp-body-no-charset")
    japanese = (
        "お世話になっております。\n"
        "請求書の送付先を変更したいのですが、手続きを教えてください。\n"
        "山本"
    )
    assert_readable(mail, "billing address change", "yamamoto@customer-jp.test", japanese)
    assert mail.attachments == []


def test_case_opaque_signed_smime_shows_its_text():
    mail = case("container-smime-opaque-signed")
    text = (
        "Hello support, the export button in the reports page does nothing since yesterday."
        " Could you check my account please?"
    )
    assert_readable(mail, "Reports export (signed)", "sam@signer.test", text)
    assert mail.attachments == []  # smime.p7m was the wrapper, not a customer file


def test_case_tnef_winmail_dat_body_and_files():
    mail = case("container-tnef-winmail-dat")
    text = "Please find the signed delivery note attached. Item 3 was damaged."
    assert_readable(mail, "Delivery note attached", "tom@customer.test", text)
    assert files(mail) == [
        ("delivery-note.txt", "text/plain", b"Delivery note 4711: item 3 damaged on arrival.\r\n")
    ]
    assert [f["filename"] for f in files_to_upload(meta(mail))] == ["delivery-note.txt"]


def test_case_inline_cid_image_without_disposition():
    mail = case("attachment-inline-cid-no-disposition")
    assert mail.subject == "Error message when paying"
    assert mail.text == "My card payment fails with the error in the screenshot below."
    assert "[cid:" not in mail.new_text
    (image,) = mail.attachments
    assert (image.filename, image.content_type, image.inline) == ("image001.png", "image/png", True)
    assert image.content_id == "image001.png@01DB4A2C.5E0F1A30"
    assert image.data.startswith(b"\x89PNG")
    assert [f["filename"] for f in files_to_upload(meta(mail))] == ["image001.png"]


def test_case_broken_rfc2231_parameter_costs_nothing_else():
    mail = case("structure-broken-rfc2231-parameter")
    text = "Please have a person check the attached quote before I pay the invoice."
    assert_readable(mail, "Quote attached", "petra@customer.test", text)
    assert mail.sender is not None and mail.sender.name == "Petra Param"
    assert mail.date == "2026-11-29T09:15:00Z"
    assert files(mail) == [("quote-2026.pdf", "application/pdf", b"%PDF-1.4 fake quote")]
    assert any("name*" in d for d in mail.defects)  # the damage is named


# --------------------------------------------------------------------------- charsets in mail


def mail_bytes(head: str | bytes, body: bytes, ctype: bytes = b"text/plain") -> bytes:
    head_b = head.encode() if isinstance(head, str) else head
    return crlf(
        b"From: Kunde <kunde@customer.test>\nTo: support@example.com\n"
        b"Message-ID: <c1@customer.test>\nMIME-Version: 1.0\n"
        + head_b
        + b"\nContent-Type: "
        + ctype
        + b"\n\n"
        + body
    )


@pytest.mark.parametrize(
    ("subject", "encoding", "label"),
    [
        ("Grüße aus Köln – Rechnung", "cp1252", b"iso-8859-1"),
        ("請求書の送付先について", "cp932", b"shift_jis"),
        ("关于发票的问题", "gbk", b"gb2312"),
        ("Grüße aus Köln", "utf-8", b"utf-8"),
    ],
)
def test_raw_8bit_subject_and_name_decoded_like_the_body(subject, encoding, label):
    raw = crlf(
        b"From: " + "Jürgen Groß".encode(encoding, "replace") + b" <j@customer.test>\n"
        b"To: support@example.com\nSubject: " + subject.encode(encoding) + b"\n"
        b"MIME-Version: 1.0\nContent-Type: text/plain; charset=" + label + b"\n\n"
        + subject.encode(encoding) + b"\n"
    )  # fmt: skip
    mail = parse_mail(raw)
    assert mail.subject == subject
    assert mail.text == subject
    assert mail.sender is not None and mail.sender.email == "j@customer.test"
    if encoding != "gbk" and encoding != "cp932":
        assert mail.sender.name == "Jürgen Groß"
    assert "\ufffd" not in mail.subject + mail.text + mail.sender.name


def test_encoded_words_python_leaves_undecoded_in_headers():
    gbk = base64.b64encode("关于发票 鎔".encode("gbk")).decode()
    ks = base64.b64encode("김철수".encode("cp949")).decode()
    raw = crlf(
        f"From: =?ks_c_5601-1987?B?{ks}?= <kim@customer.test>\n"
        f"To: support@example.com\nSubject: =?gb2312?B?{gbk}?=\n\nhello\n".encode()
    )
    mail = parse_mail(raw)
    assert mail.subject == "关于发票 鎔"
    assert mail.sender is not None and mail.sender.name == "김철수"


def test_outlook_iso2022jp_with_microsoft_rows_in_every_place():
    """CP50220 text (NEC row 13 and IBM rows) in encoded-words of Subject, a display name and
    a file name, and in the body: Python's email package leaves the words undecoded."""
    from test_charsets import sjis_to_jis

    words = "①請求書 髙橋様"
    jis = sjis_to_jis(words.encode("cp932"))
    word = b"=?ISO-2022-JP?B?" + base64.b64encode(jis) + b"?="
    raw = crlf(
        b"From: " + word + b" <t@customer.test>\nTo: support@example.com\nSubject: " + word
        + b"\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b\n\n--b\n"
        b"Content-Type: text/plain; charset=iso-2022-jp\n\n" + jis + b"\n--b\n"
        b'Content-Type: application/pdf; name="' + word + b'.pdf"\n\nx\n--b--\n'
    )  # fmt: skip
    mail = parse_mail(raw)
    assert mail.subject == words and mail.text == words
    assert mail.sender is not None and mail.sender.name == words
    assert [a.filename for a in mail.attachments] == [f"{words}.pdf"]


@pytest.mark.parametrize(
    ("label", "body", "text"),
    [
        (b"iso-8859-1", "„Preis“ 5 €".encode("cp1252"), "„Preis“ 5 €"),
        (b"gb2312", "发票号码 鎔".encode("gbk"), "发票号码 鎔"),
        (b"shift_jis", "①請求書 髙橋".encode("cp932"), "①請求書 髙橋"),
        (b"ks_c_5601-1987", "똠방각하".encode("cp949"), "똠방각하"),
        (b"iso-2022-jp", "お世話になります。".encode("iso2022_jp"), "お世話になります。"),
        (b"x-unknown", "Grüße aus Köln, vielen Dank für Ihre Hilfe".encode("cp1252"), None),
    ],
)
def test_body_charsets_as_senders_mean_them(label, body, text):
    mail = parse_mail(mail_bytes("Subject: x", body, b"text/plain; charset=" + label))
    assert "\ufffd" not in mail.text
    if text is not None:
        assert mail.text == text
    else:
        assert mail.text == "Grüße aus Köln, vielen Dank für Ihre Hilfe"


# --------------------------------------------------------------------------- file names


@pytest.mark.parametrize(
    ("disposition", "name"),
    [
        (
            b"attachment; filename*=UTF-8''Gr%C3%BC%C3%9Fe%20%20Angebot%202026.pdf",
            "Grüße  Angebot 2026.pdf",
        ),
        (
            b"attachment;\n filename*0*=UTF-8''%E8%AB%8B%E6%B1%82;\n filename*1=\" 2026.pdf\"",
            "請求 2026.pdf",
        ),
        (b'attachment; filename="=?UTF-8?B?6KuL5rGC5pu4IDIwMjYucGRm?="', "請求書 2026.pdf"),
        (b"attachment; filename*=gb2312''%B7%A2%C6%B1%20%E6g.pdf", "发票 鎔.pdf"),
        (b'attachment; filename="Gr\xfc\xdfe Angebot.pdf"', "Grüße Angebot.pdf"),  # raw Latin-1
        (b'attachment; filename="my  report (final).pdf"', "my  report (final).pdf"),
        (b'attachment; filename="../../etc/passwd"', ".._.._etc_passwd"),
    ],
)  # fmt: skip
def test_file_names_arrive_exactly_as_sent(disposition, name):
    raw = crlf(
        b"From: a@customer.test\nTo: support@example.com\nSubject: file\nMIME-Version: 1.0\n"
        b"Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n\nsee file\n"
        b"--b\nContent-Type: application/pdf\nContent-Disposition: " + disposition + b"\n"
        b"Content-Transfer-Encoding: base64\n\nJVBERi0xLjQ=\n--b--\n"
    )
    mail = parse_mail(raw)
    assert [a.filename for a in mail.attachments] == [name]
    assert mail.text == "see file"


# --------------------------------------------------------------------------- containers


SIGNED = b"""From: Sam <sam@signer.test>
To: support@example.com
Subject: signed
MIME-Version: 1.0
Content-Type: multipart/signed; protocol="application/pkcs7-signature"; micalg=sha-256; boundary=s

--s
Content-Type: multipart/mixed; boundary=m

--m
Content-Type: text/plain; charset=utf-8

The invoice is attached.
--m
Content-Type: application/pdf; name=invoice.pdf
Content-Transfer-Encoding: base64

JVBERi0xLjQ=
--m--

--s
Content-Type: application/pkcs7-signature; name=smime.p7s
Content-Transfer-Encoding: base64
Content-Disposition: attachment; filename=smime.p7s

MIIGjwYJKoZIhvcNAQcCoIIGgDCCBnwCAQExDTALBglghkgBZQMEAgEw
--s--
"""


def test_multipart_signed_signature_is_not_a_customer_file():
    mail = parse_mail(crlf(SIGNED))
    assert mail.text == "The invoice is attached."
    assert [a.filename for a in mail.attachments] == ["invoice.pdf", "smime.p7s"]
    assert [f["filename"] for f in files_to_upload(meta(mail))] == ["invoice.pdf"]


FORWARD = b"""From: Rep <rep@partner.test>
To: support@example.com
Subject: Fwd: order 778 broken
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary=f

--f
Content-Type: text/plain; charset=utf-8

Please look at the customer's mail below.
--f
Content-Type: message/rfc822

From: Carla Customer <carla@customer.test>
To: rep@partner.test
Subject: order 778 broken
Date: Mon, 23 Nov 2026 09:00:00 +0000
Content-Type: text/plain; charset=iso-8859-1
Content-Transfer-Encoding: quoted-printable

Der Deckel ist gebrochen, Gr=FC=DFe Carla
--f--
"""


def test_forwarded_message_is_one_attachment_and_its_text_is_readable():
    mail = parse_mail(crlf(FORWARD))
    (attached,) = mail.attachments
    assert attached.content_type == "message/rfc822"
    assert b"Subject: order 778 broken" in attached.data
    assert mail.text.startswith("Please look at the customer's mail below.\n\n")
    assert "From: Carla Customer <carla@customer.test>" in mail.text
    assert mail.text.endswith("Der Deckel ist gebrochen, Grüße Carla")
    assert mail.new_text == "Please look at the customer's mail below."
    alone = parse_mail(crlf(FORWARD.replace(b"Please look at the customer's mail below.", b"")))
    assert alone.new_text.endswith("Der Deckel ist gebrochen, Grüße Carla")  # all there is
    assert mail.forwarded_from is not None
    assert mail.forwarded_from.email == "carla@customer.test"


# --------------------------------------------------------------------------- broken structure


def test_folded_line_without_white_space_keeps_the_headers_after_it():
    raw = crlf(
        b"Subject: Invoice 2026-117 is wrong and\nthe refund is missing\n"
        b"From: Anna <anna@customer.test>\nTo: support@example.com\n\nHello, see subject.\n"
    )
    mail = parse_mail(raw)
    assert mail.subject == "Invoice 2026-117 is wrong and the refund is missing"
    assert mail.sender is not None and mail.sender.email == "anna@customer.test"
    assert mail.text == "Hello, see subject."
    assert any("folded" in d for d in mail.defects)


def test_body_starting_without_the_blank_line_or_without_headers_keeps_its_text():
    no_blank = crlf(b"From: Anna <anna@customer.test>\nSubject: help\nHello, my order.\n")
    mail = parse_mail(no_blank)
    assert mail.subject == "help"
    assert mail.sender is not None and mail.sender.email == "anna@customer.test"
    assert mail.text == "Hello, my order."
    # a first line that is no header: everything is body, nothing is dropped
    headless = crlf(b"Outlook reply above\n____\nFrom: CRM <crm@shop.test>\nSubject: x\n\nHi\n")
    mail = parse_mail(headless)
    assert mail.text.startswith("Outlook reply above\n____\nFrom: CRM <crm@shop.test>")
    assert mail.text.endswith("Hi")


# --------------------------------------------------------------------------- properties

BASE = (
    b"From: Anna Kunde <anna@customer.test>\r\nTo: support@example.com\r\n"
    b"Subject: Rechnung falsch\r\nMessage-ID: <p1@customer.test>\r\nMIME-Version: 1.0\r\n"
    b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain; "
    b"charset=utf-8\r\n\r\nDie Rechnung ist falsch.\r\n--b\r\nContent-Type: application/pdf;"
    b" name=r.pdf\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQ=\r\n--b--\r\n"
)
PART_HEADER = b"Content-Type: application/pdf; name=r.pdf"


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=st.binary(max_size=2000))
def test_arbitrary_bytes_never_crash_the_parser(raw):
    mail = parse_mail(raw)
    assert isinstance(mail, ParsedMail) and mail.message_id
    for text in (mail.subject, mail.text, mail.new_text, mail.html):
        text.encode("utf-8")  # storable: no lone surrogates
    assert all(a.size == len(a.data) for a in mail.attachments)


@settings(max_examples=200, deadline=None)
@given(junk=st.binary(min_size=1, max_size=60))
def test_a_broken_part_header_never_costs_the_subject_sender_or_text(junk):
    junk = junk.replace(b"\r", b"").replace(b"\n", b"")  # one header line stays one line
    raw = BASE.replace(PART_HEADER, PART_HEADER + b"; " + junk)
    mail = parse_mail(raw)
    assert mail.subject == "Rechnung falsch"
    assert mail.sender is not None and mail.sender.email == "anna@customer.test"
    assert mail.text == "Die Rechnung ist falsch."
    assert sum(len(a.data) for a in mail.attachments) > 0  # the part is kept, decoded or raw


@settings(max_examples=200, deadline=None)
@given(value=st.binary(max_size=120), name=st.sampled_from([b"X-Custom", b"Subject", b"To"]))
def test_any_header_value_keeps_the_sender_and_text(value, name):
    value = value.replace(b"\r", b"").replace(b"\n", b"")
    raw = BASE.replace(
        b"MIME-Version: 1.0\r\n", b"MIME-Version: 1.0\r\n" + name + b": " + value + b"\r\n"
    )
    mail = parse_mail(raw)
    assert mail.sender is not None and mail.sender.email == "anna@customer.test"
    assert mail.text == "Die Rechnung ist falsch."
    assert "\ufffd" not in mail.subject or b"\xef\xbf\xbd" in value


PART = st.tuples(
    st.sampled_from(["file", "text"]),
    st.binary(min_size=1, max_size=200),  # the part's content
    st.sampled_from([b"utf-8", b"iso-8859-1", b"us-ascii", b"gb2312", b"shift_jis", b"x-bad", b""]),
    st.binary(max_size=30).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b"")),  # junk
)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(parts=st.lists(PART, min_size=1, max_size=5))
def test_no_part_is_ever_lost(parts):
    """Any charset label, any bytes, junk in a part's header: every file's bytes are among the
    attachments and every text part's content reaches the text, and the headers survive."""
    body = b""
    for i, (kind, content, label, junk) in enumerate(parts):
        ctype = b"text/plain; charset=" + label if kind == "text" else b"application/octet-stream"
        body += (
            b"--b\r\nContent-Type: " + ctype + b"; x=" + junk + b"\r\n"
            b"Content-Disposition: " + (b"inline" if kind == "text" else b"attachment")
            + b"; filename=" + (b"f%d.bin" % i if kind == "file" else b"") + b"\r\n"
            b"Content-Transfer-Encoding: base64\r\n\r\n" + base64.b64encode(content) + b"\r\n"
        )  # fmt: skip
    raw = BASE.split(b"--b\r\n", 1)[0] + body + b"--b--\r\n"
    mail = parse_mail(raw)
    assert mail.subject == "Rechnung falsch" and mail.sender is not None
    kept = [a.data for a in mail.attachments]
    for kind, content, _label, _junk in parts:
        if kind == "file":
            assert any(content in data for data in kept)
    texts = [content for kind, content, _label, _junk in parts if kind == "text"]
    if any(t.decode("latin-1").replace("\x00", "").strip() for t in texts):
        assert mail.text.strip() or any(t in data for t in texts for data in kept)
