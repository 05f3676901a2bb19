"""The DATA phase as bytes operations: terminator, dot-unstuffing and limits, fed in chunks.

Pure (no I/O): `DataReader.feed` takes the bytes of a DATA phase in chunks split anywhere and
gives exactly what aiosmtpd 1.4.6's line loop (`SMTP.smtp_DATA`) gives for the same stream, the
contract `tests/test_smtp_data_reader.py` checks against aiosmtpd itself:

- only `CRLF . CRLF` ends DATA (RFC 5321 section 4.1.1.4), or `. CRLF` as the very first line;
  a bare LF or CR anywhere is data (the SMTP smuggling endings stay inside the mail);
- a line (split at CRLF only) starting with "." loses that dot (RFC 5321 section 4.5.2);
- a line longer than `line_length_limit` octets with its CRLF, or DATA past `size_limit`
  octets (counted before unstuffing, the terminator not counted), makes the verdict TOO_LONG
  or TOO_MUCH; the first offending line decides which, with aiosmtpd's tie rule (a line whose
  text alone is longer than the limit is TOO_LONG even when it also crosses the size; one
  that is too long only with its CRLF and crosses the size is TOO_MUCH). From then on nothing
  is kept; reading goes on to the terminator, as RFC 5321 section 4.2.5 implies.

The scans are `bytes.find`/`rfind` over whole chunks, one window of `line_length_limit` octets
per step, not a Python loop per line. Bytes that could still be the start of a terminator
(at most 4: a proper prefix of CRLF . CRLF at the end of a chunk) are held back until the next
chunk decides them; `wanted()` tells the reader to fetch exactly the bytes that settle them,
so a reader following it never reads past the terminator (pipelined commands stay unread).
"""

from __future__ import annotations

import enum

TERMINATOR = b"\r\n.\r\n"
_PREFIXES = tuple(TERMINATOR[:k] for k in range(4, 0, -1))  # proper prefixes, longest first


class DataState(enum.Enum):
    """aiosmtpd's `_DataState`: the verdict of a DATA phase."""

    NOMINAL = "nominal"
    TOO_LONG = "too long"  # aiosmtpd replies "500 Line too long (see RFC5321 4.5.3.1.6)"
    TOO_MUCH = "too much"  # aiosmtpd replies "552 Error: Too much mail data"
    DROPPED = "dropped"  # not aiosmtpd's: the caller gave up keeping the mail (drop())


class DataReader:
    """One DATA phase, fed chunk by chunk; `done` once the terminator has been seen.

    `line_length_limit`: the longest line in octets with its CRLF (aiosmtpd's attribute of the
    same name). `size_limit`: the most octets of DATA (aiosmtpd's `data_size_limit`; None or 0
    for no limit).
    """

    def __init__(self, line_length_limit: int, size_limit: int | None):
        if line_length_limit < 3:
            raise ValueError(f"line_length_limit {line_length_limit}: must be at least 3")
        self.line_length_limit = line_length_limit
        self.size_limit = size_limit or None
        self.state = DataState.NOMINAL
        self.done = False
        self._tail = b"\r\n"  # undecided octets: a proper prefix of the terminator
        self._virtual = 2  # how many of them stand for the start of DATA (a line start)
        self._scanned = 0  # DATA octets (dot-stuffed) before the first undecided one
        self._line = 0  # octets of the current line already scanned
        self._bad_line = False  # the first offending line has begun; its verdict is pending
        self._pieces: list[bytes | memoryview] = []

    terminator = TERMINATOR

    def drop(self) -> None:
        """Keep nothing more of this mail (the caller's own limit, e.g. a memory budget); the
        stream is still read to its terminator. A verdict already reached stays."""
        if self.state is DataState.NOMINAL:
            self._fail(DataState.DROPPED)

    def wanted(self) -> int:
        """How to read next: 0 = up to and including the next TERMINATOR (or any amount that
        does not pass it); n > 0 = exactly n octets (they settle the held-back octets)."""
        return len(TERMINATOR) - len(self._tail) if self._tail else 0

    def feed(self, chunk: bytes) -> int:
        """Take the next octets of the stream; return how many of them belonged to DATA (fewer
        than len(chunk) only when the terminator ended inside it: the rest is the next
        command's). After `done`, feeding takes nothing."""
        if self.done:
            return 0
        tail = self._tail
        buf = tail + chunk if tail else chunk
        start = self._virtual
        found = buf.find(TERMINATOR)
        if found >= 0:
            self._take(buf, start, found + 2)  # the last line's CRLF is the mail's
            self.done = True
            self._tail = b""
            return found + len(TERMINATOR) - len(tail)
        keep = next((len(p) for p in _PREFIXES if buf.endswith(p)), 0)
        end = len(buf) - keep
        if end > start:
            self._take(buf, start, end)
        self._tail = buf[end:]
        self._virtual = max(0, start - end)
        return len(chunk)

    def content(self) -> bytes:
        """The mail (unstuffed, without the terminator) once `done` with NOMINAL; else b""."""
        if not self.done or self.state is not DataState.NOMINAL:
            return b""
        pieces, self._pieces = self._pieces, []
        if len(pieces) == 1 and isinstance(pieces[0], bytes):
            return pieces[0]
        return b"".join(pieces)

    # -- the region buf[start:end]: octets known to be mail, not terminator --------------------

    def _take(self, buf: bytes, start: int, end: int) -> None:
        if self.state is DataState.NOMINAL and not self._bad_line:
            self._scan(buf, start, end)
        if self._bad_line:
            self._settle(buf, start, end)
        if self.state is DataState.NOMINAL and not self._bad_line:
            self._keep(buf, start, end)
        self._scanned += end - start

    def _scan(self, buf: bytes, start: int, end: int) -> None:
        """Find the first offending line in the region, if any (then `_bad_line`)."""
        limit = self.line_length_limit
        size_end = None if self.size_limit is None else start + self.size_limit - self._scanned
        pos = start
        line = start - self._line  # where the current line began, in buf's coordinates
        while True:
            # the current line is fine when its CRLF ends by `window`
            window = line + limit if size_end is None else min(line + limit, size_end)
            high = min(window, end)
            crlf = buf.rfind(b"\r\n", pos, high) if high - pos >= 2 else -1
            if crlf >= 0:
                pos = line = crlf + 2  # every line up to here is fine: they fit the window
                continue
            if window <= end and line < end:  # (a line with no octets yet may be the last)
                self._bad_line = True
                self._line = start - line  # negative: the offending line begins after start
                return
            self._line = end - line
            return

    def _settle(self, buf: bytes, start: int, end: int) -> None:
        """The offending line's verdict: TOO_LONG if its text passes the limit, else
        TOO_MUCH if it crosses the size, else TOO_LONG (aiosmtpd's order of checks)."""
        limit = self.line_length_limit
        line = start - self._line
        crlf = buf.find(b"\r\n", max(start, line), min(end, line + limit + 2))
        if crlf < 0:
            if end >= line + limit + 2:  # no CRLF begins within limit + 1 octets
                self._fail(DataState.TOO_LONG)
            else:
                self._line = end - line
            return
        length = crlf - line  # the line's text, without CRLF; at most limit
        line_start = self._scanned - (start - line)
        crosses = self.size_limit is not None and line_start + length + 2 > self.size_limit
        self._fail(DataState.TOO_MUCH if crosses else DataState.TOO_LONG)

    def _fail(self, state: DataState) -> None:
        self.state = state
        self._bad_line = False
        self._pieces = []  # nothing more is kept: memory is bounded by the limits

    def _keep(self, buf: bytes, start: int, end: int) -> None:
        """Keep buf[start:end] unstuffed: the dot of every line starting with one goes."""
        if self._virtual and start == self._virtual and buf[start : start + 1] == b".":
            start += 1  # the first line of DATA
        if start >= end:
            return
        piece: bytes | memoryview
        if buf.find(b"\r\n.", start, end) >= 0:
            piece = buf[start:end].replace(b"\r\n.", b"\r\n")
        elif start == 0 and end == len(buf):
            piece = buf
        else:
            piece = memoryview(buf)[start:end]
        self._pieces.append(piece)
