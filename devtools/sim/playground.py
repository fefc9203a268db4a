"""What both simulators' playground pages share (`make run`): the Jinja2 environment (each simulator's
own templates, then the common frame `sim_base.html`), form bodies, and POST-then-redirect answers."""

from __future__ import annotations

import os
from urllib.parse import parse_qsl

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, StrictUndefined

from .base import Request, Response

HTML = "text/html; charset=utf-8"
_COMMON = os.path.join(os.path.dirname(__file__), "templates")


def environment(module_file: str) -> Environment:
    """Templates of the simulator `module_file` belongs to, autoescaped, with the common frame."""
    own = os.path.join(os.path.dirname(module_file), "templates")
    return Environment(loader=ChoiceLoader([FileSystemLoader(own), FileSystemLoader(_COMMON)]), autoescape=True,
                       undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)


def form(req: Request) -> dict[str, list[str]]:
    """A form body's fields, each a list (a multi-select sends one pair per selected option)."""
    fields: dict[str, list[str]] = {}
    for key, value in parse_qsl(req.raw.decode("utf-8", "replace"), keep_blank_values=True):
        fields.setdefault(key, []).append(value)
    return fields


def redirect(location: str) -> Response:
    return Response(303, "", {"Location": location}, content_type="text/plain; charset=utf-8")
