"""The access token of one XOAUTH2 login, kept in the store and renewed before it expires.

A `TokenSource` stands for one login ("imap:<account key>" or "relay"). `token()` returns the
stored access token while it has more than EARLY seconds left, else asks the provider (in a
thread: the libraries block) and stores the new one; `token(fresh=True)` asks even so, which
the IMAP and SMTP clients do once when the server refuses a token (revoked before its expiry).
`xoauth2()` builds the SASL XOAUTH2 initial response (Google's and Microsoft's "XOAUTH2
protocol" pages: `user=U^Aauth=Bearer T^A^A`, base64). Tokens never reach a log line.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time

from gateway.config import ImapAccount, OAuthKeys, RelaySettings
from gateway.errors import TokenError
from gateway.logs import register_secrets
from gateway.mailauth import providers
from gateway.store import tokens as st
from gateway.store.db import Store

log = logging.getLogger(__name__)

EARLY = 300.0  # seconds before expiry a token is renewed (clock skew, a long IMAP session)
FETCH_TIMEOUT = 90.0  # seconds for the whole provider exchange (MSAL may make 2-3 requests)


def imap_login(account: ImapAccount) -> str:
    return f"imap:{account.key}"


RELAY_LOGIN = "relay"


def xoauth2(user: str, token: str) -> str:
    """The SASL XOAUTH2 initial client response, base64 (ASCII)."""
    return base64.b64encode(f"user={user}\x01auth=Bearer {token}\x01\x01".encode()).decode()


class TokenSource:
    """One login's access token: from the store while valid, else from the provider."""

    def __init__(self, keys: OAuthKeys, user: str, login: str, store: Store):
        self.keys, self.user, self.login, self.store = keys, user, login, store
        self._lock = asyncio.Lock()

    @classmethod
    def for_imap(cls, account: ImapAccount, store: Store) -> TokenSource:
        return cls(account, account.user, imap_login(account), store)

    @classmethod
    def for_relay(cls, relay: RelaySettings, store: Store) -> TokenSource:
        return cls(relay, relay.username, RELAY_LOGIN, store)

    async def token(self, *, fresh: bool = False) -> str:
        """An access token with more than EARLY seconds left; raises TokenError (recorded as
        the login's last error) when the provider refuses."""
        k = self.keys
        async with self._lock:
            row = await self.store.read(lambda db: st.load_token(db, self.login))
            if (
                not fresh
                and row is not None
                and row.access_token
                and (row.provider, row.flow) == (k.provider, k.oauth_flow)
                and row.expires_at - EARLY > time.time()
            ):
                register_secrets([row.access_token])
                return row.access_token
            stored_refresh = row.refresh_token if row is not None else ""
            try:
                async with asyncio.timeout(FETCH_TIMEOUT):
                    grant = await asyncio.to_thread(
                        providers.fetch, k, self.user, stored_refresh
                    )
            except TimeoutError:
                await self.failed(f"{k.provider}: no answer from the token endpoint")
                raise TokenError(f"{k.provider}: no answer from the token endpoint") from None
            except TokenError as exc:
                await self.failed(str(exc))
                raise
            register_secrets([grant.access_token, grant.refresh_token])  # masked in any log
            await self.store.write(
                lambda db: st.save_token(
                    db,
                    self.login,
                    provider=k.provider,
                    flow=k.oauth_flow,
                    access_token=grant.access_token,
                    expires_at=grant.expires_at,
                    refresh_token=grant.refresh_token,
                )
            )
            log.info(
                "%s: new %s access token, valid until %s UTC",
                self.login,
                k.provider,
                time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(grant.expires_at)),
            )
            return grant.access_token

    async def logged_in(self) -> None:
        await self.store.write(lambda db: st.record_login(db, self.login))

    async def failed(self, reason: str) -> None:
        await self.store.write(lambda db: st.record_login(db, self.login, error=reason))

    async def refused(self, reason: str) -> None:
        """The server refused the token: forget it, so the next login asks for a new one."""
        await self.store.write(lambda db: st.forget_access_token(db, self.login))
        await self.failed(reason)
