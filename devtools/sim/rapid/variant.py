"""The switches between shapes that RAPID's published sources leave open or contradict.

Each site has one `RapidVariant` (`site.variant`); handlers read it on every request, so a test can
switch a site at runtime (`site.variant.link_shape = "path"` or `site.variant = RapidVariant(...)`).
The defaults are what the published sources say, or the most likely reading where they are silent.
"""

from __future__ import annotations

from dataclasses import dataclass

LINK_SHAPES = ("column-key", "descriptor", "path")
LIST_BODIES = ("value", "array")
POST_ANSWERS = ("array201", "object200", "empty201")
PUT_ANSWERS = ("empty204", "item200")
DELETE_ANSWERS = ("empty204", "item200")
DELETED_BODIES = ("items", "ids", "envelope")
AGENDA_LINKS = ("lookup", "link")
EMPTY_ITEMS = ("found", "404")


@dataclass
class RapidVariant:
    # JSON of one link in a profile's `LinkedItems`. Unpublished (docs/rapid-api.md, "Multi-lookups are links,
    # not columns"); public clients read "an `id` and a key named after the multi-lookup column".
    link_shape: str = "column-key"
    # Rapid-Docs "API Concepts.md", "How to get an item": "including the items universal links".
    # False: a site whose single GET carries no `LinkedItems` at all (only queries show links).
    links_in_get: bool = True
    # docs/rapid-api.md, "Multi-lookups are links, not columns". True: an older/custom site that
    # also shows (and stores) a multi-lookup as a plain id list `<column>: [ids]`.
    multi_lookup_column: bool = False
    # Rapid-Docs "API Concepts.md", "How to get a bunch of items" says "as a JSON array"; public clients
    # unwrap `value` (docs/rapid-api.md, "Reading a view"). "value": `{"value": [...]}`; "array": a bare JSON
    # array.
    list_body: str = "value"
    # PowerPlatformConnectors "certified-connectors/RAPID Platform/apiDefinition.swagger.json",
    # CreateListItem: 201 (array). Rapid-Docs "API Concepts.md", "How to create an item": "reply with the
    # generated item" -> "object200". "empty201": a 201 whose body was lost or left out (docs/rapid-api.md,
    # "Writes and what they answer": a client must accept every shape).
    post_answer: str = "array201"
    # Same swagger, UpdateListItem: "204 The item was updated successfully". Rapid-Docs "API
    # Concepts.md", "How to update an item": "Returns the updated item in JSON" -> "item200".
    put_answer: str = "empty204"
    # Unpublished (no source shows a DELETE answer): "empty204" or "item200" (the deleted profile).
    delete_answer: str = "empty204"
    # Body of the "Items Deleted" webhook. Unpublished (docs/rapid-api.md, "The Items Deleted body is not
    # published"): "items" (array of profiles), "ids" (array of ints), "envelope" (the remote-action envelope
    # of Rapid-Docs "perform-remote-action.md", "Post Body", with `item` an array of profiles).
    deleted_body: str = "items"
    # Status of a request whose bearer token has expired. 401 by default; 400 is what public clients
    # report seeing (docs/rapid-api.md, "An expired token may answer 400").
    expired_token_status: int = 401
    # How a Meeting Agendas item names its Meeting Event. Unpublished (docs/rapid-api.md, "The Meetings
    # bundle": "a link to the event"; RAPID's "Outlook Integration" page says the bundle links Minutes to
    # Agenda items and Events). "lookup": a single lookup `meeting_event` (`meeting_event_id`), named after
    # its table as Meeting Events' `meeting` is; "link": a universal link (Rapid-Docs
    # "creating-items-within-items.md": an item created in another's context "will be linked through the
    # lookup. If there is no lookup between the tables a universal link will be created"). Part of the site's
    # design: read when the site is made.
    agenda_link: str = "lookup"
    # A site whose list suddenly answers empty (issue 20's mass-deletion guard): the lists named here answer
    # every list read with no rows while their items are still there. Unpublished as a failure, but each
    # cause is: a View filters the rows a table shows (Rapid-Docs "docs/Rapid/2-User Manual/2-Explorer/4-Views/
    # 1-Views-Overview/1-Views-Overview.md"), the app's principal loses its rights to the rows, a list is
    # restored from a backup. Switched at runtime: `site.variant.empty_lists = ("Meeting Events",)`.
    empty_lists: tuple[str, ...] = ()
    # What a single GET of an item in an `empty_lists` list answers meanwhile: "found" (the profile, as
    # before: only the list read is wrong) or "404" (the items look deleted, as a lost right would show).
    empty_items: str = "found"

    def __post_init__(self):
        for name, allowed in (("link_shape", LINK_SHAPES), ("list_body", LIST_BODIES),
                              ("post_answer", POST_ANSWERS), ("put_answer", PUT_ANSWERS),
                              ("delete_answer", DELETE_ANSWERS), ("deleted_body", DELETED_BODIES),
                              ("agenda_link", AGENDA_LINKS), ("empty_items", EMPTY_ITEMS)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"RapidVariant.{name} must be one of {allowed}, not {getattr(self, name)!r}")
        if self.expired_token_status not in (400, 401):
            raise ValueError("RapidVariant.expired_token_status must be 400 or 401")
