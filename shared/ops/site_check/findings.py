"""What every check reports: a Finding (ok / warn / fail, with the fix) in a named Section. A network
failure is a finding too, never a traceback; `CannotContinue` ends a section whose next steps need what
just failed (its finding already recorded)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ...model.errors import MailboxRefused, RemoteError, Throttled, TransientError
from ...model.redact import redact

OK, WARN, FAIL = "ok", "warn", "fail"
# what a check can meet asking Graph or a site; a mailbox refused (bounds, Exchange's scope) is a finding too
NETWORK_ERRORS = (RemoteError, TransientError, Throttled, MailboxRefused)


@dataclass
class Finding:
    level: str
    what: str
    detail: str = ""
    fix: str = ""


@dataclass
class Section:
    name: str
    findings: list[Finding] = field(default_factory=list)

    def add(self, level: str, what: str, detail: str = "", fix: str = "") -> Finding:
        finding = Finding(level, what, redact(detail), fix)
        self.findings.append(finding)
        return finding


class CannotContinue(Exception):
    """The rest of a section cannot be checked (its finding is already recorded)."""


def counted(count: int, noun: str) -> str:
    """'1 item', '3 items': the counts in findings read as English."""
    return f"{count} {noun}{'s' * (count != 1)}"
