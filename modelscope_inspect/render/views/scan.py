"""`mi scan` as tables: one block per file (streams, findings with offsets), then a summary for folders."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import RenderableType

from ...loaders.safety import TORCHSCRIPT_HELPERS, Severity, classify
from ..layout import Column, Table, grid
from ..units import network_line

if TYPE_CHECKING:
    from ...loaders.scanner import FileScanReport, ScanReport

_STATUS = {
    "clean": "clean",
    "dangerous": "DANGEROUS: would run code or commands on load",
    "unknown": "UNKNOWN globals: would import and run code that is not a plain checkpoint's",
    "code": "CODE: ships code its loader runs (accept it with --allow)",
    "error": "COULD NOT SCAN",
}


def _flagged(g: str, torchscript: bool) -> bool:
    if torchscript and (g in TORCHSCRIPT_HELPERS or g.startswith("__torch__.")):
        return False  # allowed inside a TorchScript archive: its code is the finding
    return g.startswith("<") or classify(g) is not None


def _globals(names: tuple[str, ...], torchscript: bool = False) -> str:
    """`16 globals, 11 not on the allowlist`: the rows below list those (and any calls)."""
    n = len(names)
    flagged = sum(1 for g in names if _flagged(g, torchscript))
    noun = "global" if n == 1 else "globals"
    if not n:
        return "no globals"
    return f"{n} {noun}, " + ("all on the allowlist" if not flagged else f"{flagged} not on the allowlist")


def _file_view(f: FileScanReport) -> list[RenderableType]:
    rows: list[tuple[str, str]] = [("path", f.path), ("format", f.format), ("status", _STATUS[f.status])]
    for s in f.streams:
        err = f", broken: {s.error}" if s.error else ""
        gl = _globals(s.globals, f.format == "torchscript")
        rows.append(
            (
                "pickle",
                f"{s.name} (protocol {s.protocol}; {gl}; {s.calls} calls; bytes {s.start:,}–{s.end:,}{err})",
            )
        )
    for note in f.notes:
        rows.append(("note", note))
    if f.error:
        rows.append(("error", f.error))
    out: list[RenderableType] = [grid(rows)]
    if f.findings:
        if all(x.kind == "remote-code" for x in f.findings):  # remote code: no opcode or offset to show
            t = Table(Column("severity"), Column("target", wrap=True), Column("why", wrap=True))
            for x in f.findings:
                t.add_row(x.severity.value, x.target, x.reason)
            return [
                *out,
                t,
                "code: the model's own Python, run when loaded on purpose; accept with --allow remote-code",
            ]
        multi = len({x.stream for x in f.findings}) > 1
        cols = [Column("severity")]
        if multi:
            cols.append(Column("stream", wrap=True))
        cols += [Column("offset", "right"), Column("opcode"), Column("target", wrap=True)]
        t = Table(*cols)
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
        if Severity.code in kinds:
            reasons = sorted({x.reason for x in f.findings if x.severity == Severity.code})
            kinds_ = sorted({x.kind for x in f.findings if x.severity == Severity.code})
            out.append(f"code: {'; '.join(reasons)} (accept with --allow {', '.join(kinds_)})")
        if not multi and kinds != {Severity.code}:
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
        skipped = f"{report.skipped} other {'entry' if report.skipped == 1 else 'entries'} skipped"
        out.append(f"{n} file{'s' if n != 1 else ''} scanned: {summary}; {skipped}")
    for note in report.notes:
        out.append(f"note: {note}")
    if report.bytes_read is not None:
        out.append(network_line(report.bytes_read))
    return out
