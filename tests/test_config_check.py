"""`config check`, `doctor` and the start as an admin meets them on the way to production
(issue 15 item 3, issue 16 item 7): live mode needs the app's credentials, a capture relay in
live mode is a warning, the folders the daemon writes must be writable, the sandbox stays on
loopback, credentials are read as the unit hands them over, and a daemon without HubSpot says
so once while intake stays on."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import smtplib
import time
from pathlib import Path

from click.testing import CliRunner

from gateway.cli import cli
from gateway.config import Secret, load_settings
from gateway.hubspot.connect import OAUTH_KEY
from gateway.store.queries import kv_set

from conftest import make_mail, running, wait_for, write_config

# the CLI's --credentials-dir sets $CREDENTIALS_DIRECTORY; CliRunner restores it afterwards
NO_CREDS = {"CREDENTIALS_DIRECTORY": None}

APP = """
[hubspot]
mode = "live"
client_id = "client-id-1"
app_id = "5500001"
client_secret_file = "hubspot-client-secret"
developer_api_key_file = "hubspot-developer-key"
"""


def run(config: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["--config", str(config), *args], env=NO_CREDS)
    return result.exit_code, result.stdout, result.stderr


def live_config(tmp_path: Path, relay: str = 'mode = "smtp"\nhost = "127.0.0.1"') -> Path:
    """The test base config in live mode with the app's ids and credential file names."""
    return write_config(
        tmp_path,
        f"\n[relay]\n{relay}\n",
        **{
            '[hubspot]\nmode = "live"\n': APP,
            'listen = "127.0.0.1:8025"': 'listen = "127.0.0.1:8025"\n'
            'public_url = "https://gw.example.com"',
        },
    )


def credentials(tmp_path: Path) -> Path:
    creds = tmp_path / "credentials"
    creds.mkdir()
    (creds / "hubspot-client-secret").write_text("the-client-secret\n")
    (creds / "hubspot-developer-key").write_text("the-developer-key\n")
    return creds


def test_live_mode_without_the_apps_credentials_fails_naming_each_key(tmp_path: Path):
    code, out, err = run(write_config(tmp_path), "config", "check")
    assert code == 2, out
    for key in ("client_id", "client_secret", "app_id", "developer_api_key"):
        assert f"hubspot.{key}: not set" in err
    assert "/etc/mail-gateway/credentials/hubspot-client-secret" in err
    assert "$HUBSPOT_CLIENT_SECRET" in err
    # http://127.0.0.1:8025 is no URL HubSpot calls
    assert 'warning: config.toml: http.public_url: "http://127.0.0.1:8025" is not https' in err
    assert "Traceback" not in err


def test_credentials_are_read_as_the_unit_hands_them_over(tmp_path: Path):
    path = live_config(tmp_path)
    code, _out, err = run(path, "config", "check")
    assert code == 2
    assert 'hubspot.client_secret_file: "hubspot-client-secret" cannot be read' in err
    assert f"reads {tmp_path}/credentials/hubspot-client-secret (as root)" in err

    creds = credentials(tmp_path)
    code, out, err = run(path, "config", "check", "--credentials-dir", str(creds))
    assert code == 0, err
    assert out.strip() == f"{path}: ok" and err == ""


def test_a_capture_relay_in_live_mode_is_a_warning(tmp_path: Path):
    path = live_config(tmp_path, relay='mode = "capture"')
    creds = credentials(tmp_path)
    code, out, err = run(path, "config", "check", "--credentials-dir", str(creds))
    assert code == 0
    assert 'warning: config.toml: relay.mode: "capture" in live mode' in err
    assert 'set relay.mode = "smtp"' in err
    assert "1 warning(s)" in out


def test_doctor_names_the_key_and_the_way_to_read_the_units_credentials(tmp_path: Path):
    path = live_config(tmp_path)
    result = CliRunner().invoke(cli, ["--config", str(path), "doctor", "--json"], env=NO_CREDS)
    assert result.exit_code == 1
    (config,) = json.loads(result.stdout)
    assert config["name"] == "config" and config["status"] == "fail"
    fix = config["fix"]
    assert "hubspot.client_secret_file" in fix and "hubspot.developer_api_key_file" in fix
    assert "--credentials-dir /etc/mail-gateway/credentials" in fix
    assert "systemd-run --pipe --wait --collect -p User=mail-gateway" in fix
    assert (
        "-p LoadCredential=hubspot-client-secret:/etc/mail-gateway/credentials/"
        "hubspot-client-secret" in fix
    )


def doctor_offline(tmp_path: Path, **live: str) -> tuple[Path, Path]:
    """A live config whose HubSpot is a closed port (assistant off) and its credentials."""
    path = live_config(tmp_path, **live)
    path.write_text(path.read_text() + '\n[assistant]\nbackend = "off"\n')
    text = path.read_text().replace(
        'mode = "live"', 'mode = "live"\nbase_url = "http://127.0.0.1:9"'
    )
    path.write_text(text)
    return path, credentials(tmp_path)


def doctor_json(path: Path, creds: Path) -> dict[str, dict[str, str]]:
    result = CliRunner().invoke(
        cli,
        ["--config", str(path), "doctor", "--json", "--credentials-dir", str(creds)],
        env=NO_CREDS,
    )
    return {c["name"]: c for c in json.loads(result.stdout)}


def test_doctor_warns_on_a_capture_relay_in_live_mode(tmp_path: Path):
    checks = doctor_json(*doctor_offline(tmp_path, relay='mode = "capture"'))
    assert checks["config"]["status"] == "ok"
    assert checks["relay.mode"]["status"] == "warn"
    assert checks["relay.mode"]["fix"].startswith('relay.mode: set relay.mode = "smtp"')


def test_doctor_before_the_first_start_does_not_create_the_store(tmp_path: Path):
    """Run as root before `systemctl start`, doctor says the store does not exist and leaves it
    so (a database it created would be root's, not the service user's), also on a second run."""
    path, creds = doctor_offline(tmp_path)
    db = load_settings(path, {"CREDENTIALS_DIRECTORY": str(creds)}).db_path
    for _ in range(2):
        checks = doctor_json(path, creds)
        assert checks["store"]["status"] == "fail"
        assert checks["store"]["detail"] == f"{db} does not exist"
        token = checks["hubspot_token"]
        assert token["detail"] == (
            "not connected: no OAuth tokens in the store and hubspot.access_token_file is empty"
        )
        assert "`mail-gateway hubspot connect`" in token["fix"] and "restart" in token["fix"]
        # setup needs the token: the channel's fix says to connect first
        assert checks["hubspot_channel"]["fix"].startswith("first `mail-gateway hubspot connect`")
        assert not db.exists()


def test_a_state_dir_that_cannot_be_created_is_named_and_serve_says_so(tmp_path: Path):
    (tmp_path / "not-a-folder").write_text("a file where a folder should be")
    path = write_config(tmp_path, **{'state_dir = "state"': 'state_dir = "not-a-folder/state"'})
    code, _out, err = run(path, "config", "check")
    assert code == 2
    line = (
        f'error: config.toml: gateway.state_dir: "{tmp_path}/not-a-folder/state" cannot be '
        f'created: "{tmp_path}/not-a-folder" is not a folder'
    )
    assert line in err

    code, _out, err = run(path, "serve")
    assert code == 2
    assert line in err and "Traceback" not in err and "unable to open" not in err


def test_the_example_configs_sandbox_db_follows_the_same_rule(tmp_path: Path):
    # the example copied elsewhere with state_dir changed: sandbox_db still says "state/..."
    (tmp_path / "state").write_text("")
    example = (Path(__file__).resolve().parents[1] / "config.example.toml").read_text()
    path = tmp_path / "config.toml"
    path.write_text(
        example.replace('state_dir = "state"', f'state_dir = "{tmp_path}/var"').replace(
            'knowledge_dir = "examples/knowledge"', 'knowledge_dir = "."'
        )
    )
    code, _out, err = run(path, "config", "check")
    assert code == 2
    assert f'error: config.toml: hubspot.sandbox_db: "{tmp_path}/state" cannot be created' in err


def test_the_sandbox_on_a_public_address_is_refused(tmp_path: Path):
    path = write_config(
        tmp_path, **{'mode = "live"': 'mode = "sandbox"\nsandbox_listen = "0.0.0.0:8026"'}
    )
    code, _out, err = run(path, "config", "check")
    assert code == 2
    assert 'hubspot.sandbox_listen: "0.0.0.0:8026" is not a loopback address' in err
    # on purpose (issue 16 item 7): allowed only with a token on its admin and console APIs
    public = path.read_text() + "\n[sandbox]\nallow_public = true\n"
    path.write_text(public)
    code, _out, err = run(path, "config", "check")
    assert code == 2
    assert "sandbox.admin_token: needed with sandbox.allow_public = true" in err
    path.write_text(public + 'admin_token = "a-long-t0ken-for-the-console"\n')
    code, _out, err = run(path, "config", "check")
    assert "hubspot.sandbox_listen" not in err and "sandbox.admin_token" not in err, err


async def test_live_daemon_without_hubspot_keeps_intake_on_and_says_what_is_missing(
    settings, caplog
):
    caplog.set_level(logging.INFO, logger="gateway.service")
    async with running(settings) as gw:

        def send() -> dict:
            with smtplib.SMTP("127.0.0.1", gw.smtp_port, timeout=10) as client:
                return client.sendmail("alice@customer.test", ["support@example.com"], make_mail())

        assert await asyncio.to_thread(send) == {}  # 250: intake is on
    lines = [r.getMessage() for r in caplog.records if r.name == "gateway.service"]
    without = [ln for ln in lines if "WITHOUT HubSpot" in ln]
    assert len(without) == 1
    assert "run `mail-gateway hubspot connect`" in without[0]
    assert "private app token in hubspot.access_token_file" in without[0]
    assert not any(ln.startswith("mail-gateway ready") for ln in lines)
    # what config check names is logged once at start too
    assert sum("config: hubspot.client_secret: not set" in ln for ln in lines) == 1


async def test_live_daemon_with_hubspot_connected_says_ready(hub, settings, caplog, tmp_path):
    # the hub fixture's sandbox, reached in live mode with its static token
    info = hub.sandbox.info()
    live = dataclasses.replace(
        settings,
        gateway=dataclasses.replace(settings.gateway, state_dir=tmp_path / "live"),
        hubspot=dataclasses.replace(
            settings.hubspot,
            base_url=info["baseUrl"],
            access_token=Secret(info["staticToken"]),
        ),
    )
    caplog.set_level(logging.INFO, logger="gateway.service")
    async with running(live):
        pass
    lines = [r.getMessage() for r in caplog.records if r.name == "gateway.service"]
    assert any(ln.startswith("mail-gateway ready") for ln in lines)
    assert not any("WITHOUT HubSpot" in ln for ln in lines)


async def test_live_daemon_says_once_when_hubspot_gets_connected(
    hub, settings, caplog, tmp_path, monkeypatch
):
    import gateway.service

    monkeypatch.setattr(gateway.service, "HUBSPOT_RECHECK_SECONDS", 0.05)
    info = hub.sandbox.info()
    live = dataclasses.replace(
        settings,
        gateway=dataclasses.replace(settings.gateway, state_dir=tmp_path / "live"),
        hubspot=dataclasses.replace(settings.hubspot, base_url=info["baseUrl"]),
    )
    caplog.set_level(logging.INFO, logger="gateway.service")

    def said(text: str) -> int:
        return sum(text in r.getMessage() for r in caplog.records if r.name == "gateway.service")

    async with running(live) as gw:
        assert said("WITHOUT HubSpot") == 1
        # what `mail-gateway hubspot connect` leaves behind: OAuth tokens in the store
        tokens = {
            "access_token": info["staticToken"],
            "refresh_token": "refresh-1",
            "expires_at": time.time() + 3600,
        }
        await gw.store.write(lambda db: kv_set(db, OAUTH_KEY, json.dumps(tokens)))
        await wait_for(lambda: said("HubSpot connected"), 10, "the connected line")
    assert said("WITHOUT HubSpot") == 1 and said("HubSpot connected") == 1


def test_settings_load_needs_no_writable_folder(tmp_path: Path):
    # read-only commands (status, sessions) load the same file: the folder rule is not theirs
    (tmp_path / "not-a-folder").write_text("")
    path = write_config(tmp_path, **{'state_dir = "state"': 'state_dir = "not-a-folder/state"'})
    assert load_settings(path).gateway.state_dir == tmp_path / "not-a-folder" / "state"
