"""`mail-gateway doctor` against the running sandbox gateway: all ok; then broken three ways."""

from __future__ import annotations

import asyncio
import json

from click.testing import CliRunner

from gateway.cli import cli
from gateway.doctor import HUBSPOT_CHECKS
from gateway.hubspot.setup import SETUP_KEY, HubSpotIds
from gateway.sandbox.state import DEMO
from gateway.store.queries import kv_get

from conftest import dead_port, write_config
from hubspot_helpers import doctor_config


async def run_doctor(path) -> tuple[int, dict[str, dict]]:
    result = await asyncio.to_thread(
        CliRunner().invoke, cli, ["--config", str(path), "doctor", "--json"]
    )
    checks = json.loads(result.output)
    return result.exit_code, {c["name"]: c for c in checks}


async def test_doctor_against_the_sandbox_is_all_ok(hub, tmp_path):
    code, checks = await run_doctor(doctor_config(tmp_path, hub))
    assert set(checks) == {
        "config",
        "store",
        "smtp",
        "mx",
        *HUBSPOT_CHECKS,
        "relay",
        "signatures",
        "knowledge",
    }
    not_ok = {n: c for n, c in checks.items() if c["status"] != "ok"}
    assert set(not_ok) <= {"mx"}, not_ok  # this machine has no DNS: a warning, not a failure
    if "mx" in not_ok:
        assert not_ok["mx"]["status"] == "warn" and not_ok["mx"]["fix"]
    assert code == 0
    assert "all scopes granted" in checks["hubspot_token"]["detail"]


async def test_doctor_reports_revoked_token_wrong_webhook_and_dead_relay(hub, tmp_path):
    ids = HubSpotIds.from_json(await hub.store.read(lambda db: kv_get(db, SETUP_KEY)))
    await hub.hubspot.call(
        "channel_update", {"webhookUrl": "https://wrong.test/hook"}, channel_id=ids.channel_id
    )
    hub.sandbox.state.data["tokens"].pop(DEMO["static_token"])  # revoked in HubSpot
    dead = f'mode = "smtp"\nhost = "127.0.0.1"\nport = {dead_port()}\ntls = "none"\ntimeout = 2'
    code, checks = await run_doctor(doctor_config(tmp_path, hub, dead))
    assert code != 0
    assert checks["hubspot_token"]["status"] == "fail"
    assert "hubspot connect" in checks["hubspot_token"]["fix"]
    assert checks["hubspot_channel"]["status"] == "fail"
    assert "https://wrong.test/hook" in checks["hubspot_channel"]["detail"]
    assert "hubspot setup" in checks["hubspot_channel"]["fix"]
    assert checks["relay"]["status"] == "fail"
    assert "relay.host" in checks["relay"]["fix"]
    for name in ("store", "smtp", "signatures", "knowledge"):
        assert checks[name]["status"] == "ok", checks[name]
    # channel accounts take the OAuth token: with it revoked they cannot be read
    assert checks["hubspot_accounts"]["status"] == "warn"
    # the human form shows each fix too
    result = await asyncio.to_thread(
        CliRunner().invoke, cli, ["--config", str(tmp_path / "config.toml"), "doctor"]
    )
    assert result.exit_code == 1
    assert result.output.count("fix: ") >= 3


def test_doctor_with_a_broken_config_fails_on_config(tmp_path):
    path = write_config(tmp_path, "", **{"max_recipients = 5": "max_recipients = 0"})
    result = CliRunner().invoke(cli, ["--config", str(path), "doctor", "--json"])
    assert result.exit_code == 1
    checks = json.loads(result.output)
    assert checks[0]["name"] == "config" and checks[0]["status"] == "fail"
