"""Access tokens from the providers' own libraries: MSAL, google-auth, authlib (blocking calls:
run them in a thread, as gateway/mailauth/tokens.py does).

The flows, by provider (config keys: gateway/config.py `OAuthKeys`; the admin's side: README
"Microsoft 365 and Google Workspace mailboxes"):
- microsoft client_credentials: MSAL `ConfidentialClientApplication.acquire_token_for_client`,
  scope `https://outlook.office365.com/.default` (Exchange Online application permissions
  IMAP.AccessAsApp and SMTP.SendAsApp; Microsoft Learn, "Authenticate an IMAP, POP or SMTP
  connection using OAuth").
- microsoft device_code: MSAL `PublicClientApplication`, the device authorization grant
  (RFC 8628) started by `mail-gateway mailbox connect`, then `acquire_token_by_refresh_token`
  with the stored refresh token; delegated scopes IMAP.AccessAsUser.All and SMTP.Send.
- google service_account: google-auth `service_account.Credentials` with domain-wide
  delegation, subject = the mailbox, scope `https://mail.google.com/` (the JWT bearer grant,
  RFC 7523).
- google refresh_token: google-auth `oauth2.credentials.Credentials` (an installed app's
  refresh token, RFC 6749 §6).
- generic client_credentials / refresh_token: authlib's `OAuth2Session` against `token_url`
  (RFC 6749 §4.4 and §6).
Every failure becomes TokenError with one line: the provider's `error` code and the first line
of its description, never a secret or a token.
"""

from __future__ import annotations

import datetime
import json
import time
from dataclasses import dataclass
from typing import Any

from gateway.config import OAuthKeys
from gateway.errors import TokenError

MICROSOFT_AUTHORITY = "https://login.microsoftonline.com"
OUTLOOK = "https://outlook.office365.com"
GOOGLE_TOKEN_URI = "https://oauth2.googleapis.com/token"
GOOGLE_MAIL_SCOPE = "https://mail.google.com/"
HTTP_TIMEOUT = 30  # seconds for one request to a token endpoint

# (provider, flow) -> the scopes asked for when `scope` is not set
DEFAULT_SCOPES = {
    ("microsoft", "client_credentials"): f"{OUTLOOK}/.default",
    # delegated: Microsoft Learn names these with outlook.office.com (an alias of the same API)
    ("microsoft", "device_code"): (
        "https://outlook.office.com/IMAP.AccessAsUser.All https://outlook.office.com/SMTP.Send"
    ),
    ("google", "service_account"): GOOGLE_MAIL_SCOPE,
    ("google", "refresh_token"): GOOGLE_MAIL_SCOPE,
}


@dataclass(frozen=True)
class Grant:
    """An access token, when it stops working (unix time), and a refresh token if one came."""

    access_token: str
    expires_at: float
    refresh_token: str = ""


def scopes(keys: OAuthKeys) -> list[str]:
    text = keys.scope or DEFAULT_SCOPES.get((keys.provider, keys.oauth_flow), "")
    return text.split()


def fetch(keys: OAuthKeys, user: str, refresh_token: str = "") -> Grant:
    """A new access token for `user` (the mailbox); `refresh_token` is the stored one of a
    delegated grant. Raises TokenError. Blocking (HTTP)."""
    flow = keys.oauth_flow
    try:
        if keys.provider == "microsoft":
            return _microsoft(keys, refresh_token)
        if keys.provider == "google":
            return _google(keys, user)
        if keys.provider == "generic":
            return _generic(keys, refresh_token)
    except TokenError:
        raise
    except Exception as exc:  # the libraries raise their own and requests' errors
        raise TokenError(f"{keys.provider} {flow}: {_one_line(exc)}") from None
    raise TokenError(f"unknown provider {keys.provider!r}")


# -- Microsoft (MSAL) -------------------------------------------------------------------------


def _msal_app(keys: OAuthKeys, confidential: bool) -> Any:
    import msal

    authority = f"{keys.authority or MICROSOFT_AUTHORITY}/{keys.tenant}"
    # instance discovery asks login.microsoftonline.com whether an authority is known: only
    # meaningful for Microsoft's own hosts (an overridden authority is the admin's choice)
    opts: dict[str, Any] = {
        "authority": authority,
        "timeout": HTTP_TIMEOUT,
        "instance_discovery": not keys.authority,
    }
    if confidential:
        return msal.ConfidentialClientApplication(
            keys.client_id, client_credential=str(keys.client_secret), **opts
        )
    return msal.PublicClientApplication(keys.client_id, **opts)


def _microsoft(keys: OAuthKeys, refresh_token: str) -> Grant:
    if keys.oauth_flow == "client_credentials":
        result = _msal_app(keys, True).acquire_token_for_client(scopes=scopes(keys))
    else:
        if not refresh_token:
            raise TokenError(
                "microsoft device_code: not connected yet; run `mail-gateway mailbox connect`"
            )
        result = _msal_app(keys, False).acquire_token_by_refresh_token(
            refresh_token, scopes=scopes(keys)
        )
    return _msal_grant(result, "microsoft " + keys.oauth_flow)


def _msal_grant(result: dict, what: str) -> Grant:
    if "access_token" not in result:
        raise TokenError(f"{what}: {_oauth_error(result)}")
    return Grant(
        result["access_token"],
        time.time() + float(result.get("expires_in", 3600)),
        result.get("refresh_token", ""),
    )


def device_flow_start(keys: OAuthKeys) -> dict:
    """Start the device authorization grant (RFC 8628 §3.1): a dict with `user_code`,
    `verification_uri`, `message` (MSAL's instructions for the person) and `expires_at`."""
    app = _msal_app(keys, False)
    flow = app.initiate_device_flow(scopes=scopes(keys))
    if "user_code" not in flow:
        raise TokenError(f"microsoft device_code: {_oauth_error(flow)}")
    flow["_app"] = app  # the same application polls for the grant
    return flow


def device_flow_finish(flow: dict) -> Grant:
    """Wait (polling at the provider's interval, RFC 8628 §3.4) until the person has signed in
    or the code expired; blocking."""
    app = flow.pop("_app")
    return _msal_grant(app.acquire_token_by_device_flow(flow), "microsoft device_code")


# -- Google (google-auth) ---------------------------------------------------------------------


def _google(keys: OAuthKeys, user: str) -> Grant:
    from google.auth.transport.requests import Request

    if keys.oauth_flow == "service_account":
        from google.oauth2 import service_account

        info = json.loads(str(keys.service_account_key))
        if keys.token_url:
            info["token_uri"] = keys.token_url
        creds: Any = service_account.Credentials.from_service_account_info(
            info, scopes=scopes(keys), subject=user
        )
    else:
        from google.oauth2.credentials import Credentials

        creds = Credentials(
            None,
            refresh_token=str(keys.refresh_token),
            token_uri=keys.token_url or GOOGLE_TOKEN_URI,
            client_id=keys.client_id,
            client_secret=str(keys.client_secret),
            scopes=scopes(keys),
        )
    creds.refresh(Request())
    if creds.expiry is None:
        expires_at = time.time() + 3600
    else:  # google-auth keeps a naive datetime in UTC
        expires_at = creds.expiry.replace(tzinfo=datetime.UTC).timestamp()
    return Grant(creds.token, expires_at, getattr(creds, "refresh_token", "") or "")


# -- generic (authlib) ------------------------------------------------------------------------


def _generic(keys: OAuthKeys, stored_refresh: str) -> Grant:
    from authlib.integrations.requests_client import OAuth2Session

    scope = " ".join(scopes(keys)) or None
    with OAuth2Session(keys.client_id, str(keys.client_secret) or None, scope=scope) as session:
        if keys.oauth_flow == "client_credentials":
            token = session.fetch_token(
                keys.token_url, grant_type="client_credentials", timeout=HTTP_TIMEOUT
            )
        else:
            token = session.refresh_token(
                keys.token_url,
                refresh_token=stored_refresh or str(keys.refresh_token),
                timeout=HTTP_TIMEOUT,
            )
    if "access_token" not in token:
        raise TokenError(f"generic {keys.oauth_flow}: {_oauth_error(token)}")
    expires_at = token.get("expires_at") or time.time() + float(token.get("expires_in", 3600))
    return Grant(token["access_token"], float(expires_at), token.get("refresh_token", ""))


# -- messages -----------------------------------------------------------------------------------


def _oauth_error(body: dict) -> str:
    """RFC 6749 §5.2's `error` and the first line of `error_description` (Entra appends trace
    and correlation ids on later lines)."""
    error = str(body.get("error") or "no access_token in the answer")
    desc = str(body.get("error_description") or "").strip().splitlines()
    return f"{error}: {desc[0][:200]}" if desc else error


def _one_line(exc: BaseException) -> str:
    error = getattr(exc, "error", None)  # authlib's OAuthError
    desc = getattr(exc, "description", None)
    if error:
        return _oauth_error({"error": error, "error_description": desc or ""})
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:200]}" if text else type(exc).__name__
