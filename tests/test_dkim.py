"""DKIM: replies carry a signature that verifies against the published key."""

from __future__ import annotations

import base64
import dataclasses
from pathlib import Path

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from gateway.config import ConfigError, RelaySettings, Secret, load_settings

from conftest import make_mail, start_gateway, wait_for, write_config
from hubspot_helpers import conversation_of, hand_off, rep_replies, send


def _keypair() -> tuple[str, bytes]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return pem, b"v=DKIM1; k=rsa; p=" + base64.b64encode(der)


async def test_reply_is_dkim_signed(hub_settings, tmp_path: Path):
    pem, dns_record = _keypair()
    relay = dataclasses.replace(
        RelaySettings(),
        mode="capture",
        capture_dir=tmp_path / "outbox",
        dkim_selector="gw2026",
        dkim_domain="example.com",
        dkim_key=Secret(pem),
    )
    gw = await start_gateway(dataclasses.replace(hub_settings, relay=relay))
    try:
        await send(gw, make_mail(message_id="dkim1@customer.test"), 1)
        h = await hand_off(gw, await conversation_of(gw, "dkim1@customer.test"))
        await rep_replies(gw, h["thread_id"], "Signed answer")
        await wait_for(lambda: list((tmp_path / "outbox").glob("*.eml")), 15, "the reply")
    finally:
        await gw.stop(drain_seconds=5)
    raw = next((tmp_path / "outbox").glob("*.eml")).read_bytes()
    assert raw.startswith(b"DKIM-Signature:")
    asked = []

    def dns(name: bytes, timeout: int = 5) -> bytes:
        asked.append(name)
        return dns_record if name == b"gw2026._domainkey.example.com." else b""

    assert dkim.verify(raw, dnsfunc=dns)
    assert asked == [b"gw2026._domainkey.example.com."]
    tampered = raw.replace(b"Signed answer", b"Signed answes")
    assert not dkim.verify(tampered, dnsfunc=dns)


def test_dkim_config_needs_domain_and_key(tmp_path: Path):
    path = write_config(tmp_path, '\n[relay]\nmode = "capture"\ndkim_selector = "s1"\n')
    with pytest.raises(ConfigError) as err:
        load_settings(path, environ={})
    assert any("relay.dkim_selector" in p and "dkim_key_file" in p for p in err.value.problems)
