"""Store verbs for mailbox OAuth 2.0 tokens: the access token (and refresh token) of each XOAUTH2
login, and what `mailbox status` shows of it (last successful login, last error).

Why in the store: a device-code grant is made once by a person (`mail-gateway mailbox connect`)
and must outlive restarts; an access token still valid is reused by the next process instead of
asking the provider again. A login is "imap:<account key>" or "relay".
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlite_utils import Database

from gateway.store.db import now_iso


@dataclass(frozen=True)
class StoredToken:
    login: str
    provider: str
    flow: str
    access_token: str
    expires_at: float  # unix time
    refresh_token: str
    updated_at: str
    last_login_at: str | None
    last_error: str
    last_error_at: str | None


_COLUMNS = (
    "login, provider, flow, access_token, expires_at, refresh_token, updated_at, last_login_at, "
    "last_error, last_error_at"
)


def load_token(db: Database, login: str) -> StoredToken | None:
    row = db.execute(f"SELECT {_COLUMNS} FROM mailbox_tokens WHERE login = ?", [login]).fetchone()
    return StoredToken(*row) if row else None


def save_token(
    db: Database,
    login: str,
    *,
    provider: str,
    flow: str,
    access_token: str,
    expires_at: float,
    refresh_token: str = "",
) -> None:
    """Keep a new access token; an empty refresh_token keeps the one stored (providers send a
    new refresh token only sometimes: RFC 6749 §6)."""
    db.execute(
        "INSERT INTO mailbox_tokens (login, provider, flow, access_token, expires_at, "
        "refresh_token, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT(login) DO UPDATE SET provider = excluded.provider, flow = excluded.flow, "
        "access_token = excluded.access_token, expires_at = excluded.expires_at, "
        "refresh_token = CASE WHEN excluded.refresh_token != '' THEN excluded.refresh_token "
        "ELSE mailbox_tokens.refresh_token END, updated_at = excluded.updated_at",
        [login, provider, flow, access_token, expires_at, refresh_token, now_iso()],
    )


def forget_access_token(db: Database, login: str) -> None:
    """The server refused the token: the next login asks the provider for a new one."""
    db.execute(
        "UPDATE mailbox_tokens SET access_token = '', expires_at = 0 WHERE login = ?", [login]
    )


def record_login(db: Database, login: str, *, error: str = "") -> None:
    """A login attempt's outcome: success sets last_login_at, a refusal last_error (one line,
    never the token)."""
    now = now_iso()
    db.execute(
        "INSERT INTO mailbox_tokens (login, provider, flow, updated_at) VALUES (?, '', '', ?) "
        "ON CONFLICT(login) DO NOTHING",
        [login, now],
    )
    if error:
        db.execute(
            "UPDATE mailbox_tokens SET last_error = ?, last_error_at = ? WHERE login = ?",
            [error[:500], now, login],
        )
    else:
        db.execute(
            "UPDATE mailbox_tokens SET last_login_at = ?, last_error = '' WHERE login = ?",
            [now, login],
        )


def all_tokens(db: Database) -> dict[str, StoredToken]:
    rows = db.execute(f"SELECT {_COLUMNS} FROM mailbox_tokens ORDER BY login").fetchall()
    return {r[0]: StoredToken(*r) for r in rows}
