"""The rep console: a page where a person plays the support rep, and its small JSON API.

The page is static HTML and JavaScript shipped in ``static/``; it talks to the
``/_sandbox/console-api/`` endpoints below, which call the same functions as the public API so
that a console reply triggers exactly what a HubSpot rep's reply would.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from aiohttp import web

from .conversations import (
    get_thread,
    post_agent_reply,
    post_comment,
    public_message,
    set_thread_status,
    thread_view,
)
from .crm import lookup, update_object
from .errors import bad_request, json_response, read_json
from .keys import STATE, WEBHOOKS

STATIC = Path(__file__).parent / "static"


async def page(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC / "console.html")


async def redirect(request: web.Request) -> web.Response:
    raise web.HTTPFound("/console/")


def _ticket(state: Any, ticket_id: str | None) -> dict[str, Any] | None:
    """The console's view of a ticket: id, subject, priority, stage label and state."""
    record = state.data["objects"]["tickets"].get(ticket_id or "")
    if record is None or record["archived"]:
        return None
    stages = {s["id"]: s for p in state.data["pipelines"]["tickets"] for s in p["stages"]}
    props = record["properties"]
    stage = stages.get(props.get("hs_pipeline_stage") or "", {})
    return {
        "id": record["id"],
        "subject": props.get("subject"),
        "content": props.get("content"),
        "priority": props.get("hs_ticket_priority"),
        "stage": stage.get("label"),
        "state": stage.get("metadata", {}).get("ticketState"),
        "properties": props,
    }


def summary(state: Any, thread: dict[str, Any]) -> dict[str, Any]:
    """A thread as the console lists it: HubSpot's thread view plus what a rep scans for:
    the subject (a message's subject, else the ticket's, else the first words), the customer,
    the last activity and the associated ticket."""
    view = thread_view(state, thread, with_ticket=True)
    messages = state.data["messages"][thread["id"]]
    first = next((m for m in messages if m["type"] == "MESSAGE"), None)
    sender = ((first or {}).get("senders") or [{}])[0]
    ticket_id = (view.get("threadAssociations") or {}).get("associatedTicketId")
    ticket = _ticket(state, ticket_id)
    subject = next((m["subject"] for m in messages if m.get("subject")), None)
    words = " ".join(((first or {}).get("text") or "").split())
    view["subject"] = subject or (ticket or {}).get("subject") or words[:60] or "(no subject)"
    email = (sender.get("deliveryIdentifier") or {}).get("value")
    view["customer"] = email
    view["customerName"] = sender.get("name") if sender.get("name") != email else None
    view["lastActivity"] = thread["latestMessageTimestamp"]
    view["ticket"] = ticket
    visible = [m for m in messages if m["type"] in ("MESSAGE", "COMMENT")]
    view["preview"] = " ".join((visible[-1]["text"] if visible else "").split())[:80]
    view["messageCount"] = len(visible)
    return view


async def threads(request: web.Request) -> web.Response:
    state = request.app[STATE]
    ordered = sorted(
        state.data["threads"].values(), key=lambda t: t["latestMessageTimestamp"], reverse=True
    )
    app = state.data["app"]
    return json_response(
        {
            "results": [summary(state, t) for t in ordered],
            "agents": [
                {"actorId": f"A-{o['userId']}", "name": f"{o['firstName']} {o['lastName']}"}
                for o in state.data["owners"]
            ],
            "integration": {"appId": app["appId"]},
        }
    )


async def thread(request: web.Request) -> web.Response:
    state = request.app[STATE]
    item = get_thread(state, request.match_info["thread_id"])
    messages = [public_message(m) for m in state.data["messages"][item["id"]]]
    return json_response({"thread": summary(state, item), "messages": messages})


def paragraphs_html(text: str) -> str:
    """Plain text as the editor's HTML: a <p> per paragraph, <br> per line break, escaped."""
    paras = [p for p in text.replace("\r\n", "\n").split("\n\n") if p.strip()]
    return "".join(f"<p>{html.escape(p.strip()).replace(chr(10), '<br>')}</p>" for p in paras)


async def post(request: web.Request) -> web.Response:
    """A rep's reply or comment: ``{kind: "reply"|"comment", text, richText?, actorId?}``.

    ``text`` is the plain text (paragraphs separated by a blank line), ``richText`` the editor's
    HTML; both are stored and sent as HubSpot's inbox does. Without ``richText`` the text's
    paragraphs become it.
    """
    state = request.app[STATE]
    hooks = request.app[WEBHOOKS]
    item = get_thread(state, request.match_info["thread_id"])
    body = await read_json(request)
    text = (body.get("text") or "").strip()
    if not text:
        raise bad_request("text is required")
    rich = body.get("richText")
    if rich is not None and not isinstance(rich, str):
        raise bad_request("richText must be a string of HTML")
    rich = rich or paragraphs_html(text)
    actor = body.get("actorId") or f"A-{state.data['owners'][0]['userId']}"
    if body.get("kind") == "comment":
        message = post_comment(state, hooks, item, text, actor, rich_text=rich)
    else:
        message = post_agent_reply(state, hooks, item, text, actor, rich_text=rich)
    return json_response(public_message(message), status=201)


async def close_thread(request: web.Request) -> web.Response:
    state = request.app[STATE]
    item = get_thread(state, request.match_info["thread_id"])
    body = await read_json(request)
    set_thread_status(state, request.app[WEBHOOKS], item, body.get("status", "CLOSED"))
    return json_response(thread_view(state, item, True))


async def tickets(request: web.Request) -> web.Response:
    state = request.app[STATE]
    items = [_ticket(state, tid) for tid in state.data["objects"]["tickets"]]
    return json_response({"results": [t for t in items if t is not None]})


async def close_ticket(request: web.Request) -> web.Response:
    state = request.app[STATE]
    record = lookup(state, "tickets", request.match_info["ticket_id"], None)
    pipeline_id = record["properties"].get("hs_pipeline")
    pipeline = next(p for p in state.data["pipelines"]["tickets"] if p["id"] == pipeline_id)
    closed = next(s for s in pipeline["stages"] if s["metadata"]["ticketState"] == "CLOSED")
    update_object(state, "tickets", record, {"hs_pipeline_stage": closed["id"]})
    return json_response({"id": record["id"], "stage": closed["label"]})


def setup_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/console", redirect)
    r.add_get("/console/", page)
    r.add_static("/console/static", STATIC)
    api = "/_sandbox/console-api"
    r.add_get(api + "/threads", threads)
    r.add_get(api + "/threads/{thread_id}", thread)
    r.add_post(api + "/threads/{thread_id}/messages", post)
    r.add_post(api + "/threads/{thread_id}/status", close_thread)
    r.add_get(api + "/tickets", tickets)
    r.add_post(api + "/tickets/{ticket_id}/close", close_ticket)
