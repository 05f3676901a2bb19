"""`mail-gateway hubspot setup`: find or create everything the handoff needs, idempotently.

Every object is looked up before it is created (the custom channel by name, channel accounts
by address, the unique property by name), so running setup twice changes nothing. The ids
found are stored in the gateway's store, never in the config file.

Credentials, as HubSpot's custom-channels reference demands: registering, listing and updating
the channel take the developer API key and app id; channel accounts take the app's OAuth token
and never the developer key. Every call goes through the table in gateway/hubspot/api.py,
which names the credential of each.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from gateway.config import HubspotSettings
from gateway.errors import PermanentError
from gateway.hubspot.client import HubSpotClient
from gateway.hubspot.errors import HubSpotNotFound

SETUP_KEY = "hubspot.setup"
WEBHOOK_PATH = "/hubspot/channel-webhook"

CAPABILITIES: dict[str, Any] = {
    "deliveryIdentifierTypes": ["HS_EMAIL_ADDRESS"],
    "threadingModel": "INTEGRATION_THREAD_ID",
    "allowOutgoingMessages": True,
    "allowConversationStart": False,
    "richText": ["HYPERLINK", "BOLD", "ITALIC", "UNDERLINE", "LISTS", "BLOCKQUOTE"],
    "allowInlineImages": False,
    "maxFileAttachmentCount": 10,
    "maxFileAttachmentSizeBytes": 25 * 1024 * 1024,
    "outgoingAttachmentTypes": ["FILE"],
}


@dataclass
class HubSpotIds:
    channel_id: str = ""
    inbox_id: str = ""
    channel_accounts: dict[str, str] = field(default_factory=dict)  # support address -> id
    pipeline_id: str = ""
    stage_id: str = ""
    open_stage_ids: list[str] = field(default_factory=list)
    closed_stage_ids: list[str] = field(default_factory=list)
    owner_id: str = ""
    unique_property: str = ""

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str | None) -> HubSpotIds | None:
        if not text:
            return None
        return cls(**json.loads(text))


@dataclass
class SetupReport:
    ids: HubSpotIds
    found: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)


async def ensure_channel_account(
    client: HubSpotClient, ids: HubSpotIds, mailbox: str
) -> tuple[str, bool]:
    """The channel account for a support address, created when absent; (id, created).

    Setup runs it for every configured address; the handoff runs it for an address of a
    configured domain met for the first time (anyone@help.example.com). Both calls take the
    OAuth token (channel accounts reference, "Security"); an account found unauthorised is
    authorised again with PATCH.
    """
    listed = await client.call("channel_accounts_list", channel_id=ids.channel_id)
    for a in (listed or {}).get("results", []):
        if str(a.get("deliveryIdentifier", {}).get("value", "")).lower() == mailbox:
            ids.channel_accounts[mailbox] = str(a["id"])
            if a.get("authorized") is False:
                await client.call(
                    "channel_account_update",
                    {"authorized": True},
                    channel_id=ids.channel_id,
                    channel_account_id=a["id"],
                )
            return str(a["id"]), False
    acct = await client.call(
        "channel_account_create",
        {
            "name": mailbox,
            "inboxId": ids.inbox_id,
            "deliveryIdentifier": {"type": "HS_EMAIL_ADDRESS", "value": mailbox},
            "authorized": True,
        },
        channel_id=ids.channel_id,
    )
    ids.channel_accounts[mailbox] = str(acct["id"])
    return str(acct["id"]), True


def _pick(items: list[dict], wanted: str, *keys: str) -> dict | None:
    for item in items:
        if any(str(item.get(k, "")).lower() == wanted.lower() for k in keys):
            return item
    return None


async def run_setup(
    client: HubSpotClient, hs: HubspotSettings, mailboxes: list[str], public_url: str
) -> SetupReport:
    ids = HubSpotIds(unique_property=hs.conversation_property)
    report = SetupReport(ids)
    found, changed = report.found, report.changed
    webhook_url = public_url.rstrip("/") + WEBHOOK_PATH

    inboxes = (await client.call("inboxes_list")).get("results", [])
    inbox = _pick(inboxes, hs.inbox, "id", "name") if hs.inbox else (inboxes[:1] or [None])[0]
    if inbox is None:
        raise PermanentError(
            f"hubspot.inbox: {hs.inbox!r} not found; inboxes are "
            + ", ".join(f"{i['id']} ({i.get('name')})" for i in inboxes)
        )
    ids.inbox_id = str(inbox["id"])
    found.append(f"inbox {ids.inbox_id} ({inbox.get('name')})")

    channels = (await client.call("channels_list")).get("results", [])
    channel = _pick(channels, hs.channel_name, "name")
    if channel is None:
        channel = await client.call(
            "channel_create",
            {"name": hs.channel_name, "webhookUrl": webhook_url, "capabilities": CAPABILITIES},
        )
        changed.append(f"registered custom channel {channel['id']} ({hs.channel_name})")
    else:
        found.append(f"custom channel {channel['id']} ({hs.channel_name})")
        if channel.get("webhookUrl") != webhook_url:
            await client.call(
                "channel_update", {"webhookUrl": webhook_url}, channel_id=channel["id"]
            )
            changed.append(f"channel webhook URL set to {webhook_url}")
    ids.channel_id = str(channel["id"])

    for mailbox in mailboxes:
        acct_id, created = await ensure_channel_account(client, ids, mailbox)
        if created:
            changed.append(f"created channel account {acct_id} for {mailbox}")
        else:
            found.append(f"channel account {acct_id} for {mailbox}")

    pipelines = (await client.call("pipelines_list", object_type="tickets")).get("results", [])
    pipeline = (
        _pick(pipelines, hs.pipeline, "id", "label")
        if hs.pipeline
        else min(pipelines, key=lambda p: p.get("displayOrder", 0), default=None)
    )
    if pipeline is None:
        raise PermanentError(
            f"hubspot.pipeline: {hs.pipeline!r} not found; pipelines are "
            + ", ".join(f"{p['id']} ({p.get('label')})" for p in pipelines)
        )
    stages = sorted(pipeline.get("stages", []), key=lambda s: s.get("displayOrder", 0))
    state = lambda s: (s.get("metadata") or {}).get("ticketState", "OPEN")  # noqa: E731
    ids.pipeline_id = str(pipeline["id"])
    ids.open_stage_ids = [str(s["id"]) for s in stages if state(s) == "OPEN"]
    ids.closed_stage_ids = [str(s["id"]) for s in stages if state(s) == "CLOSED"]
    stage = _pick(stages, hs.stage, "id", "label") if hs.stage else None
    if hs.stage and stage is None:
        raise PermanentError(
            f"hubspot.stage: {hs.stage!r} not found in pipeline {ids.pipeline_id}; stages are "
            + ", ".join(f"{s['id']} ({s.get('label')})" for s in stages)
        )
    if stage is None:
        if not ids.open_stage_ids:
            raise PermanentError(f"pipeline {ids.pipeline_id} has no open stage")
        stage = next(s for s in stages if str(s["id"]) == ids.open_stage_ids[0])
    ids.stage_id = str(stage["id"])
    found.append(
        f"pipeline {ids.pipeline_id} ({pipeline.get('label')}), stage {ids.stage_id} "
        f"({stage.get('label')})"
    )

    prop = hs.conversation_property
    try:
        existing = await client.call("property_get", object_type="tickets", property_name=prop)
        if not existing.get("hasUniqueValue"):
            raise PermanentError(
                f"ticket property {prop} exists but is not unique; choose another "
                "hubspot.conversation_property"
            )
        found.append(f"unique ticket property {prop}")
    except HubSpotNotFound:
        await client.call(
            "property_create",
            {
                "name": prop,
                "label": "Mail gateway conversation",
                "type": "string",
                "fieldType": "text",
                "groupName": "ticketinformation",
                "hasUniqueValue": True,
                "description": "Set by hubspot-mail-gateway: one ticket per email conversation.",
            },
            object_type="tickets",
        )
        changed.append(f"created unique ticket property {prop}")

    if hs.owner:
        owners = (await client.call("owners_list")).get("results", [])
        owner = _pick(owners, hs.owner, "id", "email")
        if owner is None:
            raise PermanentError(f"hubspot.owner: {hs.owner!r} is not an owner in this portal")
        ids.owner_id = str(owner["id"])
        found.append(f"owner {ids.owner_id} ({owner.get('email')})")
    return report
