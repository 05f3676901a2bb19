"""`mail-gateway doctor`: what is wrong, each finding with its fix in one sentence.

Each check is an async function over a DoctorRun (the settings and, once found, the HubSpot
client) that returns Check(name, status, detail, fix) with status ok, warn or fail. Checks
never send mail and never change HubSpot: they read, connect and say goodbye.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from gateway.config import CREDENTIALS_DIR, Settings, load_settings
from gateway.errors import ConfigError, TokenError

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
    scratch: tempfile.TemporaryDirectory[str] | None = None

    def open_store(self) -> Any:
        """The gateway's Store, or, before the daemon has created it, an empty one in a
        scratch folder (no stored tokens): doctor never creates gateway.state_dir's database,
        which would belong to whoever ran doctor (root) instead of the service user."""
        from gateway.store.db import Store

        path = self.settings.db_path
        if not path.exists():
            if self.scratch is None:
                self.scratch = tempfile.TemporaryDirectory(prefix="mail-gateway-doctor-")
            path = Path(self.scratch.name) / path.name
        return Store(path)


def _host(host: str) -> str:
    return "127.0.0.1" if host in ("", "0.0.0.0", "::") else host


# --------------------------------------------------------------------------- local checks


async def check_store(run: DoctorRun) -> Check:
    path = run.settings.db_path
    fix = (
        f"make gateway.state_dir ({path.parent}) writable by the service user (the unit's "
        "StateDirectory= does) and start the daemon once"
    )
    if not path.exists():
        return Check("store", FAIL, f"{path} does not exist", fix)

    from gateway.store.db import SQLiteError, pending_migrations

    try:
        pending = await asyncio.to_thread(pending_migrations, path)
    except (SQLiteError, OSError) as exc:
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
            await _relay_login(run, client)
            with contextlib.suppress(aiosmtplib.SMTPException):
                await client.quit()
    except (aiosmtplib.SMTPAuthenticationError, TokenError) as exc:
        if r.auth == "oauth2":
            return Check("relay", FAIL, f"{where}: XOAUTH2 as {r.username}: {exc}", OAUTH_FIX)
        assert isinstance(exc, aiosmtplib.SMTPAuthenticationError)
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
    auth = auth.replace("AUTH", "AUTH XOAUTH2") if r.auth == "oauth2" else auth
    return Check("relay", OK, f"{where} reachable ({r.tls}){auth}; no mail sent")


OAUTH_FIX = (
    "see `mail-gateway mailbox status`; a device_code flow needs `mail-gateway mailbox connect "
    'NAME`; the provider\'s side: README "Microsoft 365 and Google Workspace mailboxes"'
)


async def _relay_login(run: DoctorRun, client: Any) -> None:
    from gateway.mailauth.tokens import TokenSource
    from gateway.relay.sender import RelaySender

    r = run.settings.relay
    if r.auth != "oauth2":
        await RelaySender(r).authenticate(client)
        return
    store = run.open_store()
    try:
        await RelaySender(r, tokens=TokenSource.for_relay(r, store)).authenticate(client)
    finally:
        store.close()


async def check_mailboxes(run: DoctorRun) -> list[Check]:
    """Each [[imap]] account's login: LOGIN, or XOAUTH2 with a token from its provider."""
    if not run.settings.imap:
        return []
    from gateway.intake.imap_client import close, connect
    from gateway.mailauth.tokens import TokenSource

    store = run.open_store()
    checks = []
    try:
        for a in run.settings.imap:
            name, where = f"imap {a.user}", f"{a.host}:{a.real_port}"
            tokens = TokenSource.for_imap(a, store) if a.auth == "oauth2" else None
            how = f"XOAUTH2 ({a.provider} {a.oauth_flow})" if tokens else "LOGIN"
            try:
                async with asyncio.timeout(a.timeout * 3):
                    close(await connect(a, asyncio.Event(), tokens))
            except Exception as exc:
                fix = OAUTH_FIX if tokens else "correct the account's user and password"
                detail = f"{where}: {how}: {type(exc).__name__}: {exc}"
                checks.append(Check(name, FAIL, detail, fix))
            else:
                checks.append(Check(name, OK, f"{where}: {how} login accepted"))
    finally:
        store.close()
    return checks


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
    from gateway.jobs.knowledge import load_articles

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
#
# One implementation for `doctor` and `mail-gateway hubspot check`: read-only calls through the
# table in gateway/hubspot/api.py, each failed check naming the config key or command that
# fixes it.

HUBSPOT_CHECKS = (
    "hubspot_token",
    "hubspot_inbox",
    "hubspot_pipeline",
    "hubspot_property",
    "hubspot_owner",
    "hubspot_channel",
    "hubspot_accounts",
)
_SETUP_FIX = "run `mail-gateway hubspot setup` (or restart the daemon in sandbox mode)"
_SCOPES_FIX = (
    "add them to requiredScopes in hubspot-app/src/app/app-hsmeta.json, `hs project upload`, "
    "then `mail-gateway hubspot connect` again (for hubspot.access_token: grant them to "
    "that token)"
)


async def _connect_hubspot(run: DoctorRun) -> Check:
    """Build the client (sandbox ids from the running sandbox) and prove the token works.

    Then HubSpot's token info (POST /oauth/2026-03/token/introspect) must list every scope of
    gateway.hubspot.api.required_scopes(); a missing one fails, naming the scopes and the fix.
    """
    from gateway.hubspot.api import required_scopes
    from gateway.hubspot.connect import (
        OAUTH_KEY,
        build_client,
        endpoint_for,
        sandbox_info_from,
        token_info,
    )
    from gateway.hubspot.errors import HubSpotError
    from gateway.store.queries import kv_get

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
    run.store = run.open_store()
    run.client = client = build_client(s, run.store, ep)
    if not ep.token and not await run.store.read(lambda db: kv_get(db, OAUTH_KEY)):
        run.notes["token_failed"] = True
        return Check(
            "hubspot_token",
            FAIL,
            "not connected: no OAuth tokens in the store and hubspot.access_token_file is empty",
            "run `mail-gateway hubspot connect` and approve (the running daemon picks the "
            "tokens up within 30 s), or put a private app token in hubspot.access_token_file "
            "and restart",
        )
    try:
        async with asyncio.timeout(20):
            await client.call("owners_list", params={"limit": 1})
            token = await client.access_token()
    except (HubSpotError, TimeoutError) as exc:
        run.notes["token_failed"] = True
        return Check("hubspot_token", FAIL, f"HubSpot refuses our credentials: {exc}", fix_token)
    kind = "static token" if ep.token else "OAuth token (refreshed from the stored one)"
    detail = f"{ep.base_url}: {kind} accepted"
    if not (ep.client_id and ep.client_secret):
        return Check(
            "hubspot_token",
            WARN,
            detail + "; scopes not checked: token info needs the app's client id and secret",
            "set hubspot.client_id and hubspot.client_secret (the app's Auth tab)",
        )
    try:
        async with asyncio.timeout(10):
            tinfo = await token_info(ep, token)
    except (HubSpotError, TimeoutError) as exc:
        return Check(
            "hubspot_token",
            WARN,
            detail + f"; HubSpot gives no token info ({exc}): scopes not checked",
            "use the app's OAuth token (`mail-gateway hubspot connect`) to have scopes checked",
        )
    missing = sorted(required_scopes() - set(tinfo.get("scopes") or []))
    if missing:
        return Check(
            "hubspot_token", FAIL, detail + f"; scopes missing: {', '.join(missing)}", _SCOPES_FIX
        )
    expires = tinfo.get("expires_in")
    life = f"expires in {expires}s (refreshable)" if expires else "does not expire"
    return Check("hubspot_token", OK, detail + f"; all scopes granted; {life}")


async def _load_ids(run: DoctorRun) -> None:
    from gateway.hubspot.setup import SETUP_KEY, HubSpotIds
    from gateway.store.queries import kv_get

    raw = await run.store.read(lambda db: kv_get(db, SETUP_KEY))
    run.ids = HubSpotIds.from_json(raw)


async def _read(run: DoctorRun, name: str, call: str, fix: str, **kw: Any) -> Any:
    """One read-only call of the table; a HubSpotError becomes a failed Check (returned)."""
    from gateway.hubspot.errors import HubSpotError

    try:
        async with asyncio.timeout(20):
            return await run.client.call(call, **kw)
    except (HubSpotError, TimeoutError) as exc:
        return Check(name, FAIL, f"{call}: {exc}", fix)


async def check_inbox(run: DoctorRun) -> Check:
    ids = run.ids
    if ids is None or not ids.inbox_id:
        return Check("hubspot_inbox", FAIL, "HubSpot setup never ran", _SETUP_FIX)
    got = await _read(run, "hubspot_inbox", "inboxes_list", _SETUP_FIX)
    if isinstance(got, Check):
        return got
    inbox = next((i for i in got.get("results", []) if str(i.get("id")) == ids.inbox_id), None)
    if inbox is None:
        fix = "set hubspot.inbox (an inbox id or name), then `mail-gateway hubspot setup`"
        return Check("hubspot_inbox", FAIL, f"inbox {ids.inbox_id} no longer exists", fix)
    return Check("hubspot_inbox", OK, f"inbox {ids.inbox_id} ({inbox.get('name')})")


async def check_pipeline(run: DoctorRun) -> Check:
    ids = run.ids
    if ids is None or not ids.pipeline_id:
        return Check("hubspot_pipeline", FAIL, "HubSpot setup never ran", _SETUP_FIX)
    got = await _read(run, "hubspot_pipeline", "pipelines_list", _SETUP_FIX, object_type="tickets")
    if isinstance(got, Check):
        return got
    results = got.get("results", [])
    pipeline = next((p for p in results if str(p.get("id")) == ids.pipeline_id), None)
    fix = "set hubspot.pipeline and hubspot.stage (id or label), then `mail-gateway hubspot setup`"
    if pipeline is None:
        return Check("hubspot_pipeline", FAIL, f"pipeline {ids.pipeline_id} no longer exists", fix)
    stage = next((st for st in pipeline.get("stages", []) if str(st["id"]) == ids.stage_id), None)
    if stage is None:
        detail = f"stage {ids.stage_id} is not in pipeline {ids.pipeline_id}"
        return Check("hubspot_pipeline", FAIL, detail, fix)
    return Check(
        "hubspot_pipeline",
        OK,
        f"pipeline {ids.pipeline_id} ({pipeline.get('label')}), stage {ids.stage_id} "
        f"({stage.get('label')})",
    )


async def check_property(run: DoctorRun) -> Check:
    prop = run.settings.hubspot.conversation_property
    fix = "run `mail-gateway hubspot setup`, or set hubspot.conversation_property to a new name"
    got = await _read(
        run, "hubspot_property", "property_get", fix, object_type="tickets", property_name=prop
    )
    if isinstance(got, Check):
        return got
    if not got.get("hasUniqueValue"):
        return Check("hubspot_property", FAIL, f"ticket property {prop} is not unique", fix)
    return Check("hubspot_property", OK, f"unique ticket property {prop}")


async def check_owner(run: DoctorRun) -> Check:
    wanted = run.settings.hubspot.owner
    if not wanted:
        return Check("hubspot_owner", OK, "no default owner configured (hubspot.owner)")
    fix = "set hubspot.owner to an owner id or email of this portal (or empty for none)"
    got = await _read(run, "hubspot_owner", "owners_list", fix)
    if isinstance(got, Check):
        return got
    for o in got.get("results", []):
        if wanted.lower() in (str(o.get("id")), str(o.get("email", "")).lower()):
            return Check("hubspot_owner", OK, f"owner {o.get('id')} ({o.get('email')})")
    return Check("hubspot_owner", FAIL, f"hubspot.owner {wanted!r} is not an owner here", fix)


async def check_channel(run: DoctorRun) -> Check:
    """The channel (read with developer key + appId) sends webhooks to our public URL."""
    from gateway.hubspot.setup import WEBHOOK_PATH

    ids = run.ids
    if ids is None or not ids.channel_id:
        fix = _SETUP_FIX
        if run.notes.get("token_failed"):  # setup needs the token: connect comes first
            fix = "first `mail-gateway hubspot connect` (hubspot_token above), then " + fix
        return Check("hubspot_channel", FAIL, "no custom channel registered", fix)
    want = run.settings.http.public_url.rstrip("/") + WEBHOOK_PATH
    fix = "check hubspot.developer_api_key and hubspot.app_id, then `mail-gateway hubspot setup`"
    channel = await _read(run, "hubspot_channel", "channel_get", fix, channel_id=ids.channel_id)
    if isinstance(channel, Check):
        return channel
    got = (channel or {}).get("webhookUrl", "")
    if got != want:
        detail = f"channel {ids.channel_id} sends webhooks to {got!r}, not {want!r}"
        fix = "check http.public_url, then `mail-gateway hubspot setup` points the channel at it"
        return Check("hubspot_channel", FAIL, detail, fix)
    return Check("hubspot_channel", OK, f"channel {ids.channel_id}: webhooks to {want}")


async def check_channel_accounts(run: DoctorRun) -> Check:
    """One authorised channel account per smtp.addresses entry (read with the OAuth token)."""
    ids = run.ids
    if ids is None or not ids.channel_id:
        return Check("hubspot_accounts", FAIL, "no custom channel registered", _SETUP_FIX)
    listed = await _read(
        run, "hubspot_accounts", "channel_accounts_list", _SETUP_FIX, channel_id=ids.channel_id
    )
    if isinstance(listed, Check):
        return listed
    by_address = {
        str((a.get("deliveryIdentifier") or {}).get("value", "")).lower(): a
        for a in listed.get("results", [])
    }
    wanted = sorted(set(run.settings.smtp.addresses))
    problems = []
    for mailbox in wanted:
        acct = by_address.get(mailbox.lower())
        if acct is None:
            problems.append(f"{mailbox}: no channel account")
        elif not acct.get("authorized", False):
            problems.append(f"{mailbox}: account {acct.get('id')} not authorised")
    if problems:
        return Check(
            "hubspot_accounts",
            FAIL,
            "; ".join(problems),
            "run `mail-gateway hubspot setup` (one account per smtp.addresses entry), then "
            "authorise the accounts in HubSpot's inbox",
        )
    return Check("hubspot_accounts", OK, f"{len(wanted)} account(s) authorised")


_AFTER_TOKEN = (
    check_inbox,
    check_pipeline,
    check_property,
    check_owner,
    check_channel,
    check_channel_accounts,
)


async def hubspot_checks(run: DoctorRun) -> list[Check]:
    """Every HubSpot check, in HUBSPOT_CHECKS order; closes the client and store it opened.

    Without a usable token the OAuth checks are warnings (not checked); the channel check,
    which takes the developer key, still runs.
    """
    try:
        token = await _connect_hubspot(run)
        checks = [token]
        if run.client is None:  # the sandbox does not answer: nothing to ask
            why = "not checked: HubSpot does not answer"
            return checks + [Check(n, WARN, why, token.fix) for n in HUBSPOT_CHECKS[1:]]
        await _load_ids(run)
        for name, check in zip(HUBSPOT_CHECKS[1:], _AFTER_TOKEN, strict=True):
            if run.notes.get("token_failed") and check is not check_channel:
                checks.append(Check(name, WARN, "not checked: no usable HubSpot token", token.fix))
            else:
                checks.append(await check(run))
        return checks
    finally:
        if run.client is not None:
            await run.client.close()
        if run.store is not None:
            run.store.close()


# --------------------------------------------------------------------------- the run


def check_deployment(settings: Settings) -> list[Check]:
    """What `config check` asks beyond the file (config.path_problems and
    config.deployment_findings): one check per finding, its fix naming the key."""
    from gateway.config import deployment_findings, path_problems

    checks = [
        Check("paths", FAIL, line.split(": ", 1)[1].split("; ", 1)[0], _path_fix(line))
        for line in path_problems(settings)
    ]
    for f in deployment_findings(settings):
        status = FAIL if f.level == "error" else WARN
        checks.append(Check(f.key, status, f.problem, f"{f.key}: {f.fix}"))
    return checks


def _path_fix(line: str) -> str:
    key = line.split(": ", 2)[1]
    return f"{key}: " + line.split("; ", 1)[-1]


async def run_checks(settings: Settings) -> list[Check]:
    run = DoctorRun(settings)
    checks = check_deployment(settings)
    checks += [
        await check_store(run),
        await check_smtp(run),
        await check_mx(run),
    ]
    checks += await hubspot_checks(run)
    checks += [await check_relay(run), *await check_mailboxes(run)]
    checks += [await check_signatures(run), await check_knowledge(run)]
    if run.scratch is not None:
        run.scratch.cleanup()
    return checks


def _load(config_path: str) -> Settings | Check:
    """The settings, or the failed config check that says why not: its fix names the keys,
    and for credentials that cannot be read, how to run doctor with the unit's credentials."""
    try:
        return load_settings(config_path)
    except ConfigError as exc:
        return Check("config", FAIL, "; ".join(exc.problems), config_fix(exc.problems, config_path))
    except OSError as exc:
        return Check("config", FAIL, f"{config_path}: {exc}", "check --config")


def config_fix(problems: list[str], config_path: str) -> str:
    """ "edit PATH: key, key" for ConfigError lines ("FILE: section.key: ..."); when `*_file`
    credentials cannot be read, also the two ways to read them as the service does."""
    keys = list(dict.fromkeys(p.split(": ")[1] for p in problems if p.count(": ") >= 2))
    fix = f"edit {config_path}: {', '.join(keys)}" if keys else f"edit {config_path}"
    creds = [
        p.split('"')[1]
        for p in problems
        if "_file: " in p and "cannot be read" in p and p.count('"') >= 2
    ]
    if creds and not os.environ.get("CREDENTIALS_DIRECTORY"):
        fix += "; or read the credentials as the service does: " + credentials_hint(
            config_path, creds
        )
    return fix


def credentials_hint(config_path: str, names: list[str]) -> str:
    """The exact commands that give doctor the unit's credentials: as root with
    --credentials-dir, or with `systemd-run` as the service user with its LoadCredential=
    lines (systemd-run(1); the files scripts/install.sh creates)."""
    import shlex
    import sys

    exe = shutil.which("mail-gateway") or sys.argv[0] or "mail-gateway"
    relative = [n for n in names if not n.startswith("/")]
    props = " ".join(f"-p LoadCredential={n}:{CREDENTIALS_DIR}/{n}" for n in relative)
    cmd = f"{shlex.quote(exe)} --config {shlex.quote(config_path)} doctor"
    return (
        f"`{cmd} --credentials-dir {CREDENTIALS_DIR}` (as root), or `systemd-run --pipe --wait "
        f"--collect -p User=mail-gateway {props} {cmd}`"
    )


def doctor(config_path: str) -> list[Check]:
    """Load the config (a check itself), then run the rest; for the CLI."""
    settings = _load(config_path)
    if isinstance(settings, Check):
        return [settings]
    checks = [Check("config", OK, f"{settings.source}: valid")]
    return checks + asyncio.run(run_checks(settings))


def hubspot_check(config_path: str) -> list[Check]:
    """`mail-gateway hubspot check`: the config, then only the HubSpot checks."""
    settings = _load(config_path)
    if isinstance(settings, Check):
        return [settings]
    return asyncio.run(hubspot_checks(DoctorRun(settings)))


def to_json(checks: list[Check]) -> str:
    return json.dumps([c.to_json() for c in checks], indent=2)
