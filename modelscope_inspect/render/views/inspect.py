"""`mi inspect` as tables (the JSON document is `documents.inspect`)."""

from __future__ import annotations

from rich.console import RenderableType
from rich.text import Text

from ...analysis.adapter import AdapterReport
from ...analysis.params import CrossCheck
from ...analysis.tree import Group, module_tree
from ...analysis.vocab import VocabReport, vocab_report
from ...inventory import TensorInventory, TensorRecord
from ..documents.inspect import section_rows, select_tensors
from ..layout import NBSP, Bar, Column, Hang, Para, Table, bullets, grid
from ..units import human_bytes, human_count, shape_text


def _section_table(inv: TensorInventory) -> Table:
    t = Table(
        Column("section"),
        Column("from", wrap=True),
        Column("tensors", "right"),
        Column("elements", "right"),
        Column("bytes", "right"),
        title="sections",
    )
    for row in section_rows(inv):
        src = row["source"]
        t.add_row(row["section"], f"'{src}'" if src else "", f"{row['tensors']:,}", f"{row['elements']:,}",
                  human_bytes(row["bytes"]))  # fmt: skip
    return t


def _header(inv: TensorInventory) -> Table:
    rows: list[tuple[str, str]] = []
    n_files = len(inv.files)
    rows.append(("path", inv.path))
    rows.append(("format", inv.format))
    rows.append(
        (
            "files",
            f"{n_files} file{'s' if n_files != 1 else ''}, {human_bytes(inv.file_bytes)} ({inv.file_bytes:,} bytes)",
        )
    )
    rows.append(("parameters", f"{inv.total_params:,} ({human_count(inv.total_params)})"))
    rows.append(("tensor bytes", f"{human_bytes(inv.total_bytes)} ({inv.total_bytes:,} bytes)"))
    if inv.total_elements != inv.total_params:
        rows.append(("all elements", f"{inv.total_elements:,} (every section of the file)"))
    if inv.read is not None:  # remote inspection: what crossed the network
        read = inv.read.bytes_read
        share = f", {100 * read / inv.file_bytes:.4f}% of the files" if inv.file_bytes else ""
        requests = inv.read.requests
        rows.append(("read", f"{human_bytes(read)} ({read:,} bytes) in {requests} requests{share}"))
    # Format-specific facts a reader chose to show (ONNX opset, GGUF architecture, …); `name ×3` stays whole.
    for key, value in inv.details.items():
        if key.startswith("_"):  # for the commands, not for people (a pipeline's component prefixes)
            continue
        if isinstance(value, dict):
            value = ", ".join(f"{k}{NBSP}×{v}" if isinstance(v, int) else f"{k}={v}" for k, v in value.items())
        rows.append((str(key), str(value)))
    return grid(rows)


def _dtype_table(inv: TensorInventory) -> Table:
    t = Table(
        Column("dtype"), Column("params", "right"), Column("bytes", "right"), Column("share", "right"), title="by dtype"
    )
    total = inv.total_params or 1
    for name, v in inv.by_dtype.items():
        t.add_row(name, f"{v.params:,}", human_bytes(v.nbytes), f"{100 * v.params / total:.1f}%")
    return t


def _tree(inv: TensorInventory, depth: int) -> Table:
    root = module_tree(inv, max_depth=depth)
    t = Table(
        Column("module", wrap=True),
        Column("params", "right"),
        Column("bytes", "right"),
        Column("share", "right"),
        Column("", bar=True),
        title=f"module tree (depth {depth})",
    )
    stack: list[tuple[str, str, Group]] = []
    kids = root.children
    for i, c in enumerate(reversed(kids)):
        stack.append(("", "└─ " if i == 0 else "├─ ", c))
    while stack:
        indent, branch, g = stack.pop()
        child_indent = indent + ("   " if branch.startswith("└") else "│  ")
        label = Text(indent + branch)
        label.append(g.label, style="bold" if g.repeat > 1 else "")
        if g.repeat > 1:
            label.append(f" ({human_count(g.params // g.repeat)} each)", style="dim")
        if g.tensor is not None:
            label.append(f" {shape_text(g.tensor.shape)} {g.tensor.dtype}", style="dim")
            if g.tensor.shared_with:
                label.append(" (shared)", style="yellow")
        # A wrapped label continues under its own name, inside the tree's lines.
        hang = child_indent + ("│  " if g.children else "   ")
        t.add_row(
            Hang(label, prefix=hang, lead=len(indent + branch)),
            human_count(g.params),
            human_bytes(g.nbytes),
            f"{100 * g.share:.1f}%",
            Bar(g.share, 16) if g.share > 0 else "",
        )
        for i, c in enumerate(reversed(g.children)):
            stack.append((child_indent, "└─ " if i == 0 else "├─ ", c))
    return t


def _tensor_table(rows: list[TensorRecord]) -> Table:
    t = Table(
        Column("name", wrap=True, hang="  "),
        Column("shape", wrap=True),
        Column("dtype"),
        Column("params", "right"),
        Column("bytes", "right"),
        Column("note", wrap=True),
        title="tensors",
    )
    for r in rows:
        note = f"shares {r.shared_with}" if r.shared_with else ""
        t.add_row(r.name, shape_text(r.shape), r.dtype, f"{r.numel:,}", human_bytes(r.nbytes), note)
    return t


def _vocab(rep: VocabReport) -> Table:
    t = Table(Column("vocabulary", wrap=True), Column("size", "right"), Column("", wrap=True), title="vocabulary")
    ids = f"ids 0..{rep.needed - 1:,}" if rep.needed != rep.tokenizer_size else ""
    t.add_row(f"tokenizer ({rep.tokenizer_kind})", f"{rep.tokenizer_size:,}", ids)
    if rep.config_vocab is not None:
        t.add_row("config vocab_size", f"{rep.config_vocab:,}", "")
    for tab in rep.tables:
        t.add_row(tab.name, f"{tab.rows:,}", tab.note if tab.ok else f"✗ {tab.note}")
    return t


def inspect_view(
    inv: TensorInventory,
    *,
    depth: int = 3,
    show_tensors: bool = False,
    pattern: str | None = None,
    sort: str = "file",
    cross_check: CrossCheck | None = None,
    adapter: AdapterReport | None = None,
) -> list[RenderableType]:
    """The renderables `mi inspect` prints, top to bottom (the config cross-check last, when there is one)."""
    parts: list[RenderableType] = [_header(inv), "", _dtype_table(inv), "", _tree(inv, depth)]
    if any(t.section != "model" for t in inv.tensors):
        parts[2:2] = [_section_table(inv), ""]
    shared = inv.shared
    if shared:
        lines = [f"{t.name} → {t.shared_with}" for t in shared[:10]]
        if len(shared) > 10:
            lines.append(f"… and {len(shared) - 10} more")
        parts += ["", bullets(lines, "  ", title=f"shared storage (counted once): {len(shared)} tensor(s)")]
    if show_tensors or pattern:
        rows = select_tensors(inv, pattern=pattern, sort=sort)
        if rows:
            parts += ["", _tensor_table(rows)]
        else:  # an empty table would print only its header
            parts += ["", Para(f"no tensor matches {pattern!r} (--filter is a glob on the full name, e.g. '*.weight')")]
    if inv.warnings:
        parts += ["", bullets(inv.warnings, "  ", title="warnings:", style="yellow")]
    vocab = vocab_report(inv)
    if vocab is not None:
        parts += ["", _vocab(vocab)]
    if cross_check is not None:
        from .params import cross_check_view

        parts += ["", *cross_check_view(cross_check)]
    if adapter is not None:
        from .params import adapter_view

        parts += ["", *adapter_view(adapter)]
    return parts
