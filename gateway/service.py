"""The composition root: builds every part from Settings, owns the loop, starts and stops them.

Start order: store, SMTP intake, HTTP, the HubSpot sandbox (mode = sandbox), worker.
Stop order: refuse new SMTP sessions (421), let sessions in DATA finish, drain the worker
with a deadline, close HTTP and the sandbox, close the store. Nothing accepted is lost at any
point: a mail is in the store before its 250, and an unfinished job runs again at next start.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import signal
from dataclasses import dataclass, field

from aiohttp import web

from gateway.assist import ASSIST_JOB, AssistJob, handoff_facts
from gateway.config import Settings
from gateway.delivery.outbox import capture_dir
from gateway.delivery.relay import RelaySender
from gateway.errors import GatewayError
from gateway.hubspot.client import HubSpotClient
from gateway.hubspot.connect import Endpoint, build_client, endpoint_for
from gateway.hubspot.handoff import HandoffRunner
from gateway.hubspot.replies import ReplyRunner
from gateway.hubspot.setup import SETUP_KEY, run_setup
from gateway.intake.imap import ImapIntake
from gateway.intake.imap_forwarding import forwarding_recorder
from gateway.intake.smtp import Gate, start_smtp
from gateway.outbound import SEND_REPLY_JOB, Outbound
from gateway.process import MailProcessor
from gateway.store import jobs as jobq
from gateway.store.db import Store
from gateway.store.hubspot import HANDOFF_JOB, PUBLISH_JOB
from gateway.store.intake import PROCESS_JOB
from gateway.store.queries import ensure_secret, kv_set
from gateway.store.replies import REP_REPLY_JOB
from gateway.web import WebState, create_app
from gateway.worker import Worker

log = logging.getLogger(__name__)


@dataclass
class Gateway:
    settings: Settings
    store: Store | None = None
    worker: Worker | None = None
    smtp_server: asyncio.base_events.Server | None = None
    gate: Gate | None = None
    http_runner: web.AppRunner | None = None
    sandbox: object | None = None
    imap: ImapIntake | None = None
    endpoint: Endpoint | None = None
    hubspot: HubSpotClient | None = None
    handoff: HandoffRunner | None = None
    webstate: WebState | None = None
    sender: RelaySender | None = None
    outbound: Outbound | None = None
    replies: ReplyRunner | None = None
    _lock_fd: int | None = None
    _tasks: list[asyncio.Task] = field(default_factory=list)

    @property
    def smtp_port(self) -> int:
        assert self.smtp_server is not None
        return self.smtp_server.sockets[0].getsockname()[1]

    @property
    def http_port(self) -> int:
        assert self.http_runner is not None
        return self.http_runner.addresses[0][1]

    async def start(self) -> None:
        s = self.settings
        s.gateway.state_dir.mkdir(parents=True, exist_ok=True)
        self._lock_fd = _lock(s.gateway.state_dir / "gateway.lock")
        self.store = store = Store(s.db_path)
        recovered = await store.write(jobq.recover)
        if recovered:
            log.info("resuming %d job(s) interrupted by the last stop", recovered)
        secret = (s.gateway.secret or await store.write(ensure_secret)).encode()
        support = frozenset(s.smtp.addresses)
        processor = MailProcessor(store, secret, s.gateway.hostname, support)
        assist = AssistJob.from_settings(store, s.assistant)
        processor.after_record.append(assist.after_record)
        processor.after_record.append(forwarding_recorder(store))
        if s.hubspot.mode == "sandbox":
            from gateway.sandbox import start_sandbox

            self.sandbox = await start_sandbox(
                s.hubspot.sandbox_listen.host,
                s.hubspot.sandbox_listen.port,
                db_path=s.hubspot.sandbox_db,
                webhook_target_url=s.http.public_url.rstrip("/") + "/hubspot/webhook",
            )
        self.endpoint = endpoint_for(s, self.sandbox.info() if self.sandbox else None)
        self.hubspot = build_client(s, store, self.endpoint)
        self.handoff = HandoffRunner(store, self.hubspot, s.hubspot, facts=handoff_facts)
        processor.after_record.append(self._follow_handoff)
        self.sender = RelaySender(
            s.relay, capture_dir=capture_dir(s), local_hostname=s.gateway.hostname
        )
        self.outbound = Outbound(store, self.sender, s, secret)
        self.replies = ReplyRunner(store, self.hubspot, self.outbound, self.handoff)
        self.worker = Worker(
            store,
            {
                PROCESS_JOB: processor,
                ASSIST_JOB: assist,
                HANDOFF_JOB: self.handoff.handoff_job,
                PUBLISH_JOB: self.handoff.publish_job,
                REP_REPLY_JOB: self.replies.rep_reply_job,
                SEND_REPLY_JOB: self.outbound.send_reply_job,
            },
            s.worker,
        )
        if self.sandbox is not None:
            await self._setup_hubspot()
        self.smtp_server, self.gate, _ = await start_smtp(
            s.smtp, store, hostname=s.gateway.hostname, on_accepted=self.worker.wake
        )
        self.webstate = WebState(
            store,
            webhook_secret=self.endpoint.client_secret,
            public_url=s.http.public_url,
            wake=self.worker.wake,
            endpoint=self.endpoint,
        )
        self.http_runner = web.AppRunner(create_app(self.webstate), access_log=None)
        await self.http_runner.setup()
        await web.TCPSite(self.http_runner, s.http.listen.host, s.http.listen.port).start()
        self._tasks.append(asyncio.create_task(self.worker.run(), name="worker"))
        if s.hubspot.replies in ("poll", "both"):
            poller = self.replies.poll_forever(s.hubspot.poll_interval, self.worker.wake)
            self._tasks.append(asyncio.create_task(poller, name="reply-poller"))
        self.imap = ImapIntake(s, store, on_accepted=self.worker.wake)
        self.imap.start()
        log.info(
            "mail-gateway ready: SMTP %s:%d, HTTP %s:%d, store %s",
            s.smtp.listen.host,
            self.smtp_port,
            s.http.listen.host,
            self.http_port,
            s.db_path,
        )

    async def _setup_hubspot(self) -> None:
        """With the built-in sandbox, set it up at every start (it is idempotent)."""
        s = self.settings
        mailboxes = sorted(set(s.smtp.addresses))
        try:
            report = await run_setup(self.hubspot, s.hubspot, mailboxes, s.http.public_url)
        except GatewayError as exc:
            log.warning("HubSpot setup failed: %s", exc)
            return
        ids = report.ids.to_json()
        await self.store.write(lambda db: kv_set(db, SETUP_KEY, ids))
        for line in report.changed:
            log.info("HubSpot setup: %s", line)

    async def _follow_handoff(self, recorded, annotations) -> None:
        """A new mail on a conversation already handed off goes to the same HubSpot thread."""
        conv_id = recorded.conversation_id

        def enqueue(db) -> None:
            if db.execute("SELECT 1 FROM handoffs WHERE conversation_id = ?", [conv_id]).fetchone():
                jobq.enqueue(
                    db,
                    PUBLISH_JOB,
                    {"conversation_id": conv_id},
                    dedupe_key=f"publish:{recorded.message_row_id}",
                )

        if not recorded.already_done:
            await self.store.write(enqueue)
            self.worker.wake()

    async def stop(self, *, drain_seconds: float = 30.0) -> None:
        if self.imap is not None:
            await self.imap.stop()
        if self.gate is not None:
            self.gate.closing = True
        if self.smtp_server is not None:
            self.smtp_server.close()
            if self.gate is not None:
                await self.gate.drained(drain_seconds)
        if self.worker is not None:
            self.worker.stop()
        for t in self._tasks:
            if t.get_name() != "worker":
                t.cancel()  # pollers hold no work in flight; the worker drains its jobs
        if self._tasks:
            _done, pending = await asyncio.wait(self._tasks, timeout=drain_seconds)
            for t in pending:
                t.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await t
        if self.http_runner is not None:
            await self.http_runner.cleanup()
        if self.hubspot is not None:
            await self.hubspot.close()
        if self.sandbox is not None:
            await self.sandbox.close()
        if self.store is not None:
            self.store.close()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None


def _lock(path) -> int:
    """One daemon per state_dir: a second one would race the first for the same jobs."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise GatewayError(
            f"{path}: another mail-gateway is already running on this state_dir"
        ) from None
    return fd


async def serve(settings: Settings) -> None:
    """Run until SIGTERM or SIGINT, then stop in order."""
    gw = Gateway(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await gw.start()
    try:
        await stop.wait()
        log.info("stopping")
    finally:
        await gw.stop()
