"""The handoff job: contact, inbox thread, ticket, thread link, note, comment, exactly once.

Each step is recorded in the store as soon as HubSpot confirms it, so a crash resumes at the
next step. Steps whose HubSpot call is not idempotent by itself are made so here:
- contact: read by email first; a 409 on create means it exists, read it again;
- messages: the channel's integrationIdempotencyId is unique per stored mail (publish_key),
  never the Message-ID, and the thread's contact is the ticket's (associateWithContactId);
- ticket: a unique ticket property holds the conversation token; we look it up before
  creating, and a create that meets the unique value (HubSpot's error category says so, not
  its status) falls back to the lookup;
- ticket <-> thread: the explicit association call only (PUT, idempotent), then verified
  with GET thread?association=TICKET;
- attachments never block: a file over HubSpot's limit or refused for good is left out, and
  the published text and the ticket's note name it (name, size, why);
- note and comment: marked "attempted" before the create, and carry a marker; a retry after
  an attempt looks for the marker before creating again.
"""

from __future__ import annotations

import functools
import json
import logging
import time
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

import aiohttp

from gateway.config import HubspotSettings
from gateway.errors import Deferred, PermanentError, TransientError
from gateway.hubspot import api
from gateway.hubspot.client import HubSpotClient
from gateway.hubspot.errors import (
    HubSpotAuthError,
    HubSpotConflict,
    HubSpotNotFound,
    HubSpotPermanentError,
)
from gateway.hubspot.setup import SETUP_KEY, HubSpotIds, ensure_channel_account
from gateway.jobs.process_mail import parse_off_loop
from gateway.mail.parse import parse_mail
from gateway.models import BOUNCE, Job, JobKind
from gateway.pipeline.assistant import EscalationFacts
from gateway.pipeline.handoff import (
    already_exists,
    channel_message,
    comment_text,
    contact_properties,
    existing_id,
    fallback_summary,
    files_to_upload,
    marker,
    outside_comment,
    outside_sender,
    ticket_properties,
    transcript_html,
)
from gateway.store import hubspot as hs_store
from gateway.store import jobs as jobq
from gateway.store.db import Database, Store
from gateway.store.intake import raw_bytes
from gateway.store.queries import kv_get, kv_set

log = logging.getLogger(__name__)

ASSOC = {"associationCategory": "HUBSPOT_DEFINED"}
TICKET_TO_CONTACT = 16
TICKET_TO_THREAD = 32
NOTE_TO_TICKET = 228
MAX_UPLOAD = 25 * 1024 * 1024  # the channel's maxFileAttachmentSizeBytes

# (db, conversation id, reason) -> what the comment and the ticket say about it
Facts = Callable[[Database, int, str], EscalationFacts]


@dataclass
class HandoffRunner:
    store: Store
    client: HubSpotClient
    settings: HubspotSettings
    support_name: str = "Support"
    facts: Facts | None = None  # reason, sentiment, language, summary (assist.handoff_facts)
    executor: Executor | None = None  # where attachments are parsed (the service's parse pool)

    # -- jobs ------------------------------------------------------------------------------

    async def handoff_job(self, job: Job) -> None:
        p = job.payload
        conv_id = int(p["conversation_id"])
        await self.store.write(
            lambda db: hs_store.ensure_handoff(
                db, conv_id, reason=p.get("reason") or "", trigger=p.get("trigger") or "assistant"
            )
        )
        await self.run(conv_id)

    async def publish_job(self, job: Job) -> None:
        """A customer mail on a conversation already handed off: into the same thread."""
        conv_id = int(job.payload["conversation_id"])
        h = await self.store.read(lambda db: hs_store.get_handoff(db, conv_id))
        if h is None:
            return
        if h["state"] != "done":
            # the handoff publishes every message it finds before it finishes; look again
            # after it has, so a mail arriving during the handoff is never skipped. Waiting is
            # not failing: no attempt is used (a growing backoff would leave the mail behind
            # for hours), unless the handoff itself is dead, which a person must retry first.
            if await self.store.read(lambda db: hs_store.handoff_job_dead(db, conv_id)):
                raise PermanentError(
                    f"the handoff of conversation {conv_id} failed; `mail-gateway retry` it"
                )
            raise Deferred(
                f"handoff of conversation {conv_id} still in progress", until=time.time() + 2
            )
        ids = await self.ids()
        conv = await self.store.read(lambda db: hs_store.conversation_for_handoff(db, conv_id))
        fresh = [m for m in conv["messages"] if not m["hubspot_message_id"]]
        await self._publish_all(conv, ids, h["thread_id"], h["contact_id"])
        if not fresh or any(not outside_sender(m) for m in fresh):
            # an outside sender's mail is shown, but it reopens no ticket and opens none
            await self._reopen_if_closed(conv, ids, h)

    # -- the handoff -------------------------------------------------------------------------

    async def run(self, conv_id: int) -> None:
        h = await self.store.read(lambda db: hs_store.get_handoff(db, conv_id))
        if h is None or h["state"] == "done":
            return
        ids = await self.ids()
        conv = await self.store.read(lambda db: hs_store.conversation_for_handoff(db, conv_id))
        reason = h["reason"] or ""
        measure = self.facts
        facts = (
            await self.store.read(lambda db: measure(db, conv_id, reason))
            if measure is not None
            else EscalationFacts(conversation_id=conv_id, reason=reason)
        )

        if not h["contact_id"]:
            h["contact_id"] = await self._contact(conv)
            await self._record(conv_id, contact_id=h["contact_id"])

        thread_id = await self._publish_all(conv, ids, h["thread_id"], h["contact_id"])
        if not h["thread_id"]:
            h["thread_id"] = thread_id
            await self._record(conv_id, thread_id=thread_id)

        if not h["ticket_id"]:
            summary = facts.summary or fallback_summary(conv)
            first_try = not h["ticket_attempted"]
            if first_try:
                await self._record(conv_id, ticket_attempted=1)
            h["ticket_id"] = await self._ticket(
                conv,
                ids,
                h["contact_id"],
                summary,
                conv["token"],
                look_first=not first_try,
            )
            await self._record(conv_id, ticket_id=h["ticket_id"])

        if not h["thread_linked"]:
            await self._link_thread(h["ticket_id"], h["thread_id"])
            await self._record(conv_id, thread_linked=1)

        if not h["note_id"]:
            h["note_id"] = await self._note(conv, h)
            await self._record(conv_id, note_id=h["note_id"])

        if not h["comment_id"]:
            text = comment_text(conv, facts, trigger=h["trigger"])
            h["comment_id"] = await self._comment(conv, h, text)
            await self._record(conv_id, comment_id=h["comment_id"])

        # a mail that arrived while we worked: publish it before declaring the handoff done
        latest = await self.store.read(lambda db: hs_store.conversation_for_handoff(db, conv_id))
        await self._publish_all(latest, ids, h["thread_id"], h["contact_id"])
        await self.store.write(lambda db: hs_store.finish_handoff(db, conv_id))
        log.info(
            "conversation %s handed off: contact %s, ticket %s, thread %s",
            conv_id,
            h["contact_id"],
            h["ticket_id"],
            h["thread_id"],
        )

    # -- steps ---------------------------------------------------------------------------------

    async def ids(self) -> HubSpotIds:
        ids = HubSpotIds.from_json(await self.store.read(lambda db: kv_get(db, SETUP_KEY)))
        if ids is None or not ids.channel_id:
            raise PermanentError(
                "HubSpot is not set up: run `mail-gateway hubspot setup`, then `mail-gateway retry`"
            )
        return ids

    async def _record(self, conv_id: int, **values: Any) -> None:
        await self.store.write(lambda db: hs_store.record_step(db, conv_id, **values))

    async def _contact(self, conv: dict[str, Any]) -> str:
        """The customer's contact id: created, or the existing one by email.

        Create first (one call for a new customer); HubSpot's 409 CONFLICT names the existing
        contact ("Contact already exists. Existing ID: 123"), read from the message, with a
        lookup by email when the message does not say.
        Source: https://developers.hubspot.com/docs/api-reference/2026-03/crm/objects/contacts/guide
        """
        email = conv["customer_email"]
        if not email:
            # no address of the mail validated: a person still gets it, without a contact;
            # the note and comment say why (pipeline.handoff.requester_notes)
            log.warning("conversation %s has no valid customer address: no contact", conv["id"])
            return ""
        try:
            created = await self.client.post(
                api.path("contact_create"),
                {"properties": contact_properties(email, conv.get("customer_name") or "")},
            )
            return str(created["id"])
        except HubSpotConflict as exc:
            existing = existing_id(exc.message)
            if existing:
                return existing
        found = await self.client.get(
            api.path("contact_get", contact_id=email), params={"idProperty": "email"}
        )
        return str(found["id"])

    async def _publish_all(
        self, conv: dict[str, Any], ids: HubSpotIds, thread_id: str, contact_id: str
    ) -> str:
        """Publish every message of `conv` not yet in HubSpot; returns the thread id.

        Each publish carries ``attachments`` (required, ``[]`` when none),
        ``associateWithContactId`` and an idempotency id per stored mail (publish_key).
        """
        # a failure after the publishes but before the handoff recorded their thread (a
        # timeout in the outside-sender comment, a kill) must not lose it: it is in the records
        recorded = (m.get("hubspot_thread_id") for m in conv["messages"])
        thread_id = thread_id or next((t for t in recorded if t), "")
        account = ids.channel_accounts.get(conv["mailbox"])
        if account is None:  # an address of a configured domain, met for the first time
            account, _created = await ensure_channel_account(self.client, ids, conv["mailbox"])
            updated = ids.to_json()
            await self.store.write(lambda db: kv_set(db, SETUP_KEY, updated))
        for msg in conv["messages"]:
            if msg["hubspot_message_id"]:
                continue
            file_ids, left_out = await self._upload_files(msg)
            body = channel_message(
                conv,
                msg,
                channel_account_id=account,
                support_name=self.support_name,
                contact_id=contact_id,
                file_ids=file_ids,
                left_out=left_out,
            )
            resp = await self.client.post(
                api.path("channel_message_publish", channel_id=ids.channel_id),
                body,
                idempotent=True,
            )
            thread_id = thread_id or str(resp.get("conversationsThreadId") or "")
            hub_id = str(resp.get("id") or "")
            await self.store.write(
                functools.partial(
                    hs_store.record_published,
                    message_row_id=msg["id"],
                    conversation_id=conv["id"],
                    hubspot_message_id=hub_id,
                    thread_id=thread_id,
                    left_out=left_out,
                )
            )
            msg["hubspot_message_id"] = hub_id
            msg["left_out"] = left_out
        if not thread_id:
            raise TransientError("HubSpot returned no conversationsThreadId yet")
        # the first outside sender's mail gets a comment; a bounce is not one who could ask
        # for anything (the bounce job reports it on the reply it concerns)
        first_outside = next(
            (m for m in conv["messages"] if outside_sender(m) and BOUNCE not in m["annotations"]),
            None,
        )
        if first_outside is not None and first_outside["hubspot_message_id"]:
            await self._outside_comment(conv, thread_id, first_outside)
        return thread_id

    async def _outside_comment(
        self, conv: dict[str, Any], thread_id: str, msg: dict[str, Any]
    ) -> None:
        """An internal comment on the thread at the first outside sender's mail of the
        conversation, once: kv `outside-comment:<id>` holds "attempted", then the comment id;
        a retry after an attempt looks for the comment's marker before posting again."""
        key = f"outside-comment:{conv['id']}"
        done = await self.store.read(lambda db: kv_get(db, key))
        if done and done != "attempted":
            return
        found = await self._find_comment(thread_id, marker(conv, "outside")) if done else ""
        if not found:
            await self.store.write(lambda db: kv_set(db, key, "attempted"))
            found = await self._post_comment(thread_id, outside_comment(conv, msg))
        await self.store.write(lambda db: kv_set(db, key, found))

    async def _find_comment(self, thread_id: str, tag: str) -> str:
        """The id of the thread's comment that carries `tag`, or ""."""
        path = api.path("thread_messages_list", thread_id=thread_id)
        page = await self.client.get(path, params={"limit": 100, "sort": "-createdAt"})
        for m in page.get("results", []):
            if m.get("type") == "COMMENT" and tag in (m.get("text") or ""):
                return str(m["id"])
        return ""

    async def _post_comment(self, thread_id: str, text: str) -> str:
        path = api.path("thread_messages_list", thread_id=thread_id)
        body = {"type": "COMMENT", "text": text, "richText": _rich(text), "attachments": []}
        return str((await self.client.post(path, body))["id"])

    async def _upload_files(self, msg: dict[str, Any]) -> tuple[list[str], list[dict[str, Any]]]:
        """The customer's attachments into HubSpot's Files API, for the published message.

        Returns (file ids, left out): left out is [{name, size (bytes), why}] for each file
        over the channel's maxFileAttachmentSizeBytes or refused by HubSpot for good (4xx but
        auth and rate limits); transient errors and auth errors raise, so the job retries.
        The bytes come from the stored raw mail (the truth), re-parsed here. A crash between an
        upload and the publish leaves an unused file in HubSpot, never a second message.
        Source: https://developers.hubspot.com/docs/api-reference/2026-03/files/guide
        """
        wanted = files_to_upload(msg)
        if not wanted or not msg.get("raw_id"):
            return [], []
        raw_id = msg["raw_id"]
        raw = await self.store.read(lambda db: raw_bytes(db, raw_id))
        if raw is None:
            return [], []
        parsed = await parse_off_loop(self.executor, parse_mail, raw)  # once per mail
        by_hash = {a.sha256: a for a in parsed.attachments if a.data}
        ids: list[str] = []
        left_out: list[dict[str, Any]] = []
        for meta in wanted:
            att = by_hash.get(str(meta.get("sha256") or ""))
            if att is None:
                continue
            name = att.filename or "attachment"
            if att.size > MAX_UPLOAD:
                why = f"larger than HubSpot's limit of {MAX_UPLOAD} bytes"
                left_out.append({"name": name, "size": att.size, "why": why})
                continue

            def form(att=att, name=name) -> aiohttp.FormData:
                # The name exactly as the customer sent it: HubSpot names the file after the
                # `fileName` field; the part's filename is raw UTF-8, as browsers send it
                # (aiohttp's default percent-encodes it: "Gr%C3%BC%C3%9Fe.pdf").
                f = aiohttp.FormData(quote_fields=False)
                f.add_field(
                    "file",
                    att.data,
                    filename=name,
                    content_type=att.content_type or "application/octet-stream",
                )
                f.add_field("fileName", name)
                f.add_field("options", json.dumps({"access": "PRIVATE"}))
                f.add_field("folderPath", "/mail-gateway")
                return f

            try:
                uploaded = await self.client.request(
                    "POST", api.path("file_upload"), multipart=form
                )
            except HubSpotAuthError:
                raise  # the token or its scopes: a person fixes it, then the job retries
            except HubSpotPermanentError as exc:
                why = f"refused by HubSpot: {exc.status} {exc.category} {exc.message}"
                log.warning("attachment %r left out of the handoff: %s", name, why)
                left_out.append({"name": name, "size": att.size, "why": why[:300]})
                continue
            ids.append(str(uploaded["id"]))
        return ids, left_out

    async def _ticket(
        self,
        conv: dict[str, Any],
        ids: HubSpotIds,
        contact_id: str,
        summary: str,
        key: str,
        *,
        look_first: bool = True,
    ) -> str:
        """Find the ticket by its unique key, or create it (with its contact; the thread is
        linked by the explicit association call, `_link_thread`).

        look_first=False on a first try saves a call: nothing can exist before our first
        create, and a create that meets the unique key falls back to the lookup anyway.
        "Meets the unique key" is read from HubSpot's error body (already_exists), never from
        the status: any other refusal is raised as it is.
        """
        prop = self.settings.conversation_property
        lookup = api.path("ticket_get", ticket_id=key)
        if look_first:
            try:
                found = await self.client.get(lookup, params={"idProperty": prop})
                return str(found["id"])
            except HubSpotNotFound:
                pass
        props = ticket_properties(
            conv,
            summary=summary,
            pipeline_id=ids.pipeline_id,
            stage_id=ids.stage_id,
            priority=self.settings.priority,
            owner_id=ids.owner_id,
            unique_property=prop,
            unique_value=key,
            static=self.settings.ticket_properties,
        )
        to_contact = {**ASSOC, "associationTypeId": TICKET_TO_CONTACT}
        associations = [{"to": {"id": contact_id}, "types": [to_contact]}] if contact_id else []
        body = {"properties": props, "associations": associations}
        try:
            created = await self.client.post(api.path("ticket_create"), body)
            return str(created["id"])
        except HubSpotPermanentError as exc:
            if not already_exists(exc.category, exc.body, prop):
                raise
            # the unique property already holds this key: an earlier try created it
            found = await self.client.get(lookup, params={"idProperty": prop})
            return str(found["id"])

    async def _link_thread(self, ticket_id: str, thread_id: str, *, verify: bool = True) -> None:
        """Ticket <-> inbox thread by the explicit association call (object type
        ``conversation``, HUBSPOT_DEFINED type 32; a PUT, idempotent), then verified with
        GET thread?association=TICKET. A thread that still shows no ticket, or another one,
        raises TransientError (retried; the PUT again is harmless). verify=False for a second
        ticket on a thread (a closed one replaced): the thread shows only one of them.
        Source: https://developers.hubspot.com/docs/api-reference/2026-03/crm/associations/guide
        """
        await self.client.put(
            api.path(
                "association_put",
                object_type="tickets",
                object_id=ticket_id,
                to_object_type="conversation",
                to_object_id=thread_id,
            ),
            [{**ASSOC, "associationTypeId": TICKET_TO_THREAD}],
        )
        if not verify:
            return
        thread = await self.client.get(
            api.path("thread_get", thread_id=thread_id), params={"association": "TICKET"}
        )
        linked = str((thread.get("threadAssociations") or {}).get("associatedTicketId") or "")
        if linked != ticket_id:
            raise TransientError(
                f"thread {thread_id} shows ticket {linked or 'none'} after linking {ticket_id}"
            )

    async def _note(self, conv: dict[str, Any], h: dict[str, Any]) -> str:
        tag = marker(conv, "transcript")
        if h["note_attempted"]:
            existing = await self._find_note(h["ticket_id"], tag)
            if existing:
                return existing
        await self._record(conv["id"], note_attempted=1)
        created = await self.client.post(
            api.path("note_create"),
            {
                "properties": {
                    "hs_note_body": transcript_html(conv),
                    "hs_timestamp": str(int(time.time() * 1000)),
                },
                "associations": [
                    {
                        "to": {"id": h["ticket_id"]},
                        "types": [{**ASSOC, "associationTypeId": NOTE_TO_TICKET}],
                    }
                ],
            },
        )
        return str(created["id"])

    async def _find_note(self, ticket_id: str, tag: str) -> str | None:
        assoc = await self.client.get(
            api.path(
                "associations_list",
                object_type="tickets",
                object_id=ticket_id,
                to_object_type="notes",
            )
        )
        for item in assoc.get("results", []):
            note_id = str(item.get("toObjectId") or item.get("id") or "")
            if not note_id:
                continue
            note = await self.client.get(
                api.path("note_get", note_id=note_id), params={"properties": "hs_note_body"}
            )
            if tag in ((note.get("properties") or {}).get("hs_note_body") or ""):
                return note_id
        return None

    async def _comment(self, conv: dict[str, Any], h: dict[str, Any], text: str) -> str:
        if h["comment_attempted"]:
            found = await self._find_comment(h["thread_id"], marker(conv, "comment"))
            if found:
                return found
        await self._record(conv["id"], comment_attempted=1)
        return await self._post_comment(h["thread_id"], text)

    async def _reopen_if_closed(self, conv: dict[str, Any], ids: HubSpotIds, h: dict) -> None:
        if not h["ticket_id"]:
            return
        ticket = await self.client.get(
            api.path("ticket_get", ticket_id=h["ticket_id"]),
            params={"properties": "hs_pipeline_stage"},
        )
        stage = str((ticket.get("properties") or {}).get("hs_pipeline_stage") or "")
        if stage not in ids.closed_stage_ids:
            return
        if self.settings.closed_ticket == "reopen":
            await self.client.patch(
                api.path("ticket_update", ticket_id=h["ticket_id"]),
                {"properties": {"hs_pipeline_stage": ids.stage_id}},
            )
            log.info("conversation %s: ticket %s reopened", conv["id"], h["ticket_id"])
            return
        # a new ticket for the same conversation: its key counts the tickets so far
        n = await self.store.read(
            lambda db: jobq.count_for_conversation(db, JobKind.PUBLISH, conv["id"])
        )
        key = f"{conv['token']}-{n}"
        summary = fallback_summary(conv)
        ticket_id = await self._ticket(conv, ids, h["contact_id"], summary, key)
        await self._link_thread(ticket_id, h["thread_id"], verify=False)
        await self._record(conv["id"], ticket_id=ticket_id)
        log.info("conversation %s: closed ticket replaced by %s", conv["id"], ticket_id)


def _rich(text: str) -> str:
    import html

    return "<p>" + "<br>".join(html.escape(line) for line in text.splitlines()) + "</p>"
