"""Descriptions, both ways, cut down to an allow-list of HTML: what an invitation and a site may show.

A site's description goes into invitations that Outlook renders, and an Outlook body goes into the site,
which renders it too: either side may hold what the other should never run or show (scripts, event
handlers, `javascript:` links, forms, frames, styles that hide text). Both are cleaned by nh3 (the Python
binding of the Rust `ammonia` sanitiser, which parses HTML as browsers do, html5ever) against one
allow-list: the formatting `html_body` compares (text, blocks, marks, links, images, lists, tables).

No `class` or `id` survives: the agenda section this app adds to a body is found by its class
(`html_body.AGENDA_CLASS`), so a description can never carry that marker and be read as our agenda.
Pure; nh3 is imported on first use (cold start).
"""

from __future__ import annotations

from functools import lru_cache

TAGS = frozenset({
    "a", "b", "strong", "i", "em", "u", "s", "strike", "del", "ins", "sub", "sup", "small", "code", "pre", "kbd",
    "mark", "q", "cite", "abbr", "p", "div", "span", "br", "hr", "blockquote", "address", "h1", "h2", "h3", "h4",
    "h5", "h6", "ul", "ol", "li", "dl", "dt", "dd", "table", "caption", "thead", "tbody", "tfoot", "tr", "td",
    "th", "col", "colgroup", "img", "section", "article", "header", "footer",
})
ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "title", "width", "height"},
    "td": {"colspan", "rowspan"},
    "th": {"colspan", "rowspan", "scope"},
    "ol": {"start", "type"},
    "abbr": {"title"},
}
# cid: an image attached to the Outlook item (resources/attachment.md, inline attachments)
URL_SCHEMES = frozenset({"http", "https", "mailto", "tel", "cid"})
# dropped with everything inside them, not only their tags: a script's text is no description
DROPPED_WITH_CONTENT = frozenset({"script", "style", "title", "head", "template", "noscript", "textarea",
                                  "select", "iframe", "object", "embed", "svg", "math"})


@lru_cache(maxsize=4096)
def clean_html(text: str) -> str:
    """`text` with only the allow-list's tags, attributes and URL schemes left; text is kept, comments go."""
    if "<" not in (text or ""):
        return text or ""  # no markup: nothing to run or hide (entities are text, and stay as they are)
    import nh3

    return nh3.clean(text, tags=set(TAGS), attributes={k: set(v) for k, v in ATTRIBUTES.items()},
                     clean_content_tags=set(DROPPED_WITH_CONTENT), url_schemes=set(URL_SCHEMES),
                     strip_comments=True, link_rel=None)
