"""The composition root: builds every part from Settings, owns the loop, starts and stops them.

Start order: store; the HTTP sockets bound, public and admin (not yet serving: the public
port, the kernel's pick for port 0, completes http.public_url); the HubSpot sandbox (mode =
sandbox, its webhooks aimed at that URL) and its setup; SMTP intake; HTTP serving; worker.
The store comes first (a mail is in it before its 250) and the worker last (jobs run only
once everything they call is up).
When started, the daemon reports the ports it bound in the log and in its READY status. A
listener that cannot bind is named by its config key (smtp.listen, http.listen, admin.listen,
hubspot.sandbox_listen).
Stop order: refuse new SMTP sessions (421), let sessions in DATA finish, drain the worker
with a deadline, close HTTP and the sandbox, close the store. Nothing accepted is lost at any
point: a mail is in the store before its 250, and an unfinished job runs again at next start.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import errno
import fcntl
import functools
import json
import logging
import multiprocessing
import os
import signal
import socket
import time
import urllib.parse
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from aiohttp import web

from gateway.config import (
    Listen,
    Secret,
    Settings,
    deployment_findings,
    listener_url,
    load_settings,
    path_problems,
)
from gateway.errors import ConfigError, GatewayError
from gateway.hubspot.client import HubSpotClient
from gateway.hubspot.connect import Endpoint, build_client, endpoint_for
from gateway.hubspot.setup import SETUP_KEY, run_setup
from gateway.intake.imap import ImapIntake
from gateway.intake.smtp import Gate, start_smtp
from gateway.jobs.assist import AssistJob, build_assistant, handoff_facts
from gateway.jobs.bounce import BounceRunner
from gateway.jobs.handoff import HandoffRunner
from gateway.jobs.imap_forwarding import forwarding_recorder
from gateway.jobs.process_mail import MailProcessor
from gateway.jobs.registry import job_registry
from gateway.jobs.rep_reply import ReplyRunner
from gateway.jobs.send_reply import Outbound
from gateway.logs import log_context, register_secrets, set_level
from gateway.mailauth.tokens import TokenSource
from gateway.metrics import Metrics, Sources, hubspot_budget_left
from gateway.models import BOUNCE
from gateway.relay.outbox import capture_dir
from gateway.relay.sender import RelaySender
from gateway.store import jobs as jobq
from gateway.store.db import Store
from gateway.store.hubspot import follow_up_mail
from gateway.store.queries import ensure_secret, kv_set
from gateway.systemd import Notifier
from gateway.web import WebState, create_admin_app, create_app
from gateway.worker import Worker

if TYPE_CHECKING:
    from gateway.sandbox.app import SandboxServer

log = logging.getLogger(__name__)


@dataclass
class Gateway:
    settings: Settings
    store: Store | None = None
    worker: Worker | None = None
    smtp_server: asyncio.base_events.Server | None = None
    gate: Gate | None = None
    http_runner: web.AppRunner | None = None
    admin_runner: web.AppRunner | None = None
    sandbox: SandboxServer | None = None
    imap: ImapIntake | None = None
    endpoint: Endpoint | None = None
    hubspot: HubSpotClient | None = None
    handoff: HandoffRunner | None = None
    webstate: WebState | None = None
    sender: RelaySender | None = None
    outbound: Outbound | None = None
    replies: ReplyRunner | None = None
    bounces: BounceRunner | None = None
    assist: AssistJob | None = None
    metrics: Metrics | None = None
    notifier: Notifier = field(default_factory=Notifier)
    parse_pool: ProcessPoolExecutor | None = None
    processor: MailProcessor | None = None
    _lock_fd: int | None = None
    _http_sockets: list[socket.socket] = field(default_factory=list)
    _admin_sockets: list[socket.socket] = field(default_factory=list)
    _tasks: list[asyncio.Task] = field(default_factory=list)

    @property
    def smtp_port(self) -> int:
        assert self.smtp_server is not None
        return self.smtp_server.sockets[0].getsockname()[1]

    @property
    def http_port(self) -> int:
        """The HTTP port bound, known from the bind on (before HTTP serves)."""
        assert self._http_sockets, "bound in start()"
        return self._http_sockets[0].getsockname()[1]

    @property
    def admin_port(self) -> int:
        """The admin listener's port (/status, /metrics, /readyz), known from the bind on."""
        assert self._admin_sockets, "bound in start()"
        return self._admin_sockets[0].getsockname()[1]

    def serving(self) -> str:
        """Where the daemon listens, with the ports it bound: the READY status and log line."""
        s = self.settings
        where = [f"SMTP on {s.smtp.listen.host}:{self.smtp_port}"]
        where.append(f"HTTP on {s.http.listen.host}:{self.http_port}")
        where.append(f"admin on {s.admin.listen.host}:{self.admin_port}")
        if self.sandbox is not None:
            where.append(f"HubSpot sandbox on {s.hubspot.sandbox_listen.host}:{self.sandbox.port}")
        return "serving " + ", ".join(where)

    async def start(self) -> None:
        s = self.settings
        problems = path_problems(s)
        if problems:  # one line naming the key, not SQLite's "unable to open database file"
            raise ConfigError(problems)
        s.gateway.state_dir.mkdir(parents=True, exist_ok=True)
        self._lock_fd = _lock(s.lock_path)
        register_secrets(_secrets(s))
        self.store = store = Store(s.db_path)
        recovered = await store.write(jobq.recover)
        if recovered:
            log.info("resuming %d job(s) interrupted by the last stop", recovered)
        configured: str = s.gateway.secret  # a Secret; the generated one is a plain str
        secret = (configured or await store.write(ensure_secret)).encode()
        support = frozenset(s.smtp.addresses)
        if s.worker.parse_processes:
            # forkserver: a clean parent for the parsers, not a fork of this threaded process
            ctx = multiprocessing.get_context("forkserver")
            processes = s.worker.parse_processes
            if processes < 0:
                processes = os.cpu_count() or 1
            self.parse_pool = ProcessPoolExecutor(processes, mp_context=ctx)
        processor = MailProcessor(store, secret, s.gateway.hostname, support)
        processor.form_senders = frozenset(s.senders.form_senders)
        processor.trusted_domains = frozenset(s.senders.trusted_domains)
        processor.executor = self.parse_pool
        self.processor = processor
        self.metrics = metrics = Metrics()
        self.assist = assist = AssistJob.from_settings(store, s.assistant)
        processor.after_record.append(assist.after_record)
        processor.after_record.append(forwarding_recorder(store))
        # bound now, served once the app exists: the sandbox and the setup need the public URL
        self._http_sockets = _bind(s.http.listen, "http.listen")
        self._admin_sockets = _bind(s.admin.listen, "admin.listen")
        self.settings = s = _with_public_url(s, self.http_port)
        for finding in deployment_findings(s):  # what `config check` says, once at start
            log.warning("config: %s", finding)
        if s.hubspot.mode == "sandbox":
            from gateway.sandbox import start_sandbox

            with _naming("hubspot.sandbox_listen", s.hubspot.sandbox_listen):
                self.sandbox = await start_sandbox(
                    s.hubspot.sandbox_listen.host,
                    s.hubspot.sandbox_listen.port,
                    db_path=s.hubspot.sandbox_db,
                    webhook_target_url=s.http.public_url.rstrip("/") + "/hubspot/webhook",
                    admin_token=s.sandbox.admin_token,
                )
        self.endpoint = endpoint_for(s, self.sandbox.info() if self.sandbox else None)
        self.hubspot = build_client(s, store, self.endpoint)
        self.handoff = HandoffRunner(
            store, self.hubspot, s.hubspot, facts=handoff_facts, executor=self.parse_pool
        )
        processor.after_record.append(self._follow_handoff)
        self.sender = RelaySender(
            s.relay,
            capture_dir=capture_dir(s),
            local_hostname=s.gateway.hostname,
            observer=metrics,
            tokens=TokenSource.for_relay(s.relay, store) if s.relay.auth == "oauth2" else None,
        )
        self.outbound = Outbound(store, self.sender, s, secret)
        self.replies = ReplyRunner(store, self.hubspot, self.outbound, self.handoff)
        self.bounces = BounceRunner(store, self.hubspot, self.handoff, executor=self.parse_pool)
        registry = job_registry(
            process_mail=processor,
            assist=assist,  # reload() swaps its settings and assistant in place
            handoff=self.handoff.handoff_job,
            publish=self.handoff.publish_job,
            rep_reply=self.replies.rep_reply_job,
            bounce=self.bounces.bounce_job,
            send_reply=self.outbound.send_reply_job,
            worker=s.worker,
        )
        self.worker = Worker(
            store,
            {
                kind: dataclasses.replace(spec, handler=metrics.job(kind, _with_ids(spec.handler)))
                for kind, spec in registry.items()
            },
            s.worker,
        )
        if self.sandbox is not None:
            await self._setup_hubspot()
        with _naming("smtp.listen", s.smtp.listen):
            self.smtp_server, self.gate = await start_smtp(
                s.smtp,
                store,
                hostname=s.gateway.hostname,
                on_accepted=self.worker.wake,
                observer=metrics,
            )
        self.webstate = WebState(
            store,
            webhook_secret=self.endpoint.client_secret,
            public_url=s.http.public_url,
            wake=self.worker.wake,
            endpoint=self.endpoint,
            metrics=metrics,
            smtp_listening=self._smtp_listening,
            hubspot_auth=self._hubspot_auth,
            admin_token=s.admin.token,
        )
        metrics.sources = Sources(store, self.gate, self.webstate.counters, self.hubspot)
        self.http_runner = web.AppRunner(create_app(self.webstate), access_log=None)
        await self.http_runner.setup()
        for sock in self._http_sockets:
            await web.SockSite(self.http_runner, sock).start()
        self.admin_runner = web.AppRunner(create_admin_app(self.webstate), access_log=None)
        await self.admin_runner.setup()
        for sock in self._admin_sockets:
            await web.SockSite(self.admin_runner, sock).start()
        self._tasks.append(asyncio.create_task(self.worker.run(), name="worker"))
        if s.hubspot.replies in ("poll", "both"):
            poller = self.replies.poll_forever(s.hubspot.poll_interval, self.worker.wake)
            self._tasks.append(asyncio.create_task(poller, name="reply-poller"))
        self.imap = ImapIntake(s, store, on_accepted=self.worker.wake)
        self.imap.start()
        self._tasks.append(asyncio.create_task(self._snapshot_forever(), name="runtime-snapshot"))
        if self.notifier.watchdog_seconds:
            watchdog = self.notifier.watchdog_loop()
            self._tasks.append(asyncio.create_task(watchdog, name="watchdog"))
        missing = await self._hubspot_missing() if s.hubspot.mode == "live" else ""
        if missing:
            # intake stays on (mail is stored and waits for HubSpot); said once, with the fix
            self.notifier.ready(self.serving())  # the bound ports, as every start says them
            self.notifier.status(f"HubSpot NOT connected: {missing} ({self.serving()})")
            log.warning(
                "mail-gateway running WITHOUT HubSpot: %s; mail is accepted and stored, "
                "handoffs wait until it is fixed (%s; public URL %s; store %s)",
                missing,
                self.serving(),
                s.http.public_url,
                s.db_path,
            )
            waiting = self._wait_for_hubspot()
            self._tasks.append(asyncio.create_task(waiting, name="hubspot-wait"))
            return
        self.notifier.ready(self.serving())
        log.info(
            "mail-gateway ready: %s; public URL %s; store %s",
            self.serving(),
            s.http.public_url,
            s.db_path,
        )

    async def _hubspot_missing(self) -> str:
        """Live mode, at start: "" when HubSpot accepts our token, else what is missing and
        how to fix it (one authenticated read, at most START_CHECK_SECONDS)."""
        timeout = START_CHECK_SECONDS
        try:
            async with asyncio.timeout(timeout):
                await self._hubspot_auth()
        except TimeoutError:
            return (
                f"{self.settings.hubspot.base_url} did not answer within {timeout:g} s; check "
                "hubspot.base_url and this host's outbound HTTPS, then `mail-gateway doctor`"
            )
        except GatewayError as exc:
            return f"{exc}; then `mail-gateway hubspot check`"
        return ""

    async def _wait_for_hubspot(self) -> None:
        """Live mode, not connected at start: ask again every HUBSPOT_RECHECK_SECONDS (quietly:
        the start said what is missing); once HubSpot accepts us (`hubspot connect` stored a
        token), say so once and put the plain status back."""
        while True:
            await asyncio.sleep(HUBSPOT_RECHECK_SECONDS)
            if not await self._hubspot_missing():
                break
        self.notifier.status(self.serving())
        log.info("HubSpot connected: handoffs run (%s)", self.serving())

    async def _setup_hubspot(self) -> None:
        """With the built-in sandbox, set it up at every start (it is idempotent)."""
        s = self.settings
        assert self.hubspot is not None and self.store is not None, "called from start()"
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
        """A new mail on a conversation already handed off goes to the same HubSpot thread;
        a bounce of one of our replies is reported. One write for both."""
        conv_id, row_id = recorded.conversation_id, recorded.message_row_id
        bounce = BOUNCE in annotations
        assert self.store is not None and self.worker is not None, "hooks run after start()"
        # also when already_done: a crash may have come between the record and this hook;
        # the dedupe keys make a second enqueue a no-op
        await self.store.write(lambda db: follow_up_mail(db, conv_id, row_id, bounce=bounce))
        self.worker.wake()

    def _smtp_listening(self) -> bool:
        server, gate = self.smtp_server, self.gate
        return bool(server and server.is_serving() and gate and not gate.closing)

    async def _hubspot_auth(self) -> None:
        """A cheap authenticated call; raises when the token is missing, revoked or expired."""
        assert self.hubspot is not None, "the web app asks only after start()"
        async with asyncio.timeout(10):
            await self.hubspot.call("owners_list", params={"limit": 1})

    def runtime_snapshot(self) -> dict:
        """What `mail-gateway status` (another process) cannot ask the daemon directly."""
        client = self.hubspot
        return {
            "updated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "pid": os.getpid(),
            "budget_left": hubspot_budget_left(client) if client else None,
            "budget_limit": client.window.limit if client else None,
            "budget_interval_seconds": client.window.interval if client else None,
            "calls": client.stats.total if client else 0,
            "rate_limited": client.stats.rate_limited if client else 0,
            "retries": client.stats.retries if client else 0,
        }

    async def _snapshot_forever(self, every: float = 10.0) -> None:
        store = self.store
        assert store is not None, "a task of start()"
        while True:
            snap = json.dumps(self.runtime_snapshot())
            try:
                await store.write(functools.partial(kv_set, key=RUNTIME_KEY, value=snap))
            except Exception as exc:  # a full disk shows in /readyz; keep serving
                log.warning("cannot store the runtime snapshot: %s", exc)
            await asyncio.sleep(every)

    async def reload(self) -> list[str]:
        """SIGHUP: re-read the config file; apply signatures, assistant and knowledge, log level.

        Returns the settings that changed but need a restart (listeners, store, HubSpot, relay).
        A config with errors changes nothing: the daemon keeps running on the old settings.
        """
        old = self.settings
        if old.source is None:
            log.warning("reload: these settings did not come from a file; nothing to re-read")
            return []
        self.notifier.reloading()
        try:
            new = await asyncio.to_thread(load_settings, old.source)
            assistant = await asyncio.to_thread(build_assistant, new.assistant)
        except Exception as exc:
            problems = getattr(exc, "problems", None) or [str(exc)]
            for line in problems:
                log.error("reload refused, keeping the running settings: %s", line)
            self.notifier.ready("reload failed; running on the previous settings")
            return []
        needs_restart = _restart_keys(old, _with_public_url(new, self.http_port))
        self.settings = dataclasses.replace(
            old,
            signatures=new.signatures,
            assistant=new.assistant,
            gateway=dataclasses.replace(old.gateway, log_level=new.gateway.log_level),
        )
        if self.outbound is not None:
            self.outbound.settings = dataclasses.replace(
                self.outbound.settings, signatures=new.signatures, assistant=new.assistant
            )
        if self.assist is not None:
            self.assist.settings, self.assist.assistant = new.assistant, assistant
        set_level(new.gateway.log_level)
        log.info(
            "reloaded %s: signatures, assistant and knowledge, log level %s",
            old.source,
            new.gateway.log_level,
        )
        for key in needs_restart:
            log.warning("reload: %s changed; it takes effect after a restart", key)
        self.notifier.ready(self.serving())
        return needs_restart

    async def stop(self, *, drain_seconds: float = 30.0) -> None:
        """Stop in order (intake, worker, HTTP, sandbox, store) and log one `stopped` line
        with the drain's outcome: SMTP sessions and jobs that finished, and those cut at the
        deadline (a cut session's mail never got its 250; a cut job runs again at next start)."""
        began = time.monotonic()
        summary = {"sessions": 0, "sessions_cut": 0, "jobs": 0, "jobs_cut": 0}
        self.notifier.stopping("stopping: draining SMTP sessions and jobs")
        if self.imap is not None:
            await self.imap.stop()
        if self.gate is not None:
            summary["sessions"] = self.gate.active
            self.gate.close()  # idle sessions end; the listener stays open: newcomers get 421
            await self.gate.drained(drain_seconds)
            summary["sessions_cut"] = self.gate.active
        if self.smtp_server is not None:
            self.smtp_server.close()
        ran_before = self.worker.ran if self.worker is not None else 0
        if self.worker is not None:
            summary["jobs"] = self.worker.in_flight
            self.worker.stop()
        for t in self._tasks:
            if t.get_name() != "worker":
                t.cancel()  # pollers hold no work in flight; the worker drains its jobs
        if self._tasks:
            _done, pending = await asyncio.wait(self._tasks, timeout=drain_seconds)
            if self.worker is not None and any(t.get_name() == "worker" for t in pending):
                summary["jobs_cut"] = self.worker.in_flight
            for t in pending:
                t.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await t
        if self.worker is not None:
            summary["jobs"] = max(summary["jobs"], self.worker.ran - ran_before)
        if self.store is not None and self.hubspot is not None:
            snap = json.dumps(self.runtime_snapshot())
            with contextlib.suppress(Exception):
                await self.store.write(lambda db: kv_set(db, RUNTIME_KEY, snap))
        for runner in (self.http_runner, self.admin_runner):
            if runner is not None:
                await runner.cleanup()
        for sock in self._http_sockets + self._admin_sockets:
            sock.close()  # served ones are closed already; this is for a start that failed
        if self.hubspot is not None:
            await self.hubspot.close()
        if self.sandbox is not None:
            await self.sandbox.close()
        if self.parse_pool is not None:
            await asyncio.to_thread(self.parse_pool.shutdown, wait=True, cancel_futures=True)
        if self.store is not None:
            self.store.close()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None
        log.info(
            "stopped after %.1f s: SMTP sessions %d finished, %d cut; jobs %d finished, %d cut%s",
            time.monotonic() - began,
            summary["sessions"] - summary["sessions_cut"],
            summary["sessions_cut"],
            summary["jobs"] - summary["jobs_cut"],
            summary["jobs_cut"],
            " (cut jobs run again at the next start)" if summary["jobs_cut"] else "",
        )


RUNTIME_KEY = "runtime.hubspot"
# Live mode: how long the start waits for HubSpot to accept the token before READY says
# "HubSpot NOT connected" (intake is on either way).
START_CHECK_SECONDS = 5.0
# ... and, not connected, how often it asks again until it is
HUBSPOT_RECHECK_SECONDS = 30.0


def _with_ids(fn):
    """Log lines written while a job runs carry its job, conversation and message ids."""

    async def run(job) -> None:
        p = job.payload if isinstance(job.payload, dict) else {}
        with log_context(
            job_id=job.id,
            conversation_id=p.get("conversation_id"),
            raw_id=p.get("raw_id"),
            message_id=p.get("message_id") or p.get("hubspot_message_id"),
        ):
            await fn(job)

    return run


_LISTEN_ERRNOS = (errno.EADDRINUSE, errno.EACCES, errno.EADDRNOTAVAIL)
_LISTEN_HINTS = {
    errno.EADDRINUSE: "another program (or another mail-gateway) has this port",
    errno.EACCES: "a port below 1024 needs CAP_NET_BIND_SERVICE (the unit file grants it)",
    errno.EADDRNOTAVAIL: "no interface of this machine has this address",
}


def _listen_error(key: str, listen: Listen, exc: OSError) -> GatewayError:
    """A listener that cannot bind, named by its config key: `smtp.listen = "…": cannot
    listen: Address already in use (another program has this port); change smtp.listen`."""
    hint = _LISTEN_HINTS.get(exc.errno or 0, "")
    return GatewayError(
        f'{key} = "{listen}": cannot listen: {exc.strerror or exc}'
        + (f" ({hint})" if hint else "")
        + f"; free the port or change {key}"
    )


@contextlib.contextmanager
def _naming(key: str, listen: Listen) -> Iterator[None]:
    """A bind that fails inside the block (port taken, not allowed, no such address) becomes
    the GatewayError of _listen_error, naming `key`; other OSErrors pass unchanged."""
    try:
        yield
    except OSError as exc:
        if exc.errno not in _LISTEN_ERRNOS:
            raise
        raise _listen_error(key, listen, exc) from None


def _bind(listen: Listen, key: str) -> list[socket.socket]:
    """TCP sockets bound to host:port and not yet listening (connections are refused until
    HTTP serves), as asyncio's create_server binds them: every address the host resolves to
    (getaddrinfo(3), AI_PASSIVE), SO_REUSEADDR, IPV6_V6ONLY. With port 0 the first address
    takes the kernel's pick and the others the same port. Raises GatewayError naming `key`
    (the config key of the listener) when the port cannot be had."""
    infos = socket.getaddrinfo(
        listen.host or None, listen.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )
    sockets: list[socket.socket] = []
    port = listen.port
    try:
        for family, kind, proto, _name, address in dict.fromkeys(infos):
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                sock.bind((address[0], port, *address[2:]))
            except OSError as exc:
                raise _listen_error(key, Listen(str(address[0]), port), exc) from None
            port = sock.getsockname()[1]
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    return sockets


def _with_public_url(settings: Settings, http_port: int) -> Settings:
    """The settings with http.public_url completed by the bound HTTP port: unset, it is the
    listener's own URL (config.listener_url); naming port 0, it gets the bound port. A URL
    with a real port (a proxy, a public name) is kept exactly as configured."""
    http = settings.http
    url = urllib.parse.urlsplit(http.public_url)
    try:
        port = url.port
    except ValueError:  # not a number: kept as configured
        port = None
    if not http.public_url:
        public_url = listener_url(Listen(http.listen.host, http_port))
    elif port == 0:
        host = f"[{url.hostname}]" if ":" in (url.hostname or "") else url.hostname
        public_url = url._replace(netloc=f"{host}:{http_port}").geturl()
    else:
        return settings
    return dataclasses.replace(settings, http=dataclasses.replace(http, public_url=public_url))


def _secrets(settings: Settings) -> list[str]:
    """Every configured secret value, for the log redaction."""
    sections = [getattr(settings, f.name) for f in dataclasses.fields(settings)]
    sections += list(settings.imap)
    values = [
        getattr(section, f.name)
        for section in sections
        if dataclasses.is_dataclass(section)
        for f in dataclasses.fields(section)
    ]
    return [v for v in values if isinstance(v, Secret)]


# Sections read only at start; signatures, assistant and log_level are re-read on SIGHUP.
_RESTART_SECTIONS = ("smtp", "http", "hubspot", "worker", "relay", "imap", "admin", "sandbox")


def _restart_keys(old: Settings, new: Settings) -> list[str]:
    changed = []
    for name in _RESTART_SECTIONS:
        a, b = getattr(old, name), getattr(new, name)
        if name == "imap":
            if a != b:
                changed.append("imap")
            continue
        for f in dataclasses.fields(a):
            if getattr(a, f.name) != getattr(b, f.name):
                changed.append(f"{name}.{f.name}")
    for key in ("state_dir", "hostname", "secret", "log_format", "stop_timeout"):
        if getattr(old.gateway, key, None) != getattr(new.gateway, key, None):
            changed.append(f"gateway.{key}")
    return changed


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
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())  # for `mail-gateway status`
    return fd


async def serve(settings: Settings) -> None:
    """Run until SIGTERM or SIGINT, then stop in order; SIGHUP reloads what can be reloaded."""
    gw = Gateway(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    received: list[signal.Signals] = []

    def on_signal(sig: signal.Signals) -> None:
        received.append(sig)
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal, sig)
    reloads: set[asyncio.Task] = set()

    def hup() -> None:
        task = loop.create_task(gw.reload(), name="reload")
        reloads.add(task)
        task.add_done_callback(reloads.discard)

    loop.add_signal_handler(signal.SIGHUP, hup)
    try:
        await gw.start()
    except BaseException:
        await gw.stop(drain_seconds=0)  # what did start (store, sockets, sandbox) is closed
        raise
    try:
        await stop.wait()
        log.info(
            "stopping (%s): new SMTP sessions get 421 while the rest drains",
            received[0].name if received else "signal",
        )
    finally:
        await gw.stop(drain_seconds=settings.gateway.stop_timeout)
