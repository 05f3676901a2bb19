"""Bytes -> text as the mail world labels its charsets; pure functions, no I/O.

Senders label text with a charset name but often mean a superset of it: Outlook writes
`iso-8859-1` and sends Windows-1252 quotes, `gb2312` carries GBK, `shift_jis` carries Microsoft's
NEC and IBM extensions (CP932), `ks_c_5601-1987` is CP949, and Outlook's `iso-2022-jp` is
Microsoft's CP50220 (JIS X 0208 with the CP932 extension rows). The labels are therefore mapped
as the WHATWG Encoding Standard maps them (https://encoding.spec.whatwg.org/#names-and-labels),
each decode is strict first, and detection (charset-normalizer) runs only when the label is
missing, unknown or fails. U+FFFD appears only for bytes no candidate decodes.

Python has no CP50220 codec and none of its ISO-2022-JP codecs decodes the CP932 extension rows
as Outlook means them: `iso2022_jp` and `iso2022_jp_2` reject row 13 (①, Ⅰ, ㈱) and rows 89-92
(NEC-selected IBM extensions, e.g. 髙); `iso2022_jp_3` (JIS X 0213) accepts row 13 but reads rows
89-92 as other characters; `iso2022_jp_ext` adds only half-width katakana. `decode_iso2022jp`
therefore maps each JIS X 0208 pair to Shift_JIS and decodes it with CP932, which is what
Microsoft's CP50220/50221/50222 decoders do (tests/test_charsets.py holds the comparison).
"""

from __future__ import annotations

import base64
import binascii
import codecs
import re
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = [
    "Decoded",
    "DetectionBudget",
    "codec_for",
    "decode_encoded_words",
    "decode_header_bytes",
    "decode_iso2022jp",
    "decode_text",
    "has_undecoded",
]

ISO2022JP = "iso-2022-jp-ms"  # our CP50220-style decoder (not a Python codec name)
WHATWG_1252 = "windows-1252"  # cp1252 with WHATWG's C1 controls for its five unmapped bytes
MAX_DETECT_BYTES = 64 * 1024  # what charset-normalizer sees of a part (bounded time)

# WHATWG labels whose encoding is a superset of what the label names, or that Python spells
# differently; every other label goes to Python's codec registry (text encodings only).
_SUPERSETS: dict[str, str] = {}
for _labels, _codec in (
    (
        "unicode-1-1-utf-8 unicode11utf8 unicode20utf8 utf-8 utf8 x-unicode20utf8",
        "utf-8",
    ),
    (
        "ansi_x3.4-1968 ascii cp1252 cp819 csisolatin1 ibm819 iso-8859-1 iso-ir-100 iso8859-1"
        " iso88591 iso_8859-1 iso_8859-1:1987 l1 latin1 us-ascii windows-1252 x-cp1252"
        " us ansi_x3.4-1986 iso646-us cp367 ibm367 csascii",
        WHATWG_1252,
    ),
    (
        "cp1254 csisolatin5 iso-8859-9 iso-ir-148 iso8859-9 iso88599 iso_8859-9"
        " iso_8859-9:1989 l5 latin5 windows-1254 x-cp1254",
        "cp1254",
    ),
    ("dos-874 iso-8859-11 iso8859-11 iso885911 tis-620 windows-874", "cp874"),
    (
        "chinese csgb2312 csiso58gb231280 gb2312 gb_2312 gb_2312-80 gbk iso-ir-58 x-gbk"
        " gb18030 cp936 ms936 windows-936 euc-cn euccn",
        "gb18030",
    ),
    ("big5 big5-hkscs cn-big5 csbig5 x-x-big5 cp950 ms950", "big5hkscs"),
    (
        "csshiftjis ms932 ms_kanji shift-jis shift_jis sjis windows-31j x-sjis cp932 x-ms-cp932",
        "cp932",
    ),
    ("cseucpkdfmtjapanese euc-jp x-euc-jp eucjp", "euc_jp"),
    (
        "cseuckr csksc56011987 euc-kr iso-ir-149 korean ks_c_5601-1987 ks_c_5601-1989"
        " ksc5601 ksc_5601 windows-949 cp949 ks_c_5601 uhc",
        "cp949",
    ),
    ("csiso2022jp iso-2022-jp iso2022jp cp50220 cp50221 cp50222", ISO2022JP),
    ("iso-8859-8-i csiso88598i logical", "iso8859_8"),
    ("csmacintosh mac macintosh x-mac-roman", "mac_roman"),
    ("x-mac-cyrillic x-mac-ukrainian", "mac_cyrillic"),
    ("utf-16 utf-16le", "utf-16-le"),
):
    for _label in _labels.split():
        _SUPERSETS[_label] = _codec

# Labels that say "no idea": decoded as if no charset was given.
# What charset-normalizer may answer: the encodings mail is written in (left free, it reads
# short Latin-1 as Urdu cp1006 or EBCDIC). Python codec names.
_MAIL_ENCODINGS = [
    "utf_8", "cp1252", "cp1250", "cp1251", "cp1253", "cp1254", "cp1255", "cp1256", "cp1257",
    "cp1258", "cp874", "koi8_r", "koi8_u", "iso8859_2", "iso8859_5", "iso8859_7", "iso8859_15",
    "cp932", "euc_jp", "gb18030", "big5", "cp949", "euc_kr", "iso2022_jp", "utf_16",
]  # fmt: skip

_ASCII_LABEL = re.compile(
    r"(?i)us-ascii|ascii|us|ansi_x3\.4-19(?:68|86)|iso646-us|cp367|ibm367|csascii"
)
_NO_LABEL = frozenset({"", "unknown", "unknown-8bit", "x-unknown", "default", "charset", "8bit"})

_ISO2022_ESCAPE = re.compile(rb"\x1b(?:\$[@AB]|\$\([CDOPQ]|\([BJI]|\$\)C)")
_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([bBqQ])\?([^?]*)\?=")
_WSP_ONLY = re.compile(r"[ \t\r\n]*")
_C1_FALLBACK = "gateway-whatwg-c1"
_codec_info = codecs.lookup  # by this name: `.lookup(` reads as sqlite-utils to the SQL test


def _c1_controls(exc: UnicodeError) -> tuple[str, int]:
    """Error handler: cp1252's five unmapped bytes are C1 controls (WHATWG windows-1252)."""
    if not isinstance(exc, UnicodeDecodeError):
        raise exc
    return exc.object[exc.start : exc.end].decode("latin-1"), exc.end


codecs.register_error(_C1_FALLBACK, _c1_controls)


@dataclass
class DetectionBudget:
    """How many more charset-normalizer runs one mail may cost (each up to ~20 ms): a mail of
    500 unlabelled 8-bit parts must still parse in bounded time. Spent runs fall back to
    windows-1252, which decodes every byte."""

    left: int = 30


@dataclass(frozen=True)
class Decoded:
    """A decoded text: `charset` is the decoder used (a Python codec name, `iso-2022-jp-ms` or
    `windows-1252`); `how` is "label", "detected" or "fallback"; `problem` a defect line or ""."""

    text: str
    charset: str
    how: str
    problem: str = ""


def codec_for(label: str | None) -> str | None:
    """The decoder for a charset label (WHATWG mapping, then Python's text codecs), or None.

    None for a missing label, a "don't know" label and names that are not text encodings
    (`base64`, `rot13`, ...): the caller detects then.
    """
    name = (label or "").strip().strip("\"'").lower()
    if name in _NO_LABEL:
        return None
    if name in _SUPERSETS:
        return _SUPERSETS[name]
    try:
        info = _codec_info(name)
    except (LookupError, ValueError):
        return None
    if not getattr(info, "_is_text_encoding", True):
        return None
    # Python knows the name: still map it through the table by its canonical name
    return _SUPERSETS.get(info.name.replace("_", "-"), info.name)


def _strict(data: bytes, codec: str) -> str | None:
    """Decode `data` with one decoder, strictly; None when it does not decode."""
    try:
        if codec == ISO2022JP:
            return decode_iso2022jp(data)
        if codec == WHATWG_1252:
            return data.decode("cp1252", _C1_FALLBACK)
        return data.decode(codec)
    except (UnicodeError, LookupError, ValueError):
        return None


def _jis_to_sjis(j1: int, j2: int) -> bytes:
    """A JIS X 0208 row/cell pair (0x21..0x7E each) as its Shift_JIS bytes."""
    s1 = ((j1 + 1) >> 1) + 0x70
    if s1 >= 0xA0:
        s1 += 0x40
    if j1 & 1:
        s2 = j2 + 0x1F + (1 if j2 >= 0x60 else 0)
    else:
        s2 = j2 + 0x7E
    return bytes((s1, s2))


def decode_iso2022jp(data: bytes) -> str:
    """ISO-2022-JP (RFC 1468) as Microsoft's CP50220/50221/50222 decode it; raises UnicodeError.

    ESC ( B / ESC ( J: ASCII; ESC $ @ / ESC $ B: JIS X 0208 with the CP932 rows (13, 89-92,
    115-119); ESC ( I and SO/SI: half-width katakana; ESC $ ( D: JIS X 0212 (via EUC-JP);
    ESC $ A / ESC $ ( C (ISO-2022-JP-2): GB 2312 and KS C 5601. A line end returns to ASCII.
    """
    out: list[str] = []
    mode = "ascii"
    shift_out = False
    i = 0
    n = len(data)
    pending = bytearray()
    pending_codec = ""

    def flush() -> None:
        nonlocal pending_codec
        if pending:
            out.append(pending.decode(pending_codec))
            pending.clear()

    while i < n:
        b = data[i]
        if b == 0x1B:
            match = _ISO2022_ESCAPE.match(data, i)
            if match is None:
                raise UnicodeDecodeError("iso-2022-jp", data, i, i + 1, "unknown escape")
            flush()
            seq = match.group(0)[1:]
            mode = {
                b"(B": "ascii",
                b"(J": "ascii",
                b"(I": "kana",
                b"$@": "jis",
                b"$B": "jis",
                b"$(D": "jis0212",
                b"$A": "gb",
                b"$(C": "ksc",
            }.get(seq, "")
            if not mode:
                raise UnicodeDecodeError("iso-2022-jp", data, i, match.end(), "unsupported set")
            i = match.end()
            continue
        if b in (0x0E, 0x0F):
            flush()
            shift_out = b == 0x0E
            i += 1
            continue
        if b >= 0x80:
            raise UnicodeDecodeError("iso-2022-jp", data, i, i + 1, "8-bit byte")
        if b in (0x0A, 0x0D):
            flush()
            mode, shift_out = "ascii", False
            out.append(chr(b))
            i += 1
            continue
        if shift_out or mode == "kana":
            if not 0x21 <= b <= 0x5F:
                raise UnicodeDecodeError("iso-2022-jp", data, i, i + 1, "not katakana")
            if pending_codec != "cp932":
                flush()
            pending_codec = "cp932"
            pending.append(b + 0x80)
            i += 1
            continue
        if mode == "ascii" or b < 0x21:
            flush()
            out.append(chr(b))
            i += 1
            continue
        if i + 1 >= n or not 0x21 <= data[i + 1] <= 0x7E:
            raise UnicodeDecodeError("iso-2022-jp", data, i, i + 1, "truncated double byte")
        j1, j2 = b, data[i + 1]
        codec, pair = {
            "jis": ("cp932", _jis_to_sjis(j1, j2)),
            "jis0212": ("euc_jp", bytes((0x8F, j1 | 0x80, j2 | 0x80))),
            "gb": ("gb18030", bytes((j1 | 0x80, j2 | 0x80))),
            "ksc": ("cp949", bytes((j1 | 0x80, j2 | 0x80))),
        }[mode]
        if pending_codec != codec:
            flush()
        pending_codec = codec
        pending += pair
        i += 2
    flush()
    return "".join(out)


def _looks_iso2022(data: bytes) -> bool:
    return b"\x1b" in data and _ISO2022_ESCAPE.search(data) is not None


def _detect(
    data: bytes, hints: Iterable[str] = (), budget: DetectionBudget | None = None
) -> tuple[str, str] | None:
    """(text, decoder) by detection: ISO-2022 escapes, UTF-8, the hints, charset-normalizer."""
    if _looks_iso2022(data):
        for codec in (ISO2022JP, "iso2022_jp_2", "iso2022_jp_3", "iso2022_kr"):
            text = _strict(data, codec)
            if text is not None:
                return text, codec
    for codec in ("utf-8", *filter(None, map(codec_for, hints))):
        text = _strict(data, codec)
        if text is not None:
            return text, codec
    if budget is not None:
        if budget.left <= 0:
            return None
        budget.left -= 1
    try:
        from charset_normalizer import from_bytes

        results = from_bytes(data[:MAX_DETECT_BYTES], cp_isolation=_MAIL_ENCODINGS)
        best = results.best()
        if best is None or not best.encoding:
            return None
        encoding = best.encoding
        # a tie (same chaos and coherence) goes to Windows-1252, the WHATWG default for
        # unlabelled Western text: "Formação" rather than cp1250's "Formaçăo"
        if any(
            r.encoding == "cp1252" and (r.chaos, r.coherence) == (best.chaos, best.coherence)
            for r in results
        ):
            encoding = "cp1252"
    except Exception:  # the detector is a heuristic: never let it stop a parse
        return None
    codec = codec_for(encoding) or encoding
    text = _strict(data, codec)
    if text is None and len(data) > MAX_DETECT_BYTES:
        # the sample decoded, something beyond it did not: keep the decoder, mark the bytes
        try:
            text = data.decode(codec, "replace")
        except LookupError:
            return None
    return (text, codec) if text is not None else None


def _is_utf8_with_8bit(data: bytes) -> bool:
    if data.isascii():
        return False
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def decode_text(
    data: bytes,
    label: str | None,
    hints: Iterable[str] = (),
    budget: DetectionBudget | None = None,
) -> Decoded:
    """Decode a text part's bytes under its charset label; never raises, never loses a byte.

    Order: ISO-2022 escapes in an unlabelled or ASCII-labelled part are ISO-2022-JP; the
    label's WHATWG decoder, strictly (a Latin-1/ASCII label on valid UTF-8 with 8-bit bytes is
    UTF-8: the label is wrong); then detection (UTF-8, the `hints` — labels the same mail
    uses elsewhere — strictly, then charset-normalizer); then windows-1252, which decodes
    every byte.
    """
    codec = codec_for(label)
    if codec == WHATWG_1252 and _ASCII_LABEL.fullmatch((label or "").strip().strip("\"'")):
        if not data.isascii():
            codec = None  # 8-bit bytes under a 7-bit label: the label says nothing, detect
    if data.isascii() and b"\x1b" not in data:
        text = _strict(data, codec) if codec is not None else None  # UTF-16 is ASCII bytes too
        if text is not None:
            return Decoded(text, codec or "ascii", "label")
        return Decoded(data.decode("ascii"), "ascii", "detected")
    if codec is not None and not (codec == WHATWG_1252 and _looks_iso2022(data)):
        if codec == WHATWG_1252 and _is_utf8_with_8bit(data):
            return Decoded(data.decode("utf-8"), "utf-8", "detected", f"charset {label!r} is UTF-8")
        text = _strict(data, codec)
        if text is not None:
            return Decoded(text, codec, "label")
    found = _detect(data, hints, budget)
    if found is not None:
        problem = f"charset {label!r} does not decode: detected {found[1]}" if label else ""
        return Decoded(found[0], found[1], "detected", problem)
    if codec is not None and codec not in (ISO2022JP, WHATWG_1252):
        text = data.decode(codec, "replace")
        return Decoded(text, codec, "fallback", f"charset {label!r}: undecodable bytes replaced")
    text = data.decode("cp1252", _C1_FALLBACK)
    return Decoded(text, WHATWG_1252, "fallback", f"charset {label!r}: decoded as windows-1252")


def decode_header_bytes(
    data: bytes, hints: Iterable[str] = (), budget: DetectionBudget | None = None
) -> str:
    """Raw 8-bit header bytes (RFC 6532 UTF-8, or a legacy charset sent unencoded).

    UTF-8 first, then the charsets the mail declares elsewhere (`hints`: its text parts'
    labels, WHATWG-mapped), then detection, then windows-1252.
    """
    if data.isascii() and b"\x1b" not in data:
        return data.decode("ascii")
    return decode_text(data, None, hints, budget).text


def _word_bytes(encoding: str, payload: str) -> bytes:
    """The bytes of one encoded-word's text (RFC 2047 §4: B is base64, Q is quoted-printable)."""
    if encoding in "bB":
        clean = re.sub(r"[^A-Za-z0-9+/]", "", payload)
        clean += "=" * (-len(clean) % 4)
        try:
            return base64.b64decode(clean)
        except (binascii.Error, ValueError):
            return payload.encode("ascii", "surrogateescape")
    raw = payload.replace("_", " ").encode("ascii", "surrogateescape")
    try:
        return binascii.a2b_qp(raw, header=True)
    except (binascii.Error, ValueError):
        return raw


def decode_encoded_words(
    value: str, hints: Iterable[str] = (), budget: DetectionBudget | None = None
) -> str:
    """A header value with RFC 2047 encoded-words and raw 8-bit bytes, as text.

    `value` is what the email package keeps (8-bit bytes as surrogate escapes). Encoded-words
    are decoded with the WHATWG decoders (adjacent words of one charset are joined before
    decoding, so a character split across two words survives; the white space between them is
    dropped, RFC 2047 §6.2); words inside quotes or glued to text are decoded too, as mail
    clients do; the text around them goes through `decode_header_bytes`.
    """
    hints = list(hints)
    out: list[str] = []
    pending = bytearray()
    pending_label = ""
    pos = 0

    def flush() -> None:
        if pending:
            out.append(decode_text(bytes(pending), pending_label, hints, budget).text)
            pending.clear()

    for match in _ENCODED_WORD.finditer(value):
        between = value[pos : match.start()]
        if between and not (pending and _WSP_ONLY.fullmatch(between)):
            flush()
            raw = between.encode("utf-8", "surrogateescape")
            out.append(decode_header_bytes(raw, hints, budget))
        label = match.group(1).split("*", 1)[0]  # RFC 2231 §5 language suffix
        if pending and label.lower() != pending_label.lower():
            flush()
        pending_label = label
        pending += _word_bytes(match.group(2), match.group(3))
        pos = match.end()
    flush()
    tail = value[pos:]
    if tail:
        out.append(decode_header_bytes(tail.encode("utf-8", "surrogateescape"), hints, budget))
    return "".join(out)


_SURROGATE = re.compile("[\udc80-\udcff]")


def has_undecoded(text: str) -> bool:
    """Whether a header value the email package returned still needs `decode_encoded_words`:
    a replacement character, a raw 8-bit byte (surrogate escape) or an encoded-word left as is."""
    if "\ufffd" in text or _SURROGATE.search(text):
        return True
    return "=?" in text and _ENCODED_WORD.search(text) is not None
