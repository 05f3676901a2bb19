"""The bounce_report job (JobKind.BOUNCE): a bounce of one of our replies came back.

process_mail records the bounce in its conversation (classify annotates it BOUNCE; the
envelope recipient support+TOKEN@ threads it) and enqueues this job. Here the delivery
status notification (RFC 3464) is read for the Message-IDs of our mails it reports and the
reason; each delivery hit becomes 'bounced', and a rep's reply that bounced is marked FAILED
in HubSpot with a comment on its thread, so a person notices.
"""

from __future__ import annotations

import logging
import re
from concurrent.futures import Executor
from dataclasses import dataclass

from gateway.errors import NotFound
from gateway.hubspot.client import HubSpotClient
from gateway.jobs.handoff import HandoffRunner
from gateway.jobs.process_mail import parse_off_loop
from gateway.jobs.rep_reply import report_failure
from gateway.mail.parse import parse_mail
from gateway.models import Job
from gateway.pipeline.classify import bounced_message_ids
from gateway.store import deliveries
from gateway.store.db import Store
from gateway.store.intake import raw_bytes

log = logging.getLogger(__name__)

# RFC 3464 §2.3: the per-recipient fields that say what happened and why
_DIAG = re.compile(r"^(?:Diagnostic-Code|Status|Action):[ \t]*(.+)$", re.I | re.M)


@dataclass(frozen=True)
class Bounce:
    """What a bounce reports: why (the DSN's fields, else its subject) and of which mails."""

    reason: str
    message_ids: list[str]  # Message-IDs of the original mails, without brackets


def _diagnostic(text: str) -> str:
    found = _DIAG.findall(text)
    return "; ".join(f.strip() for f in found[:3])[:500]


def read_bounce(raw: bytes) -> Bounce:
    """Parse the bounce once and read it. CPU-bound (a DSN can quote a whole mail): the job
    runs it off the event loop, in the parse pool or a thread."""
    mail = parse_mail(raw)
    # the DSN's machine-readable part says why; it is not part of the text we keep
    reason = _diagnostic(raw.decode("utf-8", "replace")) or mail.subject or "bounced"
    return Bounce(reason, bounced_message_ids(mail, raw))


@dataclass
class BounceRunner:
    store: Store
    client: HubSpotClient
    handoff: HandoffRunner
    # where parsing runs: the service's parse pool, or None for the default thread pool
    executor: Executor | None = None

    async def bounce_job(self, job: Job) -> None:
        """Record the bounce on the deliveries it names and report the reps' ones."""
        raw_id = int(job.payload["raw_id"])
        raw = await self.store.read(lambda db: raw_bytes(db, raw_id))
        if raw is None:
            raise NotFound(f"raw mail {raw_id} does not exist")
        bounce = await parse_off_loop(self.executor, read_bounce, raw)
        hit = await self.store.write(
            lambda db: deliveries.mark_bounced(db, bounce.message_ids, bounce.reason)
        )
        for d in hit:
            mid, thread = d["meta"].get("hubspot_message_id"), d["meta"].get("thread_id")
            log.warning("delivery %s bounced: %s", d["id"], bounce.reason)
            if mid and thread:
                await report_failure(
                    self.client,
                    self.handoff,
                    mid,
                    thread,
                    bounce.reason,
                    "got a bounce for this reply",
                )
