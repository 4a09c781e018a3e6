"""`mi scan` as tables: one block per file (streams, findings with offsets), then a summary for folders."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import RenderableType
from rich.table import Table

from ...loaders.safety import Severity
from ..units import network_line

if TYPE_CHECKING:
    from ...loaders.scanner import FileScanReport, ScanReport

_STATUS = {
    "clean": "clean",
    "dangerous": "DANGEROUS: would run code or commands on load",
    "unknown": "UNKNOWN globals: would import and run code that is not a plain checkpoint's",
    "error": "COULD NOT SCAN",
}


def _file_view(f: FileScanReport) -> list[RenderableType]:
    head = Table.grid(padding=(0, 2))
    head.add_column(style="bold")
    head.add_column()
    head.add_row("path", f.path)
    head.add_row("format", f.format)
    head.add_row("status", _STATUS[f.status])
    for s in f.streams:
        err = f", broken: {s.error}" if s.error else ""
        head.add_row(
            "pickle",
            f"{s.name} (protocol {s.protocol}, {len(s.globals)} globals, {s.calls} calls, "
            f"bytes {s.start:,}–{s.end:,}{err})",
        )
    for note in f.notes:
        head.add_row("note", note)
    if f.error:
        head.add_row("error", f.error)
    out: list[RenderableType] = [head]
    if f.findings:
        multi = len({x.stream for x in f.findings}) > 1
        t = Table(box=None, pad_edge=False)
        t.add_column("severity")
        if multi:
            t.add_column("stream", overflow="fold")
        t.add_column("offset", justify="right")
        t.add_column("opcode")
        t.add_column("target", overflow="fold")
        for x in f.findings:
            cells = [x.severity.value, *([x.stream] if multi else []), f"{x.offset:,}", x.opcode, x.target]
            t.add_row(*cells)
        out.append(t)
        if f.more_findings:
            out.append(f"… and {f.more_findings:,} more findings (see --json)")
        kinds = {x.severity for x in f.findings}
        if Severity.dangerous in kinds:
            out.append("dangerous: runs commands, code or I/O when the file is loaded")
        if Severity.unknown in kinds:
            out.append(
                "unknown: not on the allowlist of what a plain checkpoint needs; loading imports it and runs its code"
            )
        if not multi:
            out.append(f"offsets are byte positions in {f.findings[0].stream}")
    return out


def scan_view(report: ScanReport) -> list[RenderableType]:
    """Tables for `mi scan`: one block per file, then a summary line for folders."""
    out: list[RenderableType] = []
    for i, f in enumerate(report.files):
        if i:
            out.append("")
        out.extend(_file_view(f))
    if len(report.files) > 1 or report.skipped:
        counts: dict[str, int] = {}
        for f in report.files:
            counts[f.status] = counts.get(f.status, 0) + 1
        summary = ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))
        out.append("")
        n = len(report.files)
        out.append(f"{n} file{'s' if n != 1 else ''} scanned: {summary}; {report.skipped} other entries skipped")
    for note in report.notes:
        out.append(f"note: {note}")
    if report.bytes_read is not None:
        out.append(network_line(report.bytes_read))
    return out
