"""The conversations inbox: inboxes, threads, messages and actors.

The functions at the top are shared by the public API, the custom-channel API and the rep
console, so a reply typed in the console and one posted through the API behave the same: same
message shape, same ``conversation.newMessage`` event, same channel webhook.
"""

from __future__ import annotations

import uuid
from typing import Any

from aiohttp import web

from .contract import ActorsBatchRead, ThreadMessageCreate, ThreadUpdate, expects
from .crm import associated, find_by
from .errors import ApiError, bad_request, json_response, not_found, present, read_json
from .files import file_attachment
from .keys import STATE, WEBHOOKS
from .oauth import require
from .state import SandboxState, iso, now_ms
from .webhooks import WebhookDispatcher

MESSAGE_TYPES = (
    "MESSAGE",
    "COMMENT",
    "WELCOME_MESSAGE",
    "ASSIGNMENT",
    "THREAD_STATUS_CHANGE",
    "THREAD_INBOX_CHANGE",
)


def base_url(request: web.Request) -> str:
    state = request.app[STATE]
    return state.options.public_url or f"{request.scheme}://{request.host}"


def get_thread(state: SandboxState, thread_id: str) -> dict[str, Any]:
    thread = state.data["threads"].get(thread_id)
    if thread is None:
        raise not_found(f"Thread {thread_id} not found")
    return thread


def agents(state: SandboxState) -> dict[str, dict[str, Any]]:
    return {f"A-{o['userId']}": o for o in state.data["owners"]}


def visitor_actor(state: SandboxState, email: str | None, contact_id: str | None) -> str:
    """V- actors are contacts; an unknown address gets a stable visitor id of its own."""
    if contact_id:
        return f"V-{contact_id}"
    if email:
        contact = find_by(state, "contacts", "email", email)
        if contact:
            return f"V-{contact['id']}"
        visitors = state.data.setdefault("visitors", {})
        if email.lower() not in visitors:
            visitors[email.lower()] = f"V-9{len(visitors) + 1:06d}"
        return visitors[email.lower()]
    return "V-0"


def create_thread(
    state: SandboxState,
    hooks: WebhookDispatcher,
    inbox_id: str,
    channel_id: str | None,
    account_id: str | None,
    contact_id: str | None,
) -> dict[str, Any]:
    tid = state.next_id("thread")
    ts = iso()
    thread = {
        "id": tid,
        "createdAt": ts,
        "status": "OPEN",
        "closedAt": None,
        "inboxId": inbox_id,
        "originalChannelId": channel_id,
        "originalChannelAccountId": account_id,
        "associatedContactId": contact_id,
        "latestMessageTimestamp": ts,
        "latestMessageSentTimestamp": None,
        "latestMessageReceivedTimestamp": None,
        "spam": False,
        "archived": False,
        "assignedTo": None,
    }
    state.data["threads"][tid] = thread
    state.data["messages"][tid] = []
    state.mark_dirty()
    hooks.app_event("conversation.creation", tid)
    return thread


def set_thread_status(
    state: SandboxState, hooks: WebhookDispatcher, thread: dict[str, Any], status: str
) -> None:
    if status not in ("OPEN", "CLOSED"):
        raise bad_request(f"status must be OPEN or CLOSED, not {status!r}")
    if thread["status"] == status:
        return
    thread["status"] = status
    thread["closedAt"] = iso() if status == "CLOSED" else None
    state.mark_dirty()
    hooks.app_event(
        "conversation.propertyChange", thread["id"], propertyName="status", propertyValue=status
    )


def new_message(
    state: SandboxState, thread: dict[str, Any], kind: str, text: str, **fields: Any
) -> dict[str, Any]:
    """A stored message; long texts are truncated like HubSpot's, the full body kept aside."""
    ts = iso()
    limit = state.options.truncate_at
    message: dict[str, Any] = {
        "type": kind,
        "id": uuid.uuid4().hex,
        "conversationsThreadId": thread["id"],
        "createdAt": ts,
        "updatedAt": ts,
        "archived": False,
        "text": text,
        "richText": fields.pop("richText", None) or text,
        "attachments": [],
        "truncationStatus": "NOT_TRUNCATED",
        "senders": [],
        "recipients": [],
        "client": {"clientType": "HUBSPOT"},
        "createdBy": "S-hubspot",
    }
    if limit and len(text) > limit:
        message["_original"] = {"text": text, "richText": message["richText"]}
        message["text"] = text[:limit]
        message["richText"] = message["richText"][:limit]
        message["truncationStatus"] = "TRUNCATED"
    message.update(fields)
    return message


def append_message(
    state: SandboxState, hooks: WebhookDispatcher, thread: dict[str, Any], message: dict[str, Any]
) -> dict[str, Any]:
    state.data["messages"][thread["id"]].append(message)
    thread["latestMessageTimestamp"] = message["createdAt"]
    if message.get("direction") == "INCOMING":
        thread["latestMessageReceivedTimestamp"] = message["createdAt"]
    elif message.get("direction") == "OUTGOING":
        thread["latestMessageSentTimestamp"] = message["createdAt"]
    state.mark_dirty()
    hooks.app_event(
        "conversation.newMessage",
        thread["id"],
        messageId=message["id"],
        messageType=message["type"],
        changeFlag="NEW_MESSAGE",
    )
    return message


def public_message(message: dict[str, Any]) -> dict[str, Any]:
    """A message as HubSpot returns it: no bookkeeping, no ``null`` fields."""
    result: dict[str, Any] = present(message)
    return result


def resolve_attachments(
    state: SandboxState, url: str, specs: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    out = []
    for spec in specs or []:
        if spec.get("type") == "FILE" and spec.get("fileId"):
            out.append(file_attachment(state, str(spec["fileId"]), url))
        else:
            out.append(spec)
    return out


def post_comment(
    state: SandboxState,
    hooks: WebhookDispatcher,
    thread: dict[str, Any],
    text: str,
    actor_id: str,
    rich_text: str | None = None,
    attachments: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    agent = agents(state).get(actor_id)
    message = new_message(
        state,
        thread,
        "COMMENT",
        text,
        richText=rich_text,
        attachments=attachments or [],
        senders=[{"actorId": actor_id, "name": _agent_name(agent)}],
        createdBy=actor_id,
    )
    return append_message(state, hooks, thread, message)


def _agent_name(agent: dict[str, Any] | None) -> str | None:
    return f"{agent['firstName']} {agent['lastName']}" if agent else None


def post_agent_reply(
    state: SandboxState,
    hooks: WebhookDispatcher,
    thread: dict[str, Any],
    text: str,
    actor_id: str,
    rich_text: str | None = None,
    attachments: list[dict[str, Any]] | None = None,
    subject: str | None = None,
    addressed: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A rep's public reply: an OUTGOING MESSAGE on the thread's channel, handed to the
    channel's webhook when the channel is a custom channel.

    ``addressed``: the request's ``recipients`` (``[{deliveryIdentifiers: [{type, value}],
    name?, actorId?, recipientField?}]``, as "Send a message to a thread" takes them); the
    message's recipients are those, each with its first identifier as ``deliveryIdentifier``.
    ``None`` (the rep console, HubSpot's own UI): the senders of the thread's latest INCOMING
    message."""
    agent = agents(state).get(actor_id)
    if agent is None:
        raise bad_request(
            f"Actor {actor_id} cannot send messages", sub_category="UNSUPPORTED_ACTOR_TYPE"
        )
    channel_id, account_id = thread.get("originalChannelId"), thread.get("originalChannelAccountId")
    if not channel_id:
        raise bad_request("This thread has no channel to reply on")
    account = state.data["channel_accounts"].get(account_id or "", {})
    history = state.data["messages"][thread["id"]]
    last_in = next((m for m in reversed(history) if m.get("direction") == "INCOMING"), None)
    recipients = []
    if addressed is not None:
        recipients = [
            {
                "deliveryIdentifier": r["deliveryIdentifiers"][0],
                "name": r.get("name"),
                "actorId": r.get("actorId"),
                "recipientField": r.get("recipientField") or "TO",
            }
            for r in addressed
            if r.get("deliveryIdentifiers")
        ]
    elif last_in:
        recipients = [
            {
                "deliveryIdentifier": s.get("deliveryIdentifier"),
                "name": s.get("name"),
                "actorId": s.get("actorId"),
                "recipientField": "TO",
            }
            for s in last_in["senders"]
            if s.get("deliveryIdentifier")
        ]
    sender = {"actorId": actor_id, "name": _agent_name(agent), "senderField": "FROM"}
    if account.get("deliveryIdentifier"):
        sender["deliveryIdentifier"] = account["deliveryIdentifier"]
    message = new_message(
        state,
        thread,
        "MESSAGE",
        text,
        richText=rich_text,
        attachments=attachments or [],
        direction="OUTGOING",
        channelId=channel_id,
        channelAccountId=account_id,
        senders=[sender],
        recipients=recipients,
        createdBy=actor_id,
        inReplyToId=last_in["id"] if last_in else None,
        subject=subject,
        status=None,
    )
    append_message(state, hooks, thread, message)
    channel = state.data["channels"].get(channel_id)
    if channel and channel.get("webhookUrl"):
        integration_ids = [
            key.split(":", 2)[2]
            for key, tid in state.data["integration_threads"].items()
            if tid == thread["id"]
        ]
        hooks.channel_event(
            channel["webhookUrl"],
            {
                "type": "OUTGOING_CHANNEL_MESSAGE_CREATED",
                "portalId": state.data["portal"]["portalId"],
                "channelId": channel_id,
                "channelIntegrationThreadIds": integration_ids,
                "message": {
                    k: v
                    for k, v in public_message(message).items()
                    if k not in ("archived", "client", "status", "updatedAt")
                },
            },
        )
    return message


def thread_view(state: SandboxState, thread: dict[str, Any], with_ticket: bool) -> dict[str, Any]:
    view = dict(thread)
    if with_ticket:
        tickets = list(associated(state, "conversations", thread["id"], "tickets"))
        view["threadAssociations"] = {"associatedTicketId": tickets[0] if tickets else None}
    result: dict[str, Any] = present(view)
    return result


def page(items: list[Any], request: web.Request, default_limit: int = 20) -> dict[str, Any]:
    """HubSpot's cursor paging: {results, paging: {next: {after, link}}}."""
    try:
        limit = min(int(request.query.get("limit", default_limit)), 500)
        start = int(request.query.get("after") or 0)
    except ValueError as exc:
        raise bad_request("limit and after must be integers") from exc
    out: dict[str, Any] = {"results": items[start : start + limit]}
    if start + limit < len(items):
        after = str(start + limit)
        link = request.url.update_query({"after": after})
        out["paging"] = {"next": {"after": after, "link": str(link)}}
    return out


# --- handlers -----------------------------------------------------------------------------------


async def inboxes_handler(request: web.Request) -> web.Response:
    require(request, "conversations.read")
    inboxes = request.app[STATE].data["inboxes"]
    inbox_id = request.match_info.get("inbox_id")
    if inbox_id is None:
        return json_response({"total": len(inboxes), **page(inboxes, request)})
    for inbox in inboxes:
        if inbox["id"] == inbox_id:
            return json_response(inbox)
    raise not_found(f"Inbox {inbox_id} not found")


async def threads_handler(request: web.Request) -> web.Response:
    require(request, "conversations.read")
    state = request.app[STATE]
    threads = list(state.data["threads"].values())
    query = request.query
    if "inboxId" in query:
        inbox_ids = set(query.getall("inboxId"))
        threads = [t for t in threads if t["inboxId"] in inbox_ids]
    if "status" in query:
        threads = [t for t in threads if t["status"] == query["status"]]
    if query.get("sort", "id").lstrip("-") == "latestMessageTimestamp":
        threads.sort(
            key=lambda t: t["latestMessageTimestamp"], reverse=query["sort"].startswith("-")
        )
    with_ticket = query.get("association") == "TICKET"
    return json_response(page([thread_view(state, t, with_ticket) for t in threads], request))


async def thread_handler(request: web.Request) -> web.Response:
    require(request, "conversations.read")
    state = request.app[STATE]
    thread = get_thread(state, request.match_info["thread_id"])
    with_ticket = request.query.get("association") == "TICKET"
    return json_response(thread_view(state, thread, with_ticket))


@expects(ThreadUpdate)
async def thread_patch_handler(request: web.Request) -> web.Response:
    require(request, "conversations.write")
    state = request.app[STATE]
    thread = get_thread(state, request.match_info["thread_id"])
    body = await read_json(request)
    if "status" in body:
        set_thread_status(state, request.app[WEBHOOKS], thread, body["status"])
    return json_response(thread_view(state, thread, False))


async def messages_handler(request: web.Request) -> web.Response:
    require(request, "conversations.read")
    state = request.app[STATE]
    thread = get_thread(state, request.match_info["thread_id"])
    messages = [public_message(m) for m in state.data["messages"][thread["id"]]]
    sort = request.query.get("sort", "-createdAt")
    if sort not in ("createdAt", "-createdAt"):
        raise bad_request("sort must be createdAt or -createdAt")
    if sort == "-createdAt":
        messages.reverse()
    return json_response(page(messages, request))


def _find_message(state: SandboxState, request: web.Request) -> dict[str, Any]:
    thread = get_thread(state, request.match_info["thread_id"])
    for message in state.data["messages"][thread["id"]]:
        if message["id"] == request.match_info["message_id"]:
            return message
    raise not_found(f"Message {request.match_info['message_id']} not found")


async def message_handler(request: web.Request) -> web.Response:
    require(request, "conversations.read")
    return json_response(public_message(_find_message(request.app[STATE], request)))


async def original_content_handler(request: web.Request) -> web.Response:
    require(request, "conversations.read")
    message = _find_message(request.app[STATE], request)
    original = message.get("_original") or {
        "text": message["text"],
        "richText": message["richText"],
    }
    return json_response({**original, "attachments": message["attachments"]})


@expects(ThreadMessageCreate)
async def post_message_handler(request: web.Request) -> web.Response:
    require(request, "conversations.write")
    state = request.app[STATE]
    hooks = request.app[WEBHOOKS]
    thread = get_thread(state, request.match_info["thread_id"])
    body = await read_json(request)
    kind = body.get("type")
    text = body.get("text")
    if not text:
        raise bad_request("text is required")
    attachments = resolve_attachments(state, base_url(request), body.get("attachments") or [])
    actor_id = body.get("senderActorId") or next(iter(agents(state)))
    if kind == "COMMENT" and not body.get("senderActorId"):
        # an app's own comment (no user named): written by the integration, as HubSpot's UI
        # shows it, not by the first user of the portal
        app_id = state.data["app"]["appId"]
        message = post_comment(
            state, hooks, thread, text, f"I-{app_id}", body.get("richText"), attachments
        )
        message["client"] = {"clientType": "INTEGRATION", "integrationAppId": app_id}
    elif kind == "COMMENT":
        message = post_comment(
            state, hooks, thread, text, actor_id, body.get("richText"), attachments
        )
    elif kind == "MESSAGE":
        if not actor_id.startswith("A-"):
            raise ApiError(
                400,
                f"Actor type of {actor_id} is not supported for sending",
                "VALIDATION_ERROR",
                sub_category="UNSUPPORTED_ACTOR_TYPE",
            )
        message = post_agent_reply(
            state,
            hooks,
            thread,
            text,
            actor_id,
            body.get("richText"),
            attachments,
            body.get("subject"),
            addressed=body["recipients"],
        )
    else:
        raise bad_request(f"type must be MESSAGE or COMMENT, not {kind!r}")
    return json_response(public_message(message), status=201)


async def actor_handler(request: web.Request) -> web.Response:
    require(request, "conversations.read")
    actor = describe_actor(request.app[STATE], request.match_info["actor_id"])
    if actor is None:
        raise not_found(f"Actor {request.match_info['actor_id']} not found")
    return json_response(present(actor))


@expects(ActorsBatchRead)
async def actors_batch_handler(request: web.Request) -> web.Response:
    require(request, "conversations.read")
    state = request.app[STATE]
    body = await read_json(request)
    results = [present(a) for a in (describe_actor(state, i) for i in body["inputs"]) if a]
    return json_response(
        {"status": "COMPLETE", "results": results, "startedAt": iso(), "completedAt": iso(now_ms())}
    )


def describe_actor(state: SandboxState, actor_id: str) -> dict[str, Any] | None:
    agent = agents(state).get(actor_id)
    if agent:
        return {
            "type": "AGENT",
            "id": actor_id,
            "name": _agent_name(agent),
            "email": agent["email"],
            "avatar": None,
        }
    if actor_id.startswith("V-"):
        contact = state.data["objects"]["contacts"].get(actor_id[2:])
        props = contact["properties"] if contact else {}
        name = " ".join(p for p in (props.get("firstname"), props.get("lastname")) if p)
        return {
            "type": "VISITOR",
            "id": actor_id,
            "name": name or None,
            "email": props.get("email"),
        }
    if actor_id.startswith(("I-", "S-", "B-")):
        return {
            "type": {"I": "INTEGRATION", "S": "SYSTEM", "B": "BOT"}[actor_id[0]],
            "id": actor_id,
            "name": None,
        }
    return None


def setup_routes(app: web.Application) -> None:
    r = app.router
    for base in ("/conversations/v3/conversations", "/conversations/conversations/2026-09-beta"):
        _routes(r, base)


def _routes(r: web.UrlDispatcher, base: str) -> None:
    r.add_get(base + "/inboxes", inboxes_handler)
    r.add_get(base + "/inboxes/{inbox_id}", inboxes_handler)
    r.add_get(base + "/threads", threads_handler)
    r.add_get(base + "/threads/{thread_id}", thread_handler)
    r.add_patch(base + "/threads/{thread_id}", thread_patch_handler)
    r.add_get(base + "/threads/{thread_id}/messages", messages_handler)
    r.add_post(base + "/threads/{thread_id}/messages", post_message_handler)
    r.add_get(base + "/threads/{thread_id}/messages/{message_id}", message_handler)
    r.add_get(
        base + "/threads/{thread_id}/messages/{message_id}/original-content",
        original_content_handler,
    )
    r.add_get(base + "/actors/{actor_id}", actor_handler)
    r.add_post(base + "/actors/batch/read", actors_batch_handler)
