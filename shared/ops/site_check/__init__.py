"""The site check (docs/product-rules.md, "The site check"): what a configured site and its Microsoft 365 tenant really look like,
read with the app's own settings, identity and network. It changes nothing: GETs to the site and to
Graph, the notification URL's validation handshake (a POST to this app that writes nothing), and for a
site with a conflicts column one getSchedule (a POST to Graph that only reads free/busy).

Used by `python -m devtools.site_check` and by the admin-level HTTP function (functions/admin.py).
Every check becomes a Finding (ok / warn / fail, with the fix); a network failure is a finding too,
never a traceback.

    run                the order: settings, then per site RAPID, then Graph
    configuration      the app settings, each SITES entry, the notification URL
    rapid_lists        the RAPID token, the tables, each list's schema and first page
    rapid_schema       the columns the app uses, against the schema or the sampled items
    rapid_lookups      single lookups, multi-lookups (each reader strategy), the organisers
    graph_permissions  the Graph token and roles, the mailboxes, free/busy, Teams, user lookup
    mailbox_bounds     the site's people outside its bounds, and proof of the app's scope in Exchange
    tokens             what a token says about itself; the fix when none is issued
    findings           Finding, Section and their levels; report: the text and JSON answers
"""

from .findings import FAIL, OK, WARN, Finding, Section
from .graph_permissions import required_roles
from .rapid_lookups import link_shape
from .rapid_schema import schema_columns
from .report import failed, to_json, to_text
from .run import check_all, check_env, check_site
from .tokens import jwt_claims

__all__ = ["FAIL", "OK", "WARN", "Finding", "Section", "check_all", "check_env", "check_site", "failed",
           "jwt_claims", "link_shape", "required_roles", "schema_columns", "to_json", "to_text"]
