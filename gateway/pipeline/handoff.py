"""What the handoff sends to HubSpot, as pure functions over the stored conversation.

Kept free of I/O so the shapes (contact, channel message, ticket, note, comment) are tested
without a network, and so the handoff job (jobs/handoff.py) is only sequencing and records.
"""

from __future__ import annotations

import html
import re
from typing import Any

from gateway.mail.containers import is_signature
from gateway.models import OUTSIDE_SENDER
from gateway.pipeline.assistant import EscalationFacts, handoff_comment
from gateway.pipeline.conversations import REQUESTER_REPLY_TO, SENDER_UNVALIDATED

NOTE_LIMIT = 60000  # hs_note_body holds 65,536 characters
TEXT_LIMIT = 30000  # a channel message's text; HubSpot truncates long ones anyway


def integration_thread_id(conv: dict[str, Any]) -> str:
    """The custom channel's thread key: the conversation token, unique across reinstalls."""
    return f"gw-{conv['token']}"


def marker(conv: dict[str, Any], what: str) -> str:
    """A tag in our note and comment, so a retry can see whether the first try landed."""
    return f"[mail-gateway {what} {conv['token']}]"


def split_name(name: str, email: str) -> tuple[str, str]:
    name = " ".join((name or "").replace('"', "").split())
    if not name or "@" in name:
        return "", ""
    if "," in name:  # "Meier, Anna"
        last, _, first = name.partition(",")
        return first.strip(), last.strip()
    first, _, last = name.rpartition(" ")
    return (first, last) if first else (last, "")


def contact_properties(email: str, name: str) -> dict[str, str]:
    first, last = split_name(name, email)
    props = {"email": email}
    if first:
        props["firstname"] = first
    if last:
        props["lastname"] = last
    return props


UNKNOWN_ADDRESS = "unknown-sender@invalid"  # RFC 2606's .invalid: never a real mailbox
_ADDR_SPEC = re.compile(r"[^\s<>@\"(),;:]+@[^\s<>@\"(),;:]+")


def _party(name: str, email: str) -> dict[str, Any]:
    """A sender or recipient of a channel message. HubSpot needs a delivery identifier even
    when no address validated (a `.local` shop server): then the address as written when it
    looks like one, else UNKNOWN_ADDRESS (UNVERIFIED whether HubSpot checks the value)."""
    if not email:
        found = _ADDR_SPEC.search(name or "")
        email = found.group(0)[:254] if found else UNKNOWN_ADDRESS
    return {
        "name": name or email,
        "deliveryIdentifier": {"type": "HS_EMAIL_ADDRESS", "value": email},
    }


def outside_sender(msg: dict[str, Any]) -> bool:
    """Whether a stored mail joined its conversation from a non-participant (store/mail.py)."""
    return OUTSIDE_SENDER in (msg.get("annotations") or [])


def outside_line(msg: dict[str, Any]) -> str:
    """The warning a rep reads on an outside sender's mail."""
    who = msg.get("sender_email") or "an unknown address"
    return (
        f"Outside sender: {who} is not a participant of this conversation (not the customer, "
        "not in To/Cc of its mails). Replies still go only to the customer."
    )


def outside_comment(conv: dict[str, Any], msg: dict[str, Any]) -> str:
    """The internal comment on the first outside sender's mail of a conversation."""
    return "\n".join(
        [
            outside_line(msg),
            "Its mail threaded by its headers (In-Reply-To/References): anyone who saw a mail "
            "of this thread can do that. Check before acting on what it asks.",
            marker(conv, "outside"),
        ]
    )


def requester_notes(conv: dict[str, Any]) -> list[str]:
    """What the note and comment say about whom the conversation belongs to: a form
    mailer's Reply-To taken as the customer, a sender address that did not validate."""
    first = next((m for m in conv["messages"] if m["direction"] == "in"), None) or {}
    notes = []
    annotations = first.get("annotations") or []
    if REQUESTER_REPLY_TO in annotations:
        notes.append(
            f"The customer is the Reply-To address ({conv['customer_email']}) of a web form or "
            f"noreply mailer's mail, sent by {first.get('sender_email') or 'unknown'}."
        )
    if SENDER_UNVALIDATED in annotations or not conv["customer_email"]:
        shown = conv.get("customer_name") or "(no From)"
        if conv["customer_email"]:
            notes.append(
                f"The sender's From address did not validate; the customer's address "
                f"{conv['customer_email']} is the best one the mail had (Reply-To or envelope)."
            )
        else:
            notes.append(
                f"No address of this mail validates (From: {shown}): handed off without a "
                "contact, and a reply cannot be mailed. Reach the customer another way."
            )
    return notes


def publish_key(conv: dict[str, Any], msg: dict[str, Any]) -> str:
    """The publish's ``integrationIdempotencyId``: unique per stored mail, stable across retries.

    Never the Message-ID: two different mails may share one (mass senders do), and HubSpot
    answers a repeated idempotency id with the first message, in the first thread. A customer
    mail is keyed by its stored raw mail (the intake's row), one of ours by its message row;
    the conversation token makes both unique across reinstalls of the gateway.
    """
    if msg.get("raw_id"):
        return f"gw-{conv['token']}-raw{msg['raw_id']}"
    return f"gw-{conv['token']}-msg{msg['id']}"


def channel_message(
    conv: dict[str, Any],
    msg: dict[str, Any],
    *,
    channel_account_id: str,
    support_name: str,
    contact_id: str = "",
    file_ids: list[str] | None = None,
    left_out: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """One mail of the conversation as a custom-channel message (customer mail INCOMING).

    Shape: HubSpot's publish request
    (https://developers.hubspot.com/docs/api-reference/latest/conversations/custom-channels/channels/get-custom-channels;
    hubspot-sdk ``types/conversations/custom_channels/message_create_params.py``):
    ``attachments`` is required (``[]`` when none); ``associateWithContactId`` makes the
    thread's contact the ticket's contact. `left_out` (files not uploaded, see
    `left_out_line`) is named at the end of the text so the rep knows of them.
    """
    customer = _party(conv.get("customer_name") or "", conv["customer_email"])
    support = _party(support_name, conv["mailbox"])
    incoming = msg["direction"] == "in"
    text = (msg.get("new_text") or msg.get("text") or "").strip() or "(no text)"
    if incoming and outside_sender(msg):
        name = msg.get("sender_name") or msg["sender_email"] or "unknown"
        customer = _party(f"{name} (outside sender)", msg["sender_email"])
        text = outside_line(msg) + "\n\n" + text
    elif incoming and REQUESTER_REPLY_TO not in (msg.get("annotations") or []):
        # a form mailer's mail is the customer's (whose Reply-To it was): kept as customer
        email = msg["sender_email"] or conv["customer_email"]
        name = msg.get("sender_name") or ("" if email else conv.get("customer_name") or "")
        customer = _party(name, email)
    if left_out:
        text = text[: TEXT_LIMIT - 2000] + "\n\n" + "\n".join(map(left_out_line, left_out))
    body: dict[str, Any] = {
        "type": "MESSAGE",
        "messageDirection": "INCOMING" if incoming else "OUTGOING",
        "channelAccountId": channel_account_id,
        "integrationThreadId": integration_thread_id(conv),
        "integrationIdempotencyId": publish_key(conv, msg),
        "timestamp": msg["created_at"],
        "senders": [customer if incoming else support],
        "recipients": [support if incoming else customer],
        "text": text[:TEXT_LIMIT],
        # required by HubSpot's reference and hubspot-sdk's MessageCreateParams, even empty
        "attachments": [{"type": "FILE", "fileId": f} for f in file_ids or []],
    }
    if contact_id.isdigit():  # typed int64 by HubSpot
        body["associateWithContactId"] = int(contact_id)
    return body


def left_out_line(item: dict[str, Any]) -> str:
    """One file the handoff could not attach: "Attachment left out: name (size bytes): why"."""
    return (
        f"Attachment left out: {item.get('name') or 'attachment'} "
        f"({int(item.get('size') or 0)} bytes): {item.get('why') or 'unknown'}"
    )


def existing_id(message: str) -> str:
    """The id in HubSpot's 409 for a contact that exists ("... Existing ID: 123"), or ""."""
    m = re.search(r"Existing ID:\s*(\d+)", message or "")
    return m.group(1) if m else ""


def already_exists(category: str, body: Any, unique_property: str) -> bool:
    """Whether a refused create means "the object exists already", decided on HubSpot's
    error body, never on the status alone (a 400 is just as often a bad request).

    True for the categories ``CONFLICT`` and ``OBJECT_ALREADY_EXISTS``, and for a
    ``VALIDATION_ERROR`` whose errors include ``INVALID_UNIQUE_VALUE`` on `unique_property`
    (HubSpot's answer when a unique property already holds the value).
    Source: https://developers.hubspot.com/docs/api/error-handling
    """
    if category in ("CONFLICT", "OBJECT_ALREADY_EXISTS"):
        return True
    if category != "VALIDATION_ERROR" or not isinstance(body, dict):
        return False
    for err in body.get("errors") or []:
        if not isinstance(err, dict) or err.get("code") != "INVALID_UNIQUE_VALUE":
            continue
        names = (err.get("context") or {}).get("propertyName") or []
        if not names or unique_property in names:
            return True
    return False


def files_to_upload(msg: dict[str, Any], limit: int = 10) -> list[dict[str, Any]]:
    """The customer's files worth putting in HubSpot, at most `limit` (the channel's
    maxFileAttachmentCount): attachments first, then inline images (a screenshot pasted into
    the mail, referenced by `cid:`); never parts we could not decode nor the signature of a
    signed mail (mail.containers.SIGNATURE_TYPES: not a file the customer sent)."""
    files = [
        a
        for a in msg.get("attachments") or []
        if not a.get("undecodable")
        and a.get("size", 0) > 0
        and not is_signature(str(a.get("content_type") or ""))
    ]
    return sorted(files, key=lambda a: bool(a.get("inline")))[:limit]


def fallback_summary(conv: dict[str, Any], limit: int = 1000) -> str:
    """Only when no facts provider is wired: subject and the customer's first words."""
    first = next((m for m in conv["messages"] if m["direction"] == "in"), None)
    text = " ".join(((first or {}).get("new_text") or "").split())
    return f"Subject: {conv['subject']}\n{text}"[:limit]


def ticket_properties(
    conv: dict[str, Any],
    *,
    summary: str,
    pipeline_id: str,
    stage_id: str,
    priority: str,
    owner_id: str,
    unique_property: str,
    unique_value: str,
    static: dict[str, str],
) -> dict[str, str]:
    props = {**static}
    props.update(
        {
            "subject": conv["subject"] or "(no subject)",
            "content": summary,
            "hs_pipeline": pipeline_id,
            "hs_pipeline_stage": stage_id,
            "hs_ticket_priority": priority,
            unique_property: unique_value,
        }
    )
    if owner_id:
        props["hubspot_owner_id"] = owner_id
    return props


def transcript_html(conv: dict[str, Any]) -> str:
    """The whole exchange for the ticket's note, oldest first, every value escaped."""
    customer = conv["customer_email"] or conv.get("customer_name") or "an unknown sender"
    out = [
        f"<p><b>Email conversation {html.escape(conv['token'])}</b> with "
        f"{html.escape(customer)}: {html.escape(conv['subject'])}</p>"
    ]
    out += [f"<p><i>{html.escape(note)}</i></p>" for note in requester_notes(conv)]
    for m in conv["messages"]:
        who = m.get("author") if m["direction"] == "out" else m.get("sender_email")
        arrow = "customer" if m["direction"] == "in" else "support"
        if m["direction"] == "in" and outside_sender(m):
            arrow = "outside sender, not a participant"
        elif REQUESTER_REPLY_TO in (m.get("annotations") or []):
            who = f"{conv['customer_email']} (via {who})"
        text = html.escape((m.get("text") or "").strip()).replace("\n", "<br>")
        out.append(
            f"<hr><p><i>{html.escape(m['created_at'])} · {arrow} · {html.escape(who or '')}"
            f"</i><br><b>{html.escape(m.get('subject') or '')}</b></p><p>{text}</p>"
        )
        for item in m.get("left_out") or []:
            out.append(f"<p><i>{html.escape(left_out_line(item))}</i></p>")
    out.append(f"<p>{html.escape(marker(conv, 'transcript'))}</p>")
    body = "".join(out)
    return body if len(body) <= NOTE_LIMIT else body[: NOTE_LIMIT - 20] + "…</p>"


def comment_text(conv: dict[str, Any], facts: EscalationFacts, *, trigger: str) -> str:
    """The internal comment: the assistant's wording (reason, sentiment, language, session),
    who triggered the handoff, and our marker so a retry can find it."""
    return "\n".join(
        [
            handoff_comment(facts),
            *requester_notes(conv),
            f"Triggered by: {trigger}",
            marker(conv, "comment"),
        ]
    )
