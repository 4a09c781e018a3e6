"""`mi params` output as rich tables, and the cross-check block `mi inspect` shows (JSON: `analysis.params`)."""

from __future__ import annotations

from rich.console import Group as RichGroup
from rich.console import RenderableType
from rich.table import Table
from rich.text import Text

from ...analysis.params import CrossCheck, ParamReport
from ..documents.params import params_body
from ..units import human_bytes, human_count, share_bar


def _header(report: ParamReport) -> Table:
    hp = report.hparams
    t = Table.grid(padding=(0, 2))
    t.add_column(style="bold")
    t.add_column()
    arch = report.arch if hp.model_type is None else f"{report.arch} (model_type {hp.model_type})"
    t.add_row("arch", arch)
    hd = params_body(report)["hparams"]
    t.add_row(
        "hparams",
        " · ".join(
            f"{k} {v:,}" if isinstance(v, int) and not isinstance(v, bool) else f"{k} {v}"
            for k, v in hd.items()
            if not isinstance(v, list | dict)  # layer lists and nested configs (JSON has them)
        ),
    )
    t.add_row("total", f"{report.total_params:,} ({human_count(report.total_params)})")
    if report.is_moe:
        share = report.active_params / (report.total_params or 1)
        t.add_row("active/token", f"{report.active_params:,} ({human_count(report.active_params)}, {100 * share:.1f}%)")
    t.add_row("bytes", f"{human_bytes(report.nbytes)} at {report.dtype} ({report.nbytes:,} bytes)")
    if report.lora is not None:
        lo = report.lora
        t.add_row(
            "lora",
            f"{lo.params:,} trainable ({human_count(lo.params)}, {100 * lo.share:.3f}% of the base) — "
            f"r={lo.r} on {', '.join(lo.targets)} ({lo.matrices} matrices)",
        )
    return t


def _terms(report: ParamReport) -> Table:
    t = Table(title="terms", title_justify="left", box=None, pad_edge=False)
    t.add_column("term")
    t.add_column("formula", style="dim")
    t.add_column("each", justify="right")
    t.add_column("×", justify="right")
    t.add_column("params", justify="right")
    t.add_column("share", justify="right")
    t.add_column("", no_wrap=True)
    total = report.total_params or 1
    for term in report.terms:
        share = term.params / total
        t.add_row(
            term.name,
            term.formula,
            f"{term.each:,}",
            str(term.count),
            f"{term.params:,}",
            f"{100 * share:.1f}%",
            share_bar(share, 12),
        )
    t.add_row(Text("total", style="bold"), "", "", "", Text(f"{report.total_params:,}", style="bold"), "100.0%", "")
    return t


def _bullets(title: str, lines: list[str]) -> Text:
    out = Text(title + "\n", style="bold")
    for line in lines:
        out.append(f"  - {line}\n", style="")
    out.rstrip()
    return out


def params_view(report: ParamReport) -> list[RenderableType]:
    """Header, the term table, assumptions and (seed formula) what the formula leaves out."""
    items: list[RenderableType] = [_header(report), Text(""), _terms(report)]
    if report.left_out:
        t = Table(title="left out by this formula", title_justify="left", box=None, pad_edge=False)
        t.add_column("params", justify="right")
        t.add_column("what")
        for what, p in report.left_out:
            t.add_row(f"{p:+,}", what)
        with_all = report.total_params + sum(p for _, p in report.left_out)
        t.add_row(Text(f"={with_all:,}", style="bold"), "the seed's real model (mi params --arch torch-decoder)")
        items += [Text(""), t]
    if report.assumptions:
        items += [Text(""), _bullets("assumptions", list(report.assumptions))]
    return items


def cross_check_view(cc: CrossCheck) -> RenderableType:
    """A few lines for `mi inspect`: analytic vs file, and which terms explain a difference."""
    t = Table.grid(padding=(0, 2))
    t.add_column(style="bold")
    t.add_column(justify="right")
    t.add_column()
    t.add_row("config implies", f"{cc.analytic:,}", f"({cc.arch} preset, mi params --config)")
    t.add_row("file holds", f"{cc.file:,}", "")
    verdict = Text("match", style="green") if cc.matches else Text("differs", style="yellow")
    t.add_row("difference", f"{cc.difference:+,}", verdict)
    lines = Text()
    for note in cc.notes if not cc.matches else ():
        lines.append(f"  {note}\n")
    for name, n in cc.unmatched[:8]:
        lines.append(f"  not in the {cc.arch} layout: {name} ({n:,})\n")
    if len(cc.unmatched) > 8:
        lines.append(f"  … {len(cc.unmatched) - 8} more\n")
    lines.rstrip()
    title = Text("cross-check with config.json", style="bold")
    return RichGroup(title, t, lines) if lines else RichGroup(title, t)
