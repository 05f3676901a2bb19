"""Connecting to an IMAP server with aioimaplib, and reading its answers.

Why a layer over aioimaplib: it has no STARTTLS, some of its calls have no timeout (`idle_start`
hangs when the server closes), and it hands FETCH results back as raw lines. Every call here
runs under `asyncio.timeout`, TLS is never given up silently, and FETCH answers become
`Fetched` records. Passwords never reach a log line (aioimaplib scrubs LOGIN in its own debug
log as well).
"""

from __future__ import annotations

import asyncio
import base64
import re
import ssl
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import TypeVar

import aioimaplib

from gateway.config import ImapAccount
from gateway.errors import TokenError, TransientError
from gateway.mail.normalise import header_message_id
from gateway.mailauth.tokens import TokenSource, xoauth2

T = TypeVar("T")

_UIDVALIDITY = re.compile(rb"\[UIDVALIDITY (\d+)\]")
_FETCH_START = re.compile(rb"^\d+ FETCH \(")
_LITERAL = re.compile(rb"\{(\d+)\}$")
_UID = re.compile(rb"\bUID (\d+)")
_SIZE = re.compile(rb"\bRFC822\.SIZE (\d+)")


class ImapError(TransientError, ConnectionError):
    """The server refused something or broke the protocol: reconnect after a pause.

    The intake layer's own error: only the IMAP poller raises and handles it."""


@dataclass(frozen=True)
class Fetched:
    uid: int
    size: int
    data: bytes  # the literal: the Message-ID header field, or the whole mail

    @property
    def message_id(self) -> str:
        return header_message_id(self.data) or ""  # the intake key's rule: ids stay comparable


async def call(aw: Awaitable[T], seconds: float) -> T:
    """Await one IMAP exchange with a deadline: a silent server must not hang the poller."""
    async with asyncio.timeout(seconds):
        return await aw


def ok(resp: aioimaplib.Response, what: str) -> aioimaplib.Response:
    if resp.result != "OK":
        text = b" ".join(x for x in resp.lines if isinstance(x, bytes))[:200]
        raise ImapError(f"{what}: {resp.result} {text.decode('utf-8', 'replace')}")
    return resp


def quote(name: str, utf8: bool = False) -> str:
    """A folder name as an IMAP quoted string: in modified UTF-7 (RFC 3501 §5.1.3), or as
    UTF-8 when the server's UTF8=ACCEPT is enabled (RFC 6855 §3; `connect` enables it)."""
    name = name if utf8 else mutf7(name)
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def mutf7(name: str) -> str:
    """Modified UTF-7 (RFC 3501 §5.1.3): printable ASCII stays, "&" becomes "&-", any other run
    is "&" + base64 of its UTF-16BE with "," for "/" and no padding + "-".
    "Entwürfe" -> "Entw&APw-rfe"."""
    out: list[str] = []
    run: list[str] = []

    def flush() -> None:
        if run:
            b64 = base64.b64encode("".join(run).encode("utf-16-be")).decode().rstrip("=")
            out.append("&" + b64.replace("/", ",") + "-")
            run.clear()

    for ch in name:
        if 0x20 <= ord(ch) <= 0x7E:
            flush()
            out.append("&-" if ch == "&" else ch)
        else:
            run.append(ch)
    flush()
    return "".join(out)


def utf8_names(client: aioimaplib.IMAP4) -> bool:
    """Folder names go as UTF-8: the server offers UTF8=ACCEPT, which `connect` enabled."""
    return client.has_capability("UTF8=ACCEPT")


def tls_context(account: ImapAccount) -> ssl.SSLContext:
    cafile = str(account.ca_file) if account.ca_file else None
    return ssl.create_default_context(cafile=cafile)


async def connect(
    account: ImapAccount, lost: asyncio.Event, tokens: TokenSource | None = None
) -> aioimaplib.IMAP4:
    """Connect, secure the line as configured, and log in (LOGIN, or AUTHENTICATE XOAUTH2 with
    a token of `tokens` when auth = oauth2); `lost` is set when it drops."""
    t = account.timeout
    ctx = tls_context(account) if account.tls == "implicit" else None
    client = aioimaplib.IMAP4(
        account.host,
        account.real_port,
        timeout=t,
        conn_lost_cb=lambda _exc: lost.set(),
        ssl_context=ctx,
    )
    try:
        await call(client.wait_hello_from_server(), t)
        if account.tls == "starttls":
            await call(_starttls(client, account), t)
        if account.auth == "oauth2":
            if tokens is None:
                raise TokenError(f"{account.key}: auth = oauth2 but no token source")
            await oauth2_login(client, account, tokens)
        else:
            ok(await call(client.login(account.user, account.password), t), "LOGIN")
        if not client.has_capability("IMAP4rev1") or not client.has_capability("IDLE"):
            await call(client.protocol.capability(), t)  # some servers list them only on ask
        if utf8_names(client):
            ok(await call(client.enable("UTF8=ACCEPT"), t), "ENABLE UTF8=ACCEPT")
    except BaseException:
        close(client)
        raise
    return client


async def oauth2_login(
    client: aioimaplib.IMAP4, account: ImapAccount, tokens: TokenSource
) -> None:
    """AUTHENTICATE XOAUTH2 with the stored token; when the server refuses it (revoked or
    expired early), once more with a new one from the provider. Raises TokenError with the
    server's reason when that is refused too (the poller backs off)."""
    text = await _xoauth2(client, account, await tokens.token())
    if text is None:
        await tokens.logged_in()
        return
    await tokens.refused(text)
    text = await _xoauth2(client, account, await tokens.token(fresh=True))
    if text is None:
        await tokens.logged_in()
        return
    reason = f"XOAUTH2 login as {account.user} refused by {account.host}: {text}"
    await tokens.refused(reason)
    raise TokenError(reason)


async def _xoauth2(client: aioimaplib.IMAP4, account: ImapAccount, token: str) -> str | None:
    """One AUTHENTICATE XOAUTH2 (RFC 4959 initial response): None when accepted, else the
    server's reason. A refusing server first sends a continuation with a base64 JSON error
    (Google's and Microsoft's XOAUTH2 pages; Dovecot does the same) and waits for an empty
    line before its tagged NO: aioimaplib's own xoauth2() would hang there."""
    proto = client.protocol
    sasl = xoauth2(account.user, token)
    cmd = aioimaplib.Command("AUTHENTICATE", proto.new_tag(), "XOAUTH2", sasl, loop=proto.loop)
    details: list[str] = []

    def continuation(line: bytes) -> None:
        if proto.pending_sync_command is cmd:
            details.append(_sasl_error(line[1:].strip()))
            proto.transport.write(b"\r\n")  # an empty response: "tell me why" is done
        else:
            original(line)

    original = proto._continuation
    proto._continuation = continuation
    try:
        resp = await call(proto.execute(cmd, scrub=sasl), account.timeout)
    finally:
        del proto._continuation
    if resp.result == "OK":
        async with proto.state_condition:
            proto.state = aioimaplib.AUTH
            proto.state_condition.notify_all()
        return None
    said = b" ".join(x for x in resp.lines if isinstance(x, bytes))[:200]
    return " ".join([f"{resp.result} {said.decode('utf-8', 'replace')}", *details]).strip()


def _sasl_error(b64: bytes) -> str:
    try:
        return f"({base64.b64decode(b64).decode('utf-8', 'replace')[:200]})"
    except ValueError:
        return ""


async def _starttls(client: aioimaplib.IMAP4, account: ImapAccount) -> None:
    proto = client.protocol
    if "STARTTLS" not in proto.capabilities:
        await proto.capability()
    if "STARTTLS" not in proto.capabilities:
        raise ImapError(
            f"{account.host}: server does not offer STARTTLS (tls = starttls); not logging in "
            "in plaintext"
        )
    cmd = aioimaplib.Command("STARTTLS", proto.new_tag(), loop=proto.loop)
    ok(await proto.execute(cmd), "STARTTLS")
    loop = asyncio.get_running_loop()
    proto.transport = await loop.start_tls(
        proto.transport, proto, tls_context(account), server_hostname=account.host
    )
    proto.capabilities = set()
    await proto.capability()  # RFC 3501: capabilities seen before TLS are not to be trusted


def close(client: aioimaplib.IMAP4) -> None:
    """Drop the connection without a goodbye (used when it is already broken or on stop)."""
    transport = client.protocol.transport if client.protocol else None
    if transport is not None:
        transport.close()
    for task in list(getattr(client, "tasks", ())) + list(
        getattr(client.protocol, "tasks", ()) or ()
    ):
        task.cancel()


def uidvalidity(resp: aioimaplib.Response) -> int:
    for line in resp.lines:
        if isinstance(line, (bytes, bytearray)):
            m = _UIDVALIDITY.search(bytes(line))
            if m:
                return int(m.group(1))
    raise ImapError("SELECT: the server sent no UIDVALIDITY")


def search_uids(resp: aioimaplib.Response) -> list[int]:
    """UIDs of a (UID) SEARCH answer; aioimaplib strips the `* SEARCH` of the data line."""
    uids: list[int] = []
    for line in resp.lines[:-1]:  # the last line is the tagged "Search completed"
        words = bytes(line).split()
        if words and words[0] == b"SEARCH":
            words = words[1:]
        if all(w.isdigit() for w in words):
            uids.extend(int(w) for w in words)
    return sorted(set(uids))


def parse_fetch(resp: aioimaplib.Response) -> list[Fetched]:
    """FETCH answers as records: the text around a literal gives UID and size, the literal data.

    aioimaplib returns a FETCH as lines with each literal as its own bytearray item after the
    line that announced it with `{n}`; servers may put UID before or after the literal.
    """
    out: list[Fetched] = []
    text, data, expecting = b"", b"", False
    started = False

    def flush() -> None:
        uid, size = _UID.search(text), _SIZE.search(text)
        if started and uid:
            out.append(Fetched(int(uid.group(1)), int(size.group(1)) if size else -1, data))

    for line in resp.lines:
        if expecting:
            data, expecting = bytes(line), False
            continue
        line = bytes(line)
        if _FETCH_START.match(line):
            flush()
            text, data, started = line, b"", True
        else:
            text += b" " + line
        expecting = bool(_LITERAL.search(line))
    flush()
    return out


def uid_set(uids: list[int]) -> str:
    """1,2,3,7 -> "1:3,7": short commands even for thousands of UIDs."""
    parts: list[str] = []
    start: int | None = None
    prev = 0
    for u in sorted(uids):
        if start is None:
            start = prev = u
        elif u == prev + 1:
            prev = u
        else:
            parts.append(f"{start}:{prev}" if start != prev else str(start))
            start = prev = u
    if start is not None:
        parts.append(f"{start}:{prev}" if start != prev else str(start))
    return ",".join(parts)
