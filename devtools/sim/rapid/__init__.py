"""A RAPID site as published: lists of items with lookups and links, views, OData-ish filters, the
site's internal webhooks, and the shapes RAPID leaves open behind `RapidVariant` switches.

One module per published resource:
  schema.py    tables, columns, lookups, views; /openapi documents
  items.py     the item profile and how a write body changes an item
  links.py     universal and scoped links, and the (unpublished) JSON of a link
  views.py     list reads: All / All$, $select, $filter, paging, linkedTo
  filters.py   the $filter language
  webhooks.py  webhooks, their delivery, remote actions
  auth.py      tokens, expiry, principals
  variant.py   RapidVariant, the switches between unpublished or contradictory shapes
  site.py      SiteSim: one site, and the Python API tests use as its people
  server.py    RapidSimulator: the HTTP API
"""

from .filters import parse_filter
from .items import Principal
from .schema import LISTS, MEETINGS_BUNDLE, TITLE_FIELD
from .server import RapidSimulator
from .site import SiteSim, Write
from .variant import RapidVariant
from .views import PAGE_SIZE
from .webhooks import AGENDA_WEBHOOKS, ENVIRONMENT_HEADER, MEETINGS_WEBHOOKS, TRIGGERS, Webhook, WebhookDelivery

__all__ = ["AGENDA_WEBHOOKS", "ENVIRONMENT_HEADER", "LISTS", "MEETINGS_BUNDLE", "MEETINGS_WEBHOOKS", "PAGE_SIZE", "Principal",
           "RapidSimulator", "RapidVariant", "SiteSim", "TITLE_FIELD", "TRIGGERS", "Webhook", "WebhookDelivery",
           "Write", "parse_filter"]
