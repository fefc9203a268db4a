"""Export a site's audit trail as JSON lines for a SIEM, paging through `GET ops/audit` (functions/audit.py).

    AUDIT_EXPORT_KEY=<the Function App's master key> \\
    python -m devtools.audit_export --app https://<app>.azurewebsites.net --site contoso/sales \\
        --since 2026-01-01T00:00:00Z [--until …] [--item <id>] [--out audit.jsonl]

Each line is one write the app made (docs/operations.md, "The audit trail"), oldest first; the file is
appended to, so a scheduled export can pass `--since` the last line's `at`. The key is read from the
environment (AUDIT_EXPORT_KEY), never from the command line: it would stay in the shell's history.
Without --out the lines go to stdout.
"""

from __future__ import annotations

import argparse
import os
import sys

import requests

KEY_SETTING = "AUDIT_EXPORT_KEY"
PAGE = 1000


def export(app: str, key: str, site: str, since: str, out, until: str | None = None, item: str | None = None,
           limit: int = PAGE, session: requests.Session | None = None) -> tuple[int, int]:
    """Write every row of the range to `out` (a text file); (rows written, pages read). Raises
    RuntimeError naming the route's answer when a page is refused."""
    session = session or requests.Session()
    params = {"site": site, "since": since, "limit": str(limit), **({"until": until} if until else {}),
              **({"item": item} if item else {})}
    rows = pages = 0
    after = ""
    while True:
        answer = session.get(f"{app.rstrip('/')}/ops/audit", params={**params, **({"after": after} if after else {})},
                             headers={"x-functions-key": key}, timeout=60)
        if answer.status_code != 200:
            raise RuntimeError(f"ops/audit answered {answer.status_code}: {answer.text[:300]}")
        pages += 1
        for line in answer.text.splitlines():
            if line.strip():
                out.write(line + "\n")
                rows += 1
        after = answer.headers.get("X-Continuation", "")
        if not after:
            return rows, pages


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--app", required=True, help="the Function App's URL, e.g. https://<app>.azurewebsites.net")
    parser.add_argument("--site", required=True, help="tenant/site")
    parser.add_argument("--since", required=True, help="ISO 8601: the oldest row wanted")
    parser.add_argument("--until", help="ISO 8601: rows before this instant only")
    parser.add_argument("--item", help="only this site item's rows")
    parser.add_argument("--out", help="file to append to (default: stdout)")
    args = parser.parse_args(argv)
    key = os.environ.get(KEY_SETTING)
    if not key:
        print(f"set {KEY_SETTING} to the Function App's master key (az functionapp keys list)", file=sys.stderr)
        return 2
    try:
        if args.out:
            with open(args.out, "a", encoding="utf-8") as out:
                rows, pages = export(args.app, key, args.site, args.since, out, args.until, args.item)
        else:
            rows, pages = export(args.app, key, args.site, args.since, sys.stdout, args.until, args.item)
    except (RuntimeError, requests.RequestException) as e:
        print(f"export failed: {e}", file=sys.stderr)
        return 1
    print(f"{rows} row(s) in {pages} page(s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
