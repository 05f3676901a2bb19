"""Settings: one frozen object built once from TOML (and the environment) and passed down.

Every key is declared once, with its default and help text, in the section dataclasses below.
That single table drives loading, validation messages, `config show` and the test that fails
when config.example.toml leaves a key undocumented. A bad file is reported whole: one line per
problem, naming the file, the key, the value found and what was expected, so an admin fixes
everything in one edit instead of one restart per typo.
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
import ipaddress
import json
import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway.addresses import address_key, checked_email
from gateway.errors import ConfigError

DEFAULT_CONFIG_PATH = "/etc/mail-gateway/config.toml"
# Where scripts/install.sh puts the secrets the unit hands over with LoadCredential=
CREDENTIALS_FOLDER = "credentials"  # beside the config file
CREDENTIALS_DIR = "/etc/mail-gateway/" + CREDENTIALS_FOLDER
DEFAULT_STATE_DIR = "/var/lib/mail-gateway"
CONFIG_ENV = "MAIL_GATEWAY_CONFIG"


@dataclass(frozen=True)
class Listen:
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


def listener_url(listen: Listen) -> str:
    """`http://HOST:PORT` for a listener, as a client on this machine reaches it: a wildcard
    host (0.0.0.0, ::, empty) becomes the loopback address, an IPv6 literal gets its brackets
    (RFC 3986 section 3.2.2)."""
    host = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(listen.host, listen.host)
    return f"http://[{host}]:{listen.port}" if ":" in host else f"http://{host}:{listen.port}"


# the listeners' help: port 0 is for tests and benches, which then need not guess a free port
PORT_ZERO = " Port 0: the kernel picks a free one (logged and sent in the READY status)."


class Secret(str):
    """A string that never shows itself in repr, logs or `config show`."""

    def __repr__(self) -> str:
        return "Secret('***')" if self else "Secret('')"


def _key(help_text: str, default: Any = dataclasses.MISSING, kind: str = "", **extra: Any):
    """Declare a setting: its help text and, through `kind`, how a raw TOML value is checked."""
    meta = {"help": help_text, "kind": kind, **extra}
    if isinstance(default, list):
        return field(default_factory=functools.partial(list, default), metadata=meta)
    if isinstance(default, dict):
        return field(default_factory=functools.partial(dict, default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class GatewaySettings:
    state_dir: Path = _key(
        "Folder for the SQLite store and generated state; relative to the config file.",
        Path("/var/lib/mail-gateway"),
        "path",
    )
    hostname: str = _key(
        "Domain used in the gateway's own Message-IDs and in the SMTP greeting.",
        "localhost",
        "hostname",
    )
    secret: Secret = _key(
        "Key for the HMAC in our Message-IDs and reply tokens. Prefer secret_file or "
        "$MAIL_GATEWAY_SECRET; when none is set one is generated in state_dir.",
        Secret(""),
        "secret",
        env="MAIL_GATEWAY_SECRET",
    )
    log_level: str = _key(
        "debug, info, warning or error.",
        "info",
        "choice",
        choices=("debug", "info", "warning", "error"),
    )
    log_format: str = _key("text or json.", "text", "choice", choices=("text", "json"))
    stop_timeout: float = _key(
        "Seconds a stop (SIGTERM) waits for SMTP sessions in DATA and running jobs to finish; "
        "keep it below systemd's TimeoutStopSec.",
        30.0,
        "float",
        min=0.0,
    )


@dataclass(frozen=True)
class SmtpSettings:
    listen: Listen = _key(
        "Address and port of the SMTP listener." + PORT_ZERO, Listen("127.0.0.1", 2525), "listen"
    )
    addresses: list[str] = _key(
        "Support addresses accepted as recipients (exact, case-insensitive).", [], "addresses"
    )
    domains: list[str] = _key(
        "Domains whose every address is accepted (support+token@ included).", [], "domains"
    )
    max_message_size: int = _key(
        "Largest message in bytes (announced as SIZE; larger gets 552 5.3.4).",
        25 * 1024 * 1024,
        "int",
        min=1024,
    )
    max_header_bytes: int = _key(
        "Largest header block in bytes; a larger one gets 552 5.3.4 (Postfix's default).",
        102400,
        "int",
        min=1024,
    )
    max_recipients: int = _key("Recipients per message; more get 452 4.5.3.", 50, "int", min=1)
    max_sessions: int = _key(
        "Concurrent SMTP sessions; more get 421 4.7.0 and may retry.", 200, "int", min=1
    )
    idle_timeout: int = _key(
        "Seconds a client may stay silent between commands (inside DATA, min_data_rate rules).",
        300,
        "int",
        min=1,
    )
    # hostile senders (README "Hostile senders and peers"); Postfix's names in brackets
    client_connection_limit: int = _key(
        "Sessions one client (IPv4 address, IPv6 /64) may hold at once; more get 421 4.7.0; "
        "0 = no limit [smtpd_client_connection_count_limit].",
        50,
        "int",
        min=0,
    )
    client_connection_rate: int = _key(
        "Connections one client may open per minute; more get 421 4.7.0; 0 = no limit "
        "[smtpd_client_connection_rate_limit].",
        300,
        "int",
        min=0,
    )
    relay_networks: list[str] = _key(
        "Networks (CIDR) of the MTAs in front of the gateway, exempt from the per-client "
        "limits (relaying is refused to everyone all the same).",
        ["127.0.0.1/32", "::1/128"],
        "networks",
    )
    min_data_rate: int = _key(
        "Inside DATA, bytes per second a client must keep up: each read adds bytes/rate "
        "seconds to the DATA deadline; past it 421 4.4.2 [smtpd_min_data_rate].",
        500,
        "int",
        min=1,
    )
    data_timeout: int = _key(
        "Seconds the DATA deadline can hold at most (the longest pause inside DATA) "
        "[smtpd_timeout].",
        300,
        "int",
        min=1,
    )
    data_memory_budget: int = _key(
        "Bytes all unfinished DATA may hold together; past it DATA gets 452 4.3.1. "
        "0 = a quarter of MemAvailable at start, at most 1 GiB.",
        0,
        "int",
        min=0,
    )
    tls_cert: Path | None = _key("PEM certificate chain for STARTTLS (optional).", None, "path")
    tls_key: Path | None = _key("PEM private key for STARTTLS (optional).", None, "path")
    require_tls: bool = _key("Refuse MAIL before STARTTLS (needs tls_cert).", False, "bool")


@dataclass(frozen=True)
class HttpSettings:
    listen: Listen = _key(
        "Address and port of the HTTP listener (webhooks, health)." + PORT_ZERO,
        Listen("127.0.0.1", 8025),
        "listen",
    )
    public_url: str = _key(
        "The https URL HubSpot calls (webhooks, OAuth redirect); webhook signatures are checked "
        "against it. Unset: http://HOST:PORT of http.listen, and with port 0 the port the daemon "
        "bound.",
        "",
        "url",
    )


@dataclass(frozen=True)
class AdminSettings:
    listen: Listen = _key(
        "Address and port of the admin HTTP listener: /status, /metrics, /readyz (and /healthz). "
        "Keep it private: loopback by default; any other address needs admin.token." + PORT_ZERO,
        Listen("127.0.0.1", 8027),
        "listen",
    )
    token: Secret = _key(
        "Bearer token the admin listener then requires (Authorization: Bearer TOKEN). Prefer "
        "token_file or $MAIL_GATEWAY_ADMIN_TOKEN.",
        Secret(""),
        "secret",
        env="MAIL_GATEWAY_ADMIN_TOKEN",
    )


@dataclass(frozen=True)
class SandboxSettings:
    allow_public: bool = _key(
        "The built-in sandbox (mode = sandbox) may listen on a non-loopback "
        "hubspot.sandbox_listen on purpose; its demo secrets are public, so its admin and rep "
        "console APIs then need sandbox.admin_token.",
        False,
        "bool",
    )
    admin_token: Secret = _key(
        "Token the sandbox's admin (/_sandbox/) and rep console APIs require when set "
        "(Authorization: Bearer TOKEN; the console asks for it once). Needed with allow_public. "
        "Prefer admin_token_file or $MAIL_GATEWAY_SANDBOX_TOKEN.",
        Secret(""),
        "secret",
        env="MAIL_GATEWAY_SANDBOX_TOKEN",
    )


@dataclass(frozen=True)
class HubspotSettings:
    mode: str = _key(
        "sandbox (the built-in local HubSpot) or live.",
        "sandbox",
        "choice",
        choices=("sandbox", "live"),
    )
    sandbox_listen: Listen = _key(
        "Where the built-in sandbox listens when mode = sandbox." + PORT_ZERO,
        Listen("127.0.0.1", 8026),
        "listen",
    )
    sandbox_db: Path | None = _key(
        "SQLite file for the sandbox's state (tickets survive restarts); empty = in memory.",
        None,
        "path",
    )
    base_url: str = _key("HubSpot API base URL for mode = live.", "https://api.hubapi.com", "url")
    access_token: Secret = _key(
        "Private-app or static access token; prefer access_token_file or $HUBSPOT_ACCESS_TOKEN.",
        Secret(""),
        "secret",
        env="HUBSPOT_ACCESS_TOKEN",
    )
    app_id: str = _key("Your HubSpot app's id (custom channels belong to an app).", "", "str")
    client_id: str = _key("The app's OAuth client id (`mail-gateway hubspot connect`).", "", "str")
    client_secret: Secret = _key(
        "The app's client secret: OAuth and webhook signatures. Prefer client_secret_file or "
        "$HUBSPOT_CLIENT_SECRET.",
        Secret(""),
        "secret",
        env="HUBSPOT_CLIENT_SECRET",
    )
    developer_api_key: Secret = _key(
        "Developer API key, used only to register the custom channel; prefer "
        "developer_api_key_file or $HUBSPOT_DEVELOPER_API_KEY.",
        Secret(""),
        "secret",
        env="HUBSPOT_DEVELOPER_API_KEY",
    )
    inbox: str = _key(
        "Inbox (id or name) that receives the email threads; empty = first.", "", "str"
    )
    pipeline: str = _key("Ticket pipeline (id or label); empty = the first one.", "", "str")
    stage: str = _key("Stage for new tickets (id or label); empty = first open stage.", "", "str")
    owner: str = _key("Default ticket owner (owner id or email); empty = none.", "", "str")
    priority: str = _key(
        "Priority of new tickets.",
        "MEDIUM",
        "choice",
        choices=("LOW", "MEDIUM", "HIGH", "URGENT"),
    )
    ticket_properties: dict = _key(
        "Static properties set on every new ticket (a table of name = value).", {}, "table"
    )
    conversation_property: str = _key(
        "Unique ticket property holding the gateway's conversation id (no duplicate tickets).",
        "mail_gateway_conversation_id",
        "str",
    )
    closed_ticket: str = _key(
        "A customer mail on a closed ticket: reopen it, or open a new ticket.",
        "reopen",
        "choice",
        choices=("reopen", "new_ticket"),
    )
    channel_name: str = _key("Name of the custom channel in HubSpot.", "Support email", "str")
    burst_limit: int = _key(
        "Requests per 10 s the app may make (HubSpot: 100 Free/Starter, 190 Pro/Enterprise).",
        100,
        "int",
        min=1,
    )
    timeout: int = _key("Seconds before a HubSpot call counts as failed.", 15, "int", min=1)
    replies: str = _key(
        "How reps' replies reach the gateway: webhook (needs http.public_url reachable by "
        "HubSpot), poll, or both.",
        "webhook",
        "choice",
        choices=("webhook", "poll", "both"),
    )
    poll_interval: float = _key(
        "Seconds between polls of handed-off threads (replies = poll or both).",
        30.0,
        "float",
        min=0.1,
    )


@dataclass(frozen=True)
class WorkerSettings:
    concurrency: int = _key(
        "Jobs of one kind run at once: each kind has its own slots (HubSpot's kinds fewer, "
        "process_mail 4 times as many), so no kind waits for another.",
        4,
        "int",
        min=1,
    )
    lease_seconds: int = _key(
        "A claimed job not finished within this time is taken up again (crash recovery).",
        300,
        "int",
        min=5,
    )
    max_attempts: int = _key(
        "Tries before a job becomes a dead letter (`mail-gateway retry` runs it again).",
        12,
        "int",
        min=1,
    )
    parse_processes: int = _key(
        "Processes that parse mail beside the daemon (its regexes hold Python's GIL; in a "
        "process they cannot slow SMTP answers); -1 = one per CPU core, 0 = in a thread.",
        -1,
        "int",
        min=-1,
    )
    retry_base_seconds: float = _key(
        "First retry delay; it doubles per try up to an hour (with 20% jitter).",
        5.0,
        "float",
        min=0.01,
    )


# --- OAuth 2.0 for mailboxes (SASL XOAUTH2): the keys [[imap]] accounts and [relay] share -----
OAUTH_PROVIDERS = ("microsoft", "google", "generic")
# provider -> its flows, the first being the default (README "Microsoft 365 and Google Workspace")
OAUTH_FLOWS = {
    "microsoft": ("client_credentials", "device_code"),
    "google": ("service_account", "refresh_token"),
    "generic": ("client_credentials", "refresh_token"),
}


@dataclass(frozen=True)
class OAuthKeys:
    """How a mailbox login is authenticated: a password, or an OAuth 2.0 access token sent
    with SASL XOAUTH2 (the flows and their keys: gateway/mailauth/providers.py)."""

    auth: str = _key(
        "password, or oauth2 (SASL XOAUTH2 with a token from `provider`).",
        "password",
        "choice",
        choices=("password", "oauth2"),
    )
    provider: str = _key(
        "auth = oauth2: microsoft (MSAL), google (google-auth) or generic (a token endpoint).",
        "",
        "choice",
        choices=("", *OAUTH_PROVIDERS),
    )
    flow: str = _key(
        "auth = oauth2: microsoft client_credentials | device_code (`mail-gateway mailbox "
        "connect`); google service_account | refresh_token; generic client_credentials | "
        "refresh_token. Empty = the first of the provider's.",
        "",
        "choice",
        choices=("", "client_credentials", "device_code", "service_account", "refresh_token"),
    )
    tenant: str = _key("microsoft: the directory (tenant) id or its domain.", "", "str")
    client_id: str = _key("OAuth client (application) id.", "", "str")
    client_secret: Secret = _key(
        "OAuth client secret; prefer client_secret_file or client_secret_env.", Secret(""), "secret"
    )
    client_secret_env: str = _key(
        "Name of an environment variable holding the client secret.", "", "str"
    )
    refresh_token: Secret = _key(
        "flow = refresh_token: the long-lived refresh token; prefer refresh_token_file.",
        Secret(""),
        "secret",
    )
    service_account_key: Secret = _key(
        "google service_account: the JSON key; use service_account_key_file.", Secret(""), "secret"
    )
    authority: str = _key(
        "microsoft: the authority host; empty = https://login.microsoftonline.com.", "", "url"
    )
    token_url: str = _key(
        "generic: the token endpoint (required); google: overrides the key's token_uri.", "", "url"
    )
    scope: str = _key(
        "Space-separated scopes; empty = the provider's for IMAP and SMTP (README).", "", "str"
    )

    @property
    def oauth_flow(self) -> str:
        """The flow in force: the configured one, or the provider's default."""
        return self.flow or OAUTH_FLOWS.get(self.provider, ("",))[0]


@dataclass(frozen=True)
class RelayKeys:
    mode: str = _key(
        "smtp (send through the relay below) or capture (keep outgoing mail as .eml files in "
        "capture_dir; `mail-gateway outbox list` shows them).",
        "smtp",
        "choice",
        choices=("smtp", "capture"),
    )
    host: str = _key("Relay host (your MTA or the provider's submission server).", "localhost")
    port: int = _key("Relay port: 25, 587 (STARTTLS) or 465 (implicit TLS).", 25, "int", min=1)
    tls: str = _key(
        "starttls (required), implicit (TLS from the first byte, port 465) or none.",
        "starttls",
        "choice",
        choices=("starttls", "implicit", "none"),
    )
    username: str = _key("AUTH user name; empty = no AUTH.", "")
    password: Secret = _key(
        "AUTH password; prefer password_file or $RELAY_PASSWORD.",
        Secret(""),
        "secret",
        env="RELAY_PASSWORD",
    )
    timeout: int = _key("Seconds allowed for each step of an SMTP conversation.", 60, "int", min=1)
    from_name: str = _key(
        "Display name on the From of replies (the address is the support address the "
        "customer wrote to); empty = the address alone.",
        "",
    )
    capture_dir: Path | None = _key(
        "Folder for mode = capture; empty = state_dir/outbox.", None, "path"
    )
    max_age_hours: int = _key(
        "Temporary failures (4xx, refused, timeouts) are retried on a growing schedule for "
        "this many hours, then the reply is reported FAILED.",
        48,
        "int",
        min=1,
    )
    dkim_selector: str = _key(
        "DKIM selector (the DNS name is SELECTOR._domainkey.DOMAIN); empty = no DKIM signing.",
        "",
        "str",
    )
    dkim_domain: str = _key("Domain (d=) of the DKIM signature, e.g. example.com.", "", "str")
    dkim_key: Secret = _key(
        "PEM private key for DKIM; use dkim_key_file (a systemd credential) or $DKIM_KEY.",
        Secret(""),
        "secret",
        env="DKIM_KEY",
    )


@dataclass(frozen=True)
class RelaySettings(OAuthKeys, RelayKeys):
    """[relay]: its own keys, then how it logs in (OAuthKeys; fields of the last base first)."""


@dataclass(frozen=True)
class SignatureSettings:
    default: str = _key("Signature (plain text) when no domain pattern matches.", "")
    default_html: str = _key(
        "HTML form of the default signature; empty = derived from the text.", ""
    )
    domains: dict[str, str] = _key(
        'Table [signatures.domains]: sender domain or "*.domain" pattern -> text signature. '
        "The sender is the rep (or the assistant's address); an exact domain beats a "
        "wildcard, which beats the default.",
        {},
        "signatures",
    )
    html: dict[str, str] = _key(
        "Table [signatures.html]: the same patterns -> HTML signature (sanitised); "
        "a pattern without one gets HTML derived from its text.",
        {},
        "signatures",
    )


_HUMAN_PHRASES = [
    # English
    "talk to a human",
    "speak to a human",
    "talk to a person",
    "speak to a person",
    "real person",
    "a human",
    "human being",
    "talk to someone",
    "speak to someone",
    "customer service representative",
    "an agent",
    "a real agent",
    "call me",
    # German
    "mit einem menschen",
    "mit einer person",
    "echten menschen",
    "mitarbeiter sprechen",
    "mitarbeiterin sprechen",
    "einen menschen",
    "rufen sie mich an",
    # French
    "un humain",
    "une personne",
    "un conseiller",
    "une conseillère",
    "un être humain",
    "parler à quelqu'un",
    "rappelez-moi",
    # Spanish
    "un humano",
    "una persona",
    "un agente",
    "hablar con alguien",
    "llámenme",
]

_ESCALATE_KEYWORDS = [
    "refund",
    "cancel",
    "chargeback",
    "legal",
    "lawyer",
    "attorney",
    "complaint",
    "lawsuit",
    "gdpr",
    "fraud",
    "erstattung",
    "rückerstattung",
    "kündigen",
    "anwalt",
    "beschwerde",
    "remboursement",
    "annuler",
    "avocat",
    "plainte",
    "reembolso",
    "cancelar",
    "abogado",
    "queja",
]


@dataclass(frozen=True)
class AssistantSettings:
    backend: str = _key(
        "off (every conversation goes to a person), knowledge (Markdown articles) or openai "
        "(an OpenAI-compatible chat-completions endpoint).",
        "off",
        "choice",
        choices=("off", "knowledge", "openai"),
    )
    knowledge_dir: Path | None = _key(
        "Folder of Markdown articles the assistant answers from (knowledge backend; also "
        "context for openai).",
        None,
        "path",
    )
    confidence: float = _key(
        "Share (0-1) of the question's informative words the best article section must "
        "cover before the knowledge backend answers; below it the mail goes to a person.",
        0.6,
        "float",
        min=0.0,
    )
    debounce: float = _key(
        "Seconds without a new customer mail before the assistant acts (one answer per burst).",
        30.0,
        "float",
        min=0.0,
    )
    human_phrases: list[str] = _key(
        "Phrases (any language, case-insensitive) by which a customer asks for a person.",
        _HUMAN_PHRASES,
        "strings",
    )
    escalate_keywords: list[str] = _key(
        "Words that always go to a person (matched at word start: cancel matches cancellation).",
        _ESCALATE_KEYWORDS,
        "strings",
    )
    negative_sentiment: float = _key(
        "Escalate when a customer mail's sentiment (VADER compound, -1..1) is at or below this.",
        -0.4,
        "float",
        min=-1.0,
    )
    max_replies: int = _key(
        "Automatic replies per conversation; the next question goes to a person.", 3, "int", min=0
    )
    escalate_attachments: bool = _key(
        "Hand every mail with an attachment to a person.", False, "bool"
    )
    rate_limit: int = _key(
        "Automatic replies per sender within rate_window (FreeScout: 10 per 3 hours).",
        10,
        "int",
        min=0,
    )
    rate_window: int = _key("Seconds of the per-sender rate limit window.", 10800, "int", min=1)
    base_url: str = _key(
        "openai backend: base URL of the chat-completions API (ends before /chat/completions).",
        "https://api.openai.com/v1",
        "url",
    )
    model: str = _key("openai backend: model name.", "gpt-4o-mini", "")
    api_key: Secret = _key(
        "openai backend: API key; prefer api_key_file or $OPENAI_API_KEY.",
        Secret(""),
        "secret",
        env="OPENAI_API_KEY",
    )
    timeout: float = _key(
        "openai backend: seconds for one answer; a slower answer goes to a person.",
        20.0,
        "float",
        min=0.1,
    )


@dataclass(frozen=True)
class ImapKeys:
    """One [[imap]] table: a mailbox the gateway polls for the support address it stands for."""

    host: str = _key("IMAP server name or address (required).", "", "hostname")
    port: int = _key("IMAP port; 0 = 993 for tls = implicit, else 143.", 0, "int", min=0)
    tls: str = _key(
        "implicit (IMAPS), starttls, or none (loopback hosts only); never a silent fallback.",
        "implicit",
        "choice",
        choices=("implicit", "starttls", "none"),
    )
    ca_file: Path | None = _key(
        "PEM file of CAs to trust instead of the system's (a private CA).", None, "path"
    )
    user: str = _key("Login name (required).", "", "str")
    password: Secret = _key(
        "Login password; prefer password_file or password_env.", Secret(""), "secret"
    )
    password_env: str = _key("Name of an environment variable holding the password.", "", "str")
    folders: list[str] = _key("Folders to read.", ["INBOX"], "strings")
    after: str = _key(
        "What to do with a mail once it is stored: seen (flag it \\Seen), move (to move_to) "
        "or delete.",
        "seen",
        "choice",
        choices=("seen", "move", "delete"),
    )
    move_to: str = _key("Folder for after = move (created if missing).", "", "str")
    mailbox: str = _key(
        "The support address this mailbox stands for (in smtp.addresses or smtp.domains).",
        "",
        "str",
    )
    poll_interval: int = _key(
        "Seconds between polls when the server has no IDLE (or idle = false).", 60, "int", min=1
    )
    idle: bool = _key("Use IMAP IDLE when the server offers it.", True, "bool")
    idle_renew: int = _key(
        "Seconds before IDLE is re-issued (servers drop it after 30 minutes).", 1500, "int", min=1
    )
    since: datetime.date | None = _key(
        "First sync only reads mails newer than this date (YYYY-MM-DD); later syncs read all.",
        None,
        "date",
    )
    timeout: int = _key("Seconds any one IMAP command may take.", 60, "int", min=1)

    @property
    def key(self) -> str:
        """How the store knows this account: the same login on the same server."""
        return f"{self.user}@{self.host}:{self.real_port}"

    @property
    def real_port(self) -> int:
        return self.port or (993 if self.tls == "implicit" else 143)


@dataclass(frozen=True)
class ImapAccount(OAuthKeys, ImapKeys):
    """One [[imap]] table: the mailbox's keys, then how it logs in (OAuthKeys)."""


@dataclass(frozen=True)
class SenderSettings:
    """Who takes part in a conversation (issue 16 item 1); whom a form mail is from (14.3)."""

    trusted_domains: list[str] = _key(
        "Sender domains never treated as outside senders (a company's own domain): their mail "
        "on a conversation's thread counts as a participant's.",
        [],
        "domains",
    )
    form_senders: list[str] = _key(
        "Web forms and noreply mailers (addresses, or domains as @shop.example) whose mail "
        "belongs to its single Reply-To address; the usual signs (noreply-like local parts, "
        "form-mailer X-Mailer) are recognised without listing.",
        [],
        "senders",
    )


@dataclass(frozen=True)
class Settings:
    gateway: GatewaySettings
    smtp: SmtpSettings
    http: HttpSettings
    hubspot: HubspotSettings
    worker: WorkerSettings
    relay: RelaySettings = field(default_factory=RelaySettings)
    signatures: SignatureSettings = field(default_factory=SignatureSettings)
    assistant: AssistantSettings = field(default_factory=AssistantSettings)
    senders: SenderSettings = field(default_factory=SenderSettings)
    imap: tuple[ImapAccount, ...] = ()
    source: Path | None = None
    admin: AdminSettings = field(default_factory=AdminSettings)
    sandbox: SandboxSettings = field(default_factory=SandboxSettings)

    @property
    def db_path(self) -> Path:
        return self.gateway.state_dir / "gateway.db"

    @property
    def lock_path(self) -> Path:
        """Held (flock) by the running daemon, with its pid inside: one daemon per state_dir."""
        return self.gateway.state_dir / "gateway.lock"


SECTIONS: dict[str, type] = {
    "gateway": GatewaySettings,
    "smtp": SmtpSettings,
    "http": HttpSettings,
    "hubspot": HubspotSettings,
    "worker": WorkerSettings,
    "relay": RelaySettings,
    "signatures": SignatureSettings,
    "assistant": AssistantSettings,
    "senders": SenderSettings,
    "admin": AdminSettings,
    "sandbox": SandboxSettings,
}
# Sections that are arrays of tables ([[imap]]): each table is built like a section.
ARRAYS: dict[str, type] = {"imap": ImapAccount}


def settings_table() -> list[tuple[str, Any, str]]:
    """Every setting as (section.key, default, help): for docs, `config show` and tests."""
    rows = []
    for name, cls in (SECTIONS | ARRAYS).items():
        for f in dataclasses.fields(cls):
            if f.default_factory is not dataclasses.MISSING:
                default = f.default_factory()
            else:
                default = f.default
            rows.append((f"{name}.{f.name}", default, f.metadata["help"]))
    return rows


# --- value checks: each returns the converted value or raises ValueError(expected) ---------


class _BadItem(ValueError):
    """One item of a list is wrong: the message shows that item, not the whole list."""

    def __init__(self, item: Any, expected: str):
        super().__init__(expected)
        self.item = item


def _check_listen(v: Any) -> Listen:
    if not isinstance(v, str) or ":" not in v:
        raise ValueError('expected "HOST:PORT"')
    host, _, port = v.rpartition(":")
    host = host.strip("[]")
    if not host:
        raise ValueError('expected "HOST:PORT" with a host')
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError("is not a valid port (0-65535)")
    return Listen(host, int(port))


def _check_int(v: Any, min: int | None = None, **_: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise ValueError("expected a whole number")
    if min is not None and v < min:
        raise ValueError(f"must be at least {min}")
    return v


def _check_strings(v: Any, **_: Any) -> list[str]:
    if not isinstance(v, list) or not all(isinstance(x, str) and x.strip() for x in v):
        raise ValueError("expected a list of non-empty strings")
    return [x.strip() for x in v]


def _check_networks(v: Any, **_: Any) -> list[str]:
    nets = _check_strings(v)
    for net in nets:
        try:
            ipaddress.ip_network(net, strict=False)
        except ValueError:
            raise ValueError(f'"{net}" is not a network such as "192.0.2.0/24"') from None
    return nets


def _check_float(v: Any, min: float | None = None, **_: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise ValueError("expected a number")
    if min is not None and v < min:
        raise ValueError(f"must be at least {min}")
    return float(v)


def _check_bool(v: Any, **_: Any) -> bool:
    if not isinstance(v, bool):
        raise ValueError("expected true or false")
    return v


def _check_choice(v: Any, choices: tuple[str, ...] = (), **_: Any) -> str:
    if v not in choices:
        raise ValueError("expected one of " + ", ".join(c for c in choices if c))
    return v


def _check_hostname(v: Any, **_: Any) -> str:
    if not isinstance(v, str) or not v or any(c in v for c in " \r\n<>@\t"):
        raise ValueError("expected a domain name such as support.example.com")
    return v.lower()


def _check_table(v: Any, **_: Any) -> dict:
    if not isinstance(v, dict) or not all(
        isinstance(x, str | int | float | bool) for x in v.values()
    ):
        raise ValueError("expected a table of name = value")
    return {str(k): str(x).lower() if isinstance(x, bool) else str(x) for k, x in v.items()}


def _check_str(v: Any, **_: Any) -> str:
    if not isinstance(v, str) or any(c in v for c in "\r\n\0"):
        raise ValueError("expected a one-line string")
    return v


def _check_url(v: Any, **_: Any) -> str:
    if not isinstance(v, str) or not v.startswith(("http://", "https://")):
        raise ValueError("expected an http:// or https:// URL")
    return v.rstrip("/")


def _check_addresses(v: Any, **_: Any) -> list[str]:
    if not isinstance(v, list) or not all(isinstance(a, str) for a in v):
        raise ValueError("expected a list of strings")
    out = []
    for a in v:
        checked = checked_email(a)
        if checked is None:
            raise _BadItem(a, "is not an email address")
        out.append(address_key(checked))  # support addresses are matched, never sent as typed
    return out


def _check_senders(v: Any, **_: Any) -> list[str]:
    """Addresses (kept as their comparison key) and "@domain" entries, for [senders]."""
    if not isinstance(v, list) or not all(isinstance(a, str) for a in v):
        raise ValueError('expected a list of addresses or "@domain" strings')
    out = []
    for a in v:
        if a.startswith("@"):
            try:
                out.append("@" + _check_hostname(a[1:]))
            except ValueError:
                raise _BadItem(a, 'is not "@" and a domain name such as @forms.example') from None
            continue
        checked = checked_email(a)
        if checked is None:
            raise _BadItem(a, 'is neither an email address nor "@domain"')
        out.append(address_key(checked))
    return out


def _check_domains(v: Any, **_: Any) -> list[str]:
    if not isinstance(v, list) or not all(isinstance(d, str) for d in v):
        raise ValueError("expected a list of domain names")
    out = []
    for d in v:
        try:
            out.append(_check_hostname(d))
        except ValueError as exc:
            raise _BadItem(d, str(exc)) from None
    return out


def _check_signatures(v: Any, **_: Any) -> dict[str, str]:
    """A table of "example.com" or "*.example.com" -> signature text."""
    if not isinstance(v, dict):
        raise ValueError('expected a table of "domain" = "signature"')
    out = {}
    for pattern, text in v.items():
        bare = pattern[2:] if pattern.startswith("*.") else pattern
        try:
            if "*" in bare:
                raise ValueError("wildcard")
            domain = _check_hostname(bare)
        except ValueError:
            raise _BadItem(pattern, 'is not a domain or "*.domain" pattern') from None
        if not isinstance(text, str):
            raise _BadItem(pattern, "must map to a string (the signature)")
        out[("*." if pattern.startswith("*.") else "") + domain] = text
    return out


def _check_date(v: Any, **_: Any) -> datetime.date:
    if isinstance(v, datetime.datetime):
        return v.date()
    if isinstance(v, datetime.date):
        return v
    try:
        return datetime.date.fromisoformat(v)
    except (TypeError, ValueError):
        raise ValueError("expected a date such as 2026-01-31") from None


_CHECKS: dict[str, Callable[..., Any]] = {
    "listen": lambda v, **_: _check_listen(v),
    "int": _check_int,
    "float": _check_float,
    "bool": _check_bool,
    "choice": _check_choice,
    "hostname": _check_hostname,
    "url": _check_url,
    "table": _check_table,
    "str": _check_str,
    "addresses": _check_addresses,
    "domains": _check_domains,
    "senders": _check_senders,
    "signatures": _check_signatures,
    "strings": _check_strings,
    "networks": _check_networks,
    "date": _check_date,
}


def _show(v: Any) -> str:
    return f'"{v}"' if isinstance(v, str) else repr(v)


def load_settings(path: str | Path, environ: Mapping[str, str] | None = None) -> Settings:
    """Read, check and build Settings; raise ConfigError listing every problem at once."""
    environ = os.environ if environ is None else environ
    path = Path(path)
    label = path.name
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(
            [f"{path}: no such file (pass --config PATH or set ${CONFIG_ENV})"]
        ) from None
    except PermissionError:
        raise ConfigError([f"{path}: cannot be read (permission denied)"]) from None
    except IsADirectoryError:
        raise ConfigError(
            [f"{path}: is a folder; pass the config file, e.g. {path / 'config.toml'}"]
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{label}: not valid TOML: {exc}"]) from None
    base = path.resolve().parent
    problems: list[str] = []
    for name in raw:
        if name not in SECTIONS and name not in ARRAYS:
            known = ", ".join([*SECTIONS, *ARRAYS])
            problems.append(f"{label}: [{name}]: unknown section (known: {known})")
    built: dict[str, Any] = {}
    for name, cls in SECTIONS.items():
        table = raw.get(name, {})
        if not isinstance(table, dict):
            problems.append(f"{label}: {name}: expected a [{name}] table")
            table = {}
        built[name] = _build_section(name, cls, table, base, environ, label, problems)
    built["relay"] = _secret_env(built["relay"], "relay", environ, label, problems)
    imap = _build_imap(raw.get("imap", []), base, environ, label, problems)
    if not problems:
        _cross_checks(built, label, problems)
        if not built["http"].public_url:  # readers without a bound port (CLI, doctor) need one
            url = listener_url(built["http"].listen)
            built["http"] = dataclasses.replace(built["http"], public_url=url)
        _check_imap(imap, built["smtp"], label, problems)
    if problems:
        raise ConfigError(problems)
    return Settings(**built, imap=imap, source=path.resolve())


def _build_imap(tables, base, environ, label, problems) -> tuple[ImapAccount, ...]:
    """[[imap]] tables, each checked like a section and named imap[N] in messages."""
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        problems.append(f"{label}: imap: expected [[imap]] tables (one per mailbox)")
        return ()
    accounts = []
    for i, table in enumerate(tables):
        name = f"imap[{i}]"
        account = _build_section(name, ImapAccount, table, base, environ, label, problems)
        if account.password_env:
            value = environ.get(account.password_env, "").strip()
            if not value:
                problems.append(
                    f'{label}: {name}.password_env: "{account.password_env}" is not set '
                    "in the environment"
                )
            account = dataclasses.replace(account, password=Secret(value))
        accounts.append(_secret_env(account, name, environ, label, problems))
    return tuple(accounts)


def is_loopback(host: str) -> bool:
    """localhost or a loopback IP address (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_imap(accounts, smtp: SmtpSettings, label: str, problems: list[str]) -> None:
    for i, a in enumerate(accounts):
        where = f"{label}: imap[{i}]"
        for key in ("host", "user", "mailbox"):
            if not getattr(a, key):
                problems.append(f"{where}.{key}: missing (required)")
        if not a.password and a.auth == "password":
            problems.append(f"{where}.password: not set; set password_file or password_env")
        _check_oauth(a, where, problems)
        if not a.folders:
            problems.append(f"{where}.folders: empty; list at least one folder")
        if a.tls == "none" and a.host and not is_loopback(a.host):
            problems.append(
                f'{where}.tls: "none" is only allowed for a loopback host, not "{a.host}" '
                "(use implicit or starttls)"
            )
        if a.after == "move" and not a.move_to:
            problems.append(f'{where}.move_to: missing; after = "move" needs a folder')
        if a.ca_file is not None and not a.ca_file.exists():
            problems.append(f'{where}.ca_file: "{a.ca_file}" does not exist')
        mailbox = a.mailbox.lower()
        domain = mailbox.rpartition("@")[2]
        if a.mailbox and mailbox not in smtp.addresses and domain not in smtp.domains:
            problems.append(
                f'{where}.mailbox: "{a.mailbox}" is not one of smtp.addresses or smtp.domains'
            )


def _build_section(name, cls, table, base, environ, label, problems):
    fields = {f.name: f for f in dataclasses.fields(cls)}
    secret_files = {f"{k}_file" for k, f in fields.items() if f.metadata["kind"] == "secret"}
    for key in table:
        if key not in fields and key not in secret_files:
            known = ", ".join(
                f"{k} (or {k}_file)" if f"{k}_file" in secret_files else k for k in fields
            )
            problems.append(f"{label}: {name}.{key}: unknown key (known: {known})")
    values: dict[str, Any] = {}
    for key, f in fields.items():
        meta = f.metadata
        kind = meta["kind"]
        where = f"{label}: {name}.{key}"
        if kind == "secret":
            values[key] = _load_secret(name, key, table, meta, base, environ, label, problems)
            continue
        if key not in table:
            continue
        v = table[key]
        try:
            if kind == "path":
                if not isinstance(v, str):
                    raise ValueError("expected a path string")
                values[key] = (base / v).resolve() if v else None
            elif kind in _CHECKS:
                opts = {k: meta[k] for k in ("min", "choices") if k in meta}
                values[key] = _CHECKS[kind](v, **opts)
            else:
                if not isinstance(v, str):
                    raise ValueError("expected a string")
                values[key] = v
        except ValueError as exc:
            shown = exc.item if isinstance(exc, _BadItem) else v
            problems.append(f"{where}: {_show(shown)} {_phrase(str(exc))}")
    return cls(**values)


def _phrase(msg: str) -> str:
    return msg if msg.startswith(("is ", "must ")) else f"is not valid: {msg}"


def _load_secret(name, key, table, meta, base, environ, label, problems) -> Secret:
    """A secret comes from $ENV, then KEY_file, then the key itself.

    KEY_file is a path (relative to the config's folder) or a credential name: the file
    beside the config, else $CREDENTIALS_DIRECTORY/NAME (the unit's LoadCredential=,
    systemd.exec(5)), else, outside the service (an admin's shell, where that variable is
    unset), the `credentials` folder beside the config, which LoadCredential= reads from.
    """
    env = meta.get("env")
    if env and environ.get(env):
        return Secret(environ[env].strip())
    file_key = f"{key}_file"
    if file_key in table:
        given = str(table[file_key])
        p = (base / given).resolve()
        tried = [p]
        cred_dir = environ.get("CREDENTIALS_DIRECTORY")
        if not os.path.exists(p):
            if cred_dir:
                p = Path(cred_dir) / given
            elif os.path.isdir(base / CREDENTIALS_FOLDER):
                p = base / CREDENTIALS_FOLDER / given
            if p != tried[0]:
                tried.append(p)
        try:
            return Secret(p.read_text(encoding="utf-8").strip())
        except OSError as exc:
            hint = ""
            if not Path(given).is_absolute() and not cred_dir:
                hint = (
                    f"; a credential name: the unit's LoadCredential= provides it, a shell "
                    f"reads {base / CREDENTIALS_FOLDER}/{given} (as root) or --credentials-dir DIR"
                )
            where = " or ".join(str(t) for t in tried)
            problems.append(
                f'{label}: {name}.{file_key}: "{given}" cannot be read ({exc.strerror}: '
                f"looked for {where}){hint}"
            )
            return Secret("")
    if key in table:
        if not isinstance(table[key], str):
            problems.append(f"{label}: {name}.{key}: expected a string")
            return Secret("")
        return Secret(table[key])
    return Secret("")


def _secret_env(keys: Any, name: str, environ, label: str, problems: list[str]) -> Any:
    """client_secret_env: the client secret from the named environment variable."""
    if not keys.client_secret_env:
        return keys
    value = environ.get(keys.client_secret_env, "").strip()
    if not value:
        problems.append(
            f'{label}: {name}.client_secret_env: "{keys.client_secret_env}" is not set in the '
            "environment"
        )
    return dataclasses.replace(keys, client_secret=Secret(value))


def _check_oauth(k: OAuthKeys, where: str, problems: list[str]) -> None:
    """auth = oauth2 needs a provider, a flow of that provider and the flow's keys."""
    if k.auth != "oauth2":
        if k.provider:
            problems.append(f'{where}.provider: set, but auth is "{k.auth}"; set auth = "oauth2"')
        return
    if not k.provider:
        problems.append(
            f'{where}.provider: missing; auth = "oauth2" needs one of ' + ", ".join(OAUTH_PROVIDERS)
        )
        return
    flows = OAUTH_FLOWS[k.provider]
    if k.oauth_flow not in flows:
        problems.append(
            f'{where}.flow: "{k.flow}" is not a flow of provider "{k.provider}" '
            f"(expected one of {', '.join(flows)})"
        )
        return
    need = {"client_id": "the application (client) id"}
    if k.provider == "microsoft":
        need["tenant"] = "the directory (tenant) id"
    if k.provider == "generic":
        need["token_url"] = "the token endpoint"
    if k.oauth_flow == "client_credentials" or (
        k.provider == "google" and k.oauth_flow == "refresh_token"
    ):
        need["client_secret"] = "set client_secret_file or client_secret_env"
    if k.oauth_flow == "refresh_token":
        need["refresh_token"] = "set refresh_token_file"
    if k.oauth_flow == "service_account":
        need = {"service_account_key": "set service_account_key_file to the JSON key"}
    for key, what in need.items():
        if not getattr(k, key):
            problems.append(
                f"{where}.{key}: missing; {k.provider} {k.oauth_flow} needs it ({what})"
            )
    if k.oauth_flow == "service_account" and k.service_account_key:
        try:
            info = json.loads(k.service_account_key)
            ok = isinstance(info, dict) and all(
                info.get(x) for x in ("client_email", "private_key")
            )
        except ValueError:
            ok = False
        if not ok:
            problems.append(
                f"{where}.service_account_key_file: is not a service account JSON key "
                "(with client_email and private_key)"
            )


def _cross_checks(built: dict[str, Any], label: str, problems: list[str]) -> None:
    relay: RelaySettings = built["relay"]
    _check_oauth(relay, f"{label}: relay", problems)
    if relay.auth == "oauth2" and not relay.username:
        problems.append(
            f'{label}: relay.username: missing; auth = "oauth2" logs in as this mailbox'
        )
    if relay.dkim_selector and not (relay.dkim_domain and relay.dkim_key):
        problems.append(
            f"{label}: relay.dkim_selector: set, so relay.dkim_domain and relay.dkim_key_file "
            "(or $DKIM_KEY) are needed too"
        )
    elif relay.dkim_selector and "PRIVATE KEY" not in relay.dkim_key:
        problems.append(f"{label}: relay.dkim_key_file: is not a PEM private key")
    smtp: SmtpSettings = built["smtp"]
    if not smtp.addresses and not smtp.domains:
        problems.append(
            f"{label}: smtp.addresses: empty, and smtp.domains too; list at least one support "
            "address or domain (the gateway never relays for anyone else)"
        )
    if bool(smtp.tls_cert) != bool(smtp.tls_key):
        problems.append(f"{label}: smtp.tls_cert and smtp.tls_key: set both or neither")
    for key in ("tls_cert", "tls_key"):
        p = getattr(smtp, key)
        if p is not None and not p.exists():
            problems.append(f'{label}: smtp.{key}: "{p}" does not exist')
    if smtp.require_tls and not smtp.tls_cert:
        problems.append(f"{label}: smtp.require_tls: true needs smtp.tls_cert and smtp.tls_key")
    admin: AdminSettings = built["admin"]
    if not is_loopback(admin.listen.host) and not admin.token:
        problems.append(
            f'{label}: admin.listen: "{admin.listen}" is not a loopback address, and /status shows '
            "customer addresses: set admin.token_file (or $MAIL_GATEWAY_ADMIN_TOKEN), or listen "
            "on 127.0.0.1"
        )
    if built["sandbox"].allow_public and not built["sandbox"].admin_token:
        problems.append(
            f"{label}: sandbox.admin_token: needed with sandbox.allow_public = true (the "
            "sandbox's admin and console APIs are open otherwise); set admin_token_file or "
            "$MAIL_GATEWAY_SANDBOX_TOKEN"
        )
    assistant: AssistantSettings = built["assistant"]
    for key in ("confidence", "negative_sentiment"):
        value = getattr(assistant, key)
        if value > 1:
            problems.append(f"{label}: assistant.{key}: {value} must be at most 1")
    kdir = assistant.knowledge_dir
    if assistant.backend == "knowledge" and (kdir is None or not kdir.is_dir()):
        problems.append(
            f'{label}: assistant.knowledge_dir: "{kdir or ""}" is not a folder; the knowledge '
            "backend needs one with Markdown articles"
        )


# --- deployment checks: what `config check` and `serve` ask beyond the file's own shape ----


@dataclass(frozen=True)
class Finding:
    """One deployment problem: `level` error (config check exits 2) or warning (printed, and
    logged once at start), the key it concerns, what is wrong and the fix."""

    level: str  # "error" | "warning"
    key: str
    problem: str
    fix: str

    def __str__(self) -> str:
        return f"{self.key}: {self.problem}; {self.fix}"


def _writable_dir(path: Path) -> str:
    """Empty when `path` is a folder this process may write, or one it may create (its
    nearest existing ancestor is a writable folder); else why not. Nothing is created."""
    p = path
    while not p.exists():
        if p.parent == p:
            return "has no existing parent folder"
        p = p.parent
    if not p.is_dir():
        return f'cannot be created: "{p}" is not a folder'
    if not os.access(p, os.W_OK | os.X_OK):
        what = "is not writable" if p == path else f'cannot be created: "{p}" is not writable'
        return f"{what} by this user (uid {os.geteuid()})"
    return ""


def path_problems(settings: Settings) -> list[str]:
    """The folders the daemon writes, each writable or creatable by this user: state_dir, the
    sandbox's database (mode = sandbox) and the capture folder (relay.mode = capture). One line
    per problem naming the key; `serve` refuses to start on any (a clear line, not SQLite's
    "unable to open database file" from deep inside the start)."""
    label = settings.source.name if settings.source else "config"
    wanted: list[tuple[str, Path]] = [("gateway.state_dir", settings.gateway.state_dir)]
    if settings.hubspot.mode == "sandbox" and settings.hubspot.sandbox_db is not None:
        wanted.append(("hubspot.sandbox_db", settings.hubspot.sandbox_db.parent))
    if settings.relay.mode == "capture" and settings.relay.capture_dir is not None:
        wanted.append(("relay.capture_dir", settings.relay.capture_dir))
    problems = []
    for key, folder in wanted:
        why = _writable_dir(folder)
        if why:
            problems.append(
                f'{label}: {key}: "{folder}" {why}; use an absolute path the service user may '
                f"write (the unit's StateDirectory= is {DEFAULT_STATE_DIR})"
            )
    return problems


_LIVE_NEEDS = (
    # (key, where HubSpot shows it, the credential file of a secret)
    ("client_id", "the app's Auth tab in the developer account (Client ID)", ""),
    ("client_secret", "the app's Auth tab (Client secret)", "hubspot-client-secret"),
    ("app_id", "`hs project info` (App ID)", ""),
    ("developer_api_key", "the developer account's apps page (API key)", "hubspot-developer-key"),
)


def deployment_findings(settings: Settings) -> list[Finding]:
    """What a production run needs beyond a well-formed file (issue 15, issue 16 item 7):

    - live mode without the app's credentials (client id and secret, app id, developer API
      key) is an error naming each key and where HubSpot shows it;
    - live mode with `relay.mode = "capture"` is a warning: no customer would get a reply;
    - live mode with a public_url that is not https is a warning (HubSpot calls https only);
    - the sandbox on a non-loopback address is an error: its demo secrets are public and its
      admin and console APIs are open.
    Folder checks are path_problems().
    """
    out: list[Finding] = []
    hs = settings.hubspot
    if hs.mode == "live":
        for key, where, cred in _LIVE_NEEDS:
            if getattr(hs, key):
                continue
            fix = (
                f"put it in {CREDENTIALS_DIR}/{cred} (with hubspot.{key}_file = "
                f'"{cred}") or in ${_env_of("hubspot", key)}'
                if cred
                else f"set hubspot.{key}"
            )
            problem = f'not set, and hubspot.mode = "live" needs it (HubSpot: {where})'
            out.append(Finding("error", f"hubspot.{key}", problem, fix))
        if settings.relay.mode == "capture":
            out.append(
                Finding(
                    "warning",
                    "relay.mode",
                    '"capture" in live mode: replies are kept as files, no customer gets one',
                    'set relay.mode = "smtp" and relay.host (`mail-gateway send-test` tries it)',
                )
            )
        if not settings.http.public_url.startswith("https://"):
            out.append(
                Finding(
                    "warning",
                    "http.public_url",
                    f'"{settings.http.public_url}" is not https: HubSpot sends webhooks and the '
                    "OAuth redirect only to an https URL",
                    "put a TLS reverse proxy in front of http.listen and set http.public_url "
                    "to its https URL",
                )
            )
    elif not is_loopback(hs.sandbox_listen.host) and not settings.sandbox.allow_public:
        out.append(
            Finding(
                "error",
                "hubspot.sandbox_listen",
                f'"{hs.sandbox_listen}" is not a loopback address: the sandbox has public demo '
                "secrets and open admin and console APIs",
                "listen on 127.0.0.1 (the rep console through an SSH tunnel), or set "
                "sandbox.allow_public = true with sandbox.admin_token if it is on purpose",
            )
        )
    return out


def _env_of(section: str, key: str) -> str:
    f = {f.name: f for f in dataclasses.fields(SECTIONS[section])}[key]
    return str(f.metadata.get("env", ""))


def redacted(settings: Settings) -> dict[str, dict[str, Any]]:
    """Settings as plain data with secrets shown only as set / not set."""
    out: dict[str, dict[str, Any]] = {}
    for name in SECTIONS:
        section = getattr(settings, name)
        row: dict[str, Any] = {}
        for f in dataclasses.fields(section):
            v = getattr(section, f.name)
            if isinstance(v, Secret):
                v = "(set, hidden)" if v else "(not set)"
            elif isinstance(v, (Path, Listen)):
                v = str(v)
            row[f.name] = v
        out[name] = row
    for i, account in enumerate(settings.imap):
        row = {}
        for f in dataclasses.fields(account):
            v = getattr(account, f.name)
            if isinstance(v, Secret):
                v = "(set, hidden)" if v else "(not set)"
            elif isinstance(v, (Path, datetime.date)):
                v = str(v)
            row[f.name] = v
        out[f"imap.{i}"] = row
    return out


def default_config_path(environ: Mapping[str, str] | None = None) -> str:
    environ = os.environ if environ is None else environ
    return environ.get(CONFIG_ENV) or DEFAULT_CONFIG_PATH
