"""The identity platform (client credentials: openid-configuration, token endpoint) and /users.

api-reference/v1.0/api/user-get.md (Permissions: User.Read.All for an app); app roles ride in the
token's `roles` claim and each endpoint checks its own (model.READ_USERS, READ_CALENDARS...).
"""

from __future__ import annotations

import secrets
import uuid


from ..base import HttpError, Request, Response, mint_token, read_token, utcnow
from .assertions import assertion_refusal
from .model import GRAPH_AUDIENCE, DEFAULT_ROLES, READ_USERS, WRITE_CALENDARS, User, App


class IdentityPlatform:
    """App registrations, users and tokens; every Graph endpoint checks the app roles it needs."""

    # tokens issued before this (epoch seconds) are refused with 401, as a revoked or early-expired one is
    refuse_tokens_issued_before: float | None = None

    def register_app(self, tenant_id: str, client_id: str, secret: str | None = None,
                     certificate_pem: str | None = None, roles=DEFAULT_ROLES) -> App:
        """An app registration; `roles` are the application permissions an admin consented to."""
        app = App(tenant_id, client_id, secret, certificate_pem, tuple(roles))
        with self.lock:
            self.apps[(tenant_id, client_id)] = app
        return app

    def add_user(self, tenant_id: str, upn: str, display_name: str | None = None, id: str | None = None) -> str:
        user = User(id or str(uuid.uuid4()), tenant_id, upn, display_name or upn.split("@")[0])
        with self.lock:
            self.users[user.id] = user
            self.calendars.setdefault(user.id, {})
            self._removed.setdefault(user.id, {})
        return user.id

    def set_mailbox_state(self, mailbox: str, state: str) -> None:
        """A mailbox Graph can no longer see, its events kept: "de-licensed" (its Exchange Online licence
        removed) or "soft-deleted" (its user deleted, restorable for 30 days); "available" again.
        Both answer every /users/{id}/... call with 404 MailboxNotEnabledForRESTAPI, "The mailbox is either
        inactive, soft-deleted, or is hosted on-premise." (the body reported in microsoftgraph/
        msgraph-sdk-javascript#1756 and aomail-ai/aomail-app#18, both pointing at a missing licence;
        Microsoft Q&A 4376157: an event call on an inactive or soft-deleted mailbox answers 404 like a
        deleted event). The code, not the status, tells it from ErrorItemNotFound
        (docs/platform-facts.md, "A 404 is not always a deletion")."""
        if state not in ("de-licensed", "soft-deleted", "available"):
            raise ValueError(f"unknown mailbox state {state!r}")
        user = self._must_user(mailbox)
        with self.lock:
            if state == "available":
                self.unavailable.pop(user.id, None)
            else:
                self.unavailable[user.id] = state

    def mint_token(self, tenant_id: str, app_id: str = "sim-app", aud: str = GRAPH_AUDIENCE, roles=None) -> str:
        """A token as the token endpoint would issue it: the registered app's roles unless `roles` is given."""
        if roles is None:
            with self.lock:
                app = self.apps.get((tenant_id, app_id))
            roles = app.roles if app else DEFAULT_ROLES
        return mint_token(self.token_key, aud, tenant_id, app_id, roles=roles)

    def token_requests(self, tenant: str | None = None) -> int:
        """Tokens issued by the token endpoint (for one tenant, or all)."""
        with self.lock:
            return self._tokens_issued.get(tenant, 0) if tenant else sum(self._tokens_issued.values())

    def user(self, mailbox: str, tenant_id: str | None = None) -> User | None:
        key = mailbox.lower()
        with self.lock:
            for u in self.users.values():
                if (u.id.lower() == key or u.upn.lower() == key) and tenant_id in (None, u.tenant_id):
                    return u
        return None

    def _mailbox_key(self, ident: str) -> str:
        user = self.user(ident)
        return user.id if user else ident.lower()

    def _must_user(self, mailbox: str) -> User:
        user = self.user(mailbox)
        if not user:
            raise KeyError(f"unknown mailbox {mailbox!r}")
        return user

    def _tenant_known(self, tenant: str) -> bool:
        with self.lock:
            return any(a.tenant_id == tenant for a in self.apps.values()) or \
                any(u.tenant_id == tenant for u in self.users.values())

    def _aad_error(self, status: int, error: str, code: int, description: str) -> Response:
        now = utcnow()
        return Response(status, {
            "error": error, "error_description": f"AADSTS{code}: {description} Trace ID: {uuid.uuid4()} "
                                                 f"Correlation ID: {uuid.uuid4()} Timestamp: {now:%Y-%m-%d %H:%M:%SZ}",
            "error_codes": [code], "timestamp": f"{now:%Y-%m-%d %H:%M:%SZ}", "trace_id": str(uuid.uuid4()),
            "correlation_id": str(uuid.uuid4()), "error_uri": f"{self.base_url}/error?code={code}"})

    def _openid(self, req: Request) -> Response:
        tenant = req.params["tenant"]
        if not self._tenant_known(tenant):
            return self._aad_error(400, "invalid_tenant", 90002, f"Tenant '{tenant}' not found. Check to make "
                                   "sure you have the correct tenant ID and are signing into the correct cloud.")
        t = f"{self.base_url}/{tenant}"
        return Response(200, {
            "token_endpoint": f"{t}/oauth2/v2.0/token",
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
            "jwks_uri": f"{t}/discovery/v2.0/keys",
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "issuer": f"{t}/v2.0",
            "request_uri_parameter_supported": False,
            "userinfo_endpoint": f"{self.base_url}/oidc/userinfo",
            "authorization_endpoint": f"{t}/oauth2/v2.0/authorize",
            "device_authorization_endpoint": f"{t}/oauth2/v2.0/devicecode",
            "http_logout_supported": True,
            "frontchannel_logout_supported": True,
            "end_session_endpoint": f"{t}/oauth2/v2.0/logout",
            "claims_supported": ["sub", "iss", "aud", "exp", "iat", "nonce", "tid"],
            "tenant_region_scope": "EU",
            "cloud_instance_name": "microsoftonline.com",
            "cloud_graph_host_name": "graph.windows.net",
            "msgraph_host": "graph.microsoft.com",
        }, content_type="application/json; charset=utf-8")

    def _token(self, req: Request) -> Response:
        tenant = req.params["tenant"]
        form = req.body() if isinstance(req.body(), dict) else {}
        if not self._tenant_known(tenant):
            return self._aad_error(400, "invalid_request", 90002, f"Tenant '{tenant}' not found. Check to make "
                                   "sure you have the correct tenant ID and are signing into the correct cloud.")
        if form.get("grant_type") != "client_credentials":
            return self._aad_error(400, "unsupported_grant_type", 70003,
                                   "The app requested an unsupported grant type.")
        client_id = form.get("client_id", "")
        with self.lock:
            app = self.apps.get((tenant, client_id))
        if app is None:
            return self._aad_error(400, "unauthorized_client", 700016,
                                   f"Application with identifier '{client_id}' was not found in the directory "
                                   f"'{tenant}'.")
        if refused := self._client_refused(app, form, tenant):
            return refused
        scopes = form.get("scope", "").split()
        resource = next((s[: -len("/.default")] for s in scopes if s.endswith("/.default")), None)
        if resource is None:
            return self._aad_error(400, "invalid_scope", 1002012, f"The provided value for scope "
                                   f"{form.get('scope', '')} is not valid. Client credential flows must have a "
                                   f"scope value with /.default suffixed to the resource identifier "
                                   f"(application ID URI).")
        with self.lock:
            self._tokens_issued[tenant] = self._tokens_issued.get(tenant, 0) + 1
        return Response(200, {"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599,
                              "access_token": mint_token(self.token_key, resource, tenant, client_id,
                                                         roles=app.roles if resource == GRAPH_AUDIENCE else ())},
                        headers={"Cache-Control": "no-store, no-cache", "Pragma": "no-cache"},
                        content_type="application/json; charset=utf-8")

    def _client_refused(self, app: App, form: dict, tenant: str) -> Response | None:
        """None when the client secret or the certificate's client assertion (assertions.py) proves the app."""
        if "client_assertion" in form:
            refusal = assertion_refusal(app, form["client_assertion"], f"{self.base_url}/{tenant}/oauth2/v2.0/token")
            return self._aad_error(401, "invalid_client", *refusal) if refusal else None
        if app.secret is not None and secrets.compare_digest(form.get("client_secret", ""), app.secret):
            return None
        return self._aad_error(401, "invalid_client", 7000215, "Invalid client secret provided. Ensure the secret "
                               "being sent in the request is the client secret value, not the client secret ID, for a "
                               f"secret added to app '{app.client_id}'.")

    def _auth(self, req: Request, roles: tuple[str, ...] = ()) -> dict:
        """The token's claims; 403 when it carries none of `roles` (the endpoint's permissions)."""
        authorization = req.header("Authorization")
        if not authorization:
            raise HttpError(401, "InvalidAuthenticationToken", "Access token is empty.")
        claims = read_token(self.token_key, authorization)
        refused_before = self.refuse_tokens_issued_before
        if claims is None or (refused_before is not None and claims.get("iat", 0) < refused_before):
            # a token revoked or expired before its client thought so: Graph answers 401 InvalidAuthenticationToken
            # (api-reference/v1.0/resources/errors.md: 401 "Required authentication information is either
            # missing or not valid for the resource"; the client gets a new token and tries again)
            raise HttpError(401, "InvalidAuthenticationToken", "Access token validation failure.")
        if claims.get("aud") not in (GRAPH_AUDIENCE, GRAPH_AUDIENCE + "/"):
            raise HttpError(401, "InvalidAuthenticationToken", "Access token validation failure. Invalid audience.")
        if roles and not set(claims.get("roles") or ()) & set(roles):
            if roles == READ_USERS or "GroupMember.Read.All" in roles:  # Entra's directory answers its own way
                raise HttpError(403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")
            raise HttpError(403, "ErrorAccessDenied", "Access is denied. Check credentials and try again.")
        return claims

    def _mailbox(self, req: Request, roles: tuple[str, ...] = WRITE_CALENDARS) -> tuple[dict, User]:
        claims = self._auth(req, roles)
        ident = req.params["u"]
        user = self.user(ident, claims["tid"])
        if user is None:
            raise HttpError(404, "ErrorInvalidUser", f"The requested user '{ident}' is invalid.")
        if user.id in self.unavailable:  # set_mailbox_state: de-licensed or soft-deleted
            raise HttpError(404, "MailboxNotEnabledForRESTAPI",
                            "The mailbox is either inactive, soft-deleted, or is hosted on-premise.")
        if roles != READ_USERS:  # Exchange's scope of the app (scope.py); GET /users is Entra's
            self.refuse_out_of_scope(claims, user)
        return claims, user

    def _get_user(self, req: Request) -> Response:
        _, user = self._mailbox(req, READ_USERS)
        out = {"@odata.context": f"{self.graph_url}/$metadata#users/$entity", **user.to_json()}
        if req.query.get("$select"):
            wanted = {s.strip().lower() for s in req.query["$select"].split(",")}
            out = {k: v for k, v in out.items() if k.startswith("@") or k == "id" or k.lower() in wanted}
        return Response(200, out)
