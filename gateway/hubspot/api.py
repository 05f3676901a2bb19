"""Every HubSpot call the gateway makes, in one table: method, dated path, credential, scopes.

Shape: ``CALLS[name] -> Call(name, method, template, credential, scopes, source)``.
``template`` is a path with ``{placeholders}``; ``path(name, **values)`` fills it in, each value
percent-encoded as one path segment. ``credential`` is who may call it at HubSpot:

- ``"oauth"``: the app's OAuth access token (``Authorization: Bearer``); ``scopes`` lists the
  scopes the call needs (HubSpot answers 403 ``MISSING_SCOPES`` without them).
- ``"developer"``: the developer API key and app id (``?hapikey=…&appId=…``); only custom
  channel registration, list, get and update take it (custom-channels reference, "Security").
- ``"client"``: no token at all, the app's client id and secret in the form (OAuth token
  endpoints).

Versions. HubSpot ends numbered paths (v4 on 2027-03-30, v1-v3 in September 2027) and says to
move straight to date-versioned ones
(https://developers.hubspot.com/changelog/legacy-apis-and-legacy-apps-whats-going-unsupported-and-when).
CRM, custom channels, files and OAuth use ``2026-03``, the version HubSpot's official
``hubspot-sdk`` calls (its ``resources/`` modules, named in each ``source``). The conversations
inbox API (inboxes, threads, messages, actors) is not in that SDK; its v3 was itself a beta and
its dated form is ``2026-09-beta``
(https://developers.hubspot.com/docs/api-reference/2026-09-beta/conversations/conversations/threads/get-threads).
Token info: HubSpot publishes ``POST /oauth/2026-03/token/introspect`` (``hubspot-sdk``
``resources/auth/oauth.py``, ``introspect_token``), which replaces the numbered
access-token lookup of OAuth v1.

Scopes: ``required_scopes()`` is the union over the ``"oauth"`` calls; the developer-platform
project (``hubspot-app/src/app/app-hsmeta.json``, ``requiredScopes``) and ``hubspot connect``
ask for exactly that set.
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass

CRM_VERSION = "2026-03"
CHANNELS_VERSION = "2026-03"
FILES_VERSION = "2026-03"
OAUTH_VERSION = "2026-03"
INBOX_VERSION = "2026-09-beta"

_CRM = f"/crm/objects/{CRM_VERSION}"
_CHANNELS = f"/conversations/custom-channels/{CHANNELS_VERSION}"
_INBOX = f"/conversations/conversations/{INBOX_VERSION}"
_SDK = "hubspot-sdk (PyPI, official, Apache-2.0) hubspot_sdk/resources/"
_DOCS = "https://developers.hubspot.com/docs/api-reference"

_CHANNELS_DOC = f"{_DOCS}/latest/conversations/custom-channels/channels/get-custom-channels"
_INBOX_DOC = f"{_DOCS}/{INBOX_VERSION}/conversations/conversations/threads/get-threads"
_INBOXES_DOC = f"{_DOCS}/{INBOX_VERSION}/conversations/conversations/inbox/get-inboxes"
_OAUTH_DOC = f"{_DOCS}/{OAUTH_VERSION}/auth/oauth/guide"


@dataclass(frozen=True)
class Call:
    """One HubSpot operation: see the module docstring for the meaning of each field."""

    name: str
    method: str  # GET | POST | PATCH | PUT
    template: str  # "/crm/objects/2026-03/tickets/{ticket_id}"
    credential: str  # oauth | developer | client
    scopes: tuple[str, ...]  # all of them are needed (oauth calls only)
    source: str  # HubSpot's reference page, and the SDK module where it covers the call

    @property
    def version(self) -> str:
        """The dated version segment of the path ("2026-03", "2026-09-beta")."""
        return next(p for p in self.template.split("/") if p[:2] == "20")


def _c(
    name: str, method: str, template: str, credential: str, scopes: tuple[str, ...], source: str
) -> Call:
    return Call(name, method, template, credential, tuple(scopes), source)


_CONTACTS = ("crm.objects.contacts.read",)
_CONTACTS_W = ("crm.objects.contacts.write",)
_CC_READ = ("conversations.custom_channels.read",)
_CC_WRITE = ("conversations.custom_channels.write",)
_INBOX_READ = ("conversations.read",)
_INBOX_WRITE = ("conversations.write",)

CALLS: dict[str, Call] = {
    c.name: c
    for c in (
        # -- CRM objects: contacts, tickets, notes
        _c(
            "contact_get",
            "GET",
            _CRM + "/contacts/{contact_id}",
            "oauth",
            _CONTACTS,
            f"{_DOCS}/{CRM_VERSION}/crm/objects/contacts/guide; {_SDK}crm/objects/contacts.py",
        ),
        _c(
            "contact_create",
            "POST",
            _CRM + "/contacts",
            "oauth",
            _CONTACTS_W,
            f"{_DOCS}/{CRM_VERSION}/crm/objects/contacts/guide; {_SDK}crm/objects/contacts.py",
        ),
        _c(
            "ticket_get",
            "GET",
            _CRM + "/tickets/{ticket_id}",
            "oauth",
            ("tickets",),
            f"{_DOCS}/{CRM_VERSION}/crm/objects/tickets/guide; {_SDK}crm/objects/tickets.py",
        ),
        _c(
            "ticket_create",
            "POST",
            _CRM + "/tickets",
            "oauth",
            ("tickets",),
            f"{_DOCS}/{CRM_VERSION}/crm/objects/tickets/guide; {_SDK}crm/objects/tickets.py",
        ),
        _c(
            "ticket_update",
            "PATCH",
            _CRM + "/tickets/{ticket_id}",
            "oauth",
            ("tickets",),
            f"{_DOCS}/{CRM_VERSION}/crm/objects/tickets/guide; {_SDK}crm/objects/tickets.py",
        ),
        _c(
            "note_get",
            "GET",
            _CRM + "/notes/{note_id}",
            "oauth",
            _CONTACTS,
            f"{_DOCS}/{CRM_VERSION}/crm/objects/notes/guide; {_SDK}crm/objects/notes.py",
        ),
        _c(
            "note_create",
            "POST",
            _CRM + "/notes",
            "oauth",
            _CONTACTS_W,
            f"{_DOCS}/{CRM_VERSION}/crm/objects/notes/guide; {_SDK}crm/objects/notes.py",
        ),
        # -- CRM associations (the v4 operations, dated)
        _c(
            "association_put",
            "PUT",
            _CRM + "/{object_type}/{object_id}/associations/{to_object_type}/{to_object_id}",
            "oauth",
            ("tickets",),
            f"{_DOCS}/{CRM_VERSION}/crm/associations/guide; {_SDK}crm/associations/associations.py",
        ),
        _c(
            "associations_list",
            "GET",
            _CRM + "/{object_type}/{object_id}/associations/{to_object_type}",
            "oauth",
            ("tickets",),
            f"{_DOCS}/{CRM_VERSION}/crm/associations/guide; {_SDK}crm/associations/associations.py",
        ),
        # -- CRM pipelines, owners, properties
        _c(
            "pipelines_list",
            "GET",
            f"/crm/pipelines/{CRM_VERSION}/{{object_type}}",
            "oauth",
            ("tickets",),
            f"{_DOCS}/{CRM_VERSION}/crm/pipelines/guide; {_SDK}crm/pipelines.py",
        ),
        _c(
            "owners_list",
            "GET",
            f"/crm/owners/{CRM_VERSION}",
            "oauth",
            ("crm.objects.owners.read",),
            f"{_DOCS}/{CRM_VERSION}/crm/owners/guide; {_SDK}crm/owners.py",
        ),
        _c(
            "property_get",
            "GET",
            f"/crm/properties/{CRM_VERSION}/{{object_type}}/{{property_name}}",
            "oauth",
            ("tickets",),
            f"{_DOCS}/{CRM_VERSION}/crm/properties/guide; {_SDK}crm/properties/properties.py",
        ),
        _c(
            "property_create",
            "POST",
            f"/crm/properties/{CRM_VERSION}/{{object_type}}",
            "oauth",
            ("tickets",),
            f"{_DOCS}/{CRM_VERSION}/crm/properties/guide; {_SDK}crm/properties/properties.py",
        ),
        # -- Files
        _c(
            "file_upload",
            "POST",
            f"/files/{FILES_VERSION}/files",
            "oauth",
            ("files",),
            f"{_DOCS}/{FILES_VERSION}/files/guide; {_SDK}files/files.py",
        ),
        _c(
            "file_signed_url",
            "GET",
            f"/files/{FILES_VERSION}/files/{{file_id}}/signed-url",
            "oauth",
            ("files",),
            f"{_DOCS}/{FILES_VERSION}/files/guide; {_SDK}files/files.py",
        ),
        # -- Custom channels: registration takes the developer key, the rest the OAuth token
        _c(
            "channels_list",
            "GET",
            _CHANNELS,
            "developer",
            (),
            f"{_CHANNELS_DOC}; {_SDK}conversations/custom_channels/custom_channels.py",
        ),
        _c(
            "channel_get",
            "GET",
            _CHANNELS + "/{channel_id}",
            "developer",
            (),
            f"{_CHANNELS_DOC}; {_SDK}conversations/custom_channels/custom_channels.py",
        ),
        _c(
            "channel_create",
            "POST",
            _CHANNELS,
            "developer",
            (),
            f"{_CHANNELS_DOC}; {_SDK}conversations/custom_channels/custom_channels.py",
        ),
        _c(
            "channel_update",
            "PATCH",
            _CHANNELS + "/{channel_id}",
            "developer",
            (),
            f"{_CHANNELS_DOC}; {_SDK}conversations/custom_channels/custom_channels.py",
        ),
        _c(
            "channel_accounts_list",
            "GET",
            _CHANNELS + "/{channel_id}/channel-accounts",
            "oauth",
            _CC_READ,
            f"{_CHANNELS_DOC}; {_SDK}conversations/custom_channels/channel_accounts.py",
        ),
        _c(
            "channel_account_get",
            "GET",
            _CHANNELS + "/{channel_id}/channel-accounts/{channel_account_id}",
            "oauth",
            _CC_READ,
            f"{_CHANNELS_DOC}; {_SDK}conversations/custom_channels/channel_accounts.py",
        ),
        _c(
            "channel_account_create",
            "POST",
            _CHANNELS + "/{channel_id}/channel-accounts",
            "oauth",
            _CC_WRITE,
            f"{_CHANNELS_DOC}; {_SDK}conversations/custom_channels/channel_accounts.py",
        ),
        _c(
            "channel_account_update",
            "PATCH",
            _CHANNELS + "/{channel_id}/channel-accounts/{channel_account_id}",
            "oauth",
            _CC_WRITE,
            f"{_CHANNELS_DOC}; {_SDK}conversations/custom_channels/channel_accounts.py",
        ),
        _c(
            "channel_message_publish",
            "POST",
            _CHANNELS + "/{channel_id}/messages",
            "oauth",
            _CC_WRITE,
            f"{_CHANNELS_DOC}; {_SDK}conversations/custom_channels/messages.py",
        ),
        _c(
            "channel_message_update",
            "PATCH",
            _CHANNELS + "/{channel_id}/messages/{message_id}",
            "oauth",
            _CC_WRITE,
            f"{_CHANNELS_DOC}; {_SDK}conversations/custom_channels/messages.py",
        ),
        # -- Conversations inbox (not in hubspot-sdk: HubSpot's reference pages only)
        _c("inboxes_list", "GET", _INBOX + "/inboxes", "oauth", _INBOX_READ, _INBOXES_DOC),
        _c("thread_get", "GET", _INBOX + "/threads/{thread_id}", "oauth", _INBOX_READ, _INBOX_DOC),
        _c(
            "thread_messages_list",
            "GET",
            _INBOX + "/threads/{thread_id}/messages",
            "oauth",
            _INBOX_READ,
            _INBOX_DOC,
        ),
        _c(
            "thread_message_get",
            "GET",
            _INBOX + "/threads/{thread_id}/messages/{message_id}",
            "oauth",
            _INBOX_READ,
            _INBOX_DOC,
        ),
        _c(
            "thread_message_original",
            "GET",
            _INBOX + "/threads/{thread_id}/messages/{message_id}/original-content",
            "oauth",
            _INBOX_READ,
            _INBOX_DOC,
        ),
        _c(
            "thread_message_create",
            "POST",
            _INBOX + "/threads/{thread_id}/messages",
            "oauth",
            _INBOX_WRITE,
            _INBOX_DOC,
        ),
        _c("actor_get", "GET", _INBOX + "/actors/{actor_id}", "oauth", _INBOX_READ, _INBOX_DOC),
        # -- OAuth: client id and secret in a form, no token
        _c(
            "oauth_token",
            "POST",
            f"/oauth/{OAUTH_VERSION}/token",
            "client",
            (),
            f"{_OAUTH_DOC}; {_SDK}auth/oauth.py (create_token)",
        ),
        _c(
            "oauth_token_info",
            "POST",
            f"/oauth/{OAUTH_VERSION}/token/introspect",
            "client",
            (),
            f"{_OAUTH_DOC}; {_SDK}auth/oauth.py (introspect_token)",
        ),
    )
}


def path(name: str, /, **values: object) -> str:
    """The path of call `name` with its placeholders filled in.

    Each value is percent-encoded as one path segment ("a/b" cannot escape its segment;
    "@" stays, as HubSpot's own clients leave it in contact emails). Raises KeyError for an
    unknown call or a missing placeholder.
    """
    quoted = {k: urllib.parse.quote(str(v), safe="@") for k, v in values.items()}
    return CALLS[name].template.format(**quoted)


def required_scopes() -> frozenset[str]:
    """Every scope some OAuth call of the table needs: the app's `requiredScopes`."""
    return frozenset(s for c in CALLS.values() if c.credential == "oauth" for s in c.scopes)


__all__ = ["CALLS", "Call", "path", "required_scopes"]
