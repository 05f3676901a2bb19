"""`mail-gateway hubspot check` against the running sandbox: all ok after setup, then each
problem an admin meets (a scope not granted, the channel's webhook URL elsewhere, a support
address without its channel account) reported on its own line with the fix."""

from __future__ import annotations

import asyncio
import json

from click.testing import CliRunner

from gateway.cli import cli
from gateway.doctor import HUBSPOT_CHECKS
from gateway.hubspot.setup import SETUP_KEY, HubSpotIds
from gateway.sandbox.state import DEMO
from gateway.store.queries import kv_get

from hubspot_helpers import doctor_config


async def run_check(path, *args: str) -> tuple[int, str]:
    result = await asyncio.to_thread(
        CliRunner().invoke, cli, ["--config", str(path), "hubspot", "check", *args]
    )
    return result.exit_code, result.output


async def checks_of(path) -> tuple[int, dict[str, dict]]:
    code, out = await run_check(path, "--json")
    return code, {c["name"]: c for c in json.loads(out)}


async def test_check_after_setup_is_all_ok(hub, tmp_path):
    code, checks = await checks_of(doctor_config(tmp_path, hub))
    assert list(checks) == list(HUBSPOT_CHECKS)
    assert {c["status"] for c in checks.values()} == {"ok"}, checks
    assert code == 0
    assert "all scopes granted" in checks["hubspot_token"]["detail"]
    # the human form: one line per check
    code, out = await run_check(tmp_path / "config.toml")
    assert code == 0
    assert [line.split(":")[0].split()[-1] for line in out.splitlines()] == list(HUBSPOT_CHECKS)


async def test_a_scope_not_granted_is_named_with_its_fix(hub, tmp_path):
    granted = hub.sandbox.state.data["tokens"][DEMO["static_token"]]["scopes"]
    granted.remove("files")
    code, checks = await checks_of(doctor_config(tmp_path, hub))
    assert code == 1
    token = checks["hubspot_token"]
    assert token["status"] == "fail"
    assert "scopes missing: files" in token["detail"]
    assert "requiredScopes" in token["fix"] and "hubspot connect" in token["fix"]


async def test_a_wrong_webhook_url_and_a_missing_account_are_reported(hub, tmp_path):
    ids = HubSpotIds.from_json(await hub.store.read(lambda db: kv_get(db, SETUP_KEY)))
    assert ids is not None
    await hub.hubspot.call(
        "channel_update", {"webhookUrl": "https://elsewhere.test/hook"}, channel_id=ids.channel_id
    )
    accounts = hub.sandbox.state.data["channel_accounts"]
    gone = next(a for a in accounts.values() if a["channelId"] == ids.channel_id)
    del accounts[gone["id"]]
    address = gone["deliveryIdentifier"]["value"]

    code, checks = await checks_of(doctor_config(tmp_path, hub))
    assert code == 1
    channel = checks["hubspot_channel"]
    assert channel["status"] == "fail"
    assert "https://elsewhere.test/hook" in channel["detail"]
    assert "http.public_url" in channel["fix"] and "hubspot setup" in channel["fix"]
    accounts_check = checks["hubspot_accounts"]
    assert accounts_check["status"] == "fail"
    assert f"{address}: no channel account" in accounts_check["detail"]
    assert "smtp.addresses" in accounts_check["fix"]
    for name in ("hubspot_token", "hubspot_inbox", "hubspot_pipeline", "hubspot_property"):
        assert checks[name]["status"] == "ok", checks[name]
    # each problem on its own line, its fix under it
    code, out = await run_check(tmp_path / "config.toml")
    assert code == 1
    assert out.count("fix: ") == 2
