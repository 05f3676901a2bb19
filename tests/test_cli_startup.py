"""The everyday commands start without the daemon's libraries.

`mail-gateway --help`, `status` and `sessions list|show` are what an operator types most; each
is a fresh process, so every module imported is start-up time paid again (the sandbox app alone
was half a second). Each command here runs in its own interpreter, which reports the modules it
ended with; none of the heavy ones may be among them. No timing is asserted: the benchmark
(bench/cli_startup.py) measures the time, this test keeps the imports from creeping back.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import write_config

ROOT = Path(__file__).resolve().parents[1]

# The daemon's libraries and the sandbox: what the commands above must not import.
HEAVY = (
    "gateway.sandbox",
    "aiohttp",
    "aiosmtpd",
    "aiosmtplib",
    "aioimaplib",
    "bm25s",
    "vaderSentiment",
    "py3langid",
    "prometheus_client",
    "dkim",
    "markdown",
    "nh3",
    "dns",
    "numpy",  # sqlite-utils would import it; gateway/cli/common.py imports sqlite-utils without
)
# email_validator (~45 ms, no dnspython at import) is allowed: loading the config checks the
# support addresses with the gateway's one address rule (gateway/addresses.py).

# The console script's start (import main, call it), reporting sys.modules on the way out.
LAUNCH = """
import atexit, json, sys
atexit.register(lambda: print("MODULES " + json.dumps(sorted(sys.modules)), file=sys.stderr))
sys.argv[0] = "mail-gateway"
from gateway.cli import main
main()
"""


def modules_after(config: Path, *args: str) -> tuple[int, set[str]]:
    """(exit code, names in sys.modules at exit) of `mail-gateway --config CONFIG ARGS`, run
    from the checkout's root (`python -c` puts the working directory first on sys.path)."""
    out = subprocess.run(
        [sys.executable, "-c", LAUNCH, "--config", str(config), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    line = next(ln for ln in out.stderr.splitlines() if ln.startswith("MODULES "))
    return out.returncode, set(json.loads(line.removeprefix("MODULES ")))


def heavy_in(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if any(m == h or m.startswith(h + ".") for h in HEAVY))


@pytest.mark.parametrize(
    ("args", "code", "ran"),
    [
        (["--help"], 0, "gateway.cli.app"),
        (["status"], 0, "gateway.store.queries"),
        (["status", "--json"], 0, "gateway.store.queries"),
        (["sessions", "list"], 0, "gateway.store.queries"),
        (["sessions", "show", "1"], 1, "gateway.store.queries"),  # no such session: exit 1
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) else None,
)
def test_everyday_commands_import_no_heavy_module(tmp_path: Path, args, code, ran):
    config = write_config(tmp_path)
    exit_code, modules = modules_after(config, *args)
    assert exit_code == code
    assert ran in modules  # the command did its work in this process
    assert heavy_in(modules) == []


def test_heavy_in_matches_packages_and_their_modules_only():
    names = {"aiohttp", "aiohttp.web", "gateway.sandbox.app", "dns.resolver", "dnslib", "click"}
    assert heavy_in(names) == ["aiohttp", "aiohttp.web", "dns.resolver", "gateway.sandbox.app"]
