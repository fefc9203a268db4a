"""What a site's settings default to: the Meetings bundle's column and list names, RAPID's own API scope,
and the values some settings choose from. Pure data; `site_settings.py` reads SITES entries with it."""

DEFAULT_COLUMNS = {
    "title": "title",
    "meeting": "meeting",
    "start_date": "start_date",
    "end_date": "end_date",
    "all_day": "all_day",
    "location": "location",
    "description": "description",
    "invitees": "invitees",
    "guests": "guests",
    "status": "status",
    "sys_external_id": "sys_external_id",
    "organiser": "organiser",
    "email": "email",
    "subscription_id": "subscription_id",
    "resource": "resource",
    "expires": "expires",
    # Meeting Agendas (issue 15): the order (`rank` is a String system field), the owner (single lookup to
    # Principals), the minutes, and the single lookup to the event when the site has one (else a link)
    "agenda_order": "rank",
    "agenda_owner": "owner",
    "agenda_duration": "duration",
    "agenda_event": "meeting_event",
}

# RAPID's own application (its API's resource id): the certified Power Platform connector's
# `resourceUri` (microsoft/PowerPlatformConnectors, certified-connectors/RAPID Platform/apiProperties.json)
DEFAULT_RAPID_SCOPE = "cd5db0ec-1419-4ae6-9434-21cfb83fc42d/.default"
# How a multi-lookup (invitees, guests) is read; RAPID does not publish the JSON of a link (docs/rapid-api.md, "Multi-lookups are links, not columns"):
#   links  - the scoped links in the single item GET (`LinkedItems`)
#   query  - a list query on the target list: $filter=inScoped(<events list>, <column>, <item id>)
#   column - a plain column holding a list of ids (older or custom sites)
MULTI_LOOKUP_STRATEGIES = ("links", "query", "column")

# event.md ("Properties"): showAs is a freeBusyStatus, sensitivity a sensitivity
SHOW_AS = ("free", "tentative", "busy", "oof", "workingElsewhere", "unknown")
SENSITIVITIES = ("normal", "personal", "private", "confidential")

DEFAULT_LISTS = {
    "meetings": "Meetings",
    "events": "Meeting Events",
    "subscriptions": "Meeting Subscriptions",
    "principals": "Principals",
    "contacts": "External Contacts",
    "agendas": "Meeting Agendas",
}

# optional Meeting Events columns a feature writes or reads: each must be a column of its own
FEATURE_COLUMNS = ("private_column", "answers_column", "teams_column", "join_url_column", "conflicts_column",
                   "room_column", "room_status_column", "free_times_column")

# The mass-removal guard (sync/removal_guard.py): a site's removals in one hour may reach
# DEFAULT_REMOVAL_FRACTION x its linked events, at least 5 (a small site may lose a few) and at most
# DEFAULT_REMOVAL_LIMIT; past that they are held. 0.2: a fifth of a site's meetings gone in one hour is
# never ordinary, while a view filter, a lost right or a list restored from a backup hides far more (and a
# site of 20 meetings answering an empty list must not cancel them all). 50: no site loses more in an hour
# without an operator's word, however big (a year of a weekly meeting deleted at once waits for a release).
DEFAULT_REMOVAL_LIMIT = 50
DEFAULT_REMOVAL_FLOOR = 5   # removals an hour any site may see, however few its events
DEFAULT_REMOVAL_FRACTION = 0.2
