"""Settings: one frozen object built once from TOML (and the environment) and passed down.

Every key is declared once, with its default and help text, in the section dataclasses below.
That single table drives loading, validation messages, `config show` and the test that fails
when config.example.toml leaves a key undocumented. A bad file is reported whole: one line per
problem, naming the file, the key, the value found and what was expected, so an admin fixes
everything in one edit instead of one restart per typo.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway.errors import ConfigError

DEFAULT_CONFIG_PATH = "/etc/mail-gateway/config.toml"
CONFIG_ENV = "MAIL_GATEWAY_CONFIG"


@dataclass(frozen=True)
class Listen:
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


class Secret(str):
    """A string that never shows itself in repr, logs or `config show`."""

    def __repr__(self) -> str:
        return "Secret('***')" if self else "Secret('')"


def _key(help_text: str, default: Any = dataclasses.MISSING, kind: str = "", **extra: Any):
    """Declare a setting: its help text and, through `kind`, how a raw TOML value is checked."""
    meta = {"help": help_text, "kind": kind, **extra}
    if isinstance(default, list):
        return field(default_factory=lambda d=default: list(d), metadata=meta)
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


@dataclass(frozen=True)
class SmtpSettings:
    listen: Listen = _key(
        "Address and port of the SMTP listener.", Listen("127.0.0.1", 2525), "listen"
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
    idle_timeout: int = _key("Seconds a client may stay silent.", 300, "int", min=5)
    tls_cert: Path | None = _key("PEM certificate chain for STARTTLS (optional).", None, "path")
    tls_key: Path | None = _key("PEM private key for STARTTLS (optional).", None, "path")
    require_tls: bool = _key("Refuse MAIL before STARTTLS (needs tls_cert).", False, "bool")


@dataclass(frozen=True)
class HttpSettings:
    listen: Listen = _key(
        "Address and port of the HTTP listener (webhooks, health).",
        Listen("127.0.0.1", 8025),
        "listen",
    )
    public_url: str = _key(
        "The https URL HubSpot calls; webhook signatures are checked against it.",
        "http://127.0.0.1:8025",
        "url",
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
        "Where the built-in sandbox listens when mode = sandbox.",
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


@dataclass(frozen=True)
class WorkerSettings:
    concurrency: int = _key("Jobs run at once.", 4, "int", min=1)
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


@dataclass(frozen=True)
class Settings:
    gateway: GatewaySettings
    smtp: SmtpSettings
    http: HttpSettings
    hubspot: HubspotSettings
    worker: WorkerSettings
    source: Path | None = None

    @property
    def db_path(self) -> Path:
        return self.gateway.state_dir / "gateway.db"


SECTIONS: dict[str, type] = {
    "gateway": GatewaySettings,
    "smtp": SmtpSettings,
    "http": HttpSettings,
    "hubspot": HubspotSettings,
    "worker": WorkerSettings,
}


def settings_table() -> list[tuple[str, Any, str]]:
    """Every setting as (section.key, default, help): for docs, `config show` and tests."""
    rows = []
    for name, cls in SECTIONS.items():
        for f in dataclasses.fields(cls):
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
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
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError("is not a valid port (1-65535)")
    return Listen(host, int(port))


def _check_int(v: Any, min: int | None = None, **_: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise ValueError("expected a whole number")
    if min is not None and v < min:
        raise ValueError(f"must be at least {min}")
    return v


def _check_bool(v: Any, **_: Any) -> bool:
    if not isinstance(v, bool):
        raise ValueError("expected true or false")
    return v


def _check_choice(v: Any, choices: tuple[str, ...] = (), **_: Any) -> str:
    if v not in choices:
        raise ValueError("expected one of " + ", ".join(choices))
    return v


def _check_hostname(v: Any, **_: Any) -> str:
    if not isinstance(v, str) or not v or any(c in v for c in " \r\n<>@\t"):
        raise ValueError("expected a domain name such as support.example.com")
    return v.lower()


def _check_url(v: Any, **_: Any) -> str:
    if not isinstance(v, str) or not v.startswith(("http://", "https://")):
        raise ValueError("expected an http:// or https:// URL")
    return v.rstrip("/")


def _check_addresses(v: Any, **_: Any) -> list[str]:
    if not isinstance(v, list) or not all(isinstance(a, str) for a in v):
        raise ValueError("expected a list of strings")
    out = []
    for a in v:
        local, at, domain = a.strip().rpartition("@")
        if not at or not local or not domain or any(c in a for c in " \r\n<>"):
            raise _BadItem(a, "is not an email address")
        out.append(a.strip().lower())
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


_CHECKS: dict[str, Callable[..., Any]] = {
    "listen": lambda v, **_: _check_listen(v),
    "int": _check_int,
    "bool": _check_bool,
    "choice": _check_choice,
    "hostname": _check_hostname,
    "url": _check_url,
    "addresses": _check_addresses,
    "domains": _check_domains,
}


def _show(v: Any) -> str:
    return f'"{v}"' if isinstance(v, str) else repr(v)


def load_settings(path: str | Path, environ: dict[str, str] | None = None) -> Settings:
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
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{label}: not valid TOML: {exc}"]) from None
    base = path.resolve().parent
    problems: list[str] = []
    for name in raw:
        if name not in SECTIONS:
            problems.append(f"{label}: [{name}]: unknown section (known: {', '.join(SECTIONS)})")
    built: dict[str, Any] = {}
    for name, cls in SECTIONS.items():
        table = raw.get(name, {})
        if not isinstance(table, dict):
            problems.append(f"{label}: {name}: expected a [{name}] table")
            table = {}
        built[name] = _build_section(name, cls, table, base, environ, label, problems)
    if not problems:
        _cross_checks(built, label, problems)
    if problems:
        raise ConfigError(problems)
    return Settings(**built, source=path.resolve())


def _build_section(name, cls, table, base, environ, label, problems):
    fields = {f.name: f for f in dataclasses.fields(cls)}
    secret_files = {f"{k}_file" for k, f in fields.items() if f.metadata["kind"] == "secret"}
    for key in table:
        if key not in fields and key not in secret_files:
            problems.append(f"{label}: {name}.{key}: unknown key (known: {', '.join(fields)})")
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
    """A secret comes from $ENV, then KEY_file (systemd credentials), then the file itself."""
    env = meta.get("env")
    if env and environ.get(env):
        return Secret(environ[env].strip())
    file_key = f"{key}_file"
    if file_key in table:
        p = (base / str(table[file_key])).resolve()
        cred_dir = environ.get("CREDENTIALS_DIRECTORY")
        if not p.exists() and cred_dir:
            p = Path(cred_dir) / str(table[file_key])
        try:
            return Secret(p.read_text(encoding="utf-8").strip())
        except OSError as exc:
            problems.append(
                f'{label}: {name}.{file_key}: "{table[file_key]}" cannot be read ({exc.strerror})'
            )
            return Secret("")
    if key in table:
        if not isinstance(table[key], str):
            problems.append(f"{label}: {name}.{key}: expected a string")
            return Secret("")
        return Secret(table[key])
    return Secret("")


def _cross_checks(built: dict[str, Any], label: str, problems: list[str]) -> None:
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
    return out


def default_config_path(environ: dict[str, str] | None = None) -> str:
    environ = os.environ if environ is None else environ
    return environ.get(CONFIG_ENV) or DEFAULT_CONFIG_PATH
