"""Rooms: room mailboxes, room lists (read through the places API, places.py), and how a room answers a
meeting it is invited to (Exchange's resource booking).

What the pages say:
- resources/room.md: "In Exchange Online, each room is associated with a room mailbox": a room is a mailbox
  of its own (here a User of its tenant with a calendar, so getSchedule, calendar-getschedule.md: "users,
  distributions lists, or resources (rooms or equipment)", answers its availability like anyone's), with the
  properties the page lists (emailAddress, displayName, capacity Int32, building, floorNumber, bookingType...).
- api/place-list.md: the tenant's rooms and room lists, read with Place.Read.All (places.py).
- resources/attendee.md: an attendee "can be a person or resource such as a meeting room", `type`
  required | optional | resource; its `status` (responsestatus.md) is the response and when it was sent,
  nothing more.
- Set-CalendarProcessing (learn.microsoft.com/powershell/module/exchange/set-calendarprocessing):
  AutomateProcessing None ("Both the resource booking attendant and the Calendar Attendant are disabled")
  | AutoUpdate ("Meeting requests are tentative in the calendar until they're approved by a delegate") |
  AutoAccept ("the resource booking assistant accepts the meeting based upon the policies ... free =
  accept; busy = decline"; the Exchange Online default since November 2018); AllowConflicts (default
  $false); BookingWindowInDays ("the maximum number of days in advance that the resource can be reserved",
  default 180, 0 means today); MaximumDurationInMinutes (default 1440, 0 unlimited); AllBookInPolicy
  (default $true; $false: "approval by a delegate is required"); BookingType Standard | Reserved ("The
  resource can't be reserved"); AddNewRequestsTentatively (default $true: a new request is in the room's
  calendar as tentative until answered); EnableResponseDetails (default $true: "the reasons for accepting
  or declining a meeting are included in the response message"); AdditionalResponse (text added to the
  responses when AddAdditionalResponse is $true); ProcessExternalMeetingMessages (default $false: requests
  from outside the organisation are rejected; here a room of another tenant is not found at all).
  The reasons travel in the response *message*; the event's attendee carries only the response
  (attendee.md), so the simulator records each reply in `room_replies` (the words are the simulator's own:
  no page gives Exchange's text).

What no source settles, offered as switches (constructor argument and attribute of the same name):
  room_answers         "later" (default) | "at once"   when the room's answer reaches the organiser's event:
                       "later": after the request is answered, `room_answer_delay` seconds of world time
                       on (the booking assistant works on the room's mailbox apart from the request; the
                       POST/PATCH answer shows the room's response `none`), or when a test calls
                       deliver_room_answers(); "at once": already in the POST/PATCH answer
  room_answer_delay    seconds (default 0.5) | None: a "later" answer waits for deliver_room_answers()
  room_answer_notified True (default) | False   whether the answer's change of the organiser's event is
                       notified (`updated`, as for a person's answer, events.attendee_answers) or is seen
                       only by the next read
Also unsettled, not switched: a moved meeting asks its rooms again (their response is `none` until they
answer the update) while people keep theirs, as the simulator always did; the room answers a request
whatever the attendee `type` says (the request reaches its mailbox either way); a room list unknown to
the tenant answers 404 ErrorItemNotFound. Recurring meetings are booked by the master's own times only
(ConflictPercentageAllowed / MaximumConflictInstances are not simulated).
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import asdict, dataclass, field, fields
from datetime import timedelta

from shared import clock

from ..base import utcnow
from .exchange import new_change_key
from .places import Places
from .model import Event, User, graph_time

AUTOMATE = ("None", "AutoUpdate", "AutoAccept")
BOOKING_TYPES = ("standard", "reserved")  # room.md, bookingType values
# the simulator's words for a decline's reason (recorded in room_replies); no page gives Exchange's text
REASONS = {"conflict": "already booked", "window": "outside the booking window", "duration": "too long",
           "reserved": "cannot be reserved"}


@dataclass
class BookingPolicy:
    """A room's Set-CalendarProcessing values that decide its answer (defaults as the cmdlet's page gives)."""
    automate_processing: str = "AutoAccept"
    allow_conflicts: bool = False
    booking_window_days: int = 180
    maximum_duration_minutes: int = 1440
    all_book_in_policy: bool = True
    booking_type: str = "standard"
    enable_response_details: bool = True
    additional_response: str | None = None

    def __post_init__(self):
        if self.automate_processing not in AUTOMATE:
            raise ValueError(f"automate_processing must be one of {AUTOMATE}, not {self.automate_processing!r}")
        if self.booking_type not in BOOKING_TYPES:
            raise ValueError(f"booking_type must be one of {BOOKING_TYPES}, not {self.booking_type!r}")
        if not (isinstance(self.booking_window_days, int) and 0 <= self.booking_window_days <= 1080):
            raise ValueError("booking_window_days must be an integer from 0 through 1080 (Set-CalendarProcessing)")
        if not (isinstance(self.maximum_duration_minutes, int) and self.maximum_duration_minutes >= 0):
            raise ValueError("maximum_duration_minutes must be a whole number of minutes, 0 for unlimited")


@dataclass
class Room:
    user_id: str
    tenant_id: str
    email: str
    name: str
    policy: BookingPolicy
    properties: dict           # room.md properties other than id, emailAddress, displayName
    room_list: str | None = None
    hidden_from_gal: bool = False
    id: str = field(default_factory=lambda: str(uuid.uuid4()))

    def to_json(self) -> dict:
        return {"id": self.id, "emailAddress": self.email, "displayName": self.name, **self.properties}


@dataclass
class RoomList:
    tenant_id: str
    email: str
    name: str
    id: str = field(default_factory=lambda: str(uuid.uuid4()).upper())

    def to_json(self) -> dict:  # roomlist.md
        return {"id": self.id, "displayName": self.name, "address": None, "geoCoordinates": None,
                "phone": None, "emailAddress": self.email}


@dataclass
class RoomReply:
    """The response message a room sent the organiser (Set-CalendarProcessing, EnableResponseDetails)."""
    room: str
    organiser: str
    event_id: str
    response: str         # accepted | declined
    reason: str | None    # a key of REASONS for a decline
    words: str            # the message's text, in plain words
    time: float = field(default_factory=time.time)


def _room_properties(capacity, building, floor, extra: dict) -> dict:
    if capacity is not None and (isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 0):
        raise ValueError(f"capacity must be a whole number of seats (room.md: Int32), not {capacity!r}")
    if floor is not None and (isinstance(floor, bool) or not isinstance(floor, int)):
        raise ValueError(f"floor must be a floor number (room.md floorNumber: Int32), not {floor!r}")
    known = {"address": None, "geoCoordinates": None, "phone": "", "nickname": None, "building": building,
             "floorNumber": floor, "floorLabel": None, "label": None, "capacity": capacity,
             "bookingType": "standard", "audioDeviceName": None, "videoDeviceName": None,
             "displayDeviceName": None, "isWheelChairAccessible": False, "tags": []}
    unknown = set(extra) - set(known)
    if unknown:
        raise ValueError(f"not properties of a room (room.md): {sorted(unknown)}")
    return {**known, **extra}


class Rooms(Places):
    """Room mailboxes and lists, GET /places (places.py), and the rooms' answers (switches: room_answers,
    room_answer_delay, room_answer_notified)."""

    def _rooms_init(self, room_answers: str, room_answer_delay: float | None, room_answer_notified: bool) -> None:
        if room_answers not in ("later", "at once"):
            raise ValueError(f"room_answers must be 'later' or 'at once', not {room_answers!r}")
        self.room_answers, self.room_answer_delay = room_answers, room_answer_delay
        self.room_answer_notified = room_answer_notified
        self.rooms: dict[str, Room] = {}            # user id -> room
        self.room_lists: dict[str, RoomList] = {}   # lower-case address -> room list
        self.room_replies: list[RoomReply] = []
        self._room_pending: set[tuple[str, str, str]] = set()  # (organiser id, event id, room address)
        self._places_init()  # places.py: GET /places

    # -- test helpers --------------------------------------------------------------------------

    def add_room(self, email: str, name: str, capacity: int | None = None, policy: BookingPolicy | dict | None = None,
                 *, tenant: str | None = None, building: str | None = None, floor: int | None = None,
                 room_list: str | None = None, hidden_from_gal: bool = False, **properties) -> str:
        """A room mailbox of the tenant (the only tenant the simulator knows unless `tenant` is given),
        bookable as an attendee; its user id. `policy`: a BookingPolicy or its fields as a dict."""
        policy = policy if isinstance(policy, BookingPolicy) else BookingPolicy(**(policy or {}))
        props = _room_properties(capacity, building, floor, properties)
        props["bookingType"] = policy.booking_type
        tenant = tenant or self._only_tenant()
        with self.lock:
            if room_list is not None and room_list.lower() not in self.room_lists:
                raise ValueError(f"no room list {room_list!r}: add_room_list first")
            if self.user(email, tenant) is not None:
                raise ValueError(f"{email} is already a mailbox of tenant {tenant}")
            user_id = self.add_user(tenant, email, name)
            self.rooms[user_id] = Room(user_id, tenant, email, name, policy, props, room_list, hidden_from_gal)
        return user_id

    def add_room_list(self, email: str, name: str, *, tenant: str | None = None) -> None:
        tenant = tenant or self._only_tenant()
        with self.lock:
            self.room_lists[email.lower()] = RoomList(tenant, email, name)

    def set_room_policy(self, email: str, **changes) -> BookingPolicy:
        """Set-CalendarProcessing for a room: the fields of BookingPolicy to change."""
        room = self._must_room(email)
        unknown = set(changes) - {f.name for f in fields(BookingPolicy)}
        if unknown:
            raise ValueError(f"not booking policy settings: {sorted(unknown)}")
        with self.lock:
            room.policy = BookingPolicy(**{**asdict(room.policy), **changes})
            room.properties["bookingType"] = room.policy.booking_type
            return room.policy

    def deliver_room_answers(self) -> int:
        """The answers of rooms still to come ("later"), given now; how many were pending."""
        with self.lock:
            pending, self._room_pending = sorted(self._room_pending), set()
            for key in pending:
                self._answer_as_room(*key)
            return len(pending)

    def pending_room_answers(self) -> int:
        with self.lock:
            return len(self._room_pending)

    def replies_from_rooms(self, room: str | None = None, event_id: str | None = None) -> list[dict]:
        """The response messages rooms sent organisers (all, or one room's, or about one event)."""
        with self.lock:
            return [vars(r) for r in self.room_replies
                    if (room is None or r.room.lower() == room.lower())
                    and (event_id is None or self.event_key(event_id) == r.event_id)]

    def _only_tenant(self) -> str:
        with self.lock:
            tenants = {a.tenant_id for a in self.apps.values()} | {u.tenant_id for u in self.users.values()}
        if len(tenants) != 1:
            raise ValueError(f"say which tenant the room is in (tenant=...): the simulator knows {len(tenants)}")
        return tenants.pop()

    def _must_room(self, email: str) -> Room:
        user = self.user(email)
        room = self.rooms.get(user.id) if user else None
        if room is None:
            raise KeyError(f"no room {email!r}")
        return room

    def room_of(self, address: str, tenant_id: str) -> Room | None:
        user = self.user(address, tenant_id)
        return self.rooms.get(user.id) if user else None

    def takes_invitations(self, user: User) -> bool:
        """Whether the mailbox's calendar holds the meetings it is invited to before it answers: a room
        with AutomateProcessing None has its Calendar Attendant off (Set-CalendarProcessing)."""
        room = self.rooms.get(user.id)
        return room is None or room.policy.automate_processing != "None"

    # -- booking: called by events.py under the lock, after an event was created or updated ----------

    def _book_rooms(self, ev: Event, before: tuple | None) -> None:
        """`before`: (window, attendee addresses) of the event before an update, None for a new event."""
        if not self.rooms or ev.fields.get("isCancelled"):
            return
        organiser = self.users[ev.mailbox]
        moved = before is not None and before[0] != ev.window()
        asked = []
        for attendee in ev.fields.get("attendees") or []:
            address = attendee["emailAddress"]["address"]
            if self.room_of(address, organiser.tenant_id) is None:
                continue
            if before is None or address.lower() not in before[1] or moved:
                attendee["status"] = {"response": "none", "time": "0001-01-01T00:00:00Z"}  # asked (again)
                asked.append((ev.mailbox, ev.id, address.lower()))
        for key in asked:
            if self.room_answers == "at once":
                self._answer_as_room(*key)
            elif key not in self._room_pending:
                self._room_pending.add(key)
                if self.room_answer_delay is not None:
                    timer = threading.Timer(clock.wall_seconds(self.room_answer_delay), self._answer_later, (key,))
                    timer.daemon = True
                    timer.start()

    def _answer_later(self, key: tuple[str, str, str]) -> None:
        with self.lock:
            if key in self._room_pending:
                self._room_pending.discard(key)
                self._answer_as_room(*key)

    def _answer_as_room(self, mailbox: str, event_id: str, address: str) -> None:
        """The room's booking assistant decides on the meeting as it is now (gone, or the room no longer
        invited: nothing to answer)."""
        ev = self.calendars.get(mailbox, {}).get(event_id)
        organiser = self.users.get(mailbox)
        room = self.room_of(address, organiser.tenant_id) if organiser else None
        if ev is None or room is None or ev.fields.get("isCancelled"):
            return
        attendees = [dict(a) for a in ev.fields.get("attendees") or []]
        mine = [a for a in attendees if a["emailAddress"]["address"].lower() == address]
        if not mine or mine[0]["status"]["response"] != "none":
            return
        response, reason = self._decide(room, ev)
        if response == "none":
            return  # AutoUpdate, None, or a delegate's approval awaited: no answer is sent
        mine[0]["status"] = {"response": response, "time": graph_time(utcnow())}
        ev.fields = {**ev.fields, "attendees": attendees}
        ev.modified, ev.change_key, ev.seq = utcnow(), new_change_key(), self._next_seq()
        self.room_replies.append(RoomReply(room.email, organiser.upn, ev.id, response, reason,
                                           _words(room, response, reason)))
        if self.room_answer_notified:
            self._changed(ev, "updated")

    def _decide(self, room: Room, ev: Event) -> tuple[str, str | None]:
        policy = room.policy
        if policy.automate_processing != "AutoAccept":
            return "none", None
        start, end = ev.window()
        if policy.booking_type == "reserved":
            return "declined", "reserved"
        if policy.maximum_duration_minutes and end - start > timedelta(minutes=policy.maximum_duration_minutes):
            return "declined", "duration"
        if start.date() > (utcnow() + timedelta(days=policy.booking_window_days)).date():
            return "declined", "window"
        if not policy.allow_conflicts and self._room_busy(room, ev):
            return "declined", "conflict"
        if not policy.all_book_in_policy:
            return "none", None
        return "accepted", None

    def _room_busy(self, room: Room, ev: Event) -> bool:
        """Another booking the room accepted (or an event of its own calendar that is not free) overlaps."""
        start, end = ev.window()
        user = self.users[room.user_id]
        for other, status in self._held(user):
            if other.id == ev.id or other.window()[0] >= end or other.window()[1] <= start:
                continue
            if other.mailbox == room.user_id:
                if status != "free":
                    return True
            elif any(a["emailAddress"]["address"].lower() == room.email.lower() and
                     a["status"]["response"] == "accepted" for a in other.fields.get("attendees") or []):
                return True
        return False

def _words(room: Room, response: str, reason: str | None) -> str:
    policy = room.policy
    text = f"{room.name}: {response}"
    if policy.enable_response_details and reason:
        text += f": {REASONS[reason]}"
    if policy.additional_response:
        text += f". {policy.additional_response}"
    return text
