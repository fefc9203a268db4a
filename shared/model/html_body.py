"""HTML descriptions as Exchange gives them back. Pure.

Exchange stores an event's HTML body as a document of its own making: it wraps what it was sent in
`<html><head><meta …></head><body>…</body></html>`, adds CRLFs, drops comments and scripts, and puts
loose text in its own `<div>`s (docs/platform-facts.md, "Exchange rewrites HTML bodies"). So an
Outlook body is compared with a site description by what survives that round trip: the text, where
blocks break it, and the formatting that carries meaning (bold, italics, links, lists, tables...).
Parsed with Beautiful Soup over Python's own HTML parser, never with regular expressions.
"""

from __future__ import annotations

from functools import lru_cache

_SKIPPED = {"head", "script", "style", "title", "meta", "link"}
_BLOCKS = {"p", "div", "br", "li", "ul", "ol", "table", "thead", "tbody", "tfoot", "tr", "td", "th", "h1", "h2",
           "h3", "h4", "h5", "h6", "blockquote", "pre", "hr", "section", "article", "header", "footer", "dl", "dt",
           "dd", "center", "address", "form"}
# formatting worth keeping, under one name per meaning
_MARKS = {"b": "b", "strong": "b", "i": "i", "em": "i", "u": "u", "s": "s", "strike": "s", "del": "s",
          "sub": "sub", "sup": "sup", "code": "code", "a": "a", "img": "img", "ul": "ul", "ol": "ol", "li": "li",
          "table": "table", "tr": "tr", "td": "td", "th": "th", "h1": "h1", "h2": "h2", "h3": "h3", "h4": "h4",
          "h5": "h5", "h6": "h6", "blockquote": "blockquote", "hr": "hr"}
_BREAK = "\n"
_BLOCK_EDGE = object()  # where a block starts or ends (told apart from text by identity, not by value)


def _soup(content: str):
    from bs4 import BeautifulSoup  # imported on first use: keeps the cold start light

    return BeautifulSoup(content or "", "html.parser")


def inner_body(content: str) -> str:
    """What is inside <body> (the whole text when it is no document), without the outer whitespace."""
    soup = _soup(content)
    return (soup.body.decode_contents() if soup.body else str(soup)).strip()


@lru_cache(maxsize=4096)
def html_form(content: str) -> tuple[str, ...]:
    """The part of an HTML text that survives Exchange's rewrite: the text (whitespace collapsed),
    where blocks break it, and the formatting marks that carry meaning."""
    from bs4 import Comment, Declaration, Doctype, NavigableString, ProcessingInstruction, Tag

    tokens: list[str] = [""]  # text runs (possibly empty) between marks and breaks

    def walk(node) -> None:
        for child in node.children:
            if isinstance(child, (Comment, Declaration, Doctype, ProcessingInstruction)):
                continue
            if isinstance(child, NavigableString):
                tokens[-1] += str(child)
            elif isinstance(child, Tag) and child.name not in _SKIPPED:
                mark, block = _MARKS.get(child.name), child.name in _BLOCKS
                target = child.get("href") if mark == "a" else child.get("src") if mark == "img" else None
                opening = [_BLOCK_EDGE] * block + [f"<{mark}{' ' + str(target) if target else ''}>"] * bool(mark)
                tokens.extend(opening + [""])
                walk(child)
                tokens.extend([f"</{mark}>"] * bool(mark) + [_BLOCK_EDGE] * block + [""])

    soup = _soup(content)
    walk(soup.body or soup)
    form: list[str] = []
    for token in tokens:
        # a block's edge is a break; a text run that happens to be a line feed is whitespace, like any other
        token = _BREAK if token is _BLOCK_EDGE else token if token.startswith("<") else \
            " ".join(token.replace("\xa0", " ").split())
        if token and not (token == _BREAK and (not form or form[-1] == _BREAK)):
            form.append(token)
    while form and form[-1] == _BREAK:
        form.pop()
    return tuple(form)


def same_html(a: str, b: str) -> bool:
    """True when two HTML texts say the same once Exchange's own markup is set aside."""
    return a == b or html_form(a) == html_form(b)


# -- the parts of an Outlook body -------------------------------------------------------------------------
# An event's body in Outlook holds up to three parts: the site's description, the agenda section this app
# adds (issue 15), and the Teams block Exchange adds to an online meeting (concepts/outlook-calendar-online-
# meetings.md, the create and update answers: a separator <div> of underscores, <div class="me-email-text">
# with the join link, a second separator). Only the description is the site's; the agenda is written from
# the site's agenda items; the Teams block belongs to Outlook and is carried over whenever we rewrite a body.

AGENDA_HEADING = "Agenda (from RAPID)"
AGENDA_CLASS = "rapid-meetings-agenda"
TEAMS_LINK = "teams.microsoft.com/l/meetup-join/"


def _text(node) -> str:
    return " ".join(node.get_text(" ").replace("\xa0", " ").split()) if hasattr(node, "get_text") else \
        " ".join(str(node).split())


def _is_separator(node) -> bool:
    text = _text(node)
    return len(text) >= 20 and set(text) == {"_"}


def _siblings_only(node, allowed) -> bool:
    """True when the parent of `node` holds nothing else but whitespace and nodes `allowed` accepts."""
    return all(child is node or not _text(child) or allowed(child) for child in node.parent.children)


def _teams_nodes(root, join_url: str = "") -> list:
    """The nodes of the Teams block: the element holding the join link (or Teams' own `me-email-text`
    <div>), widened while its parent holds nothing else, with the separators either side."""
    from bs4 import Tag

    anchor = root.find("div", class_="me-email-text") or root.find(
        "a", href=lambda h: bool(h) and (TEAMS_LINK in h or (join_url and h == join_url)))
    if anchor is None:
        return []
    while anchor.parent is not None and anchor.parent is not root and _siblings_only(anchor, _is_separator):
        anchor = anchor.parent
    def separator(siblings) -> list:
        for sibling in siblings:
            if not _text(sibling) and not isinstance(sibling, Tag):
                continue  # whitespace between the blocks
            return [sibling] if isinstance(sibling, Tag) and _is_separator(sibling) else []
        return []

    return separator(anchor.previous_siblings) + [anchor] + separator(anchor.next_siblings)  # document order


def _agenda_node(root):
    """Our agenda section: the <div> we wrap it in, found by its class (Exchange keeps class attributes:
    Teams' own block is found by one). Only by its class: a description never carries one (descriptions
    are cut to html_allow_list both ways), while its heading's words are words anyone may write."""
    return root.find("div", class_=AGENDA_CLASS)


@lru_cache(maxsize=1024)  # a body is split when it is read and again when a PATCH carries its Teams block over
def split_body(content: str, join_url: str = "") -> tuple[str, str, str]:
    """(description, agenda, Teams block) of an Outlook body, each as HTML ("" when absent). The agenda
    is the inside of our section; the Teams block is Exchange's markup as found, to be carried over."""
    soup = _soup(content)
    root = soup.body or soup
    teams = _teams_nodes(root, join_url)
    teams_html = "".join(str(n) for n in teams)
    for node in teams:
        node.extract()
    agenda_node = _agenda_node(root)
    agenda = ""
    if agenda_node is not None:
        agenda = agenda_node.decode_contents().strip()
        agenda_node.extract()
    return root.decode_contents().strip(), agenda, teams_html


def compose_body(description: str, agenda: str = "", teams: str = "") -> str:
    """One Outlook body from its parts: the description, our agenda section, the Teams block kept."""
    parts = [description or ""]
    if agenda:
        parts.append(f'<div class="{AGENDA_CLASS}">{agenda}</div>')
    if teams:
        parts.append(teams)
    return "".join(parts)
