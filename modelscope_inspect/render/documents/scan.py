"""`mi scan --json`."""

from __future__ import annotations

from typing import Any

from ...api.outcome import exit_code
from ...loaders.remote_code import AutoMapEntry, RemoteCode
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
    # Folders only: the Python files trust_remote_code=True would run, and where `auto_map` points.
    if report.remote_code:
        doc["remote_code"] = [remote_code_document(rc) for rc in report.remote_code]
    # Only for URLs (like `mi inspect --json`): what crossed the network, and notes about the target.
    if report.notes:
        doc["notes"] = list(report.notes)
    if report.bytes_read is not None:
        doc["bytes_read"] = report.bytes_read
    return doc


def remote_code_document(rc: RemoteCode) -> dict[str, Any]:
    """One folder's remote code: its Python files (size, sha256, the `auto_map` entries pointing at each),
    entries pointing into other repositories, and entries naming a module the folder lacks."""
    return {
        "folder": rc.folder,
        "files": [
            {"path": f.path, "size": f.size, "sha256": f.sha256, "auto_map": [_entry(e) for e in f.entries]}
            for f in rc.files
        ],
        "other_repositories": [_entry(e) for e in rc.foreign],
        "missing": [_entry(e) for e in rc.missing],
        "more_files": rc.more_files,
    }


def _entry(e: AutoMapEntry) -> dict[str, Any]:
    return {"config": e.config, "key": e.key, "ref": e.ref, "repo": e.repo, "module": e.module, "class": e.cls}
