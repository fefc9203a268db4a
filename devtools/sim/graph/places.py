"""The places API over the simulator's rooms (rooms.py): api-reference/v1.0/api/place-list.md.

GET /places/microsoft.graph.room, /places/microsoft.graph.roomlist and
/places/{room-list-emailaddress}/microsoft.graph.roomlist/rooms, for the token's tenant; permission
Place.Read.All (application, the only one the page lists); "By default, this operation returns 100 places
per page", `$top` the page size, `$skip`, `$select`, `$filter`, `$count=true`; rooms "Hidden from GAL" are not
listed. More places than a page: @odata.nextLink (concepts/paging.md), as GET /events pages here. A room list
the tenant does not have: 404 ErrorItemNotFound (not published).
"""

from __future__ import annotations

from urllib.parse import quote, urlencode

from ..base import HttpError, Request, Response
from .model import _SIMPLE_FILTER, _unq

PLACE_ROLES = ("Place.Read.All",)  # api/place-list.md, "Permissions" (application)
PAGE_SIZE = 100                    # api/place-list.md: "The default page size is 100."


class Places:
    """GET /places (over self.rooms and self.room_lists, rooms.py)."""

    def _places_init(self) -> None:
        r = self.route
        r("GET", r"/v1\.0/places/microsoft\.graph\.room", self._list_rooms)
        r("GET", r"/v1\.0/places/microsoft\.graph\.roomlist", self._list_room_lists)
        r("GET", r"/v1\.0/places/(?P<list>[^/]+)/microsoft\.graph\.roomlist/rooms", self._list_rooms_in_list)

    def _list_rooms(self, req: Request) -> Response:
        tenant = self._auth(req, PLACE_ROLES)["tid"]
        with self.lock:
            rooms = [r.to_json() for r in self.rooms.values() if r.tenant_id == tenant and not r.hidden_from_gal]
        return self._places_page(req, rooms, "places/microsoft.graph.room")

    def _list_room_lists(self, req: Request) -> Response:
        tenant = self._auth(req, PLACE_ROLES)["tid"]
        with self.lock:
            lists = [rl.to_json() for rl in self.room_lists.values() if rl.tenant_id == tenant]
        return self._places_page(req, lists, "places/microsoft.graph.roomList")

    def _list_rooms_in_list(self, req: Request) -> Response:
        tenant = self._auth(req, PLACE_ROLES)["tid"]
        name = req.params["list"]
        with self.lock:
            found = self.room_lists.get(name.lower())
            if found is None or found.tenant_id != tenant:
                raise HttpError(404, "ErrorItemNotFound", f"The room list '{name}' was not found.")
            rooms = [r.to_json() for r in self.rooms.values() if r.room_list and r.room_list.lower() == name.lower()
                     and not r.hidden_from_gal]
        return self._places_page(req, rooms, f"places('{quote(found.email, safe='')}')/microsoft.graph.roomList/rooms")

    def _places_page(self, req: Request, places: list[dict], context: str) -> Response:
        wanted_by = _place_filter(req.query.get("$filter"))
        places = [p for p in places if wanted_by(p)]
        top, skip = _count_param(req, "$top", PAGE_SIZE), _count_param(req, "$skip", 0)
        page = places[skip: skip + top]
        if req.query.get("$select"):
            wanted = {s.strip().lower() for s in req.query["$select"].split(",")}
            page = [{k: v for k, v in p.items() if k == "id" or k.lower() in wanted} for p in page]
        out = {"@odata.context": f"{self.graph_url}/$metadata#{context}"}
        if req.query.get("$count", "").lower() == "true":
            out["@odata.count"] = len(places)
        out["value"] = page
        if skip + top < len(places):
            query = {**req.query, "$top": str(top), "$skip": str(skip + top)}
            out["@odata.nextLink"] = f"{self.base_url}{req.path}?{urlencode(query, quote_via=quote)}"
        return Response(200, out)


def _count_param(req: Request, name: str, default: int) -> int:
    value = req.query.get(name)
    if value is None:
        return default
    if not value.isdigit():
        raise HttpError(400, "BadRequest", f"Invalid value for {name}: '{value}'.")
    return int(value)


def _place_filter(text: str | None):
    """`$filter` of the form `property eq 'value'` (string properties); others are refused."""
    if not text:
        return lambda place: True
    m = _SIMPLE_FILTER.fullmatch(text.strip())
    if not m:
        raise HttpError(400, "BadRequest", f"Invalid filter clause: {text}")
    key, value = m.group(1).lower(), _unq(m.group(2))
    return lambda place: any(k.lower() == key and str(v).lower() == value.lower() for k, v in place.items())
