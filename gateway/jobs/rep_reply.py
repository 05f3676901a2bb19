"""Reps' replies from HubSpot to the customer's mailbox: one path for webhooks and polling.

Every announced message (channel webhook, app webhook, poll) is recorded once by HubSpot
message id and handled by one job: fetch it if the event did not carry it, decide with
pipeline/replies.py, deliver through Outbound, then tell HubSpot SENT or FAILED. "Sent" is
recorded locally before HubSpot hears of it, so a crash in between re-tells, never re-sends.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import mimetypes
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from gateway.errors import ComposeError, Deferred
from gateway.hubspot import api
from gateway.hubspot.client import HubSpotClient
from gateway.hubspot.errors import HubSpotAuthError, HubSpotError, HubSpotPermanentError
from gateway.jobs.handoff import HandoffRunner
from gateway.jobs.send_reply import DeliveryExpired, Outbound, Reply
from gateway.mail.compose import OutgoingAttachment
from gateway.models import Job
from gateway.pipeline.replies import author_actor, author_name, is_truncated, why_not_deliver
from gateway.store import replies as rs
from gateway.store.db import Store
from gateway.store.hubspot import handoff_state_of_thread, is_our_hubspot_message

log = logging.getLogger(__name__)

ATTACHMENT_BUDGET = 20 * 1024 * 1024  # all of a reply's files together, before MIME encoding


async def report_failure(
    client: HubSpotClient, handoff: HandoffRunner, mid: str, thread_id: str, error: str, what: str
) -> None:
    """FAILED on the rep's message and a comment on its thread, so a person notices.

    `what` completes "The mail gateway ... to the customer: <error>".
    """
    ids = await handoff.ids()
    await client.patch(
        api.path("channel_message_update", channel_id=ids.channel_id, message_id=mid),
        {"statusType": "FAILED", "errorMessage": error},
    )
    text = f"The mail gateway {what} to the customer: {error}"
    await client.post(
        api.path("thread_message_create", thread_id=thread_id),
        {"type": "COMMENT", "attachments": [], "text": text},
    )


@dataclass
class ReplyRunner:
    store: Store
    client: HubSpotClient
    outbound: Outbound
    handoff: HandoffRunner
    _actor_emails: dict[str, str] = field(default_factory=dict)

    async def rep_reply_job(self, job: Job) -> None:
        mid = str(job.payload["hubspot_message_id"])
        ann = await self.store.read(lambda db: rs.get_announced(db, mid))
        if ann is None or ann["outcome"] not in ("pending", "delivering"):
            return
        if await self.store.read(lambda db: is_our_hubspot_message(db, mid)):
            # HubSpot's echo of a message we published: known without asking HubSpot
            await self.store.write(lambda db: rs.set_outcome(db, mid, "skipped: ours"))
            return
        announced_thread = ann["thread_id"]
        if (
            ann["message"] is None
            and await self.store.read(lambda db: handoff_state_of_thread(db, announced_thread))
            == "pending"
        ):
            # an app event (no message in it) on a thread being handed off is most often the
            # echo of our own publish, recorded as ours once the handoff has its answer: look
            # again then, rather than fetch it now
            raise Deferred(
                f"thread {announced_thread}: its handoff is under way", until=time.time() + 2
            )
        msg = ann["message"] or await self.client.get(
            api.path("thread_message_get", thread_id=ann["thread_id"], message_id=mid)
        )
        thread_id = ann["thread_id"] or str(msg.get("conversationsThreadId") or "")
        ours = await self.store.read(lambda db: is_our_hubspot_message(db, mid))
        reason = why_not_deliver(msg, ours=ours)
        conv_id: int | None = None
        if reason is None:
            conv_id = await self.store.read(lambda db: rs.conversation_for_thread(db, thread_id))
            if conv_id is None and await self.store.read(rs.handoff_in_progress):
                # the first publish of a handoff may have lost its answer: the thread exists
                # in HubSpot before we know its id; ask again once the handoff has recorded it
                raise Deferred(
                    f"thread {thread_id} not known yet; a handoff is under way",
                    until=time.time() + 2,
                )
            if conv_id is None:
                reason = f"thread {thread_id} is not one of our conversations"
        if reason or conv_id is None:  # (no reason means a conversation was found)
            await self.store.write(lambda db: rs.set_outcome(db, mid, f"skipped: {reason}"))
            if ours:  # the webhook echoes what the gateway published: the normal case
                log.info("HubSpot message %s is the gateway's own publish: nothing to send", mid)
            else:
                log.info("HubSpot message %s not delivered: %s", mid, reason)
            return
        body, body_format, text = await self._body(msg, thread_id, mid)
        try:
            attachments = await self._attachments(msg)
        except HubSpotAuthError:
            raise  # the token or its scopes: a person fixes it, then the job retries
        except HubSpotPermanentError as exc:
            # a file HubSpot will not give us: the reply is not mailed without it
            error = str(exc)[:500]
            await self.store.write(lambda db: rs.set_outcome(db, mid, f"failed: {error}"))
            await report_failure(
                self.client,
                self.handoff,
                mid,
                thread_id,
                error,
                "could not send this reply with its file",
            )
            return
        actor = author_actor(msg)
        name = author_name(msg)
        email = await self._actor_email(actor)
        await self.store.write(lambda db: rs.set_outcome(db, mid, "delivering"))
        try:
            _delivery, result = await self.outbound.reply(
                Reply(
                    conversation_id=conv_id,
                    source_key=f"hubspot:{mid}",
                    body=body,
                    body_format=body_format,
                    text=text,
                    author_name=f"{name} ({actor})" if actor else name,
                    author_email=email,
                    attachments=attachments,
                    meta={"hubspot_message_id": mid, "thread_id": thread_id},
                )
            )
        except DeliveryExpired as exc:
            result = exc.result
        except ComposeError as exc:
            # no mail can be built: the customer has no usable address (a sender that did
            # not validate was handed off without one); the rep hears it, nothing is sent
            error = str(exc)[:500]
            await self.store.write(lambda db: rs.set_outcome(db, mid, f"failed: {error}"))
            what = "could not mail this reply"
            await report_failure(self.client, self.handoff, mid, thread_id, error, what)
            return
        if result.ok:
            ids = await self.handoff.ids()
            await self.client.patch(
                api.path("channel_message_update", channel_id=ids.channel_id, message_id=mid),
                {"statusType": "SENT"},
            )
            await self.store.write(lambda db: rs.set_outcome(db, mid, "delivered"))
            return
        error = f"{result.code or ''} {result.message}".strip()[:500]
        await self.store.write(lambda db: rs.set_outcome(db, mid, f"failed: {error}"))
        await report_failure(
            self.client, self.handoff, mid, thread_id, error, "could not deliver this reply"
        )

    async def _body(self, msg: dict[str, Any], thread_id: str, mid: str) -> tuple[str, str, str]:
        """(body, body format, text part): the HTML part from the rep's sanitised `richText`,
        the text part from the rep's own `text` (its paragraphs and line breaks as typed);
        text only when there is no `richText`. A truncated message is fetched whole first.
        Source: https://developers.hubspot.com/docs/api-reference/2026-09-beta/conversations/conversations/threads/get-threads
        """
        if is_truncated(msg):
            full = await self.client.get(
                api.path("thread_message_original", thread_id=thread_id, message_id=mid)
            )
            msg = {**msg, **{k: v for k, v in (full or {}).items() if k in ("text", "richText")}}
        text = str(msg.get("text") or "")
        if msg.get("richText"):
            return str(msg["richText"]), "html", text
        return text, "text", ""

    async def _attachments(self, msg: dict[str, Any]) -> tuple[OutgoingAttachment, ...]:
        """The rep's files, fetched by file id through HubSpot's Files API, within the mail
        size budget (ATTACHMENT_BUDGET bytes for all of them).

        Never from a URL in the message (a webhook body is not a source of URLs to fetch):
        each file's signed URL comes from GET /files/2026-03/files/{fileId}/signed-url
        (hubspot-sdk ``files.file_assets.get_signed_url`` -> ``SignedURL``), and the download
        itself only goes to HubSpot's hosts (HubSpotClient.download). A file id that is not
        HubSpot's (digits) or that HubSpot refuses raises HubSpotPermanentError.
        Source: https://developers.hubspot.com/docs/api-reference/2026-03/files/guide
        """
        out: list[OutgoingAttachment] = []
        budget = ATTACHMENT_BUDGET
        for att in msg.get("attachments") or []:
            if att.get("type") != "FILE" or not att.get("fileId"):
                continue
            file_id = str(att["fileId"])
            if not file_id.isdigit() or len(file_id) > 20:
                raise HubSpotPermanentError(0, f"not a HubSpot file id: {file_id[:40]!r}")
            signed = await self.client.get(api.path("file_signed_url", file_id=file_id))
            size = signed.get("size")
            if isinstance(size, int) and size > budget:
                raise HubSpotPermanentError(
                    413, f"file {file_id} is larger than the {ATTACHMENT_BUDGET} bytes a mail takes"
                )
            data = await self.client.download(str(signed.get("url") or ""), limit=budget)
            budget -= len(data)
            name = str(att.get("name") or _signed_name(signed) or f"attachment-{file_id}")
            mime = str(att.get("mimeType") or mimetypes.guess_type(name)[0] or "")
            out.append(OutgoingAttachment(name, mime or "application/octet-stream", data))
        return tuple(out)

    async def _actor_email(self, actor: str) -> str:
        """The rep's email picks the signature; unknown actors fall back to the default."""
        if not actor:
            return ""
        if actor not in self._actor_emails:
            try:
                data = await self.client.get(api.path("actor_get", actor_id=actor))
                self._actor_emails[actor] = str(data.get("email") or "")
            except HubSpotError as exc:
                log.warning("actor %s unknown to HubSpot: %s", actor, exc)
                return ""
        return self._actor_emails[actor]

    # -- polling -------------------------------------------------------------------------

    async def poll_once(self) -> int:
        """Announce every reply in the threads we handed off; returns how many were new."""
        threads = await self.store.read(rs.threads_to_poll)
        new = 0
        for thread_id in threads:
            page = await self.client.get(
                api.path("thread_messages_list", thread_id=thread_id),
                params={"limit": 50, "sort": "-createdAt"},
            )
            for m in page.get("results", []):
                if m.get("type") != "MESSAGE" or m.get("direction") != "OUTGOING":
                    continue
                announce = functools.partial(
                    rs.record_announced,
                    hubspot_message_id=str(m["id"]),
                    thread_id=thread_id,
                    source="poll",
                    message=m,
                )
                new += await self.store.write(announce)
        return new

    async def poll_forever(self, interval: float, wake: Callable[[], None]) -> None:
        while True:
            try:
                if await self.poll_once():
                    wake()
            except HubSpotError as exc:
                log.warning("polling HubSpot for replies failed: %s", exc)
            await asyncio.sleep(interval)


def _signed_name(signed: dict[str, Any]) -> str:
    """The file name a SignedURL answer gives (``name`` and ``extension``), or ""."""
    name, ext = str(signed.get("name") or ""), str(signed.get("extension") or "")
    return f"{name}.{ext}" if name and ext else name
