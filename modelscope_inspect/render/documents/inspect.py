"""`mi inspect --json` (documented in the README). No rich import on this path."""

from __future__ import annotations

import fnmatch
from typing import Any

from ...analysis.tree import Group, module_tree
from ...inventory import TensorInventory, TensorRecord
from . import envelope


def select_tensors(inv: TensorInventory, *, pattern: str | None, sort: str) -> list[TensorRecord]:
    """Tensors matching the glob `pattern`, in file order or sorted by name / params / bytes (largest first)."""
    rows = [t for t in inv.tensors if pattern is None or fnmatch.fnmatchcase(t.name, pattern)]
    if sort == "name":
        rows.sort(key=lambda t: t.name)
    elif sort == "params":
        rows.sort(key=lambda t: (-t.numel, t.name))
    elif sort == "bytes":
        rows.sort(key=lambda t: (-t.nbytes, t.name))
    return rows


def section_rows(inv: TensorInventory) -> list[dict[str, Any]]:
    """One row per section (name, source key, tensors, unique elements, unique bytes); `model` is what
    `total_params` counts. The source is the checkpoint key a section came from (`state_dict`, `optimizer`)."""
    sources = dict(inv.torch.section_sources) if inv.torch is not None else {}
    return [
        {"section": name, "source": sources.get(name) or None, "tensors": v.tensors, "elements": v.elements,
         "bytes": v.nbytes}
        for name, v in inv.by_section.items()
    ]  # fmt: skip


def _group_dict(g: Group) -> dict[str, Any]:
    d: dict[str, Any] = {"name": g.name, "params": g.params, "bytes": g.nbytes, "share": round(g.share, 6)}
    if g.repeat > 1:
        d["repeat"] = g.repeat
    if g.children:
        d["children"] = [_group_dict(c) for c in g.children]
    return d


def inspect_document(
    inv: TensorInventory, *, depth: int = 3, pattern: str | None = None, sort: str = "file"
) -> dict[str, Any]:
    """The `mi inspect --json` document."""
    tensors = select_tensors(inv, pattern=pattern, sort=sort)
    tree = module_tree(inv, max_depth=depth)  # its first level is `groups` (folding does not depend on depth)
    return {
        **envelope("inspect"),
        "format": inv.format,
        "path": inv.path,
        "files": [{"path": f.path, "bytes": f.nbytes} for f in inv.files],
        "file_bytes": inv.file_bytes,
        "total_params": inv.total_params,
        "total_bytes": inv.total_bytes,
        "total_elements": inv.total_elements,
        "storage_bytes": inv.storage_bytes,
        "by_dtype": {k: {"params": v.params, "bytes": v.nbytes} for k, v in inv.by_dtype.items()},
        "groups": [
            {"name": g.name, "params": g.params, "bytes": g.nbytes, "share": round(g.share, 6)} for g in tree.children
        ],
        "tree": _group_dict(tree),
        "tensors": [
            {
                "name": t.name,
                "shape": list(t.shape),
                "dtype": t.dtype,
                "numel": t.numel,
                "nbytes": t.nbytes,
                "shared_with": t.shared_with,
                "file": t.file,
                "section": t.section,
                "kind": t.kind,
                "packing": t.packing,
            }
            for t in tensors
        ],
        "sections": section_rows(inv),
        "metadata": dict(inv.metadata),
        "details": dict(inv.details),
        "warnings": list(inv.warnings),
        # Folders only: model-type files beside the ones read (another format of the model, training state).
        **(
            {
                "unread_files": [
                    {"path": u.path, "bytes": u.nbytes, "format": u.format, "reason": u.reason}
                    for u in inv.unread_files
                ]
            }
            if inv.unread_files
            else {}
        ),
        # Folders with a tokenizer only: config vocab_size vs tokenizer size vs embedding / lm_head rows.
        **({"vocabulary": _vocabulary(inv)} if "_tokenizer" in inv.details else {}),
        # Remote inspection only: body bytes that crossed the network (see README "Remote models").
        **({"bytes_read": inv.read.bytes_read} if inv.read is not None else {}),
    }


def _vocabulary(inv: TensorInventory) -> dict[str, Any] | None:
    from ...analysis.vocab import vocab_report

    rep = vocab_report(inv)
    if rep is None:
        return None
    return {
        "tokenizer_kind": rep.tokenizer_kind,
        "tokenizer_size": rep.tokenizer_size,
        "ids_needed": rep.needed,
        "config_vocab_size": rep.config_vocab,
        "tables": [{"name": t.name, "rows": t.rows, "ok": t.ok, "note": t.note} for t in rep.tables],
        "consistent": rep.consistent,
    }
