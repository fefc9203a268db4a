"""Universal and scoped links between items.

Rapid-Docs "docs/Rapid/4-Developer Manual/API Concepts/API Concepts.md", "What are Universal Links":
links between two items of any tables; "Universal links between two items that stem from a
multi-lookup field have the column name of that field baked into them" (scoped links); written with
`LinkedItemsToAdd` / `LinkedItemsToRemove` as '{list name}/{id}' strings ("How to link two items").
Links are symmetric: either end finds the other (`linkedTo`, `inScoped`, `inUniversal`).

Not published (docs/rapid-api.md, "Multi-lookups are links, not columns"): the JSON of a link in a profile's
`LinkedItems`, and the shape of `ScopedLinkedItemsToAdd` entries. The simulator's guesses are behind
`RapidVariant.link_shape` and `parse_scoped`.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..base import HttpError

FIRST_LINK_ID = 9001  # own counter, far from item ids, so a link id is never mistaken for a target id


@dataclass
class Link:
    id: int
    a_list: str          # for a scoped link: the list that has the multi-lookup column
    a_id: int
    b_list: str          # for a scoped link: the multi-lookup's target list
    b_id: int
    column: str | None   # None: a universal link; else the multi-lookup column baked in

    def other(self, list_name: str, item_id: int) -> tuple[str, int] | None:
        if (self.a_list, self.a_id) == (list_name, item_id):
            return self.b_list, self.b_id
        if (self.b_list, self.b_id) == (list_name, item_id):
            return self.a_list, self.a_id
        return None


class LinkStore:
    def __init__(self):
        self.links: dict[int, Link] = {}
        self._by_end: dict[tuple[str, int], dict[int, Link]] = {}   # (list, id) -> its links, oldest first
        self._next_id = FIRST_LINK_ID

    def add(self, a_list: str, a_id: int, b_list: str, b_id: int, column: str | None = None) -> Link:
        """Idempotent: the same pair (and column) is linked once; a universal link has no direction."""
        for link in self._by_end.get((a_list, a_id), {}).values():
            if link.column == column and (
                    (link.a_list, link.a_id, link.b_list, link.b_id) == (a_list, a_id, b_list, b_id)
                    or (column is None and (link.b_list, link.b_id, link.a_list, link.a_id)
                        == (a_list, a_id, b_list, b_id))):
                return link
        link = Link(self._next_id, a_list, a_id, b_list, b_id, column)
        self._next_id += 1
        self.links[link.id] = link
        for end in ((a_list, a_id), (b_list, b_id)):
            self._by_end.setdefault(end, {})[link.id] = link
        return link

    def _drop(self, link: Link) -> None:
        del self.links[link.id]
        for end in ((link.a_list, link.a_id), (link.b_list, link.b_id)):
            self._by_end.get(end, {}).pop(link.id, None)

    def remove(self, list_name: str, item_id: int, other_list: str, other_id: int, column: str | None = None,
               any_column: bool = False) -> int:
        """Unlink two items: the universal link (or the scoped one of `column`), or every link between them
        with any_column (`LinkedItemsToRemove`, which also removes scoped links: docs/rapid-api.md,
        "Multi-lookups are links, not columns")."""
        gone = [link for link, ol, oid in self.of(list_name, item_id)
                if (ol, oid) == (other_list, other_id) and (any_column or link.column == column)]
        for link in gone:
            self._drop(link)
        return len(gone)

    def of(self, list_name: str, item_id: int) -> list[tuple[Link, str, int]]:
        """Every link of the item, with the other end, oldest first."""
        found = []
        for link in self._by_end.get((list_name, item_id), {}).values():
            other = link.other(list_name, item_id)
            if other is not None:
                found.append((link, *other))
        return found

    def targets(self, list_name: str, item_id: int, column: str | None) -> list[int]:
        return sorted({oid for link, _, oid in self.of(list_name, item_id) if link.column == column})

    def replace_column(self, list_name: str, item_id: int, column: str, target: str, ids: list[int]) -> None:
        """A person picking a multi-lookup's values: the column's link set becomes exactly `ids`."""
        keep = set(ids)
        for link, other_list, other_id in self.of(list_name, item_id):
            if link.column == column and (link.a_list, link.a_id) == (list_name, item_id) \
                    and other_id not in keep:
                self._drop(link)
        for target_id in ids:
            self.add(list_name, item_id, target, target_id, column)

    def linked(self, list_name: str, item_id: int, other_list: str, column: str | None, ids) -> bool:
        wanted = set(ids)
        return any(ol == other_list and oid in wanted and link.column == column
                   for link, ol, oid in self.of(list_name, item_id))

    def linked_any(self, list_name: str, item_id: int, other_list: str, other_id: int) -> bool:
        return any((ol, oid) == (other_list, other_id) for _, ol, oid in self.of(list_name, item_id))


def render(link: Link, other_list: str, other_id: int, shape: str) -> dict:
    """One entry of a profile's `LinkedItems`, seen from the item at the other end. Unpublished:
    docs/rapid-api.md, "Multi-lookups are links, not columns", says public clients read "each link
    carrying its own `id` and a key named after the multi-lookup column it belongs to" ("column-key");
    the other two are the alternatives it allows. For a universal link (no column) the key is `item_id`
    (column-key) or `link` (path): a guess."""
    if shape == "descriptor":
        return {"id": link.id, "column": link.column, "list": other_list, "item_id": other_id}
    if shape == "path":
        return {"id": link.id, link.column or "link": f"{other_list}/{other_id}"}
    return {"id": link.id, link.column or "item_id": other_id, "__metadata": {"type": other_list}}


def parse_ref(ref, resolve_list) -> tuple[str, int]:
    """'{list name}/{id}' (Rapid-Docs "API Concepts.md", "How to link two items") -> (list, id)."""
    if not isinstance(ref, str) or "/" not in ref:
        raise HttpError(400, "BadRequest", f"A link must be a '{{list name}}/{{id}}' string, not {ref!r}")
    list_part, id_part = ref.rsplit("/", 1)
    try:
        return resolve_list(list_part.strip()), int(id_part)
    except ValueError:
        raise HttpError(400, "BadRequest", f"A link must end with an item id: {ref!r}") from None


def parse_scoped(entry, resolve_list) -> tuple[str, str, int]:
    """One `ScopedLinkedItemsToAdd` entry. Its shape is unpublished; the simulator reads
    `{"column": "<multi-lookup column>", "link": "<List>/<id>"}` (a guess) -> (column, list, id)."""
    if not isinstance(entry, dict) or not isinstance(entry.get("column"), str) or "link" not in entry:
        raise HttpError(400, "BadRequest",
                        f'A scoped link must be {{"column": "<column>", "link": "<List>/<id>"}}, not {entry!r}')
    return (entry["column"], *parse_ref(entry["link"], resolve_list))
