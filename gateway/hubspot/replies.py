"""Reps' replies from HubSpot to the customer's mailbox: one path for webhooks and polling.

Every announced message (channel webhook, app webhook, poll) is recorded once by HubSpot
message id and handled by one job: fetch it if the event did not carry it, decide with
pipeline/replies.py, deliver through Outbound, then tell HubSpot SENT or FAILED. "Sent" is
recorded locally before HubSpot hears of it, so a crash in between re-tells, never re-sends.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

from gateway.delivery.relay import DeliveryExpired
from gateway.hubspot.client import HubSpotClient
from gateway.hubspot.errors import HubSpotError
from gateway.hubspot.handoff import THREADS, HandoffRunner
from gateway.hubspot.setup import CHANNELS
from gateway.models import Job
from gateway.outbound import Outbound
from gateway.pipeline.replies import author_actor, author_name, is_truncated, why_not_deliver
from gateway.store import replies as rs
from gateway.store.db import Store
from gateway.store.hubspot import is_our_hubspot_message

log = logging.getLogger(__name__)


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
        msg = ann["message"] or await self.client.get(
            f"{THREADS}/{ann['thread_id']}/messages/{mid}"
        )
        thread_id = ann["thread_id"] or str(msg.get("conversationsThreadId") or "")
        ours = await self.store.read(lambda db: is_our_hubspot_message(db, mid))
        reason = why_not_deliver(msg, ours=ours)
        if reason is None:
            conv_id = await self.store.read(lambda db: rs.conversation_for_thread(db, thread_id))
            if conv_id is None:
                reason = f"thread {thread_id} is not one of our conversations"
        if reason:
            await self.store.write(lambda db: rs.set_outcome(db, mid, f"skipped: {reason}"))
            log.info("HubSpot message %s not delivered: %s", mid, reason)
            return
        body, body_format = await self._body(msg, thread_id, mid)
        actor = author_actor(msg)
        name = author_name(msg)
        email = await self._actor_email(actor)
        await self.store.write(lambda db: rs.set_outcome(db, mid, "delivering"))
        try:
            _delivery, result = await self.outbound.reply(
                conversation_id=conv_id,
                source_key=f"hubspot:{mid}",
                body=body,
                body_format=body_format,
                author_name=f"{name} ({actor})" if actor else name,
                author_email=email,
                meta={"hubspot_message_id": mid, "thread_id": thread_id},
            )
        except DeliveryExpired as exc:
            result = exc.result
        ids = await self.handoff.ids()
        status_path = f"{CHANNELS}/{ids.channel_id}/messages/{mid}"
        if result.ok:
            await self.client.patch(status_path, {"statusType": "SENT"})
            await self.store.write(lambda db: rs.set_outcome(db, mid, "delivered"))
            return
        error = f"{result.code or ''} {result.message}".strip()[:500]
        await self.store.write(lambda db: rs.set_outcome(db, mid, f"failed: {error}"))
        await self.client.patch(status_path, {"statusType": "FAILED", "errorMessage": error})
        await self.client.post(
            f"{THREADS}/{thread_id}/messages",
            {
                "type": "COMMENT",
                "attachments": [],
                "text": f"The mail gateway could not deliver this reply to the customer: {error}",
            },
        )

    async def _body(self, msg: dict[str, Any], thread_id: str, mid: str) -> tuple[str, str]:
        if is_truncated(msg):
            full = await self.client.get(f"{THREADS}/{thread_id}/messages/{mid}/original-content")
            msg = {**msg, **{k: v for k, v in (full or {}).items() if k in ("text", "richText")}}
        if msg.get("richText"):
            return str(msg["richText"]), "html"
        return str(msg.get("text") or ""), "text"

    async def _actor_email(self, actor: str) -> str:
        """The rep's email picks the signature; unknown actors fall back to the default."""
        if not actor:
            return ""
        if actor not in self._actor_emails:
            try:
                data = await self.client.get(f"/conversations/v3/conversations/actors/{actor}")
                self._actor_emails[actor] = str(data.get("email") or "")
            except HubSpotError as exc:
                log.warning("actor %s unknown to HubSpot: %s", actor, exc)
                return ""
        return self._actor_emails[actor]

    # -- polling -------------------------------------------------------------------------

    async def poll_once(self) -> int:
        """Announce every reply in the threads we handed off; returns how many were new."""
        threads = await self.store.read(
            lambda db: [
                r[0]
                for r in db.execute(
                    "SELECT h.thread_id FROM handoffs h JOIN conversations c "
                    "ON c.id = h.conversation_id WHERE h.state = 'done' AND c.status != 'closed'"
                )
            ]
        )
        new = 0
        for thread_id in threads:
            page = await self.client.get(
                f"{THREADS}/{thread_id}/messages", params={"limit": 50, "sort": "-createdAt"}
            )
            for m in page.get("results", []):
                if m.get("type") != "MESSAGE" or m.get("direction") != "OUTGOING":
                    continue
                new += await self.store.write(
                    lambda db, m=m, t=thread_id: rs.record_announced(
                        db,
                        hubspot_message_id=str(m["id"]),
                        thread_id=t,
                        source="poll",
                        message=m,
                    )
                )
        return new

    async def poll_forever(self, interval: float, wake) -> None:
        while True:
            try:
                if await self.poll_once():
                    wake()
            except HubSpotError as exc:
                log.warning("polling HubSpot for replies failed: %s", exc)
            await asyncio.sleep(interval)
