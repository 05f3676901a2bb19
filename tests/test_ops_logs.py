"""The daemon's log as an operator reads it: its own lines only, one id space per noun, a
`stopped` line with the drain's outcome, and secrets masked as values, not as words.

The daemon runs as systemd runs it (tests/helpers/daemon.py) with the built-in sandbox, the
knowledge assistant (bm25s sets its own logger to DEBUG) and a reply poller (a HubSpot call
every 0.2 s, each an access-log line before); the tests read what it wrote to stderr.
"""

from __future__ import annotations

import re
import smtplib
import urllib.request

import pytest
import test_ops_daemon

from gateway import logs
from gateway.logs import redact, register_secrets

from conftest import make_mail
from helpers.daemon import Daemon
from helpers.waiting import wait_until

# the daemon test's launcher fixture (port 0, ports from READY, killed at the end)
daemon = test_ops_daemon.daemon
ASSISTED = test_ops_daemon.ASSISTED

LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (\w+) ([\w.]+): (.*)$")


def sandboxed(daemon, level: str = "info") -> Daemon:
    """The daemon test's daemon (its assistant: the knowledge articles, no debounce, a capture
    relay) with the sandbox on port 0, replies polled every 0.2 s, at `level`."""
    return daemon(
        ASSISTED,
        **{
            'log_level = "info"': f'log_level = "{level}"',
            'mode = "live"': 'mode = "sandbox"\nsandbox_listen = "127.0.0.1:0"\n'
            'replies = "both"\npoll_interval = 0.2',
        },
    )


def _lines(d: Daemon) -> list[tuple[str, str, str]]:
    """(level, logger, message) of every log line (tracebacks and other text left out)."""
    return [m.groups() for m in map(LINE.match, d.tail(10**7).splitlines()) if m]


def _send(port: int, **mail: str) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as s:
        s.sendmail("carla@customer.test", ["support@example.com"], make_mail(**mail))


def test_info_log_has_the_gateways_own_lines_ids_and_a_stopped_line(daemon):
    d = sandboxed(daemon)
    d.start()
    # a question the articles answer (raw mail 1 = mail 1; our reply is mail 2), then the
    # customer asks for a person in the same thread (raw mail 2 = mail 3): handed off
    question = {"sender": "carla@customer.test", "subject": "Password"}
    first = {"message_id": "q1@customer.test", "body": "How do I reset my password?"}
    _send(d.smtp_port, **question, **first)
    wait_until(lambda: "delivery 1 sent" in d.tail(10**7), 30, "the automatic reply")
    _send(d.smtp_port, **question, in_reply_to="q1@customer.test", body="I need a human")
    wait_until(lambda: "handed off" in d.tail(10**7), 30, "the handoff")
    assert d.stop() == 0
    lines = _lines(d)
    levels = {level for level, _, _ in lines}
    loggers = {logger for _, logger, _ in lines}
    assert "DEBUG" not in levels  # bm25s logs at DEBUG on its own logger
    assert not [lg for lg in loggers if "access" in lg]  # no HTTP access log at info
    assert all(lg.startswith("gateway.") for lg in loggers), loggers
    messages = [m for _, _, m in lines]
    # one id space per noun: raw mail R (as received), mail M (a message of a conversation)
    intake = [m.partition(" (")[0] for m in messages if m.startswith("raw mail ")]
    assert intake == [
        "raw mail 1 -> conversation 1, mail 1",
        "raw mail 2 -> conversation 1, mail 3",
    ]
    assert any(m.startswith("assist conversation 1 mail 3: escalate") for m in messages)
    stopped = [m for m in messages if m.startswith("stopped after ")]
    assert len(stopped) == 1 and re.fullmatch(
        r"stopped after \d+\.\d s: SMTP sessions 0 finished, 0 cut; jobs \d+ finished, 0 cut",
        stopped[0],
    )
    assert messages[-1] == stopped[0]


def test_debug_level_shows_library_and_access_lines(daemon):
    """The level is one knob: at debug the libraries' lines and the sandbox's access log show."""
    d = sandboxed(daemon, "debug")
    d.start()
    with urllib.request.urlopen(f"http://127.0.0.1:{d.sandbox_port}/console/", timeout=10):
        pass
    wait_until(lambda: "GET /console/ -> 200" in d.tail(10**7), 10, "the access line")
    assert d.stop() == 0
    loggers = {logger for level, logger, _ in _lines(d) if level == "DEBUG"}
    assert {"gateway.sandbox.access", "bm25s"} <= loggers


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        # prose keeps its words: no value follows these keys
        ("HubSpot refused the token: expired", "HubSpot refused the token: expired"),
        ("expected a bearer token", "expected a bearer token"),
        ("refresh_token: missing; run `mail-gateway hubspot connect`", None),
        ("hubspot.client_secret: not set (password: required)", None),
        # values are replaced, whatever surrounds them
        ("Authorization: Bearer pat-na1-0f3c9e2a", "Authorization: Bearer ***"),
        ("GET /x?hapikey=dev-key&appId=1", "GET /x?hapikey=***&appId=1"),
        ("token=abc", "token=***"),
        ('{"access_token": "CJS1x-abc", "expires_in": 1800}', None),
        ("oauth refresh failed, token: 8f14e45f-ceea-467f", "oauth refresh failed, token: ***"),
    ],
)
def test_masking_replaces_values_not_words(text: str, shown: str | None, no_secrets):
    out = redact(text)
    if shown is not None:
        assert out == shown
    elif "access_token" in text:
        assert out == '{"access_token": "***", "expires_in": 1800}'
    else:
        assert out == text


def test_configured_secret_is_masked_as_a_value_not_inside_words(no_secrets):
    register_secrets(["mail2go"])
    assert redact("login mail2go refused") == "login *** refused"
    assert redact("mailbox mail2gone, mail2go_backup") == "mailbox mail2gone, mail2go_backup"


@pytest.fixture
def no_secrets(monkeypatch):
    """No secret registered by an earlier test in this process (the registry is global)."""
    monkeypatch.setattr(logs, "_secrets", set())
    monkeypatch.setattr(logs, "_secret_patterns", [])
