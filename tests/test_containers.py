"""mail.containers: TNEF and opaque-signed S/MIME are opened, anything else is left alone."""

from __future__ import annotations

import base64
import re
from email import policy
from email.parser import BytesParser
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.mail.containers import is_signature, is_tnef, unpack_tnef, unwrap_signed_data
from gateway.mail.parse import parse_mail

CASES = Path(__file__).resolve().parent / "data" / "cases"


def payload(case: str, index: int | None = None) -> bytes:
    msg = BytesParser(policy=policy.default).parsebytes((CASES / case).read_bytes())
    part = msg if index is None else list(msg.iter_parts())[index]
    data = part.get_payload(decode=True)
    assert isinstance(data, bytes)
    return data


def test_tnef_body_and_files():
    content = unpack_tnef(payload("container-tnef-winmail-dat.eml", 1))
    assert content is not None
    assert content.text == "Please find the signed delivery note attached. Item 3 was damaged."
    assert content.files == [
        ("delivery-note.txt", "text/plain", b"Delivery note 4711: item 3 damaged on arrival.\r\n")
    ]
    assert is_tnef("application/ms-tnef", "") and is_tnef("application/octet-stream", "WINMAIL.DAT")
    assert not is_tnef("application/octet-stream", "winmail.txt")


def test_signed_data_unwrapped_without_verifying():
    inner = unwrap_signed_data(payload("container-smime-opaque-signed.eml"))
    assert inner is not None and inner.startswith(b"Content-Type: text/plain; charset=utf-8\r\n")
    assert is_signature("application/pkcs7-signature") and is_signature("Application/PGP-Signature")
    assert not is_signature("application/pkcs7-mime")


def test_encrypted_smime_stays_an_attachment():
    # an enveloped-data ContentInfo (OID 1.2.840.113549.1.7.3) with an empty body
    enveloped = bytes.fromhex("301106092a864886f70d010703a0043002020100")
    assert unwrap_signed_data(enveloped) is None
    raw = (
        b"From: a@customer.test\r\nTo: support@example.com\r\nSubject: secret\r\n"
        b"MIME-Version: 1.0\r\nContent-Type: application/pkcs7-mime; smime-type=enveloped-data;"
        b" name=smime.p7m\r\nContent-Transfer-Encoding: base64\r\n\r\nMBEGCSqGSIb3DQEHA6AEMAIC\r\n"
    )
    mail = parse_mail(raw)
    assert [a.filename for a in mail.attachments] == ["smime.p7m"]


def test_damaged_tnef_is_kept_as_it_came():
    raw = (CASES / "container-tnef-winmail-dat.eml").read_bytes()
    damaged = re.sub(rb"eJ8\+IgEBAQaQ", b"AAAAAAAAAAAA", raw)
    mail = parse_mail(damaged)
    assert [a.filename for a in mail.attachments] == ["winmail.dat"]
    assert any("TNEF" in d for d in mail.defects)


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=600))
def test_any_bytes_never_raise(data):
    content = unpack_tnef(b"\x78\x9f\x3e\x22" + data)  # the TNEF signature, then anything
    assert content is None or isinstance(content.files, list)
    assert unwrap_signed_data(data) is None or isinstance(unwrap_signed_data(data), bytes)


def signed_data(content: bytes) -> bytes:
    """A CMS SignedData around `content`, without signers (nothing here verifies)."""
    from asn1crypto import cms

    signed = cms.SignedData(
        {
            "version": "v1",
            "digest_algorithms": [],
            "encap_content_info": {"content_type": "data", "content": content},
            "signer_infos": [],
        }
    )
    return cms.ContentInfo({"content_type": "signed_data", "content": signed}).dump()


def p7m_mail(name: bytes, content: bytes) -> bytes:
    return (
        b"From: a@customer.test\r\nTo: support@example.com\r\nSubject: fattura\r\n"
        b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
        b"--b\r\nContent-Type: text/plain\r\n\r\nInvoice attached.\r\n--b\r\n"
        b"Content-Type: application/pkcs7-mime; name=" + name + b"\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n"
        + base64.encodebytes(signed_data(content)).replace(b"\n", b"\r\n")
        + b"--b--\r\n"
    )


def test_a_signed_file_stays_the_customer_s_file():
    xml = b'<?xml version="1.0"?><FatturaElettronica versione="FPR12"/>'
    mail = parse_mail(p7m_mail(b"IT01234567890_FPR12.xml.p7m", xml))
    assert mail.text == "Invoice attached."
    assert [a.filename for a in mail.attachments] == ["IT01234567890_FPR12.xml.p7m"]
    # the same container holding a MIME entity, as smime.p7m: opened
    inner = b"Content-Type: text/plain; charset=utf-8\r\n\r\nSigned words.\r\n"
    mail = parse_mail(p7m_mail(b"smime.p7m", inner))
    assert mail.text == "Invoice attached.\n\nSigned words."
    assert mail.attachments == []


def test_tnef_body_already_in_the_text_part_is_not_repeated():
    raw = (CASES / "container-tnef-winmail-dat.eml").read_bytes()
    said = b"Please find the signed delivery note attached. Item 3 was damaged.\r\n"
    raw = raw.replace(b"charset=us-ascii\n\n", b"charset=us-ascii\n\n" + said, 1)
    assert said in raw
    mail = parse_mail(raw)
    assert mail.text == said.decode().strip()
    assert [a.filename for a in mail.attachments] == ["delivery-note.txt"]
