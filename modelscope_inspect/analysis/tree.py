"""The module tree: tensors grouped by dotted name, with repeated numbered blocks folded.

`layers.0` … `layers.31` whose tensors have the same relative names, shapes and dtypes become one group
`layers.0-31 ×32`. A folded group's children add up the same relative path over every block, so every
level of the tree sums to its parent and the root sums to the inventory totals.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..inventory import TensorInventory, TensorRecord


@dataclass(frozen=True, slots=True)
class Group:
    """One node of the module tree. `repeat` > 1 for folded blocks; `tensor` set for leaves."""

    name: str
    label: str
    params: int
    nbytes: int
    share: float
    repeat: int = 1
    n_tensors: int = 0
    children: tuple[Group, ...] = ()
    tensor: TensorRecord | None = None


@dataclass(slots=True)
class _Node:
    children: dict[str, _Node] = field(default_factory=dict)
    tensor: TensorRecord | None = None
    totals: tuple[int, int, int] | None = None  # (params, bytes, tensors) of the subtree, computed once


def _insert(root: _Node, rec: TensorRecord) -> None:
    node = root
    parts = rec.name.split(".") if rec.name else ["<unnamed>"]
    for part in parts[:-1]:
        node = node.children.setdefault(part, _Node())
    leaf = node.children.get(parts[-1])
    if leaf is None:
        node.children[parts[-1]] = _Node(tensor=rec)
    elif leaf.tensor is None:
        leaf.tensor = rec  # a name that is both a module and a tensor ("a" and "a.b"): keep both
    else:
        node.children[f"{parts[-1]}#{len(node.children)}"] = _Node(tensor=rec)


def _signature(node: _Node, prefix: str = "") -> tuple[tuple[str, tuple[int, ...], str], ...]:
    out: list[tuple[str, tuple[int, ...], str]] = []
    stack = [(prefix, node)]
    while stack:
        path, n = stack.pop()
        if n.tensor is not None:
            out.append((path, n.tensor.shape, n.tensor.dtype))
        for k, child in n.children.items():
            stack.append((f"{path}.{k}", child))
    return tuple(sorted(out))


def _totals(node: _Node) -> tuple[int, int, int]:
    """Subtree totals, memoised on each node (post-order, no recursion): every level of the tree asks."""
    if node.totals is not None:
        return node.totals
    order: list[_Node] = []
    stack = [node]
    while stack:
        n = stack.pop()
        if n.totals is None:
            order.append(n)
            stack.extend(n.children.values())
    for n in reversed(order):  # children before parents
        params = nbytes = count = 0
        if n.tensor is not None:
            params, nbytes, count = n.tensor.counted_params, n.tensor.counted_nbytes, 1
        for c in n.children.values():
            cp, cb, cc = c.totals or (0, 0, 0)
            params, nbytes, count = params + cp, nbytes + cb, count + cc
        n.totals = (params, nbytes, count)
    return node.totals or (0, 0, 0)


def _is_index(s: str) -> bool:
    return s.isdigit()


def _build(name: str, label: str, nodes: list[_Node], total: int, depth: int, max_depth: int) -> Group:
    """A group for `nodes` (one node, or several identical blocks folded together)."""
    params = nbytes = count = 0
    for n in nodes:
        p, b, c = _totals(n)
        params, nbytes, count = params + p, nbytes + b, count + c
    share = params / total if total else 0.0
    first = nodes[0]
    tensor = first.tensor if len(nodes) == 1 and not first.children else None
    keys = list(first.children)
    if name and tensor is None and len(keys) > 1 and all(_is_index(k) for k in keys):
        sig = _signature(first.children[keys[0]])
        if all(_signature(first.children[k]) == sig for k in keys[1:]):
            # A container holding only identical numbered blocks ("layers" → "layers.0-5 ×6"): one row,
            # at this same depth, whose children add up each relative path over all blocks.
            all_blocks = [n.children[k] for n in nodes for k in keys if k in n.children]
            span = f"{keys[0]}-{keys[-1]}"
            g = _build(f"{name}.{span}", f"{label}.{span} ×{len(keys)}", all_blocks, total, depth, max_depth)
            return Group(g.name, g.label, g.params, g.nbytes, g.share, len(keys), g.n_tensors, g.children, None)
    children: list[Group] = []
    if depth < max_depth and first.children:
        i = 0
        while i < len(keys):
            key = keys[i]
            blocks: list[list[_Node]] = [[n.children[key] for n in nodes if key in n.children]]
            run: list[str] = [key]
            if _is_index(key):
                sig = _signature(first.children[key])
                j = i + 1
                while j < len(keys) and _is_index(keys[j]) and _signature(first.children[keys[j]]) == sig:
                    run.append(keys[j])
                    blocks.append([n.children[keys[j]] for n in nodes if keys[j] in n.children])
                    j += 1
            flat = [b for blk in blocks for b in blk]
            child_name = f"{name}.{key}" if name else key
            if len(run) > 1:
                folded = f"{run[0]}-{run[-1]}"
                child_name = f"{name}.{folded}" if name else folded
                child = _build(child_name, f"{folded} ×{len(run)}", flat, total, depth + 1, max_depth)
                child = Group(
                    child.name, child.label, child.params, child.nbytes, child.share, len(run),
                    child.n_tensors, child.children, None,
                )  # fmt: skip
            else:
                child = _build(child_name, key, flat, total, depth + 1, max_depth)
            children.append(child)
            i += len(run)
    return Group(name, label, params, nbytes, share, 1, count, tuple(children), tensor)


def module_tree(inv: TensorInventory, *, max_depth: int = 3, section: str = "model") -> Group:
    """The folded module tree of one inventory section, `max_depth` levels below the root.

    Example:
        >>> root = module_tree(load("model.safetensors"), max_depth=2)  # doctest: +SKIP
        >>> [(g.label, g.params) for g in root.children]  # doctest: +SKIP
    """
    root = _Node()
    for rec in inv.tensors:
        if rec.section == section:
            _insert(root, rec)
    total = sum(t.counted_params for t in inv.tensors if t.section == section)
    return _build("", "(all)", [root], total, 0, max_depth)


def top_groups(inv: TensorInventory, section: str = "model") -> tuple[Group, ...]:
    """First-level groups (no folding below them): what `--json` lists under `groups`."""
    return module_tree(inv, max_depth=1, section=section).children
