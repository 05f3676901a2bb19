"""IMAP intake: each configured folder is read by its own poller, exactly once per mail.

How a folder is read (one connection per folder, because IDLE watches the selected one):
1. SELECT gives UIDVALIDITY. A value other than the stored one means the UIDs were reissued
   (folder recreated, server migrated): the folder is read again from UID 1, and the intake key
   (the same as SMTP's) finds every mail already stored, so nothing is stored twice.
2. UID SEARCH lists the UIDs above the last stored one (`since` narrows only the first pass:
   later passes go by UID, so a mail with an old date that appears later is not missed).
3. In batches: UID, RFC822.SIZE and the Message-ID header first. A mail over
   smtp.max_message_size stays in the mailbox, logged and shown by `status`; a mail already
   stored (same Message-ID and size) is not downloaded again; the rest are fetched whole.
4. The mails and the new last UID are committed in one store transaction, then the
   after-action (\\Seen, move or delete) runs; the UIDs still owing one are kept in the store
   and done at the next connection if the process died in between.
5. Then IDLE (re-issued every idle_renew seconds) or a pause of poll_interval, and again.
A broken connection, a timeout or a server error closes the session; the poller reconnects
after an exponential backoff with jitter. Mails that fail processing go to quarantine in the
process job; the folder keeps flowing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

import aioimaplib

from gateway.config import ImapAccount, Settings
from gateway.errors import TokenError
from gateway.intake.imap_client import (
    Fetched,
    ImapError,
    call,
    close,
    connect,
    ok,
    parse_fetch,
    quote,
    search_uids,
    uid_set,
    uidvalidity,
    utf8_names,
)
from gateway.mail.normalise import header_block_size, intake_key, normalise
from gateway.mailauth.tokens import TokenSource
from gateway.models import IncomingMail
from gateway.store import imap_state as st
from gateway.store.db import Store

log = logging.getLogger(__name__)

HEAD_BATCH = 100  # UIDs per header FETCH: keeps aioimaplib's per-line recursion shallow
BODY_BATCH = 50  # mails per body FETCH and per commit
BODY_BATCH_BYTES = 16 * 1024 * 1024  # and bytes: bounds memory with large mails
BACKOFF_FIRST, BACKOFF_MAX = 0.5, 300.0
PROGRESS_EVERY, PROGRESS_SECONDS = 1000, 10.0
HEAD_ITEMS = "(UID RFC822.SIZE BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])"
_MONTHS = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()


@dataclass
class Limits:
    max_message_size: int
    max_header_bytes: int


class FolderPoller:
    """Reads one folder of one account for as long as the gateway runs."""

    def __init__(
        self,
        account: ImapAccount,
        folder: str,
        store: Store,
        limits: Limits,
        on_accepted: Callable[[], None] = lambda: None,
        tokens: TokenSource | None = None,
    ):
        self.account, self.folder, self.store = account, folder, store
        self.tokens = tokens  # auth = oauth2: the account's access token
        self.limits = limits
        self.on_accepted = on_accepted
        self.name = f"{account.key} {folder}"
        self._lost = asyncio.Event()
        self._client: aioimaplib.IMAP4 | None = None
        self._validity = 0
        self._utf8 = False  # folder names as UTF-8 (UTF8=ACCEPT), else modified UTF-7
        self._was_ready = False  # the last session got as far as SELECT: reset the backoff

    # -- the outer loop: sessions with reconnect ------------------------------------------------

    async def run(self) -> None:
        backoff = BACKOFF_FIRST
        last_reason = ""
        while True:
            self._lost = asyncio.Event()
            try:
                await self._set("connecting")
                await self._session()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # network, protocol, timeout, server refusal: retry
                reason = _reason(exc)
                delay = backoff * random.uniform(0.5, 1.0)
                # a refused login says the same each time: one warning, then quiet retries
                # (a session that ends logs its own reason in between: a later refusal warns)
                level = (
                    logging.DEBUG
                    if isinstance(exc, TokenError) and reason == last_reason
                    else logging.WARNING
                )
                log.log(level, "imap %s: %s; reconnecting in %.1fs", self.name, reason, delay)
                last_reason = reason
                with contextlib.suppress(Exception):
                    await self._set("error", reason)
                await asyncio.sleep(delay)
                backoff = BACKOFF_FIRST if self._was_ready else min(backoff * 2, BACKOFF_MAX)
            finally:
                if self._client is not None:
                    close(self._client)
                    self._client = None

    async def _session(self) -> None:
        a = self.account
        self._was_ready = False
        self._client = client = await connect(a, self._lost, self.tokens)
        self._utf8 = utf8_names(client)
        resp = ok(await call(client.select(self._quote(self.folder)), a.timeout), "SELECT")
        validity = uidvalidity(resp)
        state = await self.store.read(lambda db: st.load_state(db, a.key, self.folder))
        if state is None or state.uidvalidity != validity:
            if state is not None:
                log.warning(
                    "imap %s: UIDVALIDITY changed %s -> %s; reading the folder again "
                    "(mails already stored are recognised)",
                    self.name,
                    state.uidvalidity,
                    validity,
                )
            await self.store.write(lambda db: st.reset_folder(db, a.key, self.folder, validity))
            state = await self.store.read(lambda db: st.load_state(db, a.key, self.folder))
            assert state is not None
        self._validity = validity
        if a.after == "move":
            with contextlib.suppress(ImapError):  # already there: fine
                ok(await call(client.create(self._quote(a.move_to)), a.timeout), "CREATE")
        if state.after_pending:
            await self._after_action(state.after_pending)
        await self._read_skipped(validity)
        log.info(
            "imap %s: connected (UIDVALIDITY %s, last UID %s)", self.name, validity, state.last_uid
        )
        self._was_ready = True
        use_idle = a.idle and client.has_capability("IDLE")
        while True:
            await self._sync()
            if use_idle:
                await self._idle()
            else:
                await self._set("polling")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._lost.wait(), a.poll_interval)
                if self._lost.is_set():
                    raise ImapError("connection lost")

    def _quote(self, folder: str) -> str:
        return quote(folder, self._utf8)

    async def _read_skipped(self, validity: int) -> None:
        """Mails left in the mailbox as too big that the size limit admits now (it was raised
        since): read them as any new mail, once."""
        a, limit = self.account, self.limits.max_message_size
        uids = await self.store.read(
            lambda db: st.skipped_within(db, a.key, self.folder, validity, limit)
        )
        if uids:
            log.info(
                "imap %s: %d mail(s) left as too big fit smtp.max_message_size now; reading them",
                self.name,
                len(uids),
            )
        for i in range(0, len(uids), HEAD_BATCH):
            await self._chunk(uids[i : i + HEAD_BATCH])

    # -- one pass over the new UIDs -------------------------------------------------------------

    async def _sync(self) -> None:
        a, client = self.account, self._client
        assert client is not None
        state = await self.store.read(lambda db: st.load_state(db, a.key, self.folder))
        assert state is not None
        criteria = [f"UID {state.last_uid + 1}:*"]
        if a.since and not state.first_sync_done:
            d = a.since
            criteria.append(f"SINCE {d.day}-{_MONTHS[d.month - 1]}-{d.year}")
        resp = ok(await call(client.uid_search(*criteria, charset=None), a.timeout), "UID SEARCH")
        uids = [u for u in search_uids(resp) if u > state.last_uid]
        if not uids:
            if not state.first_sync_done:
                await self._set("idle", total=state.done, first_sync_done=True)
            return
        total = state.done + len(uids)
        first = not state.first_sync_done
        await self._set("syncing", total=total)
        if first:
            log.info("imap %s: first sync of %d mail(s)", self.name, len(uids))
        done, last_log, started = state.done, time.monotonic(), time.monotonic()
        for i in range(0, len(uids), HEAD_BATCH):
            chunk = uids[i : i + HEAD_BATCH]
            done += await self._chunk(chunk)
            if done % PROGRESS_EVERY < HEAD_BATCH or time.monotonic() - last_log > PROGRESS_SECONDS:
                last_log = time.monotonic()
                log.info("imap %s: %d/%d mails", self.name, done, total)
        log.info(
            "imap %s: %d/%d mails, %d new in %.1fs",
            self.name,
            done,
            total,
            len(uids),
            time.monotonic() - started,
        )
        if first:
            await self._set("idle", total=total, first_sync_done=True)

    async def _chunk(self, chunk: list[int]) -> int:
        """Headers of up to HEAD_BATCH UIDs, then the needed bodies in bounded commits."""
        a, client = self.account, self._client
        assert client is not None
        heads = {
            f.uid: f
            for f in parse_fetch(
                ok(await call(client.uid("fetch", uid_set(chunk), HEAD_ITEMS), a.timeout), "FETCH")
            )
        }
        pairs = {(h.message_id, h.size) for h in heads.values() if h.message_id}
        known = await self.store.read(lambda db: st.known_messages(db, a.mailbox, pairs))
        handled = 0
        group: list[Fetched] = []
        group_bytes = 0
        for n, uid in enumerate(chunk):
            h = heads.get(uid)  # None: expunged since the SEARCH; its UID is passed over
            if h is not None:
                group.append(h)
                if (h.message_id, h.size) not in known and h.size <= self.limits.max_message_size:
                    group_bytes += max(h.size, 0)
            if n == len(chunk) - 1 or len(group) >= BODY_BATCH or group_bytes >= BODY_BATCH_BYTES:
                handled += await self._commit(group, known, last_uid=uid)
                group, group_bytes = [], 0
        return handled

    async def _commit(
        self, heads: list[Fetched], known: set[tuple[str, int]], *, last_uid: int
    ) -> int:
        a, client = self.account, self._client
        assert client is not None
        skipped: list[st.Skipped] = []
        wanted: list[int] = []
        handled: list[int] = []
        for h in heads:
            if h.size > self.limits.max_message_size:
                log.warning(
                    "imap %s: UID %d is %d bytes, over smtp.max_message_size (%d); "
                    "left in the mailbox",
                    self.name,
                    h.uid,
                    h.size,
                    self.limits.max_message_size,
                )
                skipped.append(st.Skipped(h.uid, h.size, h.message_id, "too big"))
            elif h.message_id and (h.message_id, h.size) in known:
                handled.append(h.uid)
            else:
                wanted.append(h.uid)
        mails: list[IncomingMail] = []
        if wanted:
            wanted_set = set(wanted)
            size = sum(h.size for h in heads if h.uid in wanted_set)
            seconds = a.timeout * (1 + size // (4 * 1024 * 1024))
            bodies = parse_fetch(
                ok(
                    await call(client.uid("fetch", uid_set(wanted), "(UID BODY.PEEK[])"), seconds),
                    "FETCH",
                )
            )
            for b in bodies:
                mail = self._incoming(b)
                if mail is None:
                    skipped.append(st.Skipped(b.uid, len(b.data), "", "header block too large"))
                else:
                    mails.append(mail)
                    handled.append(b.uid)
        validity = self._validity
        results = await self.store.write(
            lambda db: st.commit_batch(
                db,
                a.key,
                self.folder,
                validity,
                mails=mails,
                handled_uids=handled,
                skipped=skipped,
                last_uid=last_uid,
            )
        )
        if any(not dup for _id, dup in results):
            self.on_accepted()
        if handled:
            await self._after_action(handled)
        return len(handled) + len(skipped)

    def _incoming(self, fetched: Fetched) -> IncomingMail | None:
        raw = normalise(fetched.data)
        if header_block_size(raw) > self.limits.max_header_bytes:
            log.warning(
                "imap %s: UID %d has a header block over smtp.max_header_bytes; left in the "
                "mailbox",
                self.name,
                fetched.uid,
            )
            return None
        message_id, digest = intake_key(raw)
        return IncomingMail(
            source="imap",
            mailbox=self.account.mailbox.lower(),
            envelope_from="",
            rcpt_tos=[self.account.mailbox.lower()],
            raw=raw,
            message_id=message_id,
            sha256=digest,
            peer=f"{self.account.host}:{self.account.real_port}",
            helo=f"{self.folder} UIDVALIDITY {self._validity} UID {fetched.uid}",
        )

    # -- after the commit -----------------------------------------------------------------------

    async def _after_action(self, uids: list[int]) -> None:
        """\\Seen, move or delete the stored mails; only ever after their commit."""
        a, client = self.account, self._client
        assert client is not None
        uset, t = uid_set(uids), a.timeout
        if a.after == "seen":
            ok(await call(client.uid("store", uset, "+FLAGS.SILENT", r"(\Seen)"), t), "STORE")
        elif a.after == "move" and client.has_capability("MOVE"):
            ok(await call(client.uid("move", uset, self._quote(a.move_to)), t), "MOVE")
        else:
            if a.after == "move":
                ok(await call(client.uid("copy", uset, self._quote(a.move_to)), t), "COPY")
            ok(await call(client.uid("store", uset, "+FLAGS.SILENT", r"(\Deleted)"), t), "STORE")
            if client.has_capability("UIDPLUS"):
                ok(await call(client.uid("expunge", uset), t), "EXPUNGE")
            else:
                ok(await call(client.expunge(), t), "EXPUNGE")
        await self.store.write(lambda db: st.clear_after(db, a.key, self.folder, uids))

    # -- waiting for new mail -------------------------------------------------------------------

    async def _idle(self) -> None:
        """IDLE until the server reports new mail, the renew time passes, or the line drops."""
        a, client = self.account, self._client
        assert client is not None
        idle = await call(client.idle_start(timeout=a.idle_renew), a.timeout)
        await self._set("idle")
        deadline = time.monotonic() + a.idle_renew
        try:
            while time.monotonic() < deadline:
                if self._lost.is_set():
                    raise ImapError("connection lost during IDLE")
                try:
                    push = await client.wait_server_push(timeout=1.0)
                except TimeoutError:
                    continue
                if push == aioimaplib.STOP_WAIT_SERVER_PUSH:
                    break
                lines = [bytes(x) for x in push] if isinstance(push, list) else [b""]
                if any(b"BYE" in x for x in lines):
                    raise ImapError("server closed the connection (BYE)")
                if any(b"EXISTS" in x for x in lines):
                    break
        finally:
            if client.has_pending_idle() and not self._lost.is_set():
                client.idle_done()
                with contextlib.suppress(Exception):
                    await call(idle, a.timeout)
            elif not idle.done():
                idle.cancel()

    async def _set(self, state: str, error: str = "", **kw) -> None:
        a = self.account
        await self.store.write(
            lambda db: st.set_state(db, a.key, self.folder, state, error=error, **kw)
        )


class ImapIntake:
    """Every configured folder's poller: started after the store, stopped before it."""

    def __init__(self, settings: Settings, store: Store, on_accepted: Callable[[], None]):
        limits = Limits(settings.smtp.max_message_size, settings.smtp.max_header_bytes)
        tokens = {  # one per account: its folders share the token
            a.key: TokenSource.for_imap(a, store) for a in settings.imap if a.auth == "oauth2"
        }
        self.pollers = [
            FolderPoller(account, folder, store, limits, on_accepted, tokens.get(account.key))
            for account in settings.imap
            for folder in account.folders
        ]
        self._tasks: list[asyncio.Task] = []

    def start(self) -> None:
        for p in self.pollers:
            self._tasks.append(asyncio.create_task(p.run(), name=f"imap {p.name}"))

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        self._tasks.clear()


def _reason(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
