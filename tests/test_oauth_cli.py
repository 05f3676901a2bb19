"""`mail-gateway mailbox connect` (MSAL's device code flow against the local issuer, a person
signing in meanwhile), `mailbox status`, and doctor's login checks for XOAUTH2 mailboxes."""

from __future__ import annotations

import asyncio
import dataclasses
import json

from click.testing import CliRunner
from test_oauth_imap import (  # noqa: F401 (fixtures)
    USER,
    dovecot_issuer,
    oauth_account,
    oauth_dovecot_server,
)
from test_oauth_smtp import oauth_relay, submission_server  # noqa: F401 (fixtures)

from gateway.cli import cli
from gateway.config import load_settings
from gateway.doctor import FAIL, OK, DoctorRun, check_mailboxes, check_relay
from gateway.mailauth.tokens import TokenSource
from gateway.store.db import Store

from dovecot import imap_config
from helpers.waiting import wait_for


def status(path) -> dict:
    """`mailbox status --json`, the [[imap]] account's row."""
    result = CliRunner().invoke(cli, ["--config", str(path), "mailbox", "status", "--json"])
    assert result.exit_code == 0, result.output
    return {row["name"]: row for row in json.loads(result.stdout)}["imap[0]"]


def device_account(d) -> dict:
    return oauth_account(d, flow="device_code", client_id="public-app", client_secret="")


async def test_connect_with_a_device_code_then_the_gateway_uses_the_token(oauth_dovecot, tmp_path):
    d = oauth_dovecot
    d.issuer.issuer.add_client("public-app", "")
    path = imap_config(tmp_path, [device_account(d)])
    run = CliRunner().invoke

    before = status(path)
    assert before["flow"] == "device_code" and before["connected"] is False

    connecting = asyncio.create_task(
        asyncio.to_thread(run, cli, ["--config", str(path), "mailbox", "connect", USER])
    )
    await wait_for(lambda: d.issuer.issuer.devices, 20, "a device code")
    (device,) = d.issuer.issuer.devices.values()
    d.issuer.issuer.approve(device.user_code, USER)  # the person signs in
    result = await connecting
    assert result.exit_code == 0, result.output
    assert device.user_code in result.output and "/devicelogin" in result.output
    assert "connected; token valid until" in result.output

    after = status(path)
    assert after["connected"] is True and after["token_expires"] and not after["last_error"]
    # the gateway's login renews from the stored refresh token: no second sign-in
    settings = load_settings(path)
    checks = await check_mailboxes(DoctorRun(settings))
    assert [c.status for c in checks] == [OK], checks
    assert "XOAUTH2 (microsoft device_code)" in checks[0].detail
    store = Store(settings.db_path)
    try:
        fresh = await TokenSource.for_imap(settings.imap[0], store).token(fresh=True)
    finally:
        store.close()
    assert d.issuer.issuer.active(fresh).user == USER
    assert d.issuer.issuer.count("refresh_token", USER) == 1


def test_connect_refuses_flows_without_a_sign_in(tmp_path, oauth_dovecot):
    path = imap_config(tmp_path, [oauth_account(oauth_dovecot)])
    result = CliRunner().invoke(cli, ["--config", str(path), "mailbox", "connect", "imap[0]"])
    assert result.exit_code == 1 and "nothing to sign in to" in result.output
    result = CliRunner().invoke(cli, ["--config", str(path), "mailbox", "connect", "nobody"])
    assert result.exit_code == 1 and "imap[0] (support@example.com)" in result.output


async def test_doctor_reports_refused_logins_with_the_fix(oauth_dovecot, tmp_path):
    d = oauth_dovecot
    path = imap_config(tmp_path, [oauth_account(d)])
    settings = load_settings(path)
    (ok,) = await check_mailboxes(DoctorRun(settings))
    assert ok.status == OK and "XOAUTH2 (microsoft client_credentials)" in ok.detail
    d.issuer.issuer.revoke(USER)
    (bad,) = await check_mailboxes(DoctorRun(settings))
    assert bad.status == FAIL and "AADSTS65001" in bad.detail
    assert "mailbox status" in bad.fix


async def test_doctor_relay_check_logs_in_with_xoauth2(submission, tmp_path, settings):
    sender = oauth_relay(submission, None)
    s = dataclasses.replace(settings, relay=sender.settings)
    check = await check_relay(DoctorRun(s))
    assert check.status == OK and "AUTH XOAUTH2 as support@example.com accepted" in check.detail
    submission.issuer.issuer.revoke(USER)
    check = await check_relay(DoctorRun(s))
    assert check.status == FAIL and "AADSTS65001" in check.detail, check
    assert "mailbox status" in check.fix
