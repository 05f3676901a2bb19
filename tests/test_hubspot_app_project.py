"""hubspot-app/: the HubSpot developer-platform project an admin uploads with `hs project upload`.

The scopes it asks for are derived from the gateway's table of calls, never kept by hand; the
OAuth redirect is the gateway's callback path; the project parses with HubSpot's own parser
(@hubspot/project-parsing-lib, installed by `make hubspot-tooling`, offline). HubSpot's JSON
schemas for components are served only to an authenticated account, so the documented app
fields are checked here: https://developers.hubspot.com/docs/apps/developer-platform/build-apps/app-configuration
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from gateway.hubspot.api import required_scopes
from gateway.hubspot.connect import CALLBACK_PATH, SCOPES

PROJECT = Path(__file__).resolve().parent.parent / "hubspot-app"
TOOLING = PROJECT / "tooling"
UID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


def _json(path: Path) -> dict:
    return json.loads(path.read_text())


def app_config() -> dict:
    return _json(PROJECT / "src" / "app" / "app-hsmeta.json")


def test_required_scopes_are_exactly_what_the_table_needs() -> None:
    auth = app_config()["config"]["auth"]
    assert sorted(auth["requiredScopes"]) == sorted(required_scopes())
    assert len(set(auth["requiredScopes"])) == len(auth["requiredScopes"])
    assert not set(auth.get("optionalScopes", [])) & set(auth["requiredScopes"])
    # `hubspot connect` asks for the same set
    assert set(SCOPES.split()) == required_scopes()


def test_the_app_is_an_oauth_app_redirecting_to_the_gateway() -> None:
    meta = app_config()
    assert meta["type"] == "app" and UID.match(meta["uid"])
    config = meta["config"]
    assert config["name"] and config["description"]
    # OAuth: each admin's portal installs the app; private = the allowlisted portals only
    assert config["distribution"] in {"private", "marketplace"}
    auth = config["auth"]
    assert auth["type"] == "oauth"
    assert auth["redirectUrls"]
    for url in auth["redirectUrls"]:
        assert url.startswith("https://") and url.endswith(CALLBACK_PATH), url
    for key in ("optionalScopes", "conditionallyRequiredScopes"):
        assert isinstance(auth.get(key, []), list)


def test_the_project_file_names_src_and_a_platform_version() -> None:
    project = _json(PROJECT / "hsproject.json")
    assert project["name"] and project["srcDir"] == "src"
    assert re.fullmatch(r"\d{4}\.\d{2}", project["platformVersion"])
    assert (PROJECT / project["srcDir"] / "app" / "app-hsmeta.json").is_file()
    # a custom channel sends its webhooks to the channel's webhookUrl (set by `hubspot
    # setup`): the project subscribes to no app webhooks
    assert not (PROJECT / "src" / "app" / "webhooks").exists()


def test_hubspots_parser_accepts_the_project() -> None:
    """HubSpot's own parser, offline: hsproject.json, each *-hsmeta.json, uids, folders."""
    if not (TOOLING / "node_modules" / "@hubspot" / "project-parsing-lib").is_dir():
        pytest.skip("HubSpot's project parser is not installed: run `make hubspot-tooling`")
    node = shutil.which("node")
    assert node, "node is needed to run HubSpot's project parser"
    run = subprocess.run(
        [node, str(TOOLING / "validate.mjs"), str(PROJECT)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    report = json.loads(run.stdout)
    assert run.returncode == 0 and report["ok"], report["errors"] or run.stderr
    assert [(c["uid"], c["type"]) for c in report["components"]] == [
        (app_config()["uid"], "APPLICATION")
    ]
