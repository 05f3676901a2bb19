"""The gateway's error hierarchy: the base classes, and the errors of layers that need no
module of their own.

Two families matter to every caller: a TransientError means "try again later" (an SMTP 451, a
job retried with backoff), a PermanentError means "retrying cannot help" (a dead letter, an
SMTP 5xx). Only the edges (cli, intake/smtp, web) turn them into exit codes or replies.
Each class also inherits the builtin it means where there is one (NotFound is a LookupError,
ComposeError a ValueError), so generic code that catches the builtin keeps working.

Where the others live, and why there:
- gateway/hubspot/errors.py: HubSpot's errors (status, category, correlationId), BadWebhook;
- gateway/jobs/send_reply.py: DeliveryExpired, raised by the delivery job it belongs to;
- gateway/intake/imap_client.py: ImapError, the IMAP client's protocol failure;
- gateway/pipeline/assistant/llm.py: BackendError and MalformedAnswer, the contract of the
  assistant's ChatClient protocol defined there.
"""

from __future__ import annotations

from contextvars import ContextVar


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


class TokenError(TransientError, PermissionError):
    """No OAuth 2.0 access token for a mailbox login: the provider refused the grant (consent
    withdrawn, secret expired, device code not yet entered) or the server refused the token.

    Transient: the admin fixes it (`mail-gateway mailbox connect`, a new secret) while the
    IMAP poller and the delivery job back off (gateway/mailauth/).
    """


class BudgetSpent(Deferred):
    """An external rate limit (HubSpot's 100 calls / 10 s, say) has no room before `until`.

    Raised instead of waiting when `DEFER_AFTER` allows: the worker gives the job's slot back,
    runs it again at `until` without counting a try, and claims no other job of that kind
    before then (they would find the budget spent too).
    """


# The longest a rate limiter may wait for its budget before it raises BudgetSpent instead, in
# seconds. None (the default: the CLI, the reply poller, web requests) = wait as long as it
# takes. The worker sets it around each job, so a job never holds a slot while it waits.
DEFER_AFTER: ContextVar[float | None] = ContextVar("DEFER_AFTER", default=None)


class PermanentError(GatewayError):
    """A failure that will not go away by itself: dead-letter it for a person."""


class NotFound(GatewayError, LookupError):
    """A session, message, delivery, job or quarantine entry that does not exist.

    Raise NotFound, catch NotFound (not LookupError, which codecs raise too).
    """


class ComposeError(PermanentError, ValueError):
    """A mail cannot be built from these values: an address that does not validate, a
    hostname unusable in a Message-ID, a DKIM key that does not sign (mail/compose, mail/dkim).
    """
