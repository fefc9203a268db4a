"""An app scoped to a group of mailboxes in Exchange, and Entra groups with their members.

Scoping (RBAC for Applications: a role assignment with a management scope, learn.microsoft.com/exchange/
permissions-exo/application-rbac; or the legacy application access policy): `scope_app(tenant, client_id,
mailboxes)` lets the app reach those mailboxes only (None: tenant-wide, as an unscoped Entra grant does). A
mailbox outside answers every Exchange call (events, calendar, getSchedule, delta) with 403 ErrorAccessDenied;
GET /users/{id} is Entra's, not Exchange's, and is not scoped. The body, per the switch `scope_refusal`:
  "access-policy" (default): "Access to OData is disabled." - the only body Microsoft publishes for a mailbox
                  an app's scope leaves out (microsoft-graph-docs-contrib concepts/auth-limit-mailbox-access.md,
                  "Handling API errors")
  "denied":       "Access is denied. Check credentials and try again." - Graph's ErrorAccessDenied as answered
                  for a permission the app lacks (microsoftgraph/microsoft-graph-docs#3289); what RBAC for
                  Applications answers is not published, so the app must take either
Groups: GET /groups/{id}/transitiveMembers (api-reference/v1.0/api/group-list-transitivemembers.md; application
permissions GroupMember.Read.All, Group.Read.All, GroupMember.ReadWrite.All, Group.ReadWrite.All,
Directory.Read.All; nested groups flattened; directoryObjects with their @odata.type; `$top` up to 999, paged
by @odata.nextLink, concepts/paging.md). `add_group(tenant, members)` makes one (members: mailboxes or group ids).
"""

from __future__ import annotations

import uuid
from urllib.parse import quote, urlencode

from ..base import HttpError, Request, Response
from .model import User

GROUP_ROLES = ("GroupMember.Read.All", "Group.Read.All", "GroupMember.ReadWrite.All", "Group.ReadWrite.All",
               "Directory.Read.All")
SCOPE_MESSAGES = {"access-policy": "Access to OData is disabled.",
                  "denied": "Access is denied. Check credentials and try again."}
PAGE_SIZE, MAX_PAGE = 100, 999


class AppScopes:
    """Exchange scopes of apps (self.app_scopes) and Entra groups (self.groups); switch self.scope_refusal."""

    def _scopes_init(self, scope_refusal: str) -> None:
        if scope_refusal not in SCOPE_MESSAGES:
            raise ValueError(f"scope_refusal must be one of {', '.join(SCOPE_MESSAGES)}")
        self.scope_refusal = scope_refusal
        self.app_scopes: dict[tuple[str, str], frozenset[str] | None] = {}  # (tenant, app) -> user ids in scope
        self.groups: dict[str, tuple[str, list[str]]] = {}                  # group id -> (tenant, member ids)
        self.route("GET", r"/v1\.0/groups/(?P<group>[^/]+)/transitiveMembers", self._transitive_members)

    def scope_app(self, tenant_id: str, client_id: str, mailboxes) -> None:
        """The app may reach these mailboxes only (None: every mailbox of the tenant)."""
        ids = None if mailboxes is None else frozenset(self._must_user(m).id for m in mailboxes)
        with self.lock:
            self.app_scopes[(tenant_id, client_id)] = ids

    def add_group(self, tenant_id: str, members, id: str | None = None) -> str:
        """An Entra group; each member a mailbox (a user) or the id of another group (nested)."""
        group_id = id or str(uuid.uuid4())
        ids = [m if m in self.groups else self._must_user(m).id for m in members]
        with self.lock:
            self.groups[group_id] = (tenant_id, ids)
        return group_id

    def set_group_members(self, group_id: str, members) -> None:
        tenant = self.groups[group_id][0]
        self.add_group(tenant, members, id=group_id)

    def refuse_out_of_scope(self, claims: dict, user: User) -> None:
        """403 ErrorAccessDenied for a mailbox the calling app's Exchange scope leaves out."""
        with self.lock:
            scope = self.app_scopes.get((claims.get("tid", ""), claims.get("appid", "")))
        if scope is not None and user.id not in scope:
            raise HttpError(403, "ErrorAccessDenied", SCOPE_MESSAGES[self.scope_refusal])

    def _users_of(self, group_id: str, seen: set[str]) -> list[User]:
        found = []
        for member in self.groups.get(group_id, ("", []))[1]:
            if member in self.groups and member not in seen:
                seen.add(member)
                found += self._users_of(member, seen)
            elif member in self.users:
                found.append(self.users[member])
        return found

    def _transitive_members(self, req: Request) -> Response:
        claims = self._auth(req, GROUP_ROLES)
        group_id = req.params["group"]
        with self.lock:
            group = self.groups.get(group_id)
            if group is None or group[0] != claims["tid"]:
                raise HttpError(404, "Request_ResourceNotFound",
                                f"Resource '{group_id}' does not exist or one of its queried reference-property "
                                "objects are not present.")
            users = list({u.id: u for u in self._users_of(group_id, {group_id})}.values())
        rows = [{"@odata.type": "#microsoft.graph.user", "id": u.id, "mail": u.upn, "userPrincipalName": u.upn,
                 "displayName": u.display_name} for u in users]
        top = min(int(req.query.get("$top") or PAGE_SIZE), MAX_PAGE)
        skip = int(req.query.get("$skiptoken") or 0)
        if req.query.get("$select"):
            wanted = {s.strip().lower() for s in req.query["$select"].split(",")}
            rows = [{k: v for k, v in r.items() if k.startswith("@") or k == "id" or k.lower() in wanted} for r in rows]
        out = {"@odata.context": f"{self.graph_url}/$metadata#directoryObjects", "value": rows[skip: skip + top]}
        if skip + top < len(rows):
            query = {k: v for k, v in req.query.items() if k != "$skiptoken"} | {"$skiptoken": str(skip + top)}
            out["@odata.nextLink"] = f"{self.base_url}{req.path}?{urlencode(query, quote_via=quote)}"
        return Response(200, out)
