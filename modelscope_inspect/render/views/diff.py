"""`mi diff` as tables: summary, added / removed / changed tensors, group deltas and value results."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import RenderableType

from ..layout import Column, Table, grid
from ..units import human_bytes, human_count, network_line, shape_text

if TYPE_CHECKING:
    from ...analysis.diff import DiffReport, TensorSide

LIST_LIMIT = 50  # rows per list in the table view; --json has everything


def _shape(s: TensorSide) -> str:
    return shape_text(s.shape)


def _signed(n: int, fmt: str = "count") -> str:
    if n == 0:
        return "0"
    sign = "+" if n > 0 else "-"
    body = human_bytes(abs(n)) if fmt == "bytes" else human_count(abs(n))
    return f"{sign}{abs(n):,} ({sign}{body})" if abs(n) >= 1000 else f"{sign}{abs(n):,}"


def diff_view(r: DiffReport) -> list[RenderableType]:
    """Summary grid, then added / removed / changed tensors, group deltas and value results."""
    rows: list[tuple[str, str]] = [
        ("a", f"{r.path_a} ({r.format_a}, {r.params_a:,} params)"),
        ("b", f"{r.path_b} ({r.format_b}, {r.params_b:,} params)"),
    ]
    if r.identical:
        verdict = "identical" + (" (values compared)" if r.values is not None else " structurally (values not read)")
    elif r.structurally_identical:
        verdict = "same structure, different values"
    else:
        verdict = "different"
    rows.append(("result", verdict))
    if r.rename:
        pa, pb = r.rename
        if pa == pb == "(components)":  # a diffusers pipeline and a single-file checkpoint, paired by component
            rows.append(("rename", f"{r.renamed:,} names map by diffusion component (unet, vae, text encoders)"))
        else:
            rows.append(("rename", f"{r.renamed:,} names map by prefix {pa or '(none)'!r} → {pb or '(none)'!r}"))
    rows.append(
        (
            "tensors",
            f"{r.same:,} unchanged, {len(r.changed):,} changed, {len(r.added):,} added, {len(r.removed):,} removed",
        )
    )
    rows.append(("params", _signed(r.delta_params)))
    rows.append(("bytes", _signed(r.delta_bytes, "bytes") + " of tensor data"))
    for side, read in (("a", r.bytes_read_a), ("b", r.bytes_read_b)):
        if read is not None:
            rows.append(("network", f"{side}: {network_line(read)}"))
    out: list[RenderableType] = [grid(rows)]

    def listing(title: str, sides: tuple[TensorSide, ...]) -> None:
        if not sides:
            return
        t = Table(
            Column("name", wrap=True, hang="  "),
            Column("shape", wrap=True),
            Column("dtype"),
            Column("params", "right"),
            title=f"{title} ({len(sides):,})",
        )
        for s in sides[:LIST_LIMIT]:
            note = f"  (tied to {s.shared_with})" if s.shared_with else ""
            t.add_row(s.name + note, _shape(s), s.dtype, human_count(s.params))
        out.extend(["", t])
        if len(sides) > LIST_LIMIT:
            out.append(f"… {len(sides) - LIST_LIMIT:,} more (see --json)")

    listing("added in b", r.added)
    listing("removed from a", r.removed)
    if r.changed:
        t = Table(
            Column("name", wrap=True, hang="  "),
            Column("a", wrap=True),
            Column("b", wrap=True),
            Column("params", "right"),
            title=f"changed ({len(r.changed):,})",
        )
        for c in r.changed[:LIST_LIMIT]:
            t.add_row(
                c.key, f"{_shape(c.a)} {c.a.dtype}", f"{_shape(c.b)} {c.b.dtype}", _signed(c.b.params - c.a.params)
            )
        out.extend(["", t])
        if len(r.changed) > LIST_LIMIT:
            out.append(f"… {len(r.changed) - LIST_LIMIT:,} more (see --json)")
    moved = [g for g in r.groups if g.params_a != g.params_b or g.bytes_a != g.bytes_b]
    if moved:
        t = Table(
            Column("group", wrap=True, hang="  "),
            Column("params a", "right"),
            Column("params b", "right"),
            Column("Δ params", "right"),
            Column("Δ bytes", "right"),
            title="per group",
        )
        for g in moved:
            t.add_row(
                g.name,
                f"{g.params_a:,}",
                f"{g.params_b:,}",
                _signed(g.params_b - g.params_a),
                _signed(g.bytes_b - g.bytes_a, "bytes"),
            )
        out.extend(["", t])
    if r.values is not None:
        differ = [v for v in r.values if v.equal is False]
        skipped = [v for v in r.values if v.equal is None]
        line = f"values: {len(r.values) - len(differ) - len(skipped):,} equal, {len(differ):,} different"
        if skipped:
            line += f", {len(skipped):,} not compared ({skipped[0].reason})"
        out.extend(["", line])
        if differ:
            t = Table(
                Column("tensor", wrap=True, hang="  "), Column("mismatched", "right"), Column("max |a-b|", "right")
            )
            for v in differ[:LIST_LIMIT]:
                t.add_row(
                    v.key,
                    "?" if v.mismatched is None else f"{v.mismatched:,}",
                    "?" if v.max_abs_diff is None else f"{v.max_abs_diff:.6g}",
                )
            out.append(t)
    return out
