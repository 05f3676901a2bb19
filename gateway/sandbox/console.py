"""The rep console: a page where a person plays the support rep, and its small JSON API.

The page is static HTML and JavaScript shipped in ``static/``; it talks to the
``/_sandbox/console-api/`` endpoints below, which call the same functions as the public API so
that a console reply triggers exactly what a HubSpot rep's reply would.
"""

from __future__ import annotations

import html
from pathlib import Path

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


async def threads(request: web.Request) -> web.Response:
    state = request.app[STATE]
    items = []
    for thread in sorted(
        state.data["threads"].values(), key=lambda t: t["latestMessageTimestamp"], reverse=True
    ):
        view = thread_view(state, thread, with_ticket=True)
        messages = state.data["messages"][thread["id"]]
        first = next((m for m in messages if m["type"] == "MESSAGE"), None)
        sender = (first or {}).get("senders") or [{}]
        view["customer"] = (sender[0].get("deliveryIdentifier") or {}).get("value")
        view["preview"] = messages[-1]["text"][:80] if messages else ""
        items.append(view)
    return json_response(
        {
            "results": items,
            "agents": [
                {"actorId": f"A-{o['userId']}", "name": f"{o['firstName']} {o['lastName']}"}
                for o in state.data["owners"]
            ],
        }
    )


async def thread(request: web.Request) -> web.Response:
    state = request.app[STATE]
    item = get_thread(state, request.match_info["thread_id"])
    messages = [public_message(m) for m in state.data["messages"][item["id"]]]
    return json_response({"thread": thread_view(state, item, True), "messages": messages})


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
    stages = {s["id"]: s for p in state.data["pipelines"]["tickets"] for s in p["stages"]}
    items = []
    for record in state.data["objects"]["tickets"].values():
        if record["archived"]:
            continue
        props = record["properties"]
        stage = stages.get(props.get("hs_pipeline_stage") or "", {})
        items.append(
            {
                "id": record["id"],
                "subject": props.get("subject"),
                "priority": props.get("hs_ticket_priority"),
                "stage": stage.get("label"),
                "state": stage.get("metadata", {}).get("ticketState"),
                "properties": props,
            }
        )
    return json_response({"results": items})


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
