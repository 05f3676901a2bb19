"""The process_mail job: parse, classify, thread and record one accepted mail.

It runs after the 250, so nothing here may lose the mail: an error that retrying cannot fix
(a parser bug on a strange mail) puts the mail in quarantine with the error, and the mails
behind it keep flowing. `mail-gateway quarantine retry` runs it again after a fix.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import traceback
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any, TypeVar

from gateway.errors import TransientError
from gateway.mail.parse import parse_mail
from gateway.models import NOREPLY, OUTSIDE_SENDER, Job, ParsedMail
from gateway.pipeline.classify import classify
from gateway.pipeline.conversations import requester, thread_lookups
from gateway.store.db import Store
from gateway.store.intake import load_raw
from gateway.store.mail import Recorded, quarantine, record_mail

log = logging.getLogger(__name__)

T = TypeVar("T")


def parse_for_store(raw: bytes, envelope_from: str, rcpts: tuple[str, ...]) -> ParsedMail:
    """parse_mail without the attachments' bytes: they stay in the raw mail, and leaving them
    out keeps the answer from a parser process small."""
    parsed = parse_mail(raw, envelope_from=envelope_from, envelope_rcpts=rcpts)
    light = [dataclasses.replace(a, data=b"") for a in parsed.attachments]
    return dataclasses.replace(parsed, attachments=light)


async def parse_off_loop(executor: Executor | None, parse: Callable[..., T], *args: Any) -> T:
    """Run a parse in `executor` (the service's parser processes; None = the default thread
    pool), never on the event loop: its regexes hold the GIL for tens of ms on a long mail.

    Raises TransientError when a parser process died (OOM, a crash in C code): the job retries.
    """
    loop = asyncio.get_running_loop()
    try:
        return await loop.run_in_executor(executor, parse, *args)
    except BrokenProcessPool as exc:
        raise TransientError(f"parser process died: {exc}") from exc


AfterRecord = Callable[[Recorded, frozenset[str]], Awaitable[None]]


class InOrder:
    """Lets mails that are processed at once record in the order they were accepted.

    The worker runs many process_mail jobs together and the parser processes finish them in
    any order; but a reply recorded before the mail it answers would open a conversation of
    its own. So a job enters with its raw id, parses, and waits before its record until no
    mail accepted earlier is still in flight; the records it releases together reach the
    store writer together and share one commit (the group commit intake uses).
    A job that leaves without recording (a quarantine, a retry) releases those behind it.
    """

    def __init__(self) -> None:
        self._in_flight: set[int] = set()
        self._waiters: list[asyncio.Future[None]] = []

    def enter(self, raw_id: int) -> None:
        self._in_flight.add(raw_id)

    async def turn(self, raw_id: int) -> None:
        """Wait until every mail accepted before `raw_id` has recorded or left."""
        while min(self._in_flight, default=raw_id) < raw_id:
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            await waiter

    def leave(self, raw_id: int) -> None:
        """Done recording (or leaving without a record): wake the mails that wait."""
        self._in_flight.discard(raw_id)
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)


@dataclass
class MailProcessor:
    store: Store
    secret: bytes
    hostname: str
    support_addresses: frozenset[str]
    after_record: list[AfterRecord] = dataclasses.field(default_factory=list)
    # Where parsing runs: a process pool keeps its CPU (regexes hold the GIL for tens of ms on
    # a long mail) away from the event loop that answers SMTP; None = the default thread pool.
    executor: Executor | None = None
    # [senders]: form mailers (addresses, "@domain") and trusted sender domains
    form_senders: frozenset[str] = frozenset()
    trusted_domains: frozenset[str] = frozenset()
    order: InOrder = dataclasses.field(default_factory=InOrder)

    async def __call__(self, job: Job) -> None:
        raw_id = job.payload["raw_id"]
        self.order.enter(raw_id)
        try:
            await self._run(raw_id)
        finally:
            self.order.leave(raw_id)

    async def _run(self, raw_id: int) -> None:
        stored = await self.store.read(lambda db: load_raw(db, raw_id))
        if stored is None or stored.state == "quarantined":
            return
        # a 'processed' row is run again only after a crash between its record and the
        # after_record hooks (the job was not finished): record_mail returns the stored
        # message unchanged and the hooks, idempotent by their dedupe keys, run once more
        # unknown for IMAP, which classify tells apart from a null sender ("")
        envelope_from = stored.envelope_from if stored.source == "smtp" else None
        try:
            recorded, annotations = await self._process(
                raw_id,
                stored.mailbox,
                envelope_from,
                stored.rcpt_tos,
                stored.message_id,
                stored.raw,
            )
        except TransientError:
            raise
        except Exception as exc:
            log.exception("raw mail %s quarantined", raw_id)
            error, detail = f"{type(exc).__name__}: {exc}", traceback.format_exc()
            await self.store.write(lambda db: quarantine(db, raw_id, error, detail))
            return
        log.info(
            "raw mail %s -> conversation %s, mail %s (%s)",
            raw_id,
            recorded.conversation_id,
            recorded.message_row_id,
            recorded.matched_by,
        )
        for hook in self.after_record:
            await hook(recorded, annotations)

    async def _process(self, raw_id, mailbox, envelope_from, rcpts, message_id, raw):
        parsed = await parse_off_loop(
            self.executor, parse_for_store, raw, envelope_from or "", tuple(rcpts)
        )
        annotations = classify(
            parsed, envelope_from=envelope_from, own_domain=self.hostname, loop_id=self.hostname
        )
        lookups = thread_lookups(
            parsed, recipients=rcpts, secret=self.secret, hostname=self.hostname
        )
        who = requester(
            parsed, form_senders=self.form_senders, support=self.support_addresses | {mailbox}
        )
        annotations = annotations | who.annotations
        if who.via:  # a noreply form mailer writing for a customer: the customer is no robot
            annotations = annotations - {NOREPLY}
        await self.order.turn(raw_id)
        try:
            recorded = await self.store.write(
                lambda db: record_mail(
                    db,
                    raw_id=raw_id,
                    mailbox=mailbox,
                    mail=parsed,
                    annotations=annotations,
                    lookups=lookups,
                    support_addresses=self.support_addresses,
                    customer=who.address,
                    customer_shown=who.shown,
                    trusted_domains=self.trusted_domains,
                )
            )
        finally:
            self.order.leave(raw_id)  # the next mails record while the hooks run
        if recorded.outside_sender:
            log.warning(
                "raw mail %s joined conversation %s as mail %s from an outside sender (%s): "
                "kept, not answered",
                raw_id,
                recorded.conversation_id,
                recorded.message_row_id,
                recorded.matched_by,
            )
            annotations = annotations | {OUTSIDE_SENDER}
        return recorded, annotations
