"""Who is calling: the bearer token, its expiry, and whether the caller is a Principal of the site.

- The token is an Azure AD token for RAPID's application (PowerPlatformConnectors "certified-connectors/
  RAPID Platform/apiProperties.json", `oAuthSettings.customParameters.resourceUri` =
  cd5db0ec-1419-4ae6-9434-21cfb83fc42d; here the site's `app_id`), of the site's Azure AD tenant.
- An expired token answers 401, or 400 as public clients report (docs/rapid-api.md, "An expired token may
  answer 400"):
  `RapidVariant.expired_token_status`. The error body `{"name": "TokenExpiredError", "message": "jwt
  expired"}` is a guess (the names jsonwebtoken uses; RAPID's API errors are `{name, message}`).
- The calling application must be added to the site as a Principal with rights (docs/rapid-api.md, "The app
  must be a Principal of the site");
  the 403 wording is the simulator's.
"""

from __future__ import annotations

import jwt

from ..base import HttpError, epoch_seconds


def read_claims(key: str, authorization: str | None) -> dict | None:
    """Claims of a well-signed `Bearer` token, expired or not; None when missing or forged."""
    if not authorization or not authorization.lower().startswith("bearer "):
        return None
    try:
        return jwt.decode(authorization[7:].strip(), key, algorithms=["HS256"],
                          options={"verify_aud": False, "verify_exp": False, "verify_nbf": False,
                                   "verify_iat": False, "require": ["exp", "aud", "tid"]})
    except jwt.PyJWTError:
        return None


def mint_person_token(key: str, aud: str, tid: str, oid: str, upn: str, lifetime: int = 3599) -> str:
    """A delegated (person's) token: no `idtyp: app`, so webhooks default to true for it."""
    now = epoch_seconds()
    claims = {"aud": aud, "iss": f"https://sts.windows.net/{tid}/", "iat": now, "nbf": now, "exp": now + lifetime,
              "tid": tid, "oid": oid, "sub": oid, "upn": upn, "name": upn.split("@")[0], "scp": "user_impersonation",
              "ver": "1.0"}
    return jwt.encode(claims, key, algorithm="HS256")


def is_application(claims: dict) -> bool:
    """Application users: app-only tokens (`idtyp: app`, as Azure AD v2 optional claim and mint_token
    set it), which is who gets `webhooks=false` by default (Rapid-Docs blog 1.30.12)."""
    return claims.get("idtyp") == "app"


def caller_ids(claims: dict) -> list[str]:
    """The ids an application principal may be registered under: appid (v1), azp (v2), oid."""
    return [str(claims[k]) for k in ("appid", "azp", "oid") if claims.get(k)]


def expired_error(status: int) -> HttpError:
    return HttpError(status, "TokenExpiredError", "jwt expired")


def unauthorized(message: str = "Invalid or missing bearer token for this site") -> HttpError:
    return HttpError(401, "Unauthorized", message)


def forbidden(principal: str, list_name: str | None) -> HttpError:
    what = f"list {list_name}" if list_name else "this site"
    return HttpError(403, "Forbidden", f"Principal {principal} has no access to {what}")
