"""One RAPID site's settings: `SiteConfig`, its defaults, and the reading of one `SITES` entry.

Each check names the first thing wrong and the entry it is in (`SITES[tenant/site]`), so an operator
fixes one line of the app settings. `ConfigError` (model/errors.py, re-exported here and by shared/config.py)
is what a site's checks, its credential's (site_credentials.py) and the app's raise.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .model.bounds import bounds_problem
from .model.errors import ConfigError
from .model.site_defaults import (DEFAULT_COLUMNS, DEFAULT_LISTS, DEFAULT_RAPID_SCOPE, DEFAULT_REMOVAL_FLOOR,
                                  DEFAULT_REMOVAL_FRACTION, DEFAULT_REMOVAL_LIMIT, FEATURE_COLUMNS, MULTI_LOOKUP_STRATEGIES, SENSITIVITIES,
                                  SHOW_AS)
from .site_credentials import site_credential

# tenant and site names as RAPID's URLs carry them: nothing that could make two keys meet ("a/b" + "c")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


@dataclass(frozen=True)
class SiteConfig:
    tenant: str
    site: str
    rapid_url: str
    rapid_scope: str
    aad_tenant: str
    client_id: str
    client_secret: str | None = field(default=None, repr=False)
    certificate: dict | None = field(default=None, repr=False)
    time_zone: str = "UTC"
    columns: dict = field(default_factory=dict)
    lists: dict = field(default_factory=dict)
    guests_as_attendees: bool = True
    on_outlook_delete: str = "cancel"  # or "delete"
    cancelled_status: str = "Cancelled"
    multi_lookup: str = "links"
    # optional Meeting Events column showing each item's sync state in plain words ("" = off)
    status_column: str = ""
    catch_up_minutes: int | None = None  # this site's site-side catch-up interval (None: CATCH_UP_MINUTES)
    # events people can recognise (applied when the event is created; "" / None = Outlook's own default)
    category: str = ""                    # an Outlook category name put on each event, e.g. "RAPID"
    show_as: str = ""                     # free | tentative | busy | oof | workingElsewhere | unknown
    reminder_minutes: int | None = None   # reminderMinutesBeforeStart
    sensitivity: str = ""                 # normal | personal | private | confidential
    private_column: str = ""              # optional Meeting Events column: truthy makes that event private
    # optional Meeting Events text column: the invitees' answers as Outlook tracks them ("" = off)
    answers_column: str = ""
    # Teams meetings (issue 14): the site's default, an optional per-item column (truthy/falsy overrides
    # the default), and an optional column the join URL is written to
    teams: bool = False
    teams_column: str = ""
    join_url_column: str = ""
    # optional Meeting Events text column: who is busy when the event is created or moved ("" = off)
    conflicts_column: str = ""
    # rooms (issue 23): a text column naming the event's room (matched to the tenant's room list), and one
    # the room's answer is written to; working hours named in the conflicts column; times free for everyone
    room_column: str = ""
    room_status_column: str = ""
    working_hours: bool = False
    free_times_column: str = ""
    agenda: bool = False  # the event's Meeting Agendas items, in rank order, at the end of its Outlook body
    # the mass-removal guard (sync/removal_guard.py): removals in one hour past removal_fraction x the site's
    # linked events (at least 5, at most removal_limit) are held for an operator
    removal_limit: int = DEFAULT_REMOVAL_LIMIT
    removal_floor: int = DEFAULT_REMOVAL_FLOOR
    removal_fraction: float = DEFAULT_REMOVAL_FRACTION
    # the mailboxes the site may use (clients/bounds.py): addresses in these domains and/or the members of this
    # Entra group (its object id; reading it needs GroupMember.Read.All); both empty = no bounds
    mailbox_domains: tuple[str, ...] = ()
    mailbox_group: str = ""

    @property
    def key(self) -> str:
        return f"{self.tenant}/{self.site}"

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)

    def col(self, name: str) -> str:
        return self.columns.get(name, DEFAULT_COLUMNS[name])

    def list_name(self, name: str) -> str:
        return self.lists.get(name, DEFAULT_LISTS[name])

    @property
    def credential(self):
        return self.certificate or self.client_secret


def https_url(value: str, name: str) -> str:
    """The URL without its trailing '/'; anything but https:// is refused (secrets and tokens travel on it)."""
    if not value.lower().startswith("https://"):
        raise ConfigError(f"{name} must be an https:// URL, not {value[:60]!r}")
    return value.rstrip("/")


def site_from(entry: dict, env) -> SiteConfig:
    """One SITES entry, checked in a fixed order (the first thing wrong is the one named)."""
    if not isinstance(entry, dict):
        raise ConfigError("SITES must be a list of objects, one per site")
    where = f"SITES[{entry.get('tenant')}/{entry.get('site')}]"
    _check_identity(entry, where)
    secret, certificate = site_credential(entry, env, where)
    _check_time_zone(entry, where)
    _check_directory(entry, where)
    _check_choices(entry, where)
    _check_feature_columns(entry, where)
    for flag in ("teams", "working_hours"):
        _check_flag(entry, flag, where)
    _check_needs(entry, where)
    _check_event_look(entry, where)
    _check_flag(entry, "agenda", where)
    _check_catch_up(entry, where)
    _check_removal_guard(entry, where)
    if problem := bounds_problem(entry):
        raise ConfigError(f"{where}: {problem}")
    unknown = set(entry.get("columns", {})) - set(DEFAULT_COLUMNS)
    if unknown:
        raise ConfigError(f"{where}: unknown column overrides {sorted(unknown)}")
    return _site_config(entry, secret, certificate)


def _check_identity(entry: dict, where: str) -> None:
    """The keys every site needs, names that make distinct keys, and an https RAPID URL."""
    missing = [k for k in ("tenant", "site", "rapid_url", "aad_tenant", "client_id") if not entry.get(k)]
    if missing:
        raise ConfigError(f"{where} is missing {', '.join(missing)}")
    for key in ("tenant", "site"):
        if not _NAME.match(str(entry[key])):
            raise ConfigError(f"{where}: {key} may hold only letters, digits, '.', '_' and '-'")
    https_url(str(entry["rapid_url"]), f"{where}: rapid_url")


def _check_time_zone(entry: dict, where: str) -> None:
    """An IANA zone that also has a Windows name: all-day events reach Graph under it."""
    try:
        zone = ZoneInfo(entry.get("time_zone", "UTC"))
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"{where}: unknown time_zone {entry.get('time_zone')!r}") from None
    from .model.mapping import windows_zone

    try:
        windows_zone(zone)
    except ValueError as e:
        raise ConfigError(f"{where}: {e}; choose an IANA zone that has one") from None


def _check_directory(entry: dict, where: str) -> None:
    """Graph's notifications carry the tenant's GUID (tenantId): a domain name would refuse them all."""
    try:
        uuid.UUID(entry["aad_tenant"])
    except ValueError:
        raise ConfigError(f"{where}: aad_tenant must be the directory (tenant) ID, a GUID, not "
                          f"{entry['aad_tenant']!r}: Entra admin center > Overview > Tenant ID") from None


def _check_choices(entry: dict, where: str) -> None:
    if entry.get("on_outlook_delete", "cancel") not in ("cancel", "delete"):
        raise ConfigError(f"{where}: on_outlook_delete must be 'cancel' or 'delete'")
    if entry.get("multi_lookup", "links") not in MULTI_LOOKUP_STRATEGIES:
        raise ConfigError(f"{where}: multi_lookup must be one of {', '.join(MULTI_LOOKUP_STRATEGIES)}")


def _check_feature_columns(entry: dict, where: str) -> None:
    """The status column and each feature's column: one of its own, never a mapped column or another's."""
    status_column = entry.get("status_column") or ""
    not_its_own = ConfigError(f"{where}: status_column must be the name of a text column of its own, not "
                              f"{status_column!r}")
    if not isinstance(status_column, str):
        raise not_its_own
    own_columns = {entry.get("columns", {}).get(k, v) for k, v in DEFAULT_COLUMNS.items()}
    if status_column in own_columns:
        raise not_its_own
    for key in FEATURE_COLUMNS:
        value = entry.get(key) or ""
        if not isinstance(value, str) or value in own_columns or (value and value == status_column):
            raise ConfigError(f"{where}: {key} must be the name of a column of its own, not {value!r}")
    named = [entry[key] for key in FEATURE_COLUMNS if entry.get(key)]
    if len(named) != len(set(named)):
        raise ConfigError(f"{where}: {', '.join(FEATURE_COLUMNS)} must be different columns")


def _check_needs(entry: dict, where: str) -> None:
    """Settings that say more about another's work need that one on."""
    for key, needs in (("room_status_column", "room_column"), ("free_times_column", "conflicts_column"),
                       ("working_hours", "conflicts_column")):
        if entry.get(key) and not entry.get(needs):
            raise ConfigError(f"{where}: {key} needs {needs} (it says more about what that one does)")


def _check_flag(entry: dict, key: str, where: str) -> None:
    if not isinstance(entry.get(key, False), bool):
        raise ConfigError(f"{where}: {key} must be true or false, not {entry.get(key)!r}")


def _check_event_look(entry: dict, where: str) -> None:
    """What makes the site's events recognisable in Outlook: category, show as, sensitivity, reminder."""
    category = entry.get("category") or ""
    if not isinstance(category, str) or len(category) > 255 or any(c in category for c in ",;\r\n"):
        raise ConfigError(f"{where}: category must be one Outlook category name (no commas), not {category!r}")
    if (entry.get("show_as") or "") not in ("",) + SHOW_AS:
        raise ConfigError(f"{where}: show_as must be one of {', '.join(SHOW_AS)}, not {entry.get('show_as')!r}")
    if (entry.get("sensitivity") or "") not in ("",) + SENSITIVITIES:
        raise ConfigError(f"{where}: sensitivity must be one of {', '.join(SENSITIVITIES)}, "
                          f"not {entry.get('sensitivity')!r}")
    reminder = entry.get("reminder_minutes")
    if reminder is not None and (isinstance(reminder, bool) or not isinstance(reminder, int)
                                 or not 0 <= reminder <= 40320):
        raise ConfigError(f"{where}: reminder_minutes must be a whole number of minutes from 0 to 40320 (4 weeks)")


def _check_catch_up(entry: dict, where: str) -> None:
    catch_up = entry.get("catch_up_minutes")
    if catch_up is not None and (isinstance(catch_up, bool) or not isinstance(catch_up, int) or catch_up < 1):
        raise ConfigError(f"{where}: catch_up_minutes must be a whole number of minutes, at least 1")


def _check_removal_guard(entry: dict, where: str) -> None:
    limit, fraction = entry.get("removal_limit", DEFAULT_REMOVAL_LIMIT), entry.get("removal_fraction", DEFAULT_REMOVAL_FRACTION)
    for name, value in (("removal_limit", limit), ("removal_floor", entry.get("removal_floor", DEFAULT_REMOVAL_FLOOR))):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ConfigError(f"{where}: {name} must be a whole number of removals per hour, 0 or more")
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 <= fraction <= 1:
        raise ConfigError(f"{where}: removal_fraction must be a number from 0 to 1 (a share of the linked events)")


def _site_config(entry: dict, secret: str | None, certificate: dict | None) -> SiteConfig:
    """The checked entry as a SiteConfig, with each setting's default filled in."""
    return SiteConfig(
        tenant=entry["tenant"],
        site=entry["site"],
        rapid_url=entry["rapid_url"].rstrip("/"),
        rapid_scope=entry.get("rapid_scope") or DEFAULT_RAPID_SCOPE,
        aad_tenant=str(uuid.UUID(entry["aad_tenant"])),
        client_id=entry["client_id"],
        client_secret=secret,
        certificate=certificate,
        time_zone=entry.get("time_zone", "UTC"),
        columns=dict(entry.get("columns", {})),
        lists=dict(entry.get("lists", {})),
        guests_as_attendees=bool(entry.get("guests_as_attendees", True)),
        on_outlook_delete=entry.get("on_outlook_delete", "cancel"),
        cancelled_status=entry.get("cancelled_status", "Cancelled"),
        multi_lookup=entry.get("multi_lookup", "links"),
        status_column=entry.get("status_column") or "",
        catch_up_minutes=entry.get("catch_up_minutes"),
        category=entry.get("category") or "",
        show_as=entry.get("show_as") or "",
        reminder_minutes=entry.get("reminder_minutes"),
        sensitivity=entry.get("sensitivity") or "",
        private_column=entry.get("private_column") or "",
        answers_column=entry.get("answers_column") or "",
        teams=entry.get("teams", False),
        teams_column=entry.get("teams_column") or "",
        join_url_column=entry.get("join_url_column") or "",
        conflicts_column=entry.get("conflicts_column") or "",
        room_column=entry.get("room_column") or "",
        room_status_column=entry.get("room_status_column") or "",
        working_hours=entry.get("working_hours", False),
        free_times_column=entry.get("free_times_column") or "",
        agenda=entry.get("agenda", False),
        removal_limit=entry.get("removal_limit", DEFAULT_REMOVAL_LIMIT),
        removal_floor=entry.get("removal_floor", DEFAULT_REMOVAL_FLOOR),
        removal_fraction=float(entry.get("removal_fraction", DEFAULT_REMOVAL_FRACTION)),
        mailbox_domains=tuple(dict.fromkeys(d.strip().lower() for d in entry.get("mailbox_domains", []))),
        mailbox_group=str(uuid.UUID(entry["mailbox_group"])) if entry.get("mailbox_group") else "",
    )
