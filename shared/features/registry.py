"""The features of the sync, in the order their hooks run. A new feature is a module with a `Feature`
subclass (features/base.py) and one line here."""

from __future__ import annotations

from functools import cache

from .agenda_changes import Agenda
from .answers import Answers
from .base import Feature
from .coalesce import Coalesce
from .conflicts import Conflicts
from .free_times import FreeTimes
from .recognisable import Recognisable
from .rooms import Rooms
from .status import Status
from .teams import Teams

FEATURES: tuple[Feature, ...] = (Coalesce(), Recognisable(), Teams(), Rooms(), Agenda(), Answers(), Conflicts(),
                                FreeTimes(), Status())


@cache
def _enabled(flags: tuple[bool, ...]) -> tuple[Feature, ...]:
    return tuple(f for f, on in zip(FEATURES, flags) if on)


def enabled_features(site) -> tuple[Feature, ...]:
    """The features this site has switched on."""
    return _enabled(tuple(bool(f.enabled(site)) for f in FEATURES))


def feature_handlers() -> dict:
    """Every feature's own job ops."""
    return {op: handler for feature in FEATURES for op, handler in feature.handlers.items()}
