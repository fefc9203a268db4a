"""Recognisable events: what makes our events stand out in Outlook (SITES `category`, `show_as`,
`reminder_minutes`), set when the event is created, and the item's privacy (`private_column`,
`sensitivity`), which follows the item. Afterwards Outlook owns the look: an edit of other fields never
touches it, and our patches name sensitivity only when the item's privacy changed (event.md: categories,
showAs, reminderMinutesBeforeStart, sensitivity)."""

from __future__ import annotations

from dataclasses import replace

from ..model.mapping import truthy
from .base import Feature


def look_on_create(category: str, show_as: str, reminder_minutes: int | None, sensitivity: str) -> dict:
    """What makes our events recognisable in Outlook (event.md: categories, showAs,
    reminderMinutesBeforeStart, sensitivity), set when the event is created. Afterwards Outlook owns
    them, except sensitivity, which follows the item (`item_sensitivity`); an Outlook edit of other
    fields never touches them, and our patches never name them unless the item's privacy changed."""
    look: dict = {}
    if category:
        look["categories"] = [category]
    if show_as:
        look["showAs"] = show_as
    if reminder_minutes is not None:
        look["isReminderOn"] = True
        look["reminderMinutesBeforeStart"] = reminder_minutes
    if sensitivity:
        look["sensitivity"] = sensitivity
    return look


def item_sensitivity(item: dict, private_column: str, default: str) -> str:
    """The sensitivity an item asks for: `private` when its private column is truthy; else the site's
    default (`normal` once a private column exists, so an item made public again is public); "" = none."""
    if private_column and truthy(item.get(private_column)):
        return "private"
    return default or ("normal" if private_column else "")


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
