"""`mi inspect` as rich tables (the JSON document is `documents.inspect`)."""

from __future__ import annotations

from rich.console import Group as RichGroup
from rich.console import RenderableType
from rich.table import Table
from rich.text import Text

from ...analysis.params import CrossCheck
from ...analysis.tree import Group, module_tree
from ...inventory import TensorInventory, TensorRecord
from ..documents.inspect import section_rows, select_tensors
from ..units import human_bytes, human_count, share_bar


def _section_table(inv: TensorInventory) -> Table:
    t = Table(title="sections", title_justify="left", box=None, pad_edge=False)
    t.add_column("section")
    t.add_column("from")
    t.add_column("tensors", justify="right")
    t.add_column("elements", justify="right")
    t.add_column("bytes", justify="right")
    for row in section_rows(inv):
        src = row["source"]
        t.add_row(row["section"], f"'{src}'" if src else "", f"{row['tensors']:,}", f"{row['elements']:,}",
                  human_bytes(row["bytes"]))  # fmt: skip
    return t


def _header(inv: TensorInventory) -> Table:
    t = Table.grid(padding=(0, 2))
    t.add_column(style="bold")
    t.add_column()
    n_files = len(inv.files)
    t.add_row("path", inv.path)
    t.add_row("format", inv.format)
    t.add_row(
        "files",
        f"{n_files} file{'s' if n_files != 1 else ''}, {human_bytes(inv.file_bytes)} ({inv.file_bytes:,} bytes)",
    )
    t.add_row("parameters", f"{inv.total_params:,} ({human_count(inv.total_params)})")
    t.add_row("tensor bytes", f"{human_bytes(inv.total_bytes)} ({inv.total_bytes:,} bytes)")
    if inv.total_elements != inv.total_params:
        t.add_row("all elements", f"{inv.total_elements:,} (every section of the file)")
    if inv.read is not None:  # remote inspection: what crossed the network
        read = inv.read.bytes_read
        share = f", {100 * read / inv.file_bytes:.4f}% of the files" if inv.file_bytes else ""
        requests = inv.read.requests
        t.add_row("read", f"{human_bytes(read)} ({read:,} bytes) in {requests} requests{share}")
    # Format-specific facts a reader chose to show (ONNX opset, GGUF architecture, …).
    for key, value in inv.details.items():
        if isinstance(value, dict):
            value = ", ".join(f"{k} ×{v}" if isinstance(v, int) else f"{k}={v}" for k, v in value.items())
        t.add_row(str(key), str(value))
    return t


def _dtype_table(inv: TensorInventory) -> Table:
    t = Table(title="by dtype", title_justify="left", box=None, pad_edge=False)
    t.add_column("dtype")
    t.add_column("params", justify="right")
    t.add_column("bytes", justify="right")
    t.add_column("share", justify="right")
    total = inv.total_params or 1
    for name, v in inv.by_dtype.items():
        t.add_row(name, f"{v.params:,}", human_bytes(v.nbytes), f"{100 * v.params / total:.1f}%")
    return t


def _tree(inv: TensorInventory, depth: int) -> Table:
    root = module_tree(inv, max_depth=depth)
    t = Table(title=f"module tree (depth {depth})", title_justify="left", box=None, pad_edge=False)
    t.add_column("module")
    t.add_column("params", justify="right")
    t.add_column("bytes", justify="right")
    t.add_column("share", justify="right")
    t.add_column("", no_wrap=True)
    stack: list[tuple[str, str, Group]] = []
    kids = root.children
    for i, c in enumerate(reversed(kids)):
        stack.append(("", "└─ " if i == 0 else "├─ ", c))
    while stack:
        indent, branch, g = stack.pop()
        label = Text(indent + branch)
        label.append(g.label, style="bold" if g.repeat > 1 else "")
        if g.repeat > 1:
            label.append(f" ({human_count(g.params // g.repeat)} each)", style="dim")
        if g.tensor is not None:
            shape = "×".join(str(d) for d in g.tensor.shape) or "scalar"
            label.append(f" [{shape}] {g.tensor.dtype}", style="dim")
            if g.tensor.shared_with:
                label.append(" (shared)", style="yellow")
        t.add_row(label, human_count(g.params), human_bytes(g.nbytes), f"{100 * g.share:.1f}%", share_bar(g.share, 16))
        child_indent = indent + ("   " if branch.startswith("└") else "│  ")
        for i, c in enumerate(reversed(g.children)):
            stack.append((child_indent, "└─ " if i == 0 else "├─ ", c))
    return t


def _tensor_table(rows: list[TensorRecord]) -> Table:
    t = Table(title="tensors", title_justify="left", box=None, pad_edge=False)
    for col, just in (
        ("name", "left"),
        ("shape", "left"),
        ("dtype", "left"),
        ("params", "right"),
        ("bytes", "right"),
        ("note", "left"),
    ):
        t.add_column(col, justify=just)  # type: ignore[arg-type]
    for r in rows:
        note = f"shares {r.shared_with}" if r.shared_with else ""
        t.add_row(r.name, str(list(r.shape)), r.dtype, f"{r.numel:,}", human_bytes(r.nbytes), note)
    return t


def inspect_view(
    inv: TensorInventory,
    *,
    depth: int = 3,
    show_tensors: bool = False,
    pattern: str | None = None,
    sort: str = "file",
    cross_check: CrossCheck | None = None,
) -> list[RenderableType]:
    """The renderables `mi inspect` prints, top to bottom (the config cross-check last, when there is one)."""
    parts: list[RenderableType] = [_header(inv), Text(""), _dtype_table(inv), Text(""), _tree(inv, depth)]
    if any(t.section != "model" for t in inv.tensors):
        parts[2:2] = [_section_table(inv), Text("")]
    shared = inv.shared
    if shared:
        lines = [f"  {t.name} → {t.shared_with}" for t in shared[:10]]
        more = f"\n  … and {len(shared) - 10} more" if len(shared) > 10 else ""
        parts += [Text(""), Text(f"shared storage (counted once): {len(shared)} tensor(s)\n" + "\n".join(lines) + more)]
    if show_tensors or pattern:
        parts += [Text(""), _tensor_table(select_tensors(inv, pattern=pattern, sort=sort))]
    if inv.warnings:
        parts += [Text(""), Text("warnings:\n" + "\n".join(f"  {w}" for w in inv.warnings), style="yellow")]
    out: list[RenderableType] = [RichGroup(*parts)]
    if cross_check is not None:
        from .params import cross_check_view

        out += [Text(""), cross_check_view(cross_check)]
    return out
