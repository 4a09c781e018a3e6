"""`mi check --json`."""

from __future__ import annotations

from typing import Any

from ...analysis.check import CheckReport
from ...api.outcome import exit_code
from ...errors import EXIT_OK, InspectError
from . import envelope


def check_document(report: CheckReport) -> dict[str, Any]:
    """The `--json` document (schema_version 1)."""
    code = exit_code(report)
    return {
        **envelope("check"),
        "passed": code == EXIT_OK,
        "exit_code": code,
        "error": None,
        "results": [
            {
                "path": r.path,
                "passed": r.passed,
                "budget_source": r.budget_source,
                "error": r.error,
                **({"bytes_read": r.bytes_read} if r.bytes_read is not None else {}),
                "rules": [
                    {"rule": x.rule, "measured": x.measured, "limit": x.limit, "passed": x.passed, "detail": x.detail}
                    for x in r.rules
                ],
            }
            for r in report.results
        ],
    }


def error_document(exc: InspectError) -> dict[str, Any]:
    """The `--json` document when nothing could be checked (bad flags or pyproject table): `error` set, no results."""
    return {**envelope("check"), "passed": False, "exit_code": exc.exit_code, "error": str(exc), "results": []}
