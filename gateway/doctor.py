"""`mail-gateway doctor`: what is wrong, each finding with its fix in one sentence.

Each check is an async function over a DoctorRun (the settings and, once found, the HubSpot
client) that returns Check(name, status, detail, fix) with status ok, warn or fail. Checks
never send mail and never change HubSpot: they read, connect and say goodbye.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import sqlite3
from dataclasses import asdict, dataclass, field
from typing import Any

from gateway.config import Settings, load_settings
from gateway.errors import ConfigError

OK, WARN, FAIL = "ok", "warn", "fail"


@dataclass(frozen=True)
class Check:
    name: str
    status: str  # ok | warn | fail
    detail: str
    fix: str = ""

    def to_json(self) -> dict[str, str]:
        return asdict(self)


@dataclass
class DoctorRun:
    settings: Settings
    client: Any = None  # HubSpotClient, once the token check built one
    ids: Any = None  # HubSpotIds from the store
    store: Any = None
    notes: dict[str, Any] = field(default_factory=dict)


def _host(host: str) -> str:
    return "127.0.0.1" if host in ("", "0.0.0.0", "::") else host


# --------------------------------------------------------------------------- local checks


async def check_store(run: DoctorRun) -> Check:
    path = run.settings.db_path
    fix = f"make {path.parent} writable by the service user and start the daemon once"
    if not path.exists():
        return Check("store", FAIL, f"{path} does not exist", fix)

    from gateway.store.db import pending_migrations

    try:
        pending = await asyncio.to_thread(pending_migrations, path)
    except (sqlite3.Error, OSError) as exc:
        return Check("store", FAIL, f"{path}: {exc}", fix)
    if pending:
        return Check(
            "store",
            FAIL,
            f"{path}: {len(pending)} migration(s) not applied ({', '.join(pending)})",
            "restart the daemon (it migrates the store at start)",
        )
    return Check("store", OK, f"{path}: writable, schema up to date")


async def check_smtp(run: DoctorRun) -> Check:
    listen = run.settings.smtp.listen
    host, port = _host(listen.host), listen.port
    fix = "start the daemon (systemctl start mail-gateway) and check smtp.listen"
    try:
        async with asyncio.timeout(5):
            reader, writer = await asyncio.open_connection(host, port)
            try:
                banner = (await reader.readline()).decode("ascii", "replace").strip()
                writer.write(b"QUIT\r\n")
                await writer.drain()
            finally:
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()
    except (OSError, TimeoutError) as exc:
        return Check("smtp", FAIL, f"nothing answers on {host}:{port}: {exc}", fix)
    if not banner.startswith("220"):
        return Check("smtp", FAIL, f"{host}:{port} greets with {banner!r}", fix)
    return Check("smtp", OK, f"{host}:{port}: {banner}")


async def check_mx(run: DoctorRun) -> Check:
    s = run.settings.smtp
    domains = sorted({a.rpartition("@")[2].lower() for a in s.addresses} | set(s.domains))
    if not domains:
        return Check("mx", OK, "no support domains configured")
    try:
        import dns.exception
        import dns.resolver
    except ImportError:
        return Check("mx", WARN, "dnspython is not installed", "pip install dnspython")

    def lookup() -> dict[str, str]:
        try:
            resolver = dns.resolver.Resolver()
        except dns.exception.DNSException as exc:  # no resolv.conf, no nameservers
            raise ConnectionError(str(exc)) from None
        resolver.lifetime = 3.0
        out: dict[str, str] = {}
        for domain in domains:
            try:
                answer = resolver.resolve(domain, "MX")
                out[domain] = ", ".join(
                    str(r.exchange).rstrip(".") for r in sorted(answer, key=lambda r: r.preference)
                )
            except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
                out[domain] = ""
            except (dns.resolver.NoNameservers, dns.exception.Timeout) as exc:
                raise ConnectionError(str(exc) or type(exc).__name__) from None
        return out

    try:
        found = await asyncio.to_thread(lookup)
    except ConnectionError as exc:
        return Check(
            "mx",
            WARN,
            f"DNS is not reachable from here ({exc}); MX of {', '.join(domains)} not checked",
            "run doctor where DNS works to check the MX records",
        )
    missing = [d for d, mx in found.items() if not mx]
    detail = "; ".join(f"{d}: {mx or 'no MX'}" for d, mx in found.items())
    if missing:
        return Check(
            "mx",
            WARN,
            detail,
            f"publish MX records for {', '.join(missing)} pointing at your MTA (or use IMAP)",
        )
    return Check("mx", OK, detail)


async def check_relay(run: DoctorRun) -> Check:
    r = run.settings.relay
    if r.mode == "capture":
        return Check("relay", OK, "capture mode: outgoing mail is kept as .eml files")
    import aiosmtplib

    client = aiosmtplib.SMTP(
        hostname=r.host,
        port=r.port,
        use_tls=r.tls == "implicit",
        start_tls=r.tls == "starttls",
        timeout=min(r.timeout, 10),
        local_hostname=run.settings.gateway.hostname,
    )
    where = f"{r.host}:{r.port}"
    try:
        async with asyncio.timeout(min(r.timeout, 10) * 3):
            await client.connect()
            if r.username:
                await client.login(r.username, str(r.password))
            with contextlib.suppress(aiosmtplib.SMTPException):
                await client.quit()
    except aiosmtplib.SMTPAuthenticationError as exc:
        return Check(
            "relay",
            FAIL,
            f"{where}: AUTH refused ({exc.code} {exc.message})",
            "correct relay.username and the relay password (password_file or $RELAY_PASSWORD)",
        )
    except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
        return Check(
            "relay",
            FAIL,
            f"{where}: {type(exc).__name__}: {exc}",
            "check relay.host, relay.port and relay.tls, and that the relay accepts "
            "connections from this host",
        )
    finally:
        client.close()
    auth = f", AUTH as {r.username} accepted" if r.username else ", no AUTH configured"
    return Check("relay", OK, f"{where} reachable ({r.tls}){auth}; no mail sent")


async def check_signatures(run: DoctorRun) -> Check:
    from gateway.mail.signatures import choose_signature

    sigs = run.settings.signatures
    patterns = sorted(set(sigs.domains) | set(sigs.html))
    if not patterns and not (sigs.default or sigs.default_html):
        return Check(
            "signatures",
            WARN,
            "no signature configured: replies carry none",
            "set signatures.default (and [signatures.domains] per rep domain)",
        )
    try:
        for pattern in patterns:
            choose_signature("rep@" + pattern.removeprefix("*.x").removeprefix("*."), sigs)
        choose_signature("rep@unmatched.invalid", sigs)
    except Exception as exc:
        return Check("signatures", FAIL, f"{type(exc).__name__}: {exc}", "fix [signatures]")
    return Check("signatures", OK, f"default and {len(patterns)} domain pattern(s) render")


async def check_knowledge(run: DoctorRun) -> Check:
    a = run.settings.assistant
    if a.backend == "off":
        return Check("knowledge", OK, "assistant off: every conversation goes to a person")
    kdir = a.knowledge_dir
    if kdir is None:
        if a.backend == "openai":
            return Check("knowledge", OK, "openai backend without knowledge articles")
        return Check("knowledge", FAIL, "no knowledge_dir", "set assistant.knowledge_dir")
    from gateway.pipeline.assistant.knowledge import load_articles

    try:
        sections = await asyncio.to_thread(load_articles, kdir)
    except OSError as exc:
        return Check("knowledge", FAIL, f"{kdir}: {exc}", "make assistant.knowledge_dir readable")
    files = {getattr(s, "path", "") for s in sections}
    if not sections:
        return Check(
            "knowledge",
            FAIL,
            f"{kdir}: no article sections found",
            "put Markdown articles (## headings) in assistant.knowledge_dir",
        )
    return Check("knowledge", OK, f"{kdir}: {len(sections)} section(s) in {len(files)} file(s)")


# --------------------------------------------------------------------------- HubSpot


async def _connect_hubspot(run: DoctorRun) -> Check:
    """Build the client (sandbox ids from the running sandbox) and prove the token works."""
    from gateway.hubspot.connect import SCOPES, build_client, endpoint_for, sandbox_info_from
    from gateway.hubspot.errors import HubSpotError
    from gateway.store.db import Store

    s = run.settings
    fix_token = (
        "create a new token (hubspot.access_token_file) or run `mail-gateway hubspot connect`, "
        "then restart"
    )
    try:
        info = await sandbox_info_from(s) if s.hubspot.mode == "sandbox" else None
    except HubSpotError as exc:
        return Check("hubspot_token", FAIL, exc.message, "start the daemon (it runs the sandbox)")
    ep = endpoint_for(s, info)
    run.store = Store(s.db_path)
    run.client = client = build_client(s, run.store, ep)
    try:
        async with asyncio.timeout(20):
            await client.get("/crm/v3/owners", params={"limit": 1})
    except (HubSpotError, TimeoutError) as exc:
        return Check("hubspot_token", FAIL, f"HubSpot refuses our credentials: {exc}", fix_token)
    kind = "static token" if ep.token else "OAuth token (refreshed from the stored one)"
    detail = f"{ep.base_url}: {kind} accepted"
    if not ep.token:
        return Check("hubspot_token", OK, detail + "; refresh works")
    try:
        async with asyncio.timeout(10):
            tinfo = await client.get(f"/oauth/v1/access-tokens/{ep.token}", auth=False)
    except (HubSpotError, TimeoutError):
        return Check("hubspot_token", OK, detail + " (a private-app token: scopes not listable)")
    granted = set((tinfo or {}).get("scopes") or [])
    missing = sorted(set(SCOPES.split()) - granted)
    if missing:
        return Check(
            "hubspot_token",
            FAIL,
            detail + f"; scopes missing: {', '.join(missing)}",
            "grant the missing scopes to the app and reconnect (`mail-gateway hubspot connect`)",
        )
    expires = (tinfo or {}).get("expires_in")
    life = "does not expire" if expires is None else f"expires in {expires}s (refreshable)"
    return Check("hubspot_token", OK, detail + f"; all scopes granted; {life}")


async def _load_ids(run: DoctorRun) -> Check | None:
    from gateway.hubspot.setup import SETUP_KEY, HubSpotIds
    from gateway.store.queries import kv_get

    raw = await run.store.read(lambda db: kv_get(db, SETUP_KEY))
    run.ids = HubSpotIds.from_json(raw)
    return None


async def check_pipeline(run: DoctorRun) -> Check:
    from gateway.hubspot.errors import HubSpotError

    ids = run.ids
    if ids is None or not ids.pipeline_id:
        return Check("hubspot_pipeline", FAIL, "HubSpot setup never ran", _SETUP_FIX)
    try:
        pipelines = (await run.client.get("/crm/v3/pipelines/tickets")).get("results", [])
    except HubSpotError as exc:
        return Check("hubspot_pipeline", FAIL, str(exc), _SETUP_FIX)
    pipeline = next((p for p in pipelines if str(p.get("id")) == ids.pipeline_id), None)
    if pipeline is None:
        return Check(
            "hubspot_pipeline", FAIL, f"pipeline {ids.pipeline_id} no longer exists", _SETUP_FIX
        )
    stage = next((st for st in pipeline.get("stages", []) if str(st["id"]) == ids.stage_id), None)
    if stage is None:
        return Check(
            "hubspot_pipeline",
            FAIL,
            f"stage {ids.stage_id} is not in pipeline {ids.pipeline_id}",
            _SETUP_FIX,
        )
    return Check(
        "hubspot_pipeline",
        OK,
        f"pipeline {ids.pipeline_id} ({pipeline.get('label')}), stage {ids.stage_id} "
        f"({stage.get('label')})",
    )


_SETUP_FIX = "run `mail-gateway hubspot setup` (or restart the daemon in sandbox mode)"


async def check_channel(run: DoctorRun) -> Check:
    from gateway.hubspot.errors import HubSpotError
    from gateway.hubspot.setup import CHANNELS, WEBHOOK_PATH

    ids = run.ids
    if ids is None or not ids.channel_id:
        return Check("hubspot_channel", FAIL, "no custom channel registered", _SETUP_FIX)
    want = run.settings.http.public_url.rstrip("/") + WEBHOOK_PATH
    try:
        channel = await run.client.get(f"{CHANNELS}/{ids.channel_id}", developer=True)
    except HubSpotError as exc:
        return Check(
            "hubspot_channel",
            FAIL,
            f"channel {ids.channel_id}: {exc}",
            "check hubspot.developer_api_key, then run `mail-gateway hubspot setup`",
        )
    got = (channel or {}).get("webhookUrl", "")
    if got != want:
        return Check(
            "hubspot_channel",
            FAIL,
            f"channel {ids.channel_id} sends webhooks to {got!r}, not {want!r}",
            "run `mail-gateway hubspot setup` to point the channel at http.public_url",
        )
    return Check("hubspot_channel", OK, f"channel {ids.channel_id}: webhooks to {want}")


async def check_channel_accounts(run: DoctorRun) -> Check:
    from gateway.hubspot.errors import HubSpotError
    from gateway.hubspot.setup import CHANNELS

    ids = run.ids
    if ids is None or not ids.channel_id:
        return Check("hubspot_accounts", FAIL, "no custom channel registered", _SETUP_FIX)
    try:
        path = f"{CHANNELS}/{ids.channel_id}/channel-accounts"
        accounts = (await run.client.get(path, developer=True)).get("results", [])
    except HubSpotError as exc:
        return Check("hubspot_accounts", FAIL, str(exc), _SETUP_FIX)
    by_id = {str(a.get("id")): a for a in accounts}
    wanted = sorted(set(run.settings.smtp.addresses))
    problems = []
    for mailbox in wanted:
        acct = by_id.get(ids.channel_accounts.get(mailbox, ""))
        if acct is None:
            problems.append(f"{mailbox}: no channel account")
        elif not acct.get("authorized", False):
            problems.append(f"{mailbox}: account {acct.get('id')} not authorised")
    if problems:
        return Check(
            "hubspot_accounts",
            FAIL,
            "; ".join(problems),
            "run `mail-gateway hubspot setup`, then authorise the accounts in HubSpot's inbox",
        )
    return Check("hubspot_accounts", OK, f"{len(wanted)} account(s) authorised")


# --------------------------------------------------------------------------- the run


async def run_checks(settings: Settings) -> list[Check]:
    run = DoctorRun(settings)
    checks = [
        await check_store(run),
        await check_smtp(run),
        await check_mx(run),
    ]
    try:
        token = await _connect_hubspot(run)
        checks.append(token)
        skipped = Check("hubspot_pipeline", WARN, "not checked: no usable HubSpot token", token.fix)
        if run.client is None:  # the sandbox does not answer: nothing to ask
            checks += [
                dataclasses.replace(skipped, name=name)
                for name in ("hubspot_pipeline", "hubspot_channel", "hubspot_accounts")
            ]
        else:
            await _load_ids(run)
            # the channel checks use the developer key: they work even with a bad token
            checks.append(await check_pipeline(run) if token.status != FAIL else skipped)
            checks += [await check_channel(run), await check_channel_accounts(run)]
    finally:
        if run.client is not None:
            await run.client.close()
        if run.store is not None:
            run.store.close()
    checks += [await check_relay(run), await check_signatures(run), await check_knowledge(run)]
    return checks


def doctor(config_path: str) -> list[Check]:
    """Load the config (a check itself), then run the rest; for the CLI."""
    try:
        settings = load_settings(config_path)
    except ConfigError as exc:
        return [Check("config", FAIL, "; ".join(exc.problems), "fix the lines named above")]
    except OSError as exc:
        return [Check("config", FAIL, f"{config_path}: {exc}", "check --config")]
    checks = [Check("config", OK, f"{settings.source}: valid")]
    return checks + asyncio.run(run_checks(settings))


def to_json(checks: list[Check]) -> str:
    return json.dumps([c.to_json() for c in checks], indent=2)
