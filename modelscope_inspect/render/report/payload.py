"""The data the page's script draws from: the module tree and the tensor list, as plain JSON-ready values.

Kept compact because a 70B sharded model's page must stay small: the tree has one node per module (repeated
blocks folded, as in `mi inspect`), and the tensors are columns (one list per field) rather than objects.
"""

from __future__ import annotations

import re
from typing import Any

from ...analysis.tree import Group, module_tree
from ...inventory import TensorInventory, TensorRecord
from ..graph.structure import first_block
from ..units import shape_text

TREE_DEPTH = 64  # the whole hierarchy: the page zooms into it


_BLOCK = re.compile(r"^\d+(-\d+)?$")


def _wrapper(g: Group) -> bool:
    """A module that only wraps other modules (HF's `model.`, `transformer.`): it holds no tensor of its own
    and is not a block (`layers.0`, `layers.0-79`), which is a tile of its own even when it is the only one."""
    if g.repeat > 1 or g.tensor is not None or not g.children or _BLOCK.match(g.name.rsplit(".", 1)[-1]):
        return False
    return all(c.tensor is None for c in g.children)


def top_level(root: Group) -> list[Group]:
    """The treemap's first tiles: the root's modules, wrappers replaced by what they hold, so that the first
    picture is the embedding, the blocks and the head rather than one `model` tile."""
    out: list[Group] = []
    stack = list(reversed(root.children))
    while stack:
        g = stack.pop()
        if _wrapper(g):
            stack.extend(reversed(g.children))
        else:
            out.append(g)
    return out


def _node(g: Group, label: str, by_name: dict[str, TensorRecord], owners: dict[str, list[str]]) -> dict[str, Any]:
    node: dict[str, Any] = {"n": label, "f": g.name, "p": g.params, "b": g.nbytes}
    if g.repeat > 1:
        node["r"] = g.repeat
    rec = g.tensor or (by_name.get(first_block(g.name)) if not g.children else None)
    if rec is not None:
        node["d"] = rec.dtype
        node["s"] = shape_text(rec.shape)
        if rec.shared_with:
            node["t"] = f"shares the storage of {rec.shared_with}"
        elif rec.name in owners:
            node["t"] = "storage also used by " + ", ".join(owners[rec.name])
    if g.children:
        kids = [_node(c, c.label, by_name, owners) for c in g.children]
        node["c"] = kids
        weights: dict[str, int] = {}
        for k in kids:
            if "d" in k:
                weights[k["d"]] = weights.get(k["d"], 0) + k["b"]
        if weights:  # an inner tile takes the colour of the dtype holding most of its bytes
            node["d"] = max(weights.items(), key=lambda kv: kv[1])[0]
        tied = [f"{k['n']}: {k['t']}" for k in kids if "t" in k]
        if tied and "t" not in node:  # a module holding tied storage is marked too, not only its tensor
            node["t"] = "; ".join(tied[:3]) + (f"; … and {len(tied) - 3} more" if len(tied) > 3 else "")
    return node


def tree_payload(inv: TensorInventory) -> dict[str, Any]:
    """The module tree for the treemap: `n` label, `f` full name, `p` params, `b` bytes, `r` repeat (folded
    blocks), `d` dtype (the largest one below an inner node), `s` shape, `t` tied-storage note, `c` children."""
    by_name = {t.name: t for t in inv.tensors if t.section == "model"}
    owners: dict[str, list[str]] = {}
    for t in inv.tensors:
        if t.section == "model" and t.shared_with:
            owners.setdefault(t.shared_with, []).append(t.name)
    root = module_tree(inv, max_depth=TREE_DEPTH)
    # A hoisted module is named in full (`model.layers.0-79 ×80`): its parent no longer shows.
    kids = [_node(g, g.name + (f" ×{g.repeat}" if g.repeat > 1 else ""), by_name, owners) for g in top_level(root)]
    return {"n": "(all)", "f": "", "p": root.params, "b": root.nbytes, "c": kids}


def tensor_payload(inv: TensorInventory) -> dict[str, list[Any]]:
    """Every tensor in file order, as columns: name, shape, dtype, params (stored elements), bytes, section,
    and the tensor whose storage it shares (empty when none)."""
    ts = inv.tensors
    return {
        "name": [t.name for t in ts],
        "shape": [shape_text(t.shape) for t in ts],
        "dtype": [t.dtype for t in ts],
        "numel": [t.numel for t in ts],
        "bytes": [t.nbytes for t in ts],
        "section": [t.section for t in ts],
        "shared": [t.shared_with or "" for t in ts],
    }
