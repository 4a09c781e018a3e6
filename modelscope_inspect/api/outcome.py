"""The exit code of each command's report: 0 ok, 1 a check, diff or scan found something, 2 unreadable."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import EXIT_FOUND, EXIT_OK, EXIT_UNREADABLE

if TYPE_CHECKING:
    from ..analysis.check import CheckReport
    from ..analysis.diff import DiffReport
    from ..analysis.fit import FitReport, NeedReport
    from ..loaders.scanner import ScanReport


def exit_code(report: CheckReport | DiffReport | ScanReport | FitReport | NeedReport) -> int:
    """`mi check`: 2 when a path could not be read, else 1 when a rule failed. `mi diff`: 1 when the two
    differ. `mi scan`: 1 when anything dangerous or unknown was found, else 2 when a file could not be
    scanned (picklescan's contract). `mi fit`: 1 when the model does not fit (without --gpu: when no
    catalogued accelerator holds it), so CI can gate a deployment target."""
    from ..analysis.fit import FitReport, NeedReport

    if isinstance(report, FitReport):
        return EXIT_OK if report.fits else EXIT_FOUND
    if isinstance(report, NeedReport):
        return EXIT_OK if any(r.devices for r in report.rows) else EXIT_FOUND
    from ..analysis.check import CheckReport  # after fit's: `mi fit` need not import the check module
    from ..analysis.diff import DiffReport

    if isinstance(report, CheckReport):
        if report.unreadable:
            return EXIT_UNREADABLE
        return EXIT_OK if report.passed else EXIT_FOUND
    if isinstance(report, DiffReport):
        return EXIT_OK if report.identical else EXIT_FOUND
    return {"clean": EXIT_OK, "findings": EXIT_FOUND, "error": EXIT_UNREADABLE}[report.status]
