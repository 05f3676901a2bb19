"""A small OAuth 2.0 authorization server for the tests: what Entra ID, Google and a generic
provider are to the gateway, and what Dovecot and the submission server ask about a token.

Served over HTTPS (a trustme certificate: MSAL accepts only https authorities) by aiohttp in a
thread of its own, so blocking clients (MSAL, google-auth, authlib, Dovecot's auth process) and
the test's event loop all reach it like a remote service.

Endpoints (paths as the providers have them, so the libraries' own URL building is exercised):
- GET  /{tenant}/v2.0/.well-known/openid-configuration   OpenID discovery (what MSAL reads)
- POST /{tenant}/oauth2/v2.0/token, POST /token           RFC 6749 token endpoint: grants
  client_credentials (§4.4), refresh_token (§6), urn:ietf:params:oauth:grant-type:jwt-bearer
  (RFC 7523, google-auth's service account; the assertion's RS256 signature is checked against
  the registered key) and urn:ietf:params:oauth:grant-type:device_code (RFC 8628 §3.4)
- POST /{tenant}/oauth2/v2.0/devicecode                   RFC 8628 §3.1 device authorization
- POST /introspect                                       RFC 7662 (Dovecot's oauth2 passdb with
  introspection_mode = post, and the test submission server): {"active", "username", "exp"}
Test controls: `add_client`, `add_service_account`, `approve` (a person entered the device
code), `expire` (every token of a user stops working now), `revoke` (and refuse new grants),
`allow` (grant again), `grants` (a log of grants made).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import secrets
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote_plus

import jwt
import trustme
from aiohttp import web

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"


@dataclass
class Client:
    secret: str
    mailbox: str  # app-only tokens of this client may log in as this mailbox


@dataclass
class Device:
    client_id: str
    user_code: str
    user: str = ""  # set by approve()


@dataclass
class IssuedToken:
    user: str
    expires_at: float


@dataclass
class Issuer:
    ttl: float = 3600.0  # expires_in of every access token
    clients: dict[str, Client] = field(default_factory=dict)
    service_accounts: dict[str, str] = field(default_factory=dict)  # client_email -> PEM pub
    tokens: dict[str, IssuedToken] = field(default_factory=dict)
    refresh_tokens: dict[str, str] = field(default_factory=dict)  # token -> user
    devices: dict[str, Device] = field(default_factory=dict)
    refused: set[str] = field(default_factory=set)  # users no grant is made for
    grants: list[tuple[str, str]] = field(default_factory=list)  # (grant_type, user)
    introspections: int = 0
    base: str = ""  # the URL it is served at (set once it listens)

    # -- test controls ----------------------------------------------------------------------

    def add_client(self, client_id: str, secret: str, mailbox: str = "") -> None:
        self.clients[client_id] = Client(secret, mailbox)

    def add_service_account(self, email: str, public_pem: str) -> None:
        self.service_accounts[email] = public_pem

    def add_refresh_token(self, user: str) -> str:
        rt = "rt-" + secrets.token_urlsafe(16)
        self.refresh_tokens[rt] = user
        return rt

    def approve(self, user_code: str, user: str) -> None:
        for d in self.devices.values():
            if d.user_code == user_code:
                d.user = user
                return
        raise KeyError(user_code)

    def expire(self, user: str) -> None:
        """Every access token of `user` stops working now (as after its expiry)."""
        for t in self.tokens.values():
            if t.user == user:
                t.expires_at = 0

    def revoke(self, user: str) -> None:
        """Consent withdrawn: tokens stop working and no new grant is made for `user`."""
        self.expire(user)
        self.refused.add(user)

    def allow(self, user: str) -> None:
        self.refused.discard(user)

    def count(self, grant_type: str, user: str | None = None) -> int:
        return sum(1 for g, u in self.grants if g == grant_type and user in (None, u))

    # -- the HTTP side ----------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/{tenant}/v2.0/.well-known/openid-configuration", self._discovery)
        app.router.add_post("/{tenant}/oauth2/v2.0/token", self._token)
        app.router.add_post("/{tenant}/oauth2/v2.0/devicecode", self._devicecode)
        app.router.add_post("/token", self._token)
        app.router.add_post("/introspect", self._introspect)
        return app

    async def _discovery(self, request: web.Request) -> web.Response:
        base, tenant = self.base, request.match_info["tenant"]
        return web.json_response(
            {
                "issuer": f"{base}/{tenant}/v2.0",
                "authorization_endpoint": f"{base}/{tenant}/oauth2/v2.0/authorize",
                "token_endpoint": f"{base}/{tenant}/oauth2/v2.0/token",
                "device_authorization_endpoint": f"{base}/{tenant}/oauth2/v2.0/devicecode",
            }
        )

    async def _devicecode(self, request: web.Request) -> web.Response:
        form = await request.post()
        client_id = str(form.get("client_id", ""))
        if client_id not in self.clients:
            return _error("invalid_client", "unknown client", 401)
        code = secrets.token_urlsafe(16)
        user_code = secrets.token_hex(4).upper()
        self.devices[code] = Device(client_id, user_code)
        uri = self.base + "/devicelogin"
        return web.json_response(
            {
                "device_code": code,
                "user_code": user_code,
                "verification_uri": uri,
                "expires_in": 900,
                "interval": 1,
                "message": f"To sign in, open {uri} and enter the code {user_code}.",
            }
        )

    async def _token(self, request: web.Request) -> web.Response:
        form = await request.post()
        grant = str(form.get("grant_type", ""))
        client_id, secret = _client_auth(request, form)
        if grant == "client_credentials":
            client = self.clients.get(client_id)
            if client is None or client.secret != secret:
                return _error("invalid_client", "AADSTS7000215: Invalid client secret.", 401)
            return self._issue(grant, client.mailbox)
        if grant == "refresh_token":
            client = self.clients.get(client_id)
            if client is None or (client.secret and client.secret != secret):
                return _error("invalid_client", "unknown client or wrong secret", 401)
            user = self.refresh_tokens.get(str(form.get("refresh_token", "")))
            if user is None:
                return _error("invalid_grant", "the refresh token is not valid")
            return self._issue(grant, user, refresh=str(form["refresh_token"]))
        if grant == JWT_GRANT:
            return self._jwt_grant(str(form.get("assertion", "")))
        if grant == DEVICE_GRANT:
            device = self.devices.get(str(form.get("device_code", "")))
            if device is None:
                return _error("expired_token", "the device code expired")
            if not device.user:
                return _error("authorization_pending", "the user has not signed in yet")
            del self.devices[str(form["device_code"])]
            return self._issue(grant, device.user, refresh=self.add_refresh_token(device.user))
        return _error("unsupported_grant_type", grant)

    def _jwt_grant(self, assertion: str) -> web.Response:
        try:
            unverified = jwt.decode(assertion, options={"verify_signature": False})
            key = self.service_accounts[unverified["iss"]]
            claims = jwt.decode(assertion, key, algorithms=["RS256"], options={"verify_aud": False})
        except (jwt.PyJWTError, KeyError) as exc:
            return _error("invalid_grant", f"Invalid JWT: {exc}")
        if "https://mail.google.com/" not in claims.get("scope", "").split():
            return _error("invalid_scope", "the mail scope was not asked for")
        return self._issue(JWT_GRANT, claims.get("sub") or claims["iss"])

    def _issue(self, grant: str, user: str, refresh: str = "") -> web.Response:
        if user in self.refused:
            return _error("invalid_grant", f"AADSTS65001: consent for {user} was withdrawn")
        self.grants.append((grant, user))
        token = "at-" + secrets.token_urlsafe(24)
        self.tokens[token] = IssuedToken(user, time.time() + self.ttl)
        body = {"access_token": token, "token_type": "Bearer", "expires_in": int(self.ttl)}
        if refresh:
            body["refresh_token"] = refresh
        return web.json_response(body)

    async def _introspect(self, request: web.Request) -> web.Response:
        self.introspections += 1
        form = await request.post()
        info = self.active(str(form.get("token", "")))
        if info is None:
            return web.json_response({"active": False})
        return web.json_response({"active": True, "username": info.user, "exp": info.expires_at})

    def active(self, token: str) -> IssuedToken | None:
        info = self.tokens.get(token)
        if info is None or info.expires_at <= time.time():
            return None
        return info


def _client_auth(request: web.Request, form) -> tuple[str, str]:
    """client_secret_basic (RFC 6749 §2.3.1) or client_secret_post."""
    header = request.headers.get("Authorization", "")
    if header.startswith("Basic "):
        raw = base64.b64decode(header[6:]).decode()
        cid, _, secret = raw.partition(":")
        return unquote_plus(cid), unquote_plus(secret)
    return str(form.get("client_id", "")), str(form.get("client_secret", ""))


def _error(error: str, description: str, status: int = 400) -> web.Response:
    return web.json_response({"error": error, "error_description": description}, status=status)


class RunningIssuer:
    """The issuer served over HTTPS on a loopback port 0 in its own thread."""

    def __init__(self, folder: Path, ttl: float = 3600.0):
        self.issuer = Issuer(ttl=ttl)
        self.ca = trustme.CA()
        self.ca_file = folder / "oauth-ca.pem"
        self.ca.cert_pem.write_to_path(str(self.ca_file))
        self.ca_file.chmod(0o644)
        self._ssl = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.ca.issue_cert("127.0.0.1", "localhost").configure_cert(self._ssl)
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="oauth-issuer", daemon=True)
        self.port = 0

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def start(self) -> RunningIssuer:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the OAuth issuer did not start")
        return self

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._serve())
        self._loop.run_forever()
        self._loop.run_until_complete(self._runner.cleanup())
        self._loop.close()

    async def _serve(self) -> None:
        self._runner = web.AppRunner(self.issuer.app())
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=self._ssl)
        await site.start()
        self.port = self._runner.addresses[0][1]
        self.issuer.base = self.url
        self._ready.set()

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


@contextlib.contextmanager
def trusted_issuer(folder: Path, monkeypatch, clients: dict[str, str]) -> Iterator[RunningIssuer]:
    """A running issuer whose CA the token libraries trust (REQUESTS_CA_BUNDLE, which requests
    reads: MSAL, google-auth and authlib all use it), with `clients` (id -> mailbox) registered
    under the secret "s3cret"."""
    running = RunningIssuer(folder).start()
    for client_id, mailbox in clients.items():
        running.issuer.add_client(client_id, "s3cret", mailbox)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(running.ca_file))
    try:
        yield running
    finally:
        running.stop()


def service_account_key(email: str, token_uri: str) -> tuple[str, str]:
    """A Google service account JSON key (as the console downloads it) and its public PEM."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    info = {
        "type": "service_account",
        "project_id": "gateway-test",
        "private_key_id": secrets.token_hex(20),
        "private_key": private,
        "client_email": email,
        "client_id": "1234567890",
        "token_uri": token_uri,
    }
    return json.dumps(info), public
