"""The sandbox's world: one portal, its app, CRM records, inbox threads and channels.

Everything HubSpot would keep lives in one JSON-able dict (``SandboxState.data``) so that it can
be written to SQLite as whole documents after each change and read back on start: tickets
survive a restart without a schema to migrate. Runtime-only things (the request log, faults,
rate-limit windows, webhook deliveries) live beside it and are never persisted.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

LOG_LIMIT = 10_000
ALL_SCOPES = [
    "oauth",
    "tickets",
    "crm.objects.contacts.read",
    "crm.objects.contacts.write",
    "crm.objects.companies.read",
    "crm.objects.companies.write",
    "crm.objects.deals.read",
    "crm.objects.deals.write",
    "crm.objects.owners.read",
    "crm.schemas.contacts.read",
    "crm.schemas.contacts.write",
    "conversations.read",
    "conversations.write",
    "conversations.custom_channels.read",
    "conversations.custom_channels.write",
    "files",
]

# Fixed demo credentials: printed on start and documented, so a person can paste them.
DEMO = {
    "portal_id": 9900001,
    "app_id": 5500001,
    "client_id": "sandbox-client-id",
    "client_secret": "sandbox-client-secret",
    "developer_api_key": "sandbox-developer-hapikey",
    "static_token": "pat-na1-sandbox-static-token",
    "redirect_uri": "http://localhost/oauth-callback",
}


@dataclass
class SandboxOptions:
    """Every knob of the sandbox, with defaults that match HubSpot's Free/Starter tier."""

    burst_limit: int = 100
    burst_interval_ms: int = 10_000
    search_per_second: int = 5
    daily_limit: int = 250_000
    token_ttl: int = 1800
    webhook_target_url: str | None = None
    webhook_retry_scale: float = 1.0
    webhook_timeout: float = 5.0
    webhook_batch_delay: float = 0.2
    truncate_at: int = 20_000
    hang_seconds: float = 600.0
    public_url: str | None = None
    files_max_bytes: int = 2 * 1024**3  # see files.MAX_FILE_BYTES
    faults: list[dict[str, Any]] = field(default_factory=list)
    # when set, /_sandbox/ (admin and rep console APIs) needs `Authorization: Bearer <it>`
    admin_token: str = ""


def now_ms() -> int:
    return int(time.time() * 1000)


def iso(ms: int | None = None) -> str:
    """HubSpot's timestamps: ISO-8601 UTC with milliseconds and a Z."""
    ms = now_ms() if ms is None else ms
    dt = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def _stage(sid: str, label: str, order: int, metadata: dict[str, Any], ts: str) -> dict[str, Any]:
    return {
        "id": sid,
        "label": label,
        "displayOrder": order,
        "metadata": metadata,
        "createdAt": ts,
        "updatedAt": ts,
        "archived": False,
        "writePermissions": "CRM_PERMISSIONS_ENFORCEMENT",
    }


def provision() -> dict[str, Any]:
    """A fresh portal. Ids are deliberately not HubSpot's defaults ("0", "1") to catch code
    that hard-codes them instead of looking them up."""
    ts = iso()
    owners = [
        {
            "id": "201",
            "email": "alice.agent@sandbox.test",
            "firstName": "Alice",
            "lastName": "Agent",
            "userId": 301,
        },
        {
            "id": "202",
            "email": "bob.backup@sandbox.test",
            "firstName": "Bob",
            "lastName": "Backup",
            "userId": 302,
        },
    ]
    for owner in owners:
        owner.update(type="PERSON", createdAt=ts, updatedAt=ts, archived=False, teams=[])
    ticket_stages = [
        _stage("7101", "New", 0, {"ticketState": "OPEN"}, ts),
        _stage("7102", "Waiting on contact", 1, {"ticketState": "OPEN"}, ts),
        _stage("7103", "Waiting on us", 2, {"ticketState": "OPEN"}, ts),
        _stage("7104", "Closed", 3, {"ticketState": "CLOSED"}, ts),
    ]
    deal_stages = [
        _stage("8101", "Appointment scheduled", 0, {"isClosed": "false", "probability": "0.2"}, ts),
        _stage("8102", "Closed won", 1, {"isClosed": "true", "probability": "1.0"}, ts),
    ]
    pipeline = {"createdAt": ts, "updatedAt": ts, "archived": False}
    return {
        "portal": {"portalId": DEMO["portal_id"], "domain": "sandbox.hubspot.test"},
        "app": {
            "appId": DEMO["app_id"],
            "clientId": DEMO["client_id"],
            "clientSecret": DEMO["client_secret"],
            "developerApiKey": DEMO["developer_api_key"],
            "scopes": list(ALL_SCOPES),
        },
        "tokens": {
            DEMO["static_token"]: {"kind": "static", "scopes": list(ALL_SCOPES), "expiresAt": None}
        },
        "refresh_tokens": {},
        "auth_codes": {},
        "counters": {"object": 1000, "thread": 5000, "channel": 300, "account": 400, "file": 600},
        "objects": {t: {} for t in ("contacts", "companies", "deals", "tickets", "notes")},
        "properties": {t: {} for t in ("contacts", "companies", "deals", "tickets", "notes")},
        "associations": [],
        "pipelines": {
            "tickets": [
                {
                    "id": "7001",
                    "label": "Support Pipeline",
                    "displayOrder": 0,
                    "stages": ticket_stages,
                    **pipeline,
                }
            ],
            "deals": [
                {
                    "id": "8001",
                    "label": "Sales Pipeline",
                    "displayOrder": 0,
                    "stages": deal_stages,
                    **pipeline,
                }
            ],
        },
        "owners": owners,
        "inboxes": [
            {
                "id": "147",
                "name": "Support Inbox",
                "type": "HELP_DESK",
                "createdAt": ts,
                "updatedAt": ts,
                "archived": False,
            }
        ],
        "threads": {},
        "messages": {},
        "channels": {},
        "channel_accounts": {},
        "integration_threads": {},
        "idempotency": {},
        "files": {},
        "webhook_target_url": None,
    }


class DocumentStore:
    """Whole-state persistence: one row per top-level key, holding its JSON.

    Simple on purpose: the sandbox holds at most thousands of records, and rewriting a few
    documents after a change is cheaper than any schema to keep in step with HubSpot's shapes.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.conn = sqlite3.connect(str(path))
        self.conn.execute(
            "CREATE TABLE IF NOT EXISTS documents (name TEXT PRIMARY KEY, body TEXT NOT NULL)"
        )
        self.conn.commit()

    def load(self) -> dict[str, Any] | None:
        rows = self.conn.execute("SELECT name, body FROM documents").fetchall()
        if not rows:
            return None
        return {name: json.loads(body) for name, body in rows}

    def save(self, data: dict[str, Any]) -> None:
        with self.conn:
            self.conn.executemany(
                "INSERT OR REPLACE INTO documents (name, body) VALUES (?, ?)",
                [(name, json.dumps(value)) for name, value in data.items()],
            )

    def close(self) -> None:
        self.conn.close()


class SandboxState:
    """The data plus the runtime logs; the one object every handler works on."""

    def __init__(self, options: SandboxOptions, db_path: Path | None = None) -> None:
        self.options = options
        self.store = DocumentStore(db_path) if db_path else None
        loaded = self.store.load() if self.store else None
        self.data: dict[str, Any] = provision()
        if loaded:
            self.data.update(loaded)
        if options.webhook_target_url:
            self.data["webhook_target_url"] = options.webhook_target_url
        # Bounded so a sandbox left running for days does not grow without end.
        self.requests: deque[dict[str, Any]] = deque(maxlen=LOG_LIMIT)
        self.deliveries: deque[dict[str, Any]] = deque(maxlen=LOG_LIMIT)
        self._dirty = False

    def reset(self) -> None:
        """Back to a freshly provisioned portal (the admin API's reset)."""
        target = self.data.get("webhook_target_url")
        self.data = provision()
        self.data["webhook_target_url"] = target
        self.requests.clear()
        self.deliveries.clear()
        self.mark_dirty()

    def next_id(self, counter: str) -> str:
        self.data["counters"][counter] += 1
        self.mark_dirty()
        return str(self.data["counters"][counter])

    def mark_dirty(self) -> None:
        self._dirty = True

    def flush(self) -> None:
        """Write the state if something changed; called after each request."""
        if self.store and self._dirty:
            self.store.save(self.data)
        self._dirty = False

    def close(self) -> None:
        self.flush()
        if self.store:
            self.store.close()

    def info(self, base_url: str) -> dict[str, Any]:
        """What a person or a test needs to talk to this portal."""
        app = self.data["app"]
        return {
            "baseUrl": base_url,
            "consoleUrl": f"{base_url}/console/",
            "portalId": self.data["portal"]["portalId"],
            "appId": app["appId"],
            "clientId": app["clientId"],
            "clientSecret": app["clientSecret"],
            "developerApiKey": app["developerApiKey"],
            "staticToken": DEMO["static_token"],
            "redirectUri": DEMO["redirect_uri"],
            "scopes": app["scopes"],
            "inboxes": [{"id": i["id"], "name": i["name"]} for i in self.data["inboxes"]],
            "ticketPipelines": [
                {
                    "id": p["id"],
                    "label": p["label"],
                    "stages": [
                        {
                            "id": s["id"],
                            "label": s["label"],
                            "ticketState": s["metadata"]["ticketState"],
                        }
                        for s in p["stages"]
                    ],
                }
                for p in self.data["pipelines"]["tickets"]
            ],
            "owners": [
                {"id": o["id"], "email": o["email"], "userId": o["userId"]}
                for o in self.data["owners"]
            ],
            "webhookTargetUrl": self.data.get("webhook_target_url"),
        }
