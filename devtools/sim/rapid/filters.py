"""`$filter` for list reads: Rapid-Docs "docs/Rapid/4-Developer Manual/API Concepts/API Concepts.md",
section "OData Filter Support" (eq ne lt le gt ge, and, or, brackets, `in()`, `inUniversal()`,
`inScoped()`) and "Relative Dates" ('@today', '@tomorrow', '@startOfWeek' … '@endOfQuarter', midnight).
`not` and `col in (v, …)` are OData the simulator also reads. List names inside `inUniversal(…)` /
`inScoped(…)` may contain spaces ("Meeting Events"): the name runs up to the comma.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Protocol

from shared import clock

from ..base import HttpError, iso_ms

_TOKEN = re.compile(r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<num>-?\d+(?:\.\d+)?)(?![\w.])|(?P<punc>[(),])"
                    r"|(?P<word>[A-Za-z_$][\w./$]*))")
_LINK_FUNC = re.compile(r"\s*(?P<func>inUniversal|inScoped)\s*\(", re.IGNORECASE)
_NAME_ARG = re.compile(r"\s*(?:'(?P<quoted>(?:[^']|'')*)'|(?P<bare>[^,()']+?))\s*(?=[,)])")
_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?(?:Z|[+-]\d{2}:?\d{2})?$")
_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "eq": lambda a, b: a == b, "ne": lambda a, b: a != b,
    "gt": lambda a, b: a > b, "ge": lambda a, b: a >= b, "lt": lambda a, b: a < b, "le": lambda a, b: a <= b,
}


class FilterSubject(Protocol):
    """What a compiled filter asks of one item."""

    def value(self, column: str) -> Any: ...

    def linked(self, list_name: str, column: str | None, ids: list[int]) -> bool: ...


@dataclass
class Filter:
    match: Callable[[FilterSubject], bool]
    columns: set[str] = field(default_factory=set)                       # columns it reads
    links: list[tuple[str, str | None]] = field(default_factory=list)    # (list, column) it reads


def parse_filter(text: str, now: datetime | None = None) -> Filter:
    """Compile a `$filter`; 400 on anything it cannot read."""
    if not text or not text.strip():
        return Filter(lambda subject: True)
    parser = _Parser(_tokenize(text.strip()), text, now or clock.now())  # the world's clock (shared/clock.py)
    predicate = parser.or_()
    if parser.i != len(parser.tokens):
        parser.fail()
    return Filter(predicate, parser.columns, parser.links)


def _tokenize(text: str) -> list[tuple[str, str]]:
    tokens, pos = [], 0
    while pos < len(text):
        func = _LINK_FUNC.match(text, pos)
        if func:
            tokens += [("func", func.group("func").lower()), ("punc", "(")]
            name = _NAME_ARG.match(text, func.end())
            if not name:
                raise HttpError(400, "BadRequest", f"Invalid $filter: a list name is missing in {text!r}")
            value = name.group("quoted").replace("''", "'") if name.group("quoted") is not None \
                else name.group("bare")
            tokens.append(("name", value.strip()))
            pos = name.end()
            continue
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            if not text[pos:].strip():
                break
            raise HttpError(400, "BadRequest", f"Invalid $filter near: {text[pos:]!r}")
        kind = m.lastgroup
        tokens.append((kind, m.group(kind)))
        pos = m.end()
    return tokens


class _Parser:
    def __init__(self, tokens: list[tuple[str, str]], text: str, now: datetime):
        self.tokens, self.text, self.now, self.i = tokens, text, now, 0
        self.columns: set[str] = set()
        self.links: list[tuple[str, str | None]] = []

    def fail(self):
        raise HttpError(400, "BadRequest", f"Invalid $filter: {self.text!r}")

    def peek(self, value: str | None = None, kind: str | None = None) -> bool:
        if self.i >= len(self.tokens):
            return False
        k, v = self.tokens[self.i]
        return (value is None or v.lower() == value) and (kind is None or k == kind)

    def take(self, kind: str | None = None, value: str | None = None) -> str:
        if self.i >= len(self.tokens):
            self.fail()
        k, v = self.tokens[self.i]
        if (kind and k != kind) or (value and v.lower() != value):
            self.fail()
        self.i += 1
        return v

    def or_(self):
        left = self.and_()
        while self.peek("or", "word"):
            self.take()
            right, prev = self.and_(), left
            left = lambda s, a=prev, b=right: a(s) or b(s)
        return left

    def and_(self):
        left = self.unary()
        while self.peek("and", "word"):
            self.take()
            right, prev = self.unary(), left
            left = lambda s, a=prev, b=right: a(s) and b(s)
        return left

    def unary(self):
        if self.peek("not", "word"):
            self.take()
            inner = self.unary()
            return lambda s: not inner(s)
        return self.primary()

    def primary(self):
        if self.peek("("):
            self.take()
            inner = self.or_()
            self.take("punc", ")")
            return inner
        if self.peek(kind="func"):
            return self.link_function()
        word = self.take("word")
        if word.lower() == "in" and self.peek("("):          # in(column, v, …)
            self.take()
            column = self.take("word")
            self.take("punc", ",")
            return self.member(column, self.values())
        op = self.take("word").lower()
        if op == "in":                                       # column in (v, …)
            self.take("punc", "(")
            return self.member(word, self.values())
        if op not in _OPS:
            self.fail()
        self.columns.add(word)
        value, compare = self.value(), _OPS[op]
        return lambda s: _compare(s.value(word), value, compare)

    def link_function(self):
        func = self.take("func")
        self.take("punc", "(")
        list_name = self.take("name")
        column = None
        if func == "inscoped":
            self.take("punc", ",")
            column = self.take("word")
        self.take("punc", ",")
        ids = self.values()
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in ids):
            raise HttpError(400, "BadRequest", f"Invalid $filter: {func} takes item ids: {self.text!r}")
        self.links.append((list_name, column))
        return lambda s: s.linked(list_name, column, ids)

    def member(self, column: str, values: list):
        self.columns.add(column)

        def match(s) -> bool:
            actual = s.value(column)
            items = actual if isinstance(actual, list) else [actual]
            return any(_compare(a, v, _OPS["eq"]) for a in items for v in values)
        return match

    def values(self) -> list:
        values = [self.value()]
        while self.peek(","):
            self.take()
            values.append(self.value())
        self.take("punc", ")")
        return values

    def value(self):
        kind = self.tokens[self.i][0] if self.i < len(self.tokens) else None
        raw = self.take()
        if kind == "str":
            text = raw[1:-1].replace("''", "'")
            return _relative_date(text, self.now) if text.startswith("@") else text
        if kind == "num":
            return float(raw) if "." in raw else int(raw)
        if kind == "word" and raw.lower() in ("true", "false", "null"):
            return {"true": True, "false": False, "null": None}[raw.lower()]
        self.fail()


def _relative_date(glyph: str, now: datetime) -> str:
    """Rapid-Docs "API Concepts.md", "Relative Dates": all have midnight as their time (UTC here)."""
    day = now.astimezone(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    month_start = day.replace(day=1)
    quarter_start = month_start.replace(month=3 * ((day.month - 1) // 3) + 1)

    def add_months(d: datetime, n: int) -> datetime:
        y, m = divmod(d.month - 1 + n, 12)
        return d.replace(year=d.year + y, month=m + 1)
    glyphs = {
        "today": day, "tomorrow": day + timedelta(days=1),
        "startofweek": day - timedelta(days=day.weekday()),
        "endofweek": day - timedelta(days=day.weekday()) + timedelta(days=6),
        "startofmonth": month_start, "endofmonth": add_months(month_start, 1) - timedelta(days=1),
        "startofquarter": quarter_start, "endofquarter": add_months(quarter_start, 3) - timedelta(days=1),
    }
    when = glyphs.get(glyph[1:].lower())
    return iso_ms(when) if when else glyph


def _as_datetime(text: str) -> datetime | None:
    if not _ISO.match(text):
        return None
    try:
        when = datetime.fromisoformat(text.replace(" ", "T"))
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


def _coerce(actual, value):
    """Compare the way a database would: ISO dates as instants, numbers with numeric text."""
    if isinstance(actual, str) and isinstance(value, str):
        a, v = _as_datetime(actual), _as_datetime(value)
        if a is not None and v is not None:
            return a, v
    if isinstance(actual, bool) or isinstance(value, bool):
        return actual, value
    if isinstance(actual, (int, float)) and isinstance(value, str):
        try:
            return actual, float(value)
        except ValueError:
            return actual, value
    if isinstance(actual, str) and isinstance(value, (int, float)):
        try:
            return float(actual), value
        except ValueError:
            return actual, value
    return actual, value


def _compare(actual, value, compare) -> bool:
    if isinstance(actual, list):   # a multi-lookup id list (variant multi_lookup_column)
        hits = [_compare(a, value, compare) for a in actual]
        return any(hits) if compare is not _OPS["ne"] else all(hits)
    if value is None or actual is None:
        return compare(actual, value) if compare in (_OPS["eq"], _OPS["ne"]) else False
    try:
        return compare(*_coerce(actual, value))
    except TypeError:
        return False
