"""Logging set-up: one line per event, text for humans or JSON for collectors.

Every line goes through the redaction of the formatter: bearer tokens, `hapikey=`/`token=`
style query values, JSON `"access_token": "…"` values and the configured secrets are masked,
whatever a library put in the message or the traceback. Only values are replaced, never the
words around them: "token: expired" and "a bearer token" stay readable. Lines logged while
a job runs carry its conversation and message ids (from a context variable the service sets
around each job), so one grep finds the story of one conversation. Message bodies are only
ever logged at debug level.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import re
import sys
import time
from collections.abc import Iterable, Iterator

# Ids of what is being worked on: conversation_id, message_id, raw_id, job_id.
_CONTEXT: contextvars.ContextVar[dict[str, object] | None] = contextvars.ContextVar(
    "log_context", default=None
)
CONTEXT_KEYS = ("conversation_id", "message_id", "raw_id", "job_id")

# What a secret looks like where no key names it: 8+ characters with a digit (HubSpot's
# tokens, JWTs, UUIDs, API keys) — a word like "expired" or "token" is never one.
_VALUE = r"(?=[^\s&\"',;}]*\d)[^\s&\"',;}]{8,}"
_KEYS = (
    r"(?:hapikey|api_key|apikey|access_token|refresh_token|client_secret|token|password|"
    r"secret)"
)
_PATTERNS = [
    # Authorization: Bearer <token> (RFC 6750 section 2.1); "a bearer token" stays as it is
    re.compile(r"(?i)(\bbearer\s+)" + _VALUE),
    # key=value in a query string or form body: whatever follows the = is the value
    re.compile(r"(?i)((?:^|[?&;\s(])" + _KEYS + r"=)[^\s&\"',;)}]+"),
    # "key": "value" in JSON: the quoted string is the value
    re.compile(r"(?i)([\"']" + _KEYS + r"[\"']\s*:\s*[\"'])[^\"']+"),
    # key: value in prose or a header: only what looks like a secret
    re.compile(r"(?i)(\b" + _KEYS + r"\s*:\s*)" + _VALUE),
]
_secrets: set[str] = set()
_secret_patterns: list[re.Pattern[str]] = []
MASK = "***"


def register_secrets(values: Iterable[str]) -> None:
    """Configured secrets (tokens, passwords): never shown, wherever they appear as a value
    (not inside a longer word: a password "mail" leaves "mailbox" alone)."""
    for v in values:
        v = str(v or "")
        if len(v) >= 4 and v not in _secrets:
            _secrets.add(v)
            _secret_patterns.append(
                re.compile(r"(?<![A-Za-z0-9_])" + re.escape(v) + r"(?![A-Za-z0-9_])")
            )


def redact(text: str) -> str:
    """The text with every secret value replaced by `***`; the words around it stay."""
    for pattern in _secret_patterns:
        text = pattern.sub(MASK, text)
    for pattern in _PATTERNS:
        text = pattern.sub(lambda m: m.group(1) + MASK, text)
    return text


@contextlib.contextmanager
def log_context(**ids: object) -> Iterator[None]:
    """Within the block, log records carry these ids (None values are left out)."""
    current = dict(_CONTEXT.get() or {})
    current.update({k: v for k, v in ids.items() if v is not None})
    token = _CONTEXT.set(current)
    try:
        yield
    finally:
        _CONTEXT.reset(token)


class ContextFilter(logging.Filter):
    """Copies the context ids onto each record (an explicit `extra=` wins)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in (_CONTEXT.get() or {}).items():
            if not hasattr(record, key):
                setattr(record, key, value)
        return True


def _ids(record: logging.LogRecord) -> dict[str, object]:
    return {k: getattr(record, k) for k in CONTEXT_KEYS if getattr(record, k, None) is not None}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": redact(record.getMessage()),
            **_ids(record),
        }
        if record.exc_info:
            out["error"] = redact(self.formatException(record.exc_info))
        return json.dumps(out, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        ids = _ids(record)
        if ids:
            first, nl, rest = line.partition("\n")
            tags = " ".join(f"{k.removesuffix('_id')}={v}" for k, v in ids.items())
            line = f"{first} [{tags}]{nl}{rest}"
        return redact(line)


def setup_logging(level: str = "info", fmt: str = "text") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(ContextFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    set_level(level)


def set_level(level: str) -> None:
    """The configured level for every line, a library's too: the handler filters by it as
    well, since a library that sets its own logger to DEBUG (bm25s does) would pass the root's
    level. aiosmtpd's per-command log (`mail.log`, addresses included) stays at warning."""
    value = logging.getLevelName(level.upper())
    root = logging.getLogger()
    root.setLevel(value)
    for handler in root.handlers:
        handler.setLevel(value)
    logging.getLogger("mail.log").setLevel(max(logging.WARNING, root.level))
