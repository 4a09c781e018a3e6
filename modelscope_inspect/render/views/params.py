"""`mi params` output as tables, and the cross-check block `mi inspect` shows (JSON: `analysis.params`)."""

from __future__ import annotations

from rich.console import RenderableType
from rich.text import Text

from ...analysis.adapter import AdapterReport
from ...analysis.params import CrossCheck, ParamReport
from ..documents.params import params_body
from ..layout import NBSP, Bar, Column, Table, bullets, grid
from ..units import human_bytes, human_count


def _header(report: ParamReport) -> Table:
    hp = report.hparams
    arch = report.arch if hp.model_type is None else f"{report.arch} (model_type {hp.model_type})"
    rows: list[tuple[str, str]] = [("arch", arch)]
    hd = params_body(report)["hparams"]
    # `vocab 300` is one item: lines break between items, never inside one.
    items = (
        f"{k}{NBSP}{v:,}" if isinstance(v, int) and not isinstance(v, bool) else f"{k}{NBSP}{v}"
        for k, v in hd.items()
        if not isinstance(v, list | dict)  # layer lists and nested configs (JSON has them)
    )
    rows.append(("hparams", " · ".join(items)))
    rows.append(("total", f"{report.total_params:,} ({human_count(report.total_params)})"))
    if report.is_moe:
        share = report.active_params / (report.total_params or 1)
        rows.append(
            ("active/token", f"{report.active_params:,} ({human_count(report.active_params)}, {100 * share:.1f}%)")
        )
    rows.append(("bytes", f"{human_bytes(report.nbytes)} at {report.dtype} ({report.nbytes:,} bytes)"))
    if report.lora is not None:
        lo = report.lora
        rows.append(
            (
                "lora",
                f"{lo.params:,} trainable ({human_count(lo.params)}, {100 * lo.share:.3f}% of the base) — "
                f"r={lo.r} on {', '.join(lo.targets)} ({lo.matrices} matrices)",
            )
        )
    return grid(rows)


def _terms(report: ParamReport) -> Table:
    t = Table(
        Column("term", wrap=True, hang="  "),
        Column("formula", wrap=True, style="dim"),
        Column("each", "right"),
        Column("×", "right"),
        Column("params", "right"),
        Column("share", "right"),
        Column("", bar=True),
        title="terms",
    )
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
            Bar(share, 12) if share > 0 else "",
        )
    t.add_row(Text("total", style="bold"), "", "", "", Text(f"{report.total_params:,}", style="bold"), "100.0%", "")
    return t


def params_view(report: ParamReport) -> list[RenderableType]:
    """Header, the term table, assumptions and (seed formula) what the formula leaves out."""
    items: list[RenderableType] = [_header(report), "", _terms(report)]
    if report.left_out:
        t = Table(Column("params", "right"), Column("what", wrap=True), title="left out by this formula")
        for what, p in report.left_out:
            t.add_row(f"{p:+,}", what)
        with_all = report.total_params + sum(p for _, p in report.left_out)
        t.add_row(Text(f"={with_all:,}", style="bold"), "the seed's real model (mi params --arch torch-decoder)")
        items += ["", t]
    if report.assumptions:
        items += ["", bullets(report.assumptions, title=Text("assumptions", style="bold"))]
    return items


def cross_check_view(cc: CrossCheck) -> list[RenderableType]:
    """A few lines for `mi inspect`: analytic vs file, and which terms explain a difference."""
    verdict = Text("match", style="green") if cc.matches else Text("differs", style="yellow")
    t = grid(
        [
            ("config implies", f"{cc.analytic:,}", f"({cc.arch} preset, mi params --config)"),
            ("file holds", f"{cc.file:,}", ""),
            ("difference", f"{cc.difference:+,}", verdict),
        ],
        columns=[Column(style="bold"), Column(justify="right"), Column(wrap=True)],
    )
    lines = [*(cc.notes if not cc.matches else ())]
    lines += [f"not in the {cc.arch} layout: {name} ({n:,})" for name, n in cc.unmatched[:8]]
    if len(cc.unmatched) > 8:
        lines.append(f"… {len(cc.unmatched) - 8} more")
    out: list[RenderableType] = [Text("cross-check with config.json", style="bold"), t]
    if lines:
        out.append(bullets(lines, "  "))
    return out


def adapter_view(rep: AdapterReport) -> list[RenderableType]:
    """The adapter's parameters per target module, beside `mi params --lora-r R --lora-targets T` of its base."""
    t = Table(
        Column("target", wrap=True),
        Column("modules", "right"),
        Column("in file", "right"),
        Column("mi params", "right"),
        Column("", wrap=True),
        title=f"adapter vs mi params --lora-r {rep.r if rep.r is not None else '?'} --lora-targets …",
    )
    for term in rep.terms:
        formula = f"{term.formula:,}" if term.formula is not None else "-"
        verdict = {True: "agrees", False: "differs", None: ""}[term.agrees]
        t.add_row(term.target, f"{term.modules:,}", f"{term.params:,}", formula, verdict)
    rows: list[tuple[str, str]] = [("adapter params", f"{rep.params:,} ({human_count(rep.params)})")]
    if rep.base_params is not None and rep.share is not None:
        rows.append(("base params", f"{rep.base_params:,} ({human_count(rep.base_params)}) from {rep.base_source}"))
        rows.append(("share", f"{100 * rep.share:.3f}% of the base"))
    else:
        rows.append(("base params", "unknown: give --base CONFIG (the base model's config.json, folder or URL)"))
    return [t, "", grid(rows)]
