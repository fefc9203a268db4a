"""HTML descriptions as Exchange gives them back. Pure.

Exchange stores an event's HTML body as a document of its own making: it wraps what it was sent in
`<html><head><meta …></head><body>…</body></html>`, adds CRLFs, drops comments and scripts, and puts
loose text in its own `<div>`s (../shared/FACTS.md, "Exchange rewrites HTML bodies"). So an
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
