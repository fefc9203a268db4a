"""The site check (docs/product-rules.md, "The site check"): how each configured site and its Microsoft 365
tenant really look, checked with these settings before the first webhook arrives. Changes nothing.

    python -m devtools.site_check                       # local.settings.json, for people
    python -m devtools.site_check --json                # the same as JSON
    python -m devtools.site_check --settings other.json --site acme/sales
    python -m devtools.site_check --webhook-urls https://<functionAppHostName>   # each site's URLs

The settings file's Values are what is checked; the environment fills in what the file lacks.
Exit status 0 when nothing failed (warnings allowed), 1 otherwise. In Azure the same check runs as
the admin-level function `GET /ops/site-check` (master key; `?format=text`, `?site=tenant/site`).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def read_settings(path: Path) -> dict:
    """The Values of a local.settings.json, as app settings (strings)."""
    values = json.loads(path.read_text()).get("Values", {})
    return {key: value if isinstance(value, str) else json.dumps(value) if isinstance(value, (list, dict))
            else str(value) for key, value in values.items()}


def main(argv=None, environ=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.site_check", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--settings", type=Path, default=ROOT / "local.settings.json",
                        help="a local.settings.json (default: the one beside function_app.py)")
    parser.add_argument("--site", help="check only this site (tenant/site)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    parser.add_argument("--webhook-urls", metavar="BASE",
                        help="print each site's webhook URLs (with its site_token, without the function key) and stop")
    args = parser.parse_args(argv)
    env = dict(os.environ if environ is None else environ)
    if args.settings.exists():
        try:
            env.update(read_settings(args.settings))
        except (ValueError, AttributeError) as e:
            print(f"{args.settings}: not a local.settings.json ({e})", file=sys.stderr)
            return 1
    elif args.settings != parser.get_default("settings"):
        print(f"{args.settings}: no such file", file=sys.stderr)
        return 1
    logging.basicConfig(level=logging.ERROR)
    sys.path.insert(0, str(ROOT))
    from shared.ops.site_check import check_env, failed, to_json, to_text

    if args.webhook_urls:
        return print_webhook_urls(env, args.webhook_urls.rstrip("/"), args.site)
    report = check_env(env, only=args.site)
    print(json.dumps(to_json(report), indent=2) if args.json else to_text(report), end="" if not args.json else "\n")
    return 1 if failed(report) else 0


def print_webhook_urls(env: dict, base: str, only: str | None) -> int:
    """The URLs to paste into each site's webhooks (append &code=<function key>)."""
    from shared.config import ConfigError, settings_from
    from shared.intake.webhooks import site_token

    try:
        settings = settings_from(env)
    except ConfigError as e:
        print(f"settings: {e}", file=sys.stderr)
        return 1
    routes = ("meeting/create", "event/create", "event/update", "event/delete", "subscriptions/update",
              "subscriptions/delete", "sync")
    for site in settings.sites.values():
        if only and site.key.lower() != only.lower():
            continue
        token = site_token(settings.webhook_secrets[0], site.key)
        print(site.key)
        for route in routes + (("agenda/create", "agenda/update", "agenda/delete") if site.agenda else ()):
            print(f"  {base}/{site.key}/0/services/rapid-meetings/{route}?site_token={token}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
