"""The providers' own libraries (MSAL, google-auth, authlib) against the local OAuth issuer:
the code path an admin's configuration takes, with only the authority / token URI moved.

The issuer is HTTPS with a private CA, trusted through REQUESTS_CA_BUNDLE (requests, which all
three libraries use, reads it: the same setting an admin behind a TLS-inspecting proxy uses).
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time

import pytest

from gateway.config import ImapAccount, OAuthKeys
from gateway.errors import TokenError
from gateway.mailauth import providers
from gateway.mailauth.tokens import TokenSource, xoauth2
from gateway.store import tokens as st

from helpers.oauth_issuer import (
    JWT_GRANT,
    RunningIssuer,
    service_account_key,
    trusted_issuer,
)

MAILBOX = "support@example.com"


@pytest.fixture
def issuer(tmp_path, monkeypatch):
    with trusted_issuer(tmp_path, monkeypatch, {}) as running:
        yield running


def microsoft(issuer: RunningIssuer, **over) -> OAuthKeys:
    keys = OAuthKeys(
        auth="oauth2",
        provider="microsoft",
        tenant="contoso.onmicrosoft.com",
        client_id="app-1",
        client_secret="s3cret",  # type: ignore[arg-type]
        authority=issuer.url,
    )
    return dataclasses.replace(keys, **over)


def test_msal_client_credentials_gets_an_app_token(issuer):
    issuer.issuer.add_client("app-1", "s3cret", MAILBOX)
    grant = providers.fetch(microsoft(issuer), MAILBOX)
    assert issuer.issuer.active(grant.access_token).user == MAILBOX
    assert grant.expires_at > time.time() + 3000


def test_msal_wrong_secret_is_one_line_naming_the_error(issuer):
    issuer.issuer.add_client("app-1", "s3cret", MAILBOX)
    with pytest.raises(TokenError) as err:
        providers.fetch(microsoft(issuer, client_secret="wrong"), MAILBOX)
    text = str(err.value)
    assert "invalid_client" in text and "AADSTS7000215" in text and "\n" not in text
    assert "wrong" not in text


def test_msal_device_code_then_refresh_token(issuer):
    """`mailbox connect`'s flow: the device code is shown, a person signs in, the refresh
    token it brings gets later access tokens."""
    issuer.issuer.add_client("public-app", "")
    keys = microsoft(issuer, flow="device_code", client_id="public-app", client_secret="")
    flow = providers.device_flow_start(keys)
    assert flow["user_code"] in flow["message"]
    done: list = []
    waiter = threading.Thread(target=lambda: done.append(providers.device_flow_finish(flow)))
    waiter.start()
    issuer.issuer.approve(flow["user_code"], MAILBOX)
    waiter.join(30)
    grant = done[0]
    assert grant.refresh_token and issuer.issuer.active(grant.access_token).user == MAILBOX
    again = providers.fetch(keys, MAILBOX, grant.refresh_token)
    assert again.access_token != grant.access_token
    assert issuer.issuer.active(again.access_token).user == MAILBOX
    with pytest.raises(TokenError, match="mailbox connect"):
        providers.fetch(keys, MAILBOX, "")  # never connected


def test_google_service_account_with_domain_wide_delegation(issuer, tmp_path):
    info, public = service_account_key("gw@project.iam.gserviceaccount.com", issuer.url + "/token")
    issuer.issuer.add_service_account("gw@project.iam.gserviceaccount.com", public)
    keys = OAuthKeys(auth="oauth2", provider="google", service_account_key=info)  # type: ignore[arg-type]
    grant = providers.fetch(keys, MAILBOX)
    assert issuer.issuer.active(grant.access_token).user == MAILBOX  # subject = the mailbox
    assert issuer.issuer.count(JWT_GRANT, MAILBOX) >= 1
    other, _ = service_account_key("gw@project.iam.gserviceaccount.com", issuer.url + "/token")
    with pytest.raises(TokenError, match="invalid_grant"):  # signed with another key
        providers.fetch(dataclasses.replace(keys, service_account_key=other), MAILBOX)  # type: ignore[arg-type]


def test_google_installed_app_refresh_token(issuer):
    issuer.issuer.add_client("desktop-1", "dsecret")
    rt = issuer.issuer.add_refresh_token(MAILBOX)
    keys = OAuthKeys(
        auth="oauth2",
        provider="google",
        flow="refresh_token",
        client_id="desktop-1",
        client_secret="dsecret",  # type: ignore[arg-type]
        refresh_token=rt,  # type: ignore[arg-type]
        token_url=issuer.url + "/token",
    )
    grant = providers.fetch(keys, MAILBOX)
    assert issuer.issuer.active(grant.access_token).user == MAILBOX


@pytest.mark.parametrize("flow", ["client_credentials", "refresh_token"])
def test_generic_provider_with_authlib(issuer, flow):
    issuer.issuer.add_client("generic-1", "gsecret", MAILBOX)
    rt = issuer.issuer.add_refresh_token(MAILBOX)
    keys = OAuthKeys(
        auth="oauth2",
        provider="generic",
        flow=flow,
        client_id="generic-1",
        client_secret="gsecret",  # type: ignore[arg-type]
        refresh_token=rt,  # type: ignore[arg-type]
        token_url=issuer.url + "/token",
    )
    grant = providers.fetch(keys, MAILBOX)
    assert issuer.issuer.active(grant.access_token).user == MAILBOX
    with pytest.raises(TokenError, match="invalid_client"):
        providers.fetch(dataclasses.replace(keys, client_secret="nope"), MAILBOX)  # type: ignore[arg-type]


async def test_token_source_stores_reuses_and_renews_before_expiry(issuer, store, caplog):
    issuer.issuer.add_client("app-1", "s3cret", MAILBOX)
    account = ImapAccount(
        host="imap.test", user=MAILBOX, mailbox=MAILBOX, **_fields(microsoft(issuer))
    )
    caplog.set_level(logging.DEBUG)
    if True:
        source = TokenSource.for_imap(account, store)
        first = await source.token()
        assert await source.token() == first  # stored, still valid: no new grant
        assert issuer.issuer.count("client_credentials", MAILBOX) == 1
        fresh = await source.token(fresh=True)  # what a refused login asks for
        assert fresh != first and issuer.issuer.count("client_credentials", MAILBOX) == 2
        # a second process (after a restart) finds the stored token
        assert await TokenSource.for_imap(account, store).token() == fresh
        # renewed ahead of its expiry: a token with less than EARLY seconds left is not used
        await store.write(
            lambda db: db.execute(
                "UPDATE mailbox_tokens SET expires_at = ? WHERE login = ?",
                [time.time() + 60, source.login],
            )
        )
        assert await source.token() not in (first, fresh)
        row = await store.read(lambda db: st.load_token(db, source.login))
        assert row.provider == "microsoft" and row.flow == "client_credentials"
    for token in (first, fresh):
        assert token not in caplog.text
    assert "s3cret" not in caplog.text


async def test_a_refusal_is_recorded_as_the_last_error(issuer, store):
    issuer.issuer.add_client("app-1", "s3cret", MAILBOX)
    issuer.issuer.revoke(MAILBOX)
    try:
        if True:
            source = TokenSource(microsoft(issuer), MAILBOX, "relay", store)
            with pytest.raises(TokenError, match="AADSTS65001"):
                await source.token()
            row = await store.read(lambda db: st.load_token(db, "relay"))
            assert "AADSTS65001" in row.last_error and row.last_login_at is None
    finally:
        issuer.issuer.allow(MAILBOX)


def test_xoauth2_initial_response():
    import base64

    raw = base64.b64decode(xoauth2("a@b.test", "tok"))
    assert raw == b"user=a@b.test\x01auth=Bearer tok\x01\x01"


def _fields(keys: OAuthKeys) -> dict:
    return {f.name: getattr(keys, f.name) for f in dataclasses.fields(OAuthKeys)}
