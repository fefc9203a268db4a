"""What Exchange (behind Graph's Outlook resources) does to the values it stores and sends back,
each following the page of microsoftgraph/microsoft-graph-docs-contrib named beside it:
time zone names, change keys and etags, notification `resource` spellings, HTML bodies.
"""

from __future__ import annotations

import base64
import html
import itertools
import os
from html.parser import HTMLParser
from zoneinfo import ZoneInfo

from tzlocal.windows_tz import win_tz

from ..base import HttpError

# api-reference/v1.0/resources/datetimetimezone.md, "Properties": timeZone is "any of the time zones
# supported by Windows" (CLDR's windowsZones list, shipped as tzlocal's win_tz) "as well as the following
# time zones names". Anything else: 400 TimeZoneNotSupportedException (microsoft-graph-docs#4758).
# The page writes two of them with a second name in brackets: both spellings are taken.
GRAPH_EXTRA_ZONES = frozenset("""
Etc/GMT+12 Etc/GMT+11 Pacific/Honolulu America/Anchorage America/Santa_Isabel America/Los_Angeles
America/Phoenix America/Chihuahua America/Denver America/Guatemala America/Chicago America/Mexico_City
America/Regina America/Bogota America/New_York America/Indiana/Indianapolis America/Caracas America/Asuncion
America/Halifax America/Cuiaba America/La_Paz America/Santiago America/St_Johns America/Sao_Paulo
America/Argentina/Buenos_Aires America/Cayenne America/Godthab America/Montevideo America/Bahia Etc/GMT+2
Atlantic/Azores Atlantic/Cape_Verde Africa/Casablanca Etc/GMT Europe/London Atlantic/Reykjavik Europe/Berlin
Europe/Budapest Europe/Paris Europe/Warsaw Africa/Lagos Africa/Windhoek Europe/Bucharest Asia/Beirut
Africa/Cairo Asia/Damascus Africa/Johannesburg Europe/Kyiv Europe/Kiev Europe/Istanbul Asia/Jerusalem
Asia/Amman Asia/Baghdad Europe/Kaliningrad Asia/Riyadh Africa/Nairobi Asia/Tehran Asia/Dubai Asia/Baku
Europe/Moscow Indian/Mauritius Asia/Tbilisi Asia/Yerevan Asia/Kabul Asia/Karachi Asia/Toshkent Asia/Tashkent
Asia/Kolkata Asia/Colombo Asia/Kathmandu Asia/Astana Asia/Almaty Asia/Dhaka Asia/Yekaterinburg Asia/Yangon
Asia/Rangoon Asia/Bangkok Asia/Novosibirsk Asia/Shanghai Asia/Krasnoyarsk Asia/Singapore Australia/Perth
Asia/Taipei Asia/Ulaanbaatar Asia/Irkutsk Asia/Tokyo Asia/Seoul Australia/Adelaide Australia/Darwin
Australia/Brisbane Australia/Sydney Pacific/Port_Moresby Australia/Hobart Asia/Yakutsk Pacific/Guadalcanal
Asia/Vladivostok Pacific/Auckland Etc/GMT-12 Pacific/Fiji Asia/Magadan Pacific/Tongatapu Pacific/Apia
Pacific/Kiritimati""".split())
_SPELLED_ODDLY = {"Asia/Toshkent": "Asia/Tashkent", "Asia/Astana": "Asia/Almaty"}


def zone(name: str) -> ZoneInfo:
    """The zone a dateTimeTimeZone.timeZone names, or Graph's refusal."""
    iana = win_tz.get(name) or (_SPELLED_ODDLY.get(name, name) if name in GRAPH_EXTRA_ZONES else None)
    if iana is None:
        raise HttpError(400, "TimeZoneNotSupportedException",
                        f"A valid TimeZone value must be specified. The following TimeZone value is not "
                        f"supported: '{name}'.")
    return ZoneInfo(iana)


def zone_known(name: str) -> bool:
    try:
        zone(name)
    except HttpError:
        return False
    return True


# -- change keys and etags -------------------------------------------------------------------
# api-reference/v1.0/resources/event.md: changeKey "identifies the version of the event object";
# every edit changes it. An event's own @odata.etag is W/"<changeKey>". A change notification's
# resourceData.@odata.etag is Exchange's change key: an 8-byte header (type 9, length 22) before the
# same 22 bytes (concepts/outlook-change-notifications-overview.md and the examples across the
# api-reference pages: W/"CQAAABYAAAD…"). The two never compare equal as strings.
_ETAG_HEADER = b"\x09\x00\x00\x00\x16\x00\x00\x00"


def new_change_key() -> str:
    return base64.b64encode(os.urandom(22)).decode()


def notification_etag(change_key: str, form: str = "exchange") -> str:
    """`exchange`: W/"CQAAABYAAAD…" as Graph sends it; `opaque`: an etag no shortcut can decode."""
    if form == "opaque":
        return f'W/"{base64.b64encode(os.urandom(30)).decode()}"'
    return f'W/"{base64.b64encode(_ETAG_HEADER + base64.b64decode(change_key)).decode()}"'


# -- notification resource spellings ---------------------------------------------------------
# The published examples spell the same resource several ways: "Users/{id}/Events/{id}"
# (concepts/outlook-change-notifications-overview.md, concepts/change-notifications-delivery-webhooks.md),
# "users/{user-guid}@{tenant-guid}/events/{id}" and the OData key form "Users('{id}')/Events('{id}')"
# (the @odata.id of the api-reference examples); docs/platform-facts.md, "Notification resources come in
# several spellings". Graph may use any.
RESOURCE_SPELLINGS = {
    "Users/{user}/Events/{event}": lambda u, t, e: f"Users/{u}/Events/{e}",
    "users/{user}@{tenant}/events/{event}": lambda u, t, e: f"users/{u}@{t}/events/{e}",
    "Users('{user}')/Events('{event}')": lambda u, t, e: f"Users('{u}')/Events('{e}')",
}


class ResourceSpeller:
    """`rotate` (the default: every spelling in turn) or one of RESOURCE_SPELLINGS."""

    def __init__(self, spelling: str = "rotate"):
        self.spelling = spelling
        self._turn = itertools.cycle(RESOURCE_SPELLINGS)

    def __call__(self, user_id: str, tenant_id: str, event_id: str) -> str:
        key = next(self._turn) if self.spelling == "rotate" else self.spelling
        return RESOURCE_SPELLINGS[key](user_id, tenant_id, event_id)


# -- HTML bodies -----------------------------------------------------------------------------
# Exchange stores HTML bodies as documents of its own making (api-reference/v1.0/resources/itembody.md;
# every event and message example answers `<html>\r\n<head>\r\n<meta http-equiv="Content-Type" …>
# \r\n</head>\r\n<body>\r\n…</body>\r\n</html>\r\n`): it re-serialises what it was given, adds CRLFs,
# drops scripts and comments, and wraps loose text in its own <div class="elementToProof">.
HTML_HEAD = ('<html>\r\n<head>\r\n<meta http-equiv="Content-Type" content="text/html; charset=utf-8">\r\n'
             '</head>\r\n<body>\r\n')
HTML_TAIL = "</body>\r\n</html>\r\n"
_VOID = {"br", "hr", "img", "meta", "link", "input", "col", "area", "base", "wbr"}
_BLOCKS = {"p", "div", "ul", "ol", "li", "table", "thead", "tbody", "tfoot", "tr", "td", "th", "h1", "h2", "h3",
           "h4", "h5", "h6", "blockquote", "pre", "hr", "section", "article", "header", "footer", "dl", "dt", "dd",
           "center", "address", "form"}
_DROPPED = {"script", "head", "title", "style"}  # and their content
_DOCUMENT = {"html", "body", "meta", "link", "!doctype"}


class _Rewrap(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.open: list[str] = []   # elements of the body content still open
        self.skipping = 0           # inside a dropped element
        self.loose: list[str] = []  # top-level inline content waiting for its <div>
        self.loose_run = False      # the outermost open element went into `loose`

    def _loose(self, inline: bool) -> bool:
        """Inline content outside any block, and whatever sits inside such content, goes in the <div>."""
        return self.loose_run if self.open else inline

    def _emit(self, text: str, loose: bool) -> None:
        if loose:
            self.loose.append(text)
            return
        self._flush()
        self.out.append(text)

    def _flush(self) -> None:
        if "".join(self.loose).strip():
            self.out.append('<div class="elementToProof">' + "".join(self.loose) + "</div>\r\n")
        self.loose = []

    def handle_starttag(self, tag, attrs):
        if tag in _DROPPED:
            self.skipping += 1
        if self.skipping or tag in _DOCUMENT:
            return
        text = "<" + tag + "".join(f' {k}="{html.escape(v or "", quote=True)}"' for k, v in attrs) + ">"
        loose = self._loose(tag not in _BLOCKS)
        self._emit(text + ("" if loose or tag != "br" else "\r\n"), loose)
        if tag not in _VOID:
            self.loose_run = loose if not self.open else self.loose_run
            self.open.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if tag not in _VOID and not self.skipping and tag not in _DOCUMENT:
            self.handle_endtag(tag)

    def handle_endtag(self, tag):
        if tag in _DROPPED:
            self.skipping = max(0, self.skipping - 1)
            return
        if self.skipping or tag in _DOCUMENT or tag in _VOID or tag not in self.open:
            return
        while self.open and self.open[-1] != tag:  # close what was left open inside it, as a parser would
            self.handle_endtag(self.open[-1])
        self.open.pop()
        inline = tag not in _BLOCKS
        self._emit(f"</{tag}>" + ("" if inline else "\r\n"), self._loose(inline))

    def handle_data(self, data):
        if self.skipping:
            return
        loose = self._loose(True)
        if not self.loose and not self.open and not data.strip():
            return  # whitespace between top-level blocks: Exchange writes its own CRLFs
        self._emit(html.escape(data, quote=False).replace("\xa0", "&nbsp;"), loose)

    def result(self) -> str:
        self.close()
        while self.open:
            self.handle_endtag(self.open[-1])
        self._flush()
        return HTML_HEAD + "".join(self.out) + HTML_TAIL


def exchange_html(content: str) -> str:
    """The document Exchange stores for an HTML body it was sent."""
    parser = _Rewrap()
    parser.feed(content)
    return parser.result()


# concepts/outlook-calendar-online-meetings.md, the answers to "Create and make meeting available as an
# online meeting" and "Update a meeting to make it available as an online meeting": once an event is a
# Teams meeting, its body ends with this block (a separator, Teams' "me-email-text" <div> holding the join
# link, dial-in and meeting options, a separator), and `onlineMeeting` carries joinUrl, conferenceId and
# tollNumber. Markup as the page shows it (CRLFs and all), with this meeting's values.
_SEPARATOR = ('<div style="width:100%; height:20px"><span style="white-space:nowrap; color:gray; opacity:.36">'
              + "_" * 80 + '</span>\r\n</div>\r\n')
TOLL_NUMBER = "+1 323-555-0166"


def teams_meeting(tenant_id: str, organizer_id: str) -> dict:
    """A new Teams meeting's onlineMeeting (onlinemeetinginfo.md), join URL in the page's form."""
    thread = base64.b64encode(os.urandom(27)).decode().rstrip("=").replace("+", "A").replace("/", "B")
    context = f"%7b%22Tid%22%3a%22{tenant_id}%22%2c%22Oid%22%3a%22{organizer_id}%22%7d"
    return {"joinUrl": f"https://teams.microsoft.com/l/meetup-join/19%3ameeting_{thread}%40thread.v2/0?context={context}",
            "conferenceId": str(int.from_bytes(os.urandom(4), "big") % 900_000_000 + 100_000_000),
            "tollNumber": TOLL_NUMBER}


def teams_block(meeting: dict) -> str:
    join = html.escape(meeting["joinUrl"], quote=True)
    conference = meeting["conferenceId"]
    spaced = f"{conference[:3]} {conference[3:6]} {conference[6:]}#"
    link = "font-size:12px; text-decoration:none; color:#6264a7"
    return (
        _SEPARATOR +
        '<div class="me-email-text" style="color:#252424; font-family:\'Segoe UI\',\'Helvetica Neue\',Helvetica,Arial,'
        'sans-serif">\r\n<div style="margin-top:24px; margin-bottom:10px"><a class="me-email-headline" '
        f'href="{join}" target="_blank" rel="noreferrer noopener" style="font-size:18px; font-family:\'Segoe UI '
        'Semibold\',\'Segoe UI\',\'Helvetica Neue\',Helvetica,Arial,sans-serif; text-decoration:underline; '
        'color:#6264a7">Join\r\n Microsoft Teams Meeting</a> </div>\r\n<div>\r\n<div><a class="me-email-link" '
        f'href="tel:&#43;1 323-886-7531,,{conference}# " target="_blank" rel="noreferrer noopener" '
        'style="font-size:14px; text-decoration:none; color:#6264a7">&#43;1 323-886-7531</a>\r\n<span '
        'style="font-size:12px">&nbsp; United States, Los Angeles (Toll) </span></div>\r\n</div>\r\n'
        '<div style="margin-top:10px; margin-bottom:20px"><span style="font-size:12px">Conference ID:\r\n</span>'
        f'<span style="font-size:14px">{spaced} </span></div>\r\n<div style="margin-bottom:24px"><a '
        f'class="me-email-link" target="_blank" href="https://dialin.teams.microsoft.com/1f9a0550?id={conference}" '
        f'rel="noreferrer noopener" style="{link}">Local\r\n numbers</a> | <a class="me-email-link" target="_blank" '
        f'href="https://aka.ms/JoinTeamsMeeting" rel="noreferrer noopener" style="{link}">\r\nLearn more about '
        'Teams</a> </div>\r\n<div style="font-size:14px; margin-bottom:4px"></div>\r\n<div style="font-size:12px">'
        '</div>\r\n</div>\r\n' + _SEPARATOR)


def with_teams_block(body: dict, meeting: dict) -> dict:
    """The body once Teams added its block at the end (an empty or text body becomes Exchange's HTML)."""
    content = body.get("content") or ""
    if body.get("contentType") != "html":
        content = exchange_html(html.escape(content, quote=False))
    head, tail = content.rsplit("</body>", 1) if "</body>" in content else (content, "")
    return {"contentType": "html", "content": head + teams_block(meeting) + "</body>" + tail}
