"""The site check's report, as the CLI prints it (text with ✓ ! ✗ marks) and as the admin function
answers it (JSON, `ok` false when something failed)."""

from __future__ import annotations

from dataclasses import asdict

from .findings import FAIL, OK, WARN, Section

MARKS = {OK: "✓", WARN: "!", FAIL: "✗"}


def failed(sections: list[Section]) -> bool:
    return any(f.level == FAIL for s in sections for f in s.findings)


def to_json(sections: list[Section]) -> dict:
    return {"ok": not failed(sections),
            "sections": [{"name": s.name, "findings": [asdict(f) for f in s.findings]} for s in sections]}


def to_text(sections: list[Section]) -> str:
    lines = []
    for s in sections:
        lines.append(s.name if s.name != "app" else "app settings")
        for f in s.findings:
            lines.append(f"  {MARKS[f.level]} {f.what}" + (f": {f.detail}" if f.detail else ""))
            if f.fix and f.level != OK:
                lines.append(f"      fix: {f.fix}")
        lines.append("")
    counts = {lvl: sum(f.level == lvl for s in sections for f in s.findings) for lvl in (OK, WARN, FAIL)}
    lines.append(f"{counts[OK]} ok, {counts[WARN]} warnings, {counts[FAIL]} problems")
    return "\n".join(lines) + "\n"
