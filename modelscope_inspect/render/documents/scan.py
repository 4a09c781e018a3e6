"""`mi scan --json`."""

from __future__ import annotations

from typing import Any

from ...api.outcome import exit_code
from ...loaders.scanner import ScanReport
from . import envelope


def scan_document(report: ScanReport) -> dict[str, Any]:
    """The `--json` document (schema_version 1)."""
    doc: dict[str, Any] = {
        **envelope("scan"),
        "path": report.path,
        "status": report.status,
        "exit_code": exit_code(report),
        "skipped": report.skipped,
        "files": [
            {
                "path": f.path,
                "format": f.format,
                "status": f.status,
                "globals": list(f.globals),
                "streams": [
                    {
                        "name": s.name,
                        "start": s.start,
                        "end": s.end,
                        "protocol": s.protocol,
                        "globals": list(s.globals),
                        "calls": s.calls,
                        "error": s.error,
                    }
                    for s in f.streams
                ],
                "findings": [
                    {
                        "stream": x.stream,
                        "offset": x.offset,
                        "opcode": x.opcode,
                        "kind": x.kind,
                        "target": x.target,
                        "severity": x.severity.value,
                        "reason": x.reason,
                    }
                    for x in f.findings
                ],
                "more_findings": f.more_findings,
                "notes": list(f.notes),
                "error": f.error,
            }
            for f in report.files
        ],
    }
    # Only for URLs (like `mi inspect --json`): what crossed the network, and notes about the target.
    if report.notes:
        doc["notes"] = list(report.notes)
    if report.bytes_read is not None:
        doc["bytes_read"] = report.bytes_read
    return doc
