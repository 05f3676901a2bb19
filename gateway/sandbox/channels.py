"""Custom channels: how the gateway puts email conversations into the HubSpot inbox.

Credentials as HubSpot's reference gives them per operation (developers.hubspot.com/docs/
api-reference/conversations-custom-channels-v3/..., "security"): registering, listing,
reading, updating and deleting the channel itself takes the developer API key (``hapikey``)
with ``appId``, or the app's OAuth token; channel accounts and channel messages take the OAuth
token only (a developer key there is HubSpot's 401). Channel accounts bind a delivery
identifier to an inbox; published messages are grouped into inbox threads by
``integrationThreadId`` and deduplicated by ``integrationIdempotencyId``.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from hubspot_sdk.types.conversations.custom_channel_create_params import (
    CustomChannelCreateParams,
)
from hubspot_sdk.types.conversations.custom_channel_update_params import (
    CustomChannelUpdateParams,
)
from hubspot_sdk.types.conversations.custom_channels.channel_account_create_params import (
    ChannelAccountCreateParams,
)
from hubspot_sdk.types.conversations.custom_channels.channel_account_update_params import (
    ChannelAccountUpdateParams,
)
from hubspot_sdk.types.conversations.custom_channels.message_create_params import (
    MessageCreateParams,
)
from hubspot_sdk.types.conversations.custom_channels.message_update_params import (
    MessageUpdateParams,
)

from .contract import expects
from .conversations import (
    append_message,
    base_url,
    create_thread,
    new_message,
    public_message,
    resolve_attachments,
    set_thread_status,
    visitor_actor,
)
from .errors import ApiError, bad_request, json_response, not_found, present, read_json
from .keys import STATE, WEBHOOKS
from .oauth import PRINCIPAL, require
from .state import SandboxState, iso

DELIVERY_TYPES = (
    "HS_EMAIL_ADDRESS",
    "HS_PHONE_NUMBER",
    "CHANNEL_SPECIFIC_OPAQUE_ID",
    "HS_SHORT_CODE",
)
THREADING_MODELS = ("INTEGRATION_THREAD_ID", "DELIVERY_IDENTIFIER")
STATUS_TYPES = ("SENT", "FAILED", "READ")
READ_SCOPES = ("conversations.custom_channels.read", "conversations.custom_channels.write")
WRITE_SCOPES = ("conversations.custom_channels.write",)


def _capability_error(message: str) -> ApiError:
    return bad_request(
        message, sub_category="CustomChannelsError.INVALID_CHANNEL_CAPABILITY_VALUES"
    )


def validate_capabilities(caps: Any) -> dict[str, Any]:
    """Type-check capabilities the way HubSpot does (objects where strings belong fail)."""
    if not isinstance(caps, dict):
        raise _capability_error("capabilities must be an object")
    types = caps.get("deliveryIdentifierTypes", [])
    if not isinstance(types, list) or not all(isinstance(t, str) for t in types):
        raise _capability_error("deliveryIdentifierTypes must be an array of strings")
    unknown = [t for t in types if t not in DELIVERY_TYPES]
    if unknown:
        raise _capability_error(f"Unknown deliveryIdentifierTypes: {unknown}")
    model = caps.get("threadingModel", "INTEGRATION_THREAD_ID")
    if model not in THREADING_MODELS:
        raise _capability_error(f"threadingModel must be one of {list(THREADING_MODELS)}")
    for key, value in caps.items():
        if key in ("richText", "allowedFileAttachmentMimeTypes", "outgoingAttachmentTypes") and (
            not isinstance(value, list) or not all(isinstance(v, str) for v in value)
        ):
            raise _capability_error(f"{key} must be an array of strings")
        if (
            key.startswith("allow")
            and key != "allowedFileAttachmentMimeTypes"
            and not isinstance(value, bool)
        ):
            raise _capability_error(f"{key} must be a boolean")
        if key.startswith("max") and (not isinstance(value, int) or isinstance(value, bool)):
            raise _capability_error(f"{key} must be an integer")
    return {**caps, "threadingModel": model}


def _channel(state: SandboxState, channel_id: str) -> dict[str, Any]:
    channel = state.data["channels"].get(channel_id)
    if channel is None:
        raise not_found(f"Channel {channel_id} not found")
    return channel


def _account(state: SandboxState, channel_id: str, account_id: str) -> dict[str, Any]:
    account = state.data["channel_accounts"].get(account_id)
    if account is None or account["channelId"] != channel_id:
        raise not_found(f"Channel account {account_id} not found in channel {channel_id}")
    return account


def _check_app(request: web.Request) -> None:
    """Registration with a developer key must name the app (``appId``), as HubSpot demands."""
    principal = request[PRINCIPAL]
    if principal.kind != "developer":
        return
    app_id = request.query.get("appId")
    if app_id is None:
        raise bad_request("appId is required when using a developer API key")
    if app_id != str(request.app[STATE].data["app"]["appId"]):
        raise ApiError(
            403, f"App {app_id} does not belong to this developer account", "MISSING_SCOPES"
        )


def _developer(request: web.Request, scopes: tuple[str, ...]) -> None:
    require(request, *scopes, developer_ok=True)
    _check_app(request)


@expects(CustomChannelCreateParams)
async def create_channel(request: web.Request) -> web.Response:
    _developer(request, WRITE_SCOPES)
    state = request.app[STATE]
    body = await read_json(request)
    if not body.get("name"):
        raise bad_request("name is required")
    channel = {
        "id": state.next_id("channel"),
        "name": body["name"],
        "webhookUrl": body.get("webhookUrl"),
        "capabilities": validate_capabilities(body.get("capabilities", {})),
        "channelDescription": body.get("channelDescription"),
        "channelLogoUrl": body.get("channelLogoUrl"),
        "channelAccountConnectionRedirectUrl": body.get("channelAccountConnectionRedirectUrl"),
        "createdAt": iso(),
        "appId": state.data["app"]["appId"],
    }
    state.data["channels"][channel["id"]] = channel
    state.mark_dirty()
    return json_response(present(channel), status=201)


async def list_channels(request: web.Request) -> web.Response:
    _developer(request, READ_SCOPES)
    channels = [present(c) for c in request.app[STATE].data["channels"].values()]
    return json_response({"total": len(channels), "results": channels})


async def get_channel(request: web.Request) -> web.Response:
    _developer(request, READ_SCOPES)
    return json_response(present(_channel(request.app[STATE], request.match_info["channel_id"])))


# The SDK's update type marks every field required; the operation is a PATCH and HubSpot's
# reference example changes one field, so none is required here (UNVERIFIED on a real portal).
@expects(CustomChannelUpdateParams, "*")
async def patch_channel(request: web.Request) -> web.Response:
    _developer(request, WRITE_SCOPES)
    state = request.app[STATE]
    channel = _channel(state, request.match_info["channel_id"])
    body = await read_json(request)
    if "capabilities" in body:
        body["capabilities"] = validate_capabilities(body["capabilities"])
    for key in (
        "name",
        "webhookUrl",
        "capabilities",
        "channelDescription",
        "channelLogoUrl",
        "channelAccountConnectionRedirectUrl",
    ):
        if key in body:
            channel[key] = body[key]
    state.mark_dirty()
    return json_response(present(channel))


async def delete_channel(request: web.Request) -> web.Response:
    _developer(request, WRITE_SCOPES)
    state = request.app[STATE]
    _channel(state, request.match_info["channel_id"])
    del state.data["channels"][request.match_info["channel_id"]]
    state.mark_dirty()
    return web.Response(status=204)


@expects(ChannelAccountCreateParams)
async def create_account(request: web.Request) -> web.Response:
    require(request, *WRITE_SCOPES)
    state = request.app[STATE]
    channel = _channel(state, request.match_info["channel_id"])
    body = await read_json(request)
    missing = [k for k in ("name", "inboxId", "authorized") if k not in body]
    if missing:
        raise bad_request(f"Missing required fields: {', '.join(missing)}")
    inbox_id = str(body["inboxId"])
    if inbox_id not in {i["id"] for i in state.data["inboxes"]}:
        raise bad_request(f"Inbox {inbox_id} does not exist")
    identifier = body.get("deliveryIdentifier")
    if identifier is not None:
        allowed = channel["capabilities"].get("deliveryIdentifierTypes", [])
        if not isinstance(identifier, dict) or identifier.get("type") not in allowed:
            raise bad_request(f"deliveryIdentifier.type must be one of {allowed}")
    account = {
        "id": state.next_id("account"),
        "channelId": channel["id"],
        "name": body["name"],
        "inboxId": inbox_id,
        "deliveryIdentifier": identifier,
        "authorized": bool(body["authorized"]),
        "active": True,
        "archived": False,
        "createdAt": iso(),
        "archivedAt": None,
    }
    state.data["channel_accounts"][account["id"]] = account
    state.mark_dirty()
    return json_response(present(account), status=201)


async def list_accounts(request: web.Request) -> web.Response:
    require(request, *READ_SCOPES)
    state = request.app[STATE]
    channel_id = request.match_info["channel_id"]
    _channel(state, channel_id)
    accounts = [
        present(a) for a in state.data["channel_accounts"].values() if a["channelId"] == channel_id
    ]
    return json_response({"total": len(accounts), "results": accounts})


async def get_account(request: web.Request) -> web.Response:
    require(request, *READ_SCOPES)
    mi = request.match_info
    return json_response(present(_account(request.app[STATE], mi["channel_id"], mi["account_id"])))


@expects(ChannelAccountUpdateParams, "channelId")
async def patch_account(request: web.Request) -> web.Response:
    require(request, *WRITE_SCOPES)
    state = request.app[STATE]
    mi = request.match_info
    account = _account(state, mi["channel_id"], mi["account_id"])
    body = await read_json(request)
    for key in ("name", "authorized"):
        if key in body:
            account[key] = body[key]
    state.mark_dirty()
    return json_response(present(account))


def _participants(items: Any, field: str) -> list[dict[str, Any]]:
    if not isinstance(items, list) or not items:
        raise bad_request(f"{field} must be a non-empty array")
    for item in items:
        identifier = item.get("deliveryIdentifier") if isinstance(item, dict) else None
        if not isinstance(identifier, dict) or not identifier.get("value"):
            raise bad_request(f"each of {field} needs deliveryIdentifier {{type, value}}")
    return items


@expects(MessageCreateParams)
async def publish_message(request: web.Request) -> web.Response:
    require(request, *WRITE_SCOPES)
    state = request.app[STATE]
    hooks = request.app[WEBHOOKS]
    channel = _channel(state, request.match_info["channel_id"])
    body = await read_json(request)
    direction = body["messageDirection"]
    account = _account(state, channel["id"], str(body["channelAccountId"]))
    senders = _participants(body.get("senders"), "senders")
    recipients = _participants(body.get("recipients"), "recipients")

    idem = body.get("integrationIdempotencyId")
    idem_key = f"{channel['id']}:{idem}"
    if idem and idem_key in state.data["idempotency"]:
        thread_id, message_id = state.data["idempotency"][idem_key]
        for message in state.data["messages"][thread_id]:
            if message["id"] == message_id:
                return json_response(public_message(message))

    customer = senders if direction == "INCOMING" else recipients
    customer_address = customer[0]["deliveryIdentifier"]["value"]
    model = channel["capabilities"].get("threadingModel", "INTEGRATION_THREAD_ID")
    integration_thread = body.get("integrationThreadId")
    if model == "INTEGRATION_THREAD_ID" and not integration_thread:
        raise bad_request("integrationThreadId is required by this channel's threading model")
    key = f"{channel['id']}:{account['id']}:{integration_thread or customer_address.lower()}"
    contact_id = body.get("associateWithContactId")
    contact_id = str(contact_id) if contact_id else None
    thread_id = state.data["integration_threads"].get(key)
    if thread_id is None:
        thread = create_thread(
            state, hooks, account["inboxId"], channel["id"], account["id"], contact_id
        )
        state.data["integration_threads"][key] = thread["id"]
    else:
        thread = state.data["threads"][thread_id]
        if direction == "INCOMING" and thread["status"] == "CLOSED":
            set_thread_status(state, hooks, thread, "OPEN")

    visitor = visitor_actor(state, customer_address, contact_id)
    app_id = state.data["app"]["appId"]
    shown_senders = [
        {
            **s,
            "actorId": visitor if direction == "INCOMING" else f"I-{app_id}",
            "senderField": "FROM",
        }
        for s in senders
    ]
    shown_recipients = [
        {**r, "recipientField": "TO", **({"actorId": visitor} if direction == "OUTGOING" else {})}
        for r in recipients
    ]
    message = new_message(
        state,
        thread,
        "MESSAGE",
        body["text"],
        richText=body.get("richText"),
        attachments=resolve_attachments(state, base_url(request), body.get("attachments") or []),
        direction=direction,
        channelId=channel["id"],
        channelAccountId=account["id"],
        senders=shown_senders,
        recipients=shown_recipients,
        subject=body.get("subject"),
        inReplyToId=body.get("inReplyToId"),
        client={"clientType": "INTEGRATION", "integrationAppId": app_id},
        createdBy=f"I-{app_id}",
        status={"statusType": "RECEIVED" if direction == "INCOMING" else "SENT"},
    )
    append_message(state, hooks, thread, message)
    if idem:
        state.data["idempotency"][idem_key] = [thread["id"], message["id"]]
    return json_response(public_message(message), status=201)


def _channel_message(state: SandboxState, channel_id: str, message_id: str) -> dict[str, Any]:
    _channel(state, channel_id)
    for messages in state.data["messages"].values():
        for message in messages:
            if message["id"] == message_id and message.get("channelId") == channel_id:
                return message
    raise not_found(f"Message {message_id} not found in channel {channel_id}")


async def get_message(request: web.Request) -> web.Response:
    require(request, *READ_SCOPES)
    mi = request.match_info
    message = _channel_message(request.app[STATE], mi["channel_id"], mi["message_id"])
    return json_response(public_message(message))


@expects(MessageUpdateParams, "channelId")
async def update_message(request: web.Request) -> web.Response:
    require(request, *WRITE_SCOPES)
    state = request.app[STATE]
    mi = request.match_info
    message = _channel_message(state, mi["channel_id"], mi["message_id"])
    body = await read_json(request)
    status_type = body.get("statusType")
    if status_type not in STATUS_TYPES:
        raise bad_request(f"statusType must be one of {list(STATUS_TYPES)}")
    status: dict[str, Any] = {"statusType": status_type}
    if status_type == "FAILED":
        status["failureDetails"] = {"errorMessage": body.get("errorMessage")}
    message["status"] = status
    message["updatedAt"] = iso()
    state.mark_dirty()
    return json_response(public_message(message))


def setup_routes(app: web.Application) -> None:
    r = app.router
    for base in (
        "/conversations/v3/custom-channels",
        r"/conversations/custom-channels/{version:\d{4}-\d{2}}",
    ):
        r.add_post(base, create_channel)
        r.add_get(base, list_channels)
        r.add_get(base + "/", list_channels)
        r.add_get(base + "/{channel_id}", get_channel)
        r.add_patch(base + "/{channel_id}", patch_channel)
        r.add_delete(base + "/{channel_id}", delete_channel)
        r.add_post(base + "/{channel_id}/channel-accounts", create_account)
        r.add_get(base + "/{channel_id}/channel-accounts", list_accounts)
        r.add_get(base + "/{channel_id}/channel-accounts/{account_id}", get_account)
        r.add_patch(base + "/{channel_id}/channel-accounts/{account_id}", patch_account)
        r.add_post(base + "/{channel_id}/messages", publish_message)
        r.add_get(base + "/{channel_id}/messages/{message_id}", get_message)
        r.add_patch(base + "/{channel_id}/messages/{message_id}", update_message)
