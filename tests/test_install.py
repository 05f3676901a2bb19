"""The production install (issue 15 item 1): scripts/install.sh into a temporary root
(DESTDIR), `systemd-analyze verify` on the unit it installed, the installed command checking
the installed config; and the unit's LoadCredential= lines cover every secret the config can
name."""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from gateway.cli.init import CREDENTIAL_NAMES
from gateway.config import ARRAYS, SECTIONS

ROOT = Path(__file__).resolve().parents[1]
UNIT = ROOT / "systemd" / "mail-gateway.service"
TEMPLATE = ROOT / "gateway" / "templates" / "config.production.toml"
ANALYZE = shutil.which("systemd-analyze")
PYTHON = "/usr/bin/python3"  # Debian's, as the script uses it
# sections whose secrets a production (live) install never needs: the built-in sandbox's
NOT_IN_PRODUCTION = {"sandbox"}


def unit_credentials() -> dict[str, str]:
    """{credential name: path} of the unit's LoadCredential= lines."""
    return dict(re.findall(r"^LoadCredential=([^:\n]+):(\S+)$", UNIT.read_text(), re.M))


def test_the_unit_loads_every_secret_the_config_can_name():
    creds = unit_credentials()
    assert set(creds) == set(CREDENTIAL_NAMES)
    assert all(p == f"/etc/mail-gateway/credentials/{n}" for n, p in creds.items())
    from gateway.cli.init import Answers, render

    answers = Answers(
        addresses=["help@support.example.com"],
        intake="imap",  # renders the [[imap]] block too
        hostname="gw.support.example.com",
        smtp_listen="127.0.0.1:2525",
        relay_host="localhost",
        relay_port=25,
        relay_tls="none",
        relay_username="",
        public_url="https://gw.support.example.com",
        http_listen="127.0.0.1:8025",
        app_id="1",
        client_id="c",
        dkim_selector="",
        state_dir="/var/lib/mail-gateway",
        knowledge_dir="/etc/mail-gateway/knowledge",
        imap_host="imap.example.com",
        imap_user="help@support.example.com",
    )
    import tomllib

    config = tomllib.loads(render(answers))
    for section, cls in (SECTIONS | ARRAYS).items():
        if section in NOT_IN_PRODUCTION:
            continue
        for f in dataclasses.fields(cls):
            if f.metadata["kind"] != "secret":
                continue
            table = config[section][0] if section in ARRAYS else config[section]
            name = table.get(f"{f.name}_file")
            assert name in creds, f"{section}.{f.name}_file names no LoadCredential= ({name})"


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, **kw)


@pytest.mark.slow
@pytest.mark.skipif(not os.access(PYTHON, os.X_OK), reason=f"{PYTHON} (Debian's) is missing")
def test_install_into_a_temporary_root(tmp_path: Path):
    root = tmp_path / "root"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHON"))}
    done = run(["sh", str(ROOT / "scripts" / "install.sh")], env={**env, "DESTDIR": str(root)})
    assert done.returncode == 0, done.stdout + done.stderr
    # our own metadata builds without a packaging warning (issue 15 item 9)
    assert "BuildBackendWarning" not in done.stderr and "deprecated" not in done.stderr

    venv = root / "opt/mail-gateway/venv"
    assert (venv / "bin/mail-gateway").read_text().startswith("#!/opt/mail-gateway/venv/bin/")
    assert os.readlink(root / "usr/local/bin/mail-gateway") == (
        "/opt/mail-gateway/venv/bin/mail-gateway"
    )
    etc = root / "etc/mail-gateway"
    creds = etc / "credentials"
    assert stat.S_IMODE(creds.stat().st_mode) == 0o700
    assert sorted(p.name for p in creds.iterdir()) == sorted(CREDENTIAL_NAMES)
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in creds.iterdir())
    assert sorted(p.name for p in (etc / "knowledge").iterdir()) == sorted(
        p.name for p in (ROOT / "examples/knowledge").iterdir()
    )
    config = etc / "config.toml"
    text = config.read_text()
    assert 'mode = "live"' in text and 'listen = "0.0.0.0:25"' in text
    assert 'state_dir = "/var/lib/mail-gateway"' in text
    assert 'knowledge_dir = "/etc/mail-gateway/knowledge"' in text

    # the installed command, on the installed config: it says what is missing
    command = [str(venv / "bin/python"), str(venv / "bin/mail-gateway"), "--config", str(config)]
    env.pop("CREDENTIALS_DIRECTORY", None)
    checked = run([*command, "config", "check"], env=env)
    assert checked.returncode == 2
    assert "hubspot.client_secret: not set" in checked.stderr
    # an admin answers init and gives the secrets: then it passes
    answered = run(
        [*command, "init", "--force", "--non-interactive", "--address", "help@example.org",
         "--intake", "forward", "--hostname", "gw.example.org", "--app-id", "5500001",
         "--client-id", "client-1", "--dkim-selector", "", "--knowledge-dir",
         "/etc/mail-gateway/knowledge"],
        env={**env, "HUBSPOT_CLIENT_SECRET": "cs", "HUBSPOT_DEVELOPER_API_KEY": "dk"},
    )  # fmt: skip
    assert answered.returncode == 0, answered.stdout + answered.stderr
    checked = run([*command, "config", "check"], env=env)
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.strip() == f"{config}: ok"

    # the installed unit, with its paths inside the temporary root
    if ANALYZE is None:
        pytest.skip("systemd-analyze is not installed")
    unit = (root / "etc/systemd/system/mail-gateway.service").read_text()
    assert "ExecStart=/opt/mail-gateway/venv/bin/mail-gateway --config " in unit
    verify = tmp_path / "mail-gateway.service"
    verify.write_text(unit.replace("/opt/mail-gateway/", f"{root}/opt/mail-gateway/"))
    verified = run([ANALYZE, "verify", str(verify)])
    assert verified.returncode == 0, verified.stderr
    assert "mail-gateway.service" not in verified.stderr, verified.stderr
