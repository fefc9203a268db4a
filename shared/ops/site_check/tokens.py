"""What the app's tokens say about it (read, not verified), and the fix when no token is issued: shared
by the RAPID and the Graph checks, which each ask for their own token."""

from __future__ import annotations

import base64
import json

from ...config import SiteConfig


def jwt_claims(token: str) -> dict:
    """The payload of a JWT, not verified (the check only reads what the token says about itself)."""
    try:
        payload = token.split(".")[1]
        return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        return {}


def token_fix(site: SiteConfig) -> str:
    return (f"check aad_tenant ({site.aad_tenant}), client_id ({site.client_id}) and the client secret or certificate "
            "setting; the secret must be the secret's value, not its id, and not expired")
