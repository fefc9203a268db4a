"""Recognisable events: what makes our events stand out in Outlook (SITES `category`, `show_as`,
`reminder_minutes`), set when the event is created, and the item's privacy (`private_column`,
`sensitivity`), which follows the item. Afterwards Outlook owns the look: an edit of other fields never
touches it, and our patches name sensitivity only when the item's privacy changed (mapping.look_on_create,
mapping.item_sensitivity; event.md: categories, showAs, reminderMinutesBeforeStart, sensitivity)."""

from __future__ import annotations

from dataclasses import replace

from ..model.mapping import item_sensitivity, look_on_create
from .base import Feature


class Recognisable(Feature):
    name = "recognisable"

    def columns(self, site):
        return (site.private_column,) if site.private_column else ()

    def contribute(self, site, item, link, target, ctx):
        asked = item_sensitivity(item, site.private_column, site.sensitivity)
        return replace(target, asks={**target.asks, "sensitivity": asked})

    def differs(self, site, target, link):
        return "its privacy differs from Outlook's" if target.ask("sensitivity", "") != link.sensitivity else None

    def create_fields(self, site, target):
        asked = target.ask("sensitivity", "")
        return look_on_create(site.category, site.show_as, site.reminder_minutes, asked), {"sensitivity": asked}

    def patch_fields(self, site, target, link):
        asked = target.ask("sensitivity", "")
        return ({"sensitivity": asked} if asked and asked != link.sensitivity else {}), {"sensitivity": asked}
