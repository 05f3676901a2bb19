"""The SMTP edge and the relay tell an observer passed at construction what they did.

Metrics is one such observer (test_ops_http.py checks /metrics); here a recorder stands in, so
the contract is checked without Prometheus and without a Gateway.
"""

from __future__ import annotations

import asyncio
import smtplib
from dataclasses import dataclass, field

from gateway.config import RelaySettings
from gateway.intake.smtp import start_smtp
from gateway.metrics import Metrics
from gateway.relay.sender import DeliveryResult, OutgoingMail, RelaySender

from conftest import make_mail, wait_for


@dataclass
class Recorder:
    events: list[tuple] = field(default_factory=list)

    def mail_accepted(self, size: int, seconds: float) -> None:
        assert seconds >= 0
        self.events.append(("accepted", size))

    def mail_refused(self, code: str) -> None:
        self.events.append(("refused", code))

    def delivery_attempted(self, result: DeliveryResult, seconds: float) -> None:
        assert seconds >= 0
        self.events.append(("attempted", result.ok, result.permanent))


async def test_smtp_edge_reports_accepted_and_refused_mail(settings, store):
    seen = Recorder()
    woken: list[int] = []
    server, gate = await start_smtp(
        settings.smtp,
        store,
        hostname="gw.test",
        on_accepted=lambda: woken.append(1),
        observer=seen,
    )
    port = server.sockets[0].getsockname()[1]
    raw = make_mail(message_id="observed@customer.test")
    too_big = settings.smtp.max_message_size + 1

    def session() -> None:
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as s:
            s.ehlo()
            assert s.mail("a@customer.test")[0] == 250
            assert s.rcpt("nobody@elsewhere.test")[0] == 550
            s.rset()
            assert s.mail("a@customer.test", [f"SIZE={too_big}"])[0] == 552
            assert s.sendmail("a@customer.test", ["support@example.com"], raw) == {}

    try:
        await asyncio.to_thread(session)
        await wait_for(lambda: gate.active == 0, what="the session to leave the gate")
    finally:
        server.close()
        await server.wait_closed()
    assert seen.events == [("refused", "550"), ("refused", "552"), ("accepted", len(raw))]
    assert woken == [1]
    assert gate.replies["552"] == 1 and gate.replies["550"] == 1


async def test_relay_reports_each_attempt(tmp_path):
    seen = Recorder()
    sender = RelaySender(RelaySettings(mode="capture"), capture_dir=tmp_path, observer=seen)
    mail = OutgoingMail("<r1@gw.test>", "support@example.com", ("a@customer.test",), b"x\r\n")
    result = await sender.send(mail)
    assert result.ok
    assert seen.events == [("attempted", True, False)]


def test_metrics_counts_delivery_attempts_by_outcome():
    m = Metrics()
    m.delivery_attempted(DeliveryResult(ok=True, code=250), 0.2)
    m.delivery_attempted(DeliveryResult(ok=False, permanent=False, code=451), 0.1)
    m.delivery_attempted(DeliveryResult(ok=False, permanent=True, code=550), 0.1)
    m.delivery_attempted(DeliveryResult(ok=False, permanent=True, code=554), 0.1)
    value = m.registry.get_sample_value
    assert value("mail_gateway_delivery_attempts_total", {"outcome": "sent"}) == 1
    assert value("mail_gateway_delivery_attempts_total", {"outcome": "temporary"}) == 1
    assert value("mail_gateway_delivery_attempts_total", {"outcome": "permanent"}) == 2
    assert value("mail_gateway_delivery_seconds_count") == 4
