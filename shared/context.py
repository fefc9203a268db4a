"""What one site's sync touches, passed as one value: its RAPID client, its Graph client, our tables, the
work queue and the clock. A function taking a `SiteContext` says it works for one site and no other."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .config import Settings, SiteConfig
    from .services import Services


@dataclass(frozen=True)
class SiteContext:
    site: "SiteConfig"
    services: "Services"

    @classmethod
    def of(cls, svc: "Services", site: "SiteConfig") -> "SiteContext":
        return cls(site, svc)

    @property
    def settings(self) -> "Settings":
        return self.services.settings

    @property
    def rapid(self):
        return self.services.rapid(self.site)

    @property
    def graph(self):
        return self.services.graph(self.site)

    @property
    def store(self):
        return self.services.store

    @property
    def ops(self):
        return self.services.ops

    @property
    def queue(self):
        return self.services.queue

    def now(self) -> datetime:
        return self.services.clock()
