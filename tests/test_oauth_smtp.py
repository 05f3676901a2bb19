"""SMTP replies through a submission server that takes AUTH XOAUTH2 and checks each token at the
local OAuth issuer (RFC 7662 introspection), as smtp.office365.com and smtp.gmail.com do: a
rep's reply delivered, a refused token replaced once, a token that stays refused retried by the
relay's rules and finally FAILED with the server's reason."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
import ssl

import aiohttp
import pytest
from aiosmtpd.smtp import SMTP as SMTPProtocol
from aiosmtpd.smtp import AuthResult
from test_delivery import make_conversation

from gateway.config import RelaySettings, Settings
from gateway.errors import TransientError
from gateway.jobs.send_reply import DeliveryExpired, Outbound, Reply, deliver_once
from gateway.mailauth.tokens import RELAY_LOGIN, TokenSource
from gateway.relay.sender import RelaySender
from gateway.store import deliveries
from gateway.store import tokens as st

from conftest import make_mail, start_gateway, wait_for
from helpers.oauth_issuer import RunningIssuer, trusted_issuer
from hubspot_helpers import conversation_of, hand_off, rep_replies, send, thread_messages

MAILBOX = "support@example.com"
SECRET = b"test-secret"


class Submission:
    """An aiosmtpd submission server: AUTH XOAUTH2 only, tokens introspected at the issuer;
    MAIL before a successful AUTH gets 530 (RFC 4954 §6)."""

    def __init__(self, issuer: RunningIssuer):
        self.issuer = issuer
        self.received: list[tuple[str, list[str], bytes]] = []
        self.refusals = 0
        self._ssl = ssl.create_default_context(cafile=str(issuer.ca_file))

    async def auth_XOAUTH2(self, server, args):
        raw = base64.b64decode(args[1]).decode() if len(args) > 1 else ""
        fields = dict(p.split("=", 1) for p in raw.split("\x01") if "=" in p)
        token = fields.get("auth", "").removeprefix("Bearer ")
        async with aiohttp.ClientSession() as http:
            async with http.post(
                self.issuer.url + "/introspect", data={"token": token}, ssl=self._ssl
            ) as resp:
                info = await resp.json()
        if info.get("active") and info.get("username") == fields.get("user"):
            return AuthResult(success=True, auth_data=fields["user"])
        self.refusals += 1
        # as Gmail and Exchange Online: an error challenge, the client's empty line, then 535
        await server.challenge_auth(json.dumps({"status": "401", "schemes": "bearer"}))
        await server.push("535 5.7.3 Authentication unsuccessful")
        return AuthResult(success=False, handled=True)

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        if not session.authenticated:
            return "530 5.7.0 Authentication required"
        envelope.mail_from = address
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.received.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 2.0.0 Ok: queued as OAUTH"


@pytest.fixture
def issuer(tmp_path, monkeypatch):
    with trusted_issuer(tmp_path, monkeypatch, {"app-1": MAILBOX}) as running:
        yield running


@pytest.fixture(name="submission")
async def submission_server(issuer):
    handler = Submission(issuer)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTPProtocol(
            handler,
            hostname="smtp.test",
            auth_require_tls=False,
            auth_exclude_mechanism=["LOGIN", "PLAIN"],
        ),
        "127.0.0.1",
        0,
    )
    handler.port = server.sockets[0].getsockname()[1]
    try:
        yield handler
    finally:
        server.close()
        await server.wait_closed()


def oauth_relay(submission: Submission, store, **over) -> RelaySender:
    relay = RelaySettings(
        mode="smtp",
        host="127.0.0.1",
        port=submission.port,
        tls="none",
        timeout=5,
        username=MAILBOX,
        auth="oauth2",
        provider="microsoft",
        tenant="contoso.onmicrosoft.com",
        client_id="app-1",
        client_secret="s3cret",  # type: ignore[arg-type]
        authority=submission.issuer.url,
        **over,
    )
    return RelaySender(relay, tokens=TokenSource.for_relay(relay, store))


async def queue_reply(store, settings: Settings, sender: RelaySender) -> int:
    s = dataclasses.replace(settings, relay=sender.settings)
    outbound = Outbound(store, sender, s, SECRET)

    cid = await make_conversation(store)
    return await outbound.queue(
        Reply(
            conversation_id=cid,
            source_key="hs-msg-1",
            body="Your order ships today.",
            body_format="markdown",
            author_name="Bob Rep",
            author_email="bob@example.com",
            meta={"thread_id": "t1"},
        )
    )


async def test_rep_reply_delivered_with_xoauth2(submission, store, settings):
    sender = oauth_relay(submission, store)
    did = await queue_reply(store, settings, sender)
    result = await deliver_once(store, sender, did)
    assert result.ok and "queued as OAUTH" in result.message
    assert [r[1] for r in submission.received] == [["alice@customer.test"]]
    row = await store.read(lambda db: st.load_token(db, RELAY_LOGIN))
    assert row.last_login_at and not row.last_error
    # the next reply reuses the stored token: one grant for both
    assert (await sender.send(await _delivery(store, did))).ok
    assert submission.issuer.issuer.count("client_credentials", MAILBOX) == 1


async def test_a_refused_token_is_replaced_once_within_the_attempt(submission, store, settings):
    sender = oauth_relay(submission, store)
    did = await queue_reply(store, settings, sender)
    await sender.tokens.token()  # stored ...
    submission.issuer.issuer.expire(MAILBOX)  # ... and no longer accepted
    result = await deliver_once(store, sender, did)
    assert result.ok and submission.refusals == 1
    assert submission.issuer.issuer.count("client_credentials", MAILBOX) == 2


async def test_a_token_that_stays_refused_fails_with_the_reason(submission, store, settings):
    sender = oauth_relay(submission, store, max_age_hours=24)
    did = await queue_reply(store, settings, sender)
    await sender.tokens.token()
    submission.issuer.issuer.revoke(MAILBOX)  # the server refuses, the provider grants none
    t0 = 1_000_000.0
    with pytest.raises(TransientError):  # 4xx rules: AUTH problems are the admin's to fix
        await deliver_once(store, sender, did, now=t0)
    d = await _delivery(store, did)
    assert d.state == "queued" and "AADSTS65001" in d.smtp_reply, d.smtp_reply
    with pytest.raises(TransientError):
        await deliver_once(store, sender, did, now=t0 + 20 * 3600)
    with pytest.raises(DeliveryExpired) as info:
        await deliver_once(store, sender, did, now=t0 + 23.9 * 3600)
    d = await _delivery(store, did)
    assert d.state == "failed" and "AADSTS65001" in d.smtp_reply
    assert "AADSTS65001" in info.value.result.message
    assert submission.received == []
    row = await store.read(lambda db: st.load_token(db, RELAY_LOGIN))
    assert "AADSTS65001" in row.last_error


async def test_server_refusal_reason_is_kept(submission, store, settings):
    """The provider still grants tokens but the server refuses them (say, SMTP AUTH disabled
    for the mailbox): the server's 535 is the reason."""
    sender = oauth_relay(submission, store)
    did = await queue_reply(store, settings, sender)
    original = submission.issuer.issuer.active
    submission.issuer.issuer.active = lambda token: None  # type: ignore[method-assign]
    try:
        with pytest.raises(TransientError):
            await deliver_once(store, sender, did)
    finally:
        submission.issuer.issuer.active = original  # type: ignore[method-assign]
    d = await _delivery(store, did)
    assert d.smtp_code == 535 and "5.7.3" in d.smtp_reply and submission.refusals == 2


async def _delivery(store, did: int):
    d = await store.read(lambda db: deliveries.get_delivery(db, did))
    assert d is not None
    return d


async def test_end_to_end_a_rep_reply_in_the_sandbox_goes_out_with_xoauth2(
    submission, hub_settings
):
    """Customer mail in, handed off, a rep replies in the sandbox: the reply reaches the
    XOAUTH2 submission server, and HubSpot hears it was sent."""
    relay = oauth_relay(submission, None).settings  # the gateway builds its own TokenSource
    gw = await start_gateway(dataclasses.replace(hub_settings, relay=relay))
    try:
        await send(gw, make_mail(message_id="oauth-e2e@customer.test"), 1)
        h = await hand_off(gw, await conversation_of(gw, "oauth-e2e@customer.test"))
        reply = await rep_replies(gw, h["thread_id"], "It ships tomorrow.", "A-301")

        async def sent() -> bool:
            msgs = await thread_messages(gw, h["thread_id"])
            status = next((m.get("status") or {} for m in msgs if m["id"] == reply["id"]), {})
            return status.get("statusType") == "SENT"

        await wait_for(sent, 20, "SENT in HubSpot")
        ((_sender, rcpts, data),) = submission.received
        assert rcpts == ["alice@customer.test"] and b"It ships tomorrow." in data
        row = await gw.store.read(lambda db: st.load_token(db, RELAY_LOGIN))
        assert row.last_login_at and submission.issuer.issuer.count("client_credentials") == 1
    finally:
        await gw.stop(drain_seconds=5)
