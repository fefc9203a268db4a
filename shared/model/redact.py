"""Secrets that ride in URLs never reach a log line or a report: the function key (`code=`), a site's
webhook token (`site_token=`) and SAS signatures (`sig=`) are replaced with `***` wherever the app logs or
shows a URL (functions/http.py, the site check)."""

from __future__ import annotations

import re

SECRET_PARAMS = ("code", "site_token", "sig")
_SECRET = re.compile(rf"(?i)(?<![\w-])({'|'.join(SECRET_PARAMS)})=[^&\s#]*")


def redact(text: str) -> str:
    return _SECRET.sub(r"\1=***", text)
