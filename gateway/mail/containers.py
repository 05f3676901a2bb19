"""Mail containers that hide the customer's text and files; pure functions, no I/O.

- TNEF (`application/ms-tnef`, Outlook's `winmail.dat`, MS-OXTNEF): the message body and the
  attached files, read with tnefparse.
- Opaque-signed S/MIME (`application/pkcs7-mime; smime-type=signed-data`, RFC 8551 §3.5.2):
  the encapsulated MIME entity, unwrapped with asn1crypto WITHOUT verifying the signature (the
  gateway reads mail, it does not vouch for it). Encrypted S/MIME (enveloped-data) stays as is.
- Signatures of `multipart/signed` (RFC 1847, RFC 8551 §3.5.3, RFC 3156): not customer files.
"""

from __future__ import annotations

import mimetypes
from dataclasses import dataclass, field

from gateway.mail.charsets import decode_text

__all__ = [
    "SIGNATURE_TYPES",
    "TnefContent",
    "is_signature",
    "is_tnef",
    "unpack_tnef",
    "unwrap_signed_data",
]

SIGNATURE_TYPES = frozenset(
    {
        "application/pkcs7-signature",  # S/MIME, RFC 8551 §3.5.3
        "application/x-pkcs7-signature",  # its pre-RFC name, still sent
        "application/pgp-signature",  # OpenPGP/MIME, RFC 3156 §5
    }
)
TNEF_TYPES = frozenset({"application/ms-tnef", "application/vnd.ms-tnef"})
SIGNED_DATA_TYPES = frozenset({"application/pkcs7-mime", "application/x-pkcs7-mime"})
MAX_TNEF_FILES = 100


@dataclass(frozen=True)
class TnefContent:
    """What a TNEF stream holds: the body as text and/or HTML, and the files.

    `files` are (file name, content type, bytes); an RTF-only body (no plain or HTML body in
    the stream) is one of the files, `message.rtf`, so nothing the customer wrote is lost.
    """

    text: str = ""
    html: str = ""
    files: list[tuple[str, str, bytes]] = field(default_factory=list)


def is_signature(content_type: str) -> bool:
    """Whether a part is the signature of a signed mail (never a file the customer sent)."""
    return content_type.lower() in SIGNATURE_TYPES


def is_tnef(content_type: str, filename: str) -> bool:
    """Whether a part is TNEF: by its type, or an octet-stream named winmail.dat."""
    return content_type.lower() in TNEF_TYPES or filename.strip().lower() == "winmail.dat"


def _body_text(value: object, codepage: str) -> str:
    if isinstance(value, str):
        return value.rstrip("\x00")
    if isinstance(value, bytes | bytearray):
        return decode_text(bytes(value).rstrip(b"\x00"), codepage).text
    return ""


def unpack_tnef(data: bytes) -> TnefContent | None:
    """The body and files of a TNEF stream, or None when `data` is not readable TNEF.

    The body is decoded with the stream's OEM code page (attOemCodepage), the files keep
    their long file names (PR_ATTACH_LONG_FILENAME, else the 8.3 name).
    Source: https://learn.microsoft.com/openspecs/exchange_server_protocols/ms-oxtnef
    """
    try:
        from tnefparse import TNEF

        tnef = TNEF(bytes(data))
    except Exception:  # not TNEF, or damaged beyond the library: the caller keeps the raw
        return None
    codepage = f"cp{getattr(tnef, 'codepage', '') or 1252}"
    text = _body_text(getattr(tnef, "body", None), codepage)
    html = _body_text(getattr(tnef, "htmlbody", None), "utf-8")
    files: list[tuple[str, str, bytes]] = []
    for att in list(getattr(tnef, "attachments", []))[:MAX_TNEF_FILES]:
        try:
            name = str(att.long_filename() or att.name or "").rstrip("\x00")
            payload = bytes(att.data or b"")
        except Exception:
            continue
        name = name or f"attachment-{len(files) + 1}.bin"
        ctype = mimetypes.guess_type(name, strict=False)[0] or "application/octet-stream"
        files.append((name, ctype, payload))
    if not text and not html:
        try:
            rtf = tnef.rtfbody
        except Exception:
            rtf = None
        if isinstance(rtf, bytes | bytearray) and rtf:
            files.append(("message.rtf", "application/rtf", bytes(rtf)))
    return TnefContent(text=text, html=html, files=files)


def unwrap_signed_data(data: bytes) -> bytes | None:
    """The MIME entity inside a CMS SignedData (RFC 5652 §5), unverified; None otherwise.

    Returns the encapsulated content's bytes (a MIME entity: headers, blank line, body) when
    `data` is a ContentInfo of type signed-data carrying id-data content; None for any other
    CMS type (enveloped-data stays encrypted), a detached signature or unreadable DER.
    """
    try:
        from asn1crypto import cms

        info = cms.ContentInfo.load(bytes(data))
        if info["content_type"].native != "signed_data":
            return None
        encap = info["content"]["encap_content_info"]
        if encap["content_type"].native != "data":
            return None
        content = encap["content"].native
    except Exception:  # DER from the wire: any damage means "not unwrappable"
        return None
    return bytes(content) if isinstance(content, bytes | bytearray) and content else None
