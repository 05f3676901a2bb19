"""The gateway's error hierarchy.

Two families matter to every caller: a TransientError means "try again later" (an SMTP 451, a
job retried with backoff), a PermanentError means "retrying cannot help" (a dead letter, an
SMTP 5xx). Only the edges (cli, intake/smtp, web) turn them into exit codes or replies.
"""

from __future__ import annotations


class GatewayError(Exception):
    """Base class for errors the gateway raises on purpose."""


class ConfigError(GatewayError):
    """The configuration cannot be used; `problems` holds one readable line each."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


class TransientError(GatewayError):
    """A failure that may succeed later: retry with backoff."""


class Deferred(TransientError):
    """Not a failure: the work must wait until `until` (unix time), e.g. a spent daily quota.

    The worker reschedules the job then without counting an attempt.
    """

    def __init__(self, message: str, *, until: float = 0.0):
        super().__init__(message)
        self.until = until


class PermanentError(GatewayError):
    """A failure that will not go away by itself: dead-letter it for a person."""


class NotFound(GatewayError, LookupError):
    """A session, message, job or quarantine entry that does not exist."""
