"""/metrics counts what happened, /readyz checks its three parts, status and retry for operators,
and the logs mask secrets and carry ids."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import smtplib

import aiohttp
from click.testing import CliRunner
from prometheus_client.parser import text_string_to_metric_families

from gateway.cli import cli
from gateway.hubspot import api
from gateway.logs import (
    ContextFilter,
    JsonFormatter,
    TextFormatter,
    log_context,
    redact,
    register_secrets,
)
from gateway.metrics import Metrics
from gateway.store import jobs as jobq
from gateway.store.queries import kv_set, status

from conftest import make_mail, wait_for, wait_processed
from helpers.waiting import wait_idle


def _send_all(port: int) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as s:
        for i in range(3):
            s.sendmail(
                "a@customer.test", ["support@example.com"], make_mail(message_id=f"m{i}@c.test")
            )
        try:
            s.sendmail("a@customer.test", ["nobody@elsewhere.test"], make_mail())
        except smtplib.SMTPRecipientsRefused as exc:
            assert exc.recipients["nobody@elsewhere.test"][0] == 550


def _samples(text: str) -> dict:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


async def _get(gw, path: str, *, public: bool = False, token: str = "") -> tuple[int, str]:
    """GET on the admin listener (or the public one), with a bearer token when given."""
    port = gw.http_port if public else gw.admin_port
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with aiohttp.ClientSession() as http:
        async with http.get(f"http://127.0.0.1:{port}{path}", headers=headers) as resp:
            return resp.status, await resp.text()


async def test_public_listener_serves_nothing_private(gateway):
    """The listener HubSpot reaches: /healthz yes; /status (customer addresses), /metrics and
    /readyz only on the admin listener."""
    await asyncio.to_thread(_send_all, gateway.smtp_port)
    await wait_processed(gateway, 3)
    assert await _get(gateway, "/healthz", public=True) == (200, '{"status": "ok"}')
    for path in ("/status", "/metrics", "/readyz"):
        status, _ = await _get(gateway, path, public=True)
        assert status == 404, path
    status, text = await _get(gateway, "/status")
    assert status == 200 and json.loads(text)["last_mail"]["envelope_from"] == "a@customer.test"
    assert gateway.admin_port != gateway.http_port
    assert f"admin on 127.0.0.1:{gateway.admin_port}" in gateway.serving()


async def test_admin_listener_requires_its_token_when_set(settings):
    from gateway.config import AdminSettings, Secret

    from conftest import running

    admin = AdminSettings(listen=settings.admin.listen, token=Secret("admin-t0ken-123456"))
    async with running(dataclasses.replace(settings, admin=admin)) as gw:
        for path in ("/status", "/metrics", "/readyz", "/healthz"):
            status, text = await _get(gw, path)
            assert status == 401 and "admin token required" in text, path
            status, _ = await _get(gw, path, token="wrong-token")
            assert status == 401, path
        status, text = await _get(gw, "/status", token="admin-t0ken-123456")
        assert status == 200 and "conversations" in json.loads(text)
        assert (await _get(gw, "/healthz", public=True))[0] == 200  # probes need no token


async def test_metrics_count_what_the_test_did(gateway):
    await asyncio.to_thread(_send_all, gateway.smtp_port)
    await wait_processed(gateway, 3)
    await wait_idle(gateway)  # a job's timing is counted after its store write: wait for it
    status, text = await _get(gateway, "/metrics")
    assert status == 200
    m = _samples(text)
    assert m[("mail_gateway_mails_accepted_total", ())] == 3
    assert m[("mail_gateway_mails_rejected_total", (("code", "550"),))] == 1
    assert m[("mail_gateway_intake_seconds_count", ())] == 3
    assert m[("mail_gateway_job_seconds_count", (("kind", "process_mail"),))] >= 3
    assert m[("mail_gateway_smtp_replies_total", (("code", "550"),))] == 1
    assert m[("mail_gateway_dead_letters", ())] == 0
    assert ("mail_gateway_hubspot_rate_budget_left", ()) in m
    assert m[("mail_gateway_webhooks_total", (("outcome", "rejected"),))] == 0


async def test_metrics_count_an_accepted_and_a_refused_mail(gateway):
    raw = make_mail(message_id="counted@c.test")
    big = make_mail(body="x" * 80 + ("\r\n" + "y" * 998) * 1200)  # ~1.2 MB > the 1 MiB limit

    def send_two() -> None:
        with smtplib.SMTP("127.0.0.1", gateway.smtp_port, timeout=10) as s:
            assert s.sendmail("a@customer.test", ["support@example.com"], raw) == {}
            s.mail("a@customer.test")  # no SIZE: the server counts the DATA itself
            s.rcpt("support@example.com")
            assert s.data(big)[0] == 552

    await asyncio.to_thread(send_two)
    await wait_for(lambda: gateway.gate.active == 0, what="the session to end")
    _status, text = await _get(gateway, "/metrics")
    m = _samples(text)
    assert m[("mail_gateway_mails_accepted_total", ())] == 1
    assert m[("mail_gateway_accepted_bytes_total", ())] == len(raw)
    assert m[("mail_gateway_intake_seconds_count", ())] == 1
    assert m[("mail_gateway_mails_rejected_total", (("code", "552"),))] == 1
    assert m[("mail_gateway_smtp_replies_total", (("code", "552"),))] == 1
    assert m[("mail_gateway_smtp_sessions", ())] == 0


def test_each_gateway_has_its_own_registry():
    a, b = Metrics(), Metrics()  # a shared registry would refuse the second
    a.mails_accepted.inc()
    assert b.registry.get_sample_value("mail_gateway_mails_accepted_total") == 0
    assert a.registry.get_sample_value("mail_gateway_mails_accepted_total") == 1


async def test_hubspot_calls_by_endpoint_and_status(hub):
    _status, text = await _get(hub, "/metrics")
    calls: dict[str, set[str]] = {}
    for name, labels in _samples(text):
        if name == "mail_gateway_hubspot_calls_total":
            calls.setdefault(dict(labels)["endpoint"], set()).add(dict(labels)["status"])
    # the setup at start: listed (200), then registered (HubSpot's 201 Created)
    assert calls.get(api.path("channels_list")) == {"200", "201"}
    assert _samples(text)[("mail_gateway_hubspot_rate_budget_left", ())] > 0


async def test_readyz_checks_store_smtp_and_hubspot(hub):
    status, text = await _get(hub, "/readyz")
    assert status == 200, text
    body = json.loads(text)
    assert body == {"status": "ok", "store": "writable", "smtp": "listening", "hubspot": "auth ok"}
    hub.gate.closing = True  # a stopping gateway is not ready
    status, text = await _get(hub, "/readyz")
    assert status == 503 and json.loads(text)["smtp"] == "not listening"
    hub.gate.closing = False


async def test_readyz_without_hubspot_credentials_says_why(gateway):
    status, text = await _get(gateway, "/readyz")  # live mode, no token configured
    assert status == 503
    assert "auth unusable" in json.loads(text)["hubspot"]


async def test_status_shows_dead_letters_last_delivery_budget_and_errors(hub, config_path):
    def bury(db) -> None:
        for n in range(7):
            job = jobq.enqueue(db, "nothing", {"n": n})
            jobq.bury(db, job, error=f"boom {n}")

    await hub.store.write(bury)
    # what the daemon stores every 10 s for `mail-gateway status` (another process)
    snap = json.dumps(hub.runtime_snapshot())
    await hub.store.write(lambda db: kv_set(db, "runtime.hubspot", snap))
    data = await hub.store.read(status)
    assert data["dead_letters"] == 7
    assert [e["error"] for e in data["last_errors"]][:1] == ["boom 6"]
    assert len(data["last_errors"]) == 5
    assert data["last_delivery"] is None
    assert data["hubspot_budget"]["budget_left"] > 0
    assert data["hubspot_budget"]["calls"] > 0


def test_retry_requeues_dead_letters_all_or_by_id(config_path, tmp_path):
    from gateway.store.db import connect

    db = connect(tmp_path / "state" / "gateway.db")
    with db.atomic():
        ids = [jobq.enqueue(db, "nothing", {"n": n}) for n in range(3)]
        for job_id in ids:
            jobq.bury(db, job_id, error="boom")
    runner = CliRunner()
    result = runner.invoke(cli, ["--config", str(config_path), "retry", str(ids[0])])
    assert result.exit_code == 0, result.output
    assert "1 dead job(s) queued again" in result.output
    result = runner.invoke(cli, ["--config", str(config_path), "retry"])
    assert "2 dead job(s) queued again" in result.output
    states = [r[0] for r in db.execute("SELECT state FROM jobs ORDER BY id")]
    assert states == ["queued"] * 3
    result = runner.invoke(cli, ["--config", str(config_path), "status", "--json"])
    assert json.loads(result.output)["dead_letters"] == 0


def _record(msg: str, *args) -> logging.LogRecord:
    return logging.LogRecord("gateway.test", logging.INFO, __file__, 1, msg, args, None)


def test_logs_mask_secrets_and_carry_ids():
    register_secrets(["s3cr3t-relay-password"])
    assert "s3cr3t" not in redact("login failed for s3cr3t-relay-password")
    assert redact("Authorization: Bearer pat-na1-abc.def") == "Authorization: Bearer ***"
    assert "dev-key" not in redact("GET /x?hapikey=dev-key&appId=1")

    with log_context(conversation_id=7, message_id="<m1@c.test>"):
        rec = _record("calling %s", "https://x/?access_token=tok123")
        ContextFilter().filter(rec)
    line = json.loads(JsonFormatter().format(rec))
    assert line["conversation_id"] == 7 and line["message_id"] == "<m1@c.test>"
    assert "tok123" not in line["message"]
    text = TextFormatter().format(rec)
    assert "[conversation=7 message=<m1@c.test>]" in text and "tok123" not in text
