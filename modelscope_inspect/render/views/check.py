"""`mi check` as tables: one per path (rule, measured, limit, result), then a count of failures."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import RenderableType

from ..layout import Column, Table
from ..units import human_bytes, human_count, network_line

if TYPE_CHECKING:
    from ...analysis.check import CheckReport, RuleResult


def _count(n: int) -> str:
    return f"{n:,} ({human_count(n)})" if n >= 1000 else f"{n:,}"


def _bytes(n: int) -> str:
    return f"{n:,} B ({human_bytes(n)})" if n >= 1024 else f"{n:,} B"


def shown(x: RuleResult) -> tuple[str, str]:
    """The measured value and the limit of one rule, as the table shows them."""
    rule = x.rule.split(" ", 1)[0]
    if rule == "max-size":
        return _bytes(x.measured), _bytes(x.limit)
    if rule in ("max-params", "min-params"):
        return _count(x.measured), _count(x.limit)
    if rule == "expect-params":
        return _count(x.measured), f"{x.limit['value']:,} ± {x.limit['tolerance']:,}"
    if rule == "allow-dtypes":
        return ", ".join(x.measured) or "(none)", ", ".join(x.limit)
    if rule == "forbid-pickle":
        return ("pickle (refused: unsafe globals)" if x.refused else str(x.measured)), "no pickle-based file"
    if rule == "max-share":
        return f"{x.measured:.1%} ({x.params or 0:,} params)", f"{x.limit:.1%}"
    if rule == "vocab-consistent":
        m = x.measured
        rows = ", ".join(f"{r:,}" for r in m["tables"].values()) or "none"
        config = f", config {m['config']:,}" if m["config"] is not None else ""
        return f"ids 0..{m['ids_needed'] - 1:,} ({m['tokenizer']:,} tokens{config}), rows {rows}", "ids < rows"
    return str(x.measured), str(x.limit)


def check_view(report: CheckReport) -> list[RenderableType]:
    """One table per path: rule, measured, limit, result."""
    out: list[RenderableType] = []
    for i, r in enumerate(report.results):
        if i:
            out.append("")
        if r.error:
            if len(report.results) > 1:  # one path: its error line on stderr says it all
                out.append(f"{r.path}: ERROR {r.error}")
            continue
        t = Table(
            Column("rule", wrap=True, hang="  "),
            Column("measured", wrap=True),
            Column("limit", wrap=True),
            Column("result", wrap=True),
            title=f"{r.path}  ({'PASS' if r.passed else 'FAIL'}; budgets from {r.budget_source})",
        )
        for x in r.rules:
            result = "pass" if x.passed else "FAIL"
            if x.detail:
                result += f" ({x.detail})"
            t.add_row(x.rule, *shown(x), result)
        out.append(t)
        if r.bytes_read is not None:
            out.append(network_line(r.bytes_read))
    failed = sum(1 for r in report.results if not r.passed)
    if len(report.results) > 1:
        out.append("")
        out.append(f"{len(report.results)} paths checked, {failed} failed")
    return out
