"""`mail-gateway`, the command line: one module per command family.

- app.py       the root group, `--config`, and the one loop that registers every family
- common.py    the context (settings and store opened once) and the error-to-exit-code mapping
- output.py    the one `--json` option and the table/JSON printers
- ops.py       serve, status, config check|show, doctor
- sessions.py  sessions list|show, handoff
- recovery.py  retry (dead letters), quarantine list|retry
- delivery.py  signatures which, outbox list|show
- hubspot.py   hubspot setup|connect|check
- imap.py      imap status
- sandbox.py   sandbox (the HubSpot stand-in, alone)

Start-up cost is paid per command: a family module imports only click and the CLI's own
helpers at import time; everything else (the store, the HubSpot client, aiohttp, the sandbox)
is imported inside the command that uses it, so `--help`, `status` and `sessions list` do not
load the daemon's libraries (tests/test_cli_startup.py checks it; bench/cli_startup.py times it).
"""

from gateway.cli.app import cli, main

__all__ = ["cli", "main"]
