"""The Microsoft Graph application permissions the app registration holds: ONE list, read by the site check
(shared/ops/site_check/graph_permissions.py) and by the setup script (infra/setup_app.py), so what is
granted and what is checked cannot drift apart (tests/test_setup_app.py asserts they agree).

Least privilege: every site needs `Calendars.ReadWrite` alone (events, their subscriptions, the calendar's
Teams providers, and `getSchedule` for conflicts_column, which takes Calendars.ReadBasic, Read or ReadWrite).
A permission beyond it is asked for only when a switch that needs it is on: an OPTION the operator picks for
the whole app registration, or a FEATURE (a SITES key) a site turns on. Pure data.
"""

from __future__ import annotations

# Microsoft Graph's own application id: the resourceAppId of its requiredResourceAccess entry
GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"

# Application permission (app role) ids, from the published "All permissions and IDs" table of the Microsoft
# Graph permissions reference (https://learn.microsoft.com/graph/permissions-reference#all-permissions-and-ids;
# microsoftgraph/microsoft-graph-docs-contrib, concepts/includes/permissions-ids.md, rows "| Application |")
ROLE_IDS = {
    "Calendars.ReadWrite": "ef54d2bf-783f-4e0f-bca1-3210c0444d99",
    "User.Read.All": "df021288-bdef-4463-88db-98f22de89214",
    "GroupMember.Read.All": "98830695-27a2-44f7-8c18-0c3ebc9698f6",
    "Place.Read.All": "913b9306-0ce1-42b8-9137-6a7df690a760",
}

# what every site needs
ALWAYS = ("Calendars.ReadWrite",)

# app-wide options: the setup script's --with NAME; the site check probes what they allow when granted
OPTIONS = {
    # GET /users/{upn} (user-get.md: User.Read.All) to subscribe by object id, as Graph prefers, and
    # translateExchangeIds for the one-time move to immutable ids; without it the app subscribes by UPN
    "object-ids": ("User.Read.All",),
}

# per-site features (SITES keys) that need more than ALWAYS, each with the permissions it adds. Teams meetings,
# conflicts, answers and the agenda all live within Calendars.ReadWrite. A feature that needs more adds its
# line here; the site check then requires it for sites that turn it on.
FEATURES: dict[str, tuple[str, ...]] = {
    # a site bounded by an Entra group reads its members: GET /groups/{id}/transitiveMembers
    # (group-list-transitivemembers.md: GroupMember.Read.All, least privileged) - clients/bounds.py
    "mailbox_group": ("GroupMember.Read.All",),
    # a site with rooms reads the tenant's room list: GET /places/microsoft.graph.room (api/place-list.md,
    # "Permissions": Place.Read.All, the only application permission) - features/rooms.py
    "room_column": ("Place.Read.All",),
}


def permissions(switches=()) -> list[str]:
    """The permissions for these switches (OPTIONS or FEATURES names), ALWAYS first, no repeats."""
    unknown = [s for s in switches if s not in OPTIONS and s not in FEATURES]
    if unknown:
        raise ValueError(f"unknown switch {', '.join(unknown)} (known: {', '.join(sorted({**OPTIONS, **FEATURES}))})")
    names = list(ALWAYS)
    for switch in switches:
        names += [p for p in OPTIONS.get(switch, FEATURES.get(switch, ())) if p not in names]
    return names


def site_features(site) -> list[str]:
    """The FEATURES a site turns on (its setting is set and truthy)."""
    return [name for name in FEATURES if getattr(site, name, None)]


def required_resource_access(names: list[str]) -> list[dict]:
    """The app manifest's requiredResourceAccess for these Graph application permissions
    (resources/requiredresourceaccess.md: resourceAppId, resourceAccess [{id, type "Role"}])."""
    return [{"resourceAppId": GRAPH_APP_ID,
             "resourceAccess": [{"id": ROLE_IDS[name], "type": "Role"} for name in names]}]
