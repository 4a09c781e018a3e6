"""`mi diff A B`: what changed between two checkpoints, across formats.

Structure first (from the two inventories, no tensor data read): tensors added, removed, reshaped or with a
changed dtype, and parameter / byte deltas in total and per first-level module. Names are matched after an
obvious prefix mapping when one makes more names line up (`module.` from DataParallel, `_orig_mod.` from
torch.compile, `model.`, or one common first component per side): such a mapping is reported as a rename,
not as every tensor removed and added again.

`--values` then compares the contents of the tensors both sides hold with the same shape, reading their data
(safetensors, torch zip archives and legacy torch files): byte-identical when the dtypes agree and the tensors
are contiguous, otherwise through numpy (optional) with the largest absolute difference.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..inventory import TensorInventory, TensorRecord

RENAME_PREFIXES = ("", "module.", "_orig_mod.", "model.", "module.model.", "_orig_mod.module.")


@dataclass(frozen=True, slots=True)
class TensorSide:
    """A tensor as one side holds it."""

    name: str
    shape: tuple[int, ...]
    dtype: str
    params: int  # unique (counted) elements: 0 for a tied alias
    nbytes: int
    shared_with: str | None


@dataclass(frozen=True, slots=True)
class TensorChange:
    """A tensor both sides hold whose shape or dtype differs."""

    key: str
    a: TensorSide
    b: TensorSide
    kinds: tuple[str, ...]  # "reshaped", "dtype"


@dataclass(frozen=True, slots=True)
class GroupDelta:
    """Parameters and bytes of one first-level module on each side."""

    name: str
    params_a: int
    params_b: int
    bytes_a: int
    bytes_b: int


@dataclass(frozen=True, slots=True)
class ValueResult:
    """The outcome of comparing one tensor's contents."""

    key: str
    equal: bool | None  # None: not compared (reason says why)
    max_abs_diff: float | None = None
    mismatched: int | None = None
    reason: str = ""


@dataclass(frozen=True, slots=True)
class DiffReport:
    """Everything `mi diff` found."""

    path_a: str
    path_b: str
    format_a: str
    format_b: str
    rename: tuple[str, str] | None  # (prefix stripped from A, prefix stripped from B)
    renamed: int
    added: tuple[TensorSide, ...]
    removed: tuple[TensorSide, ...]
    changed: tuple[TensorChange, ...]
    same: int
    params_a: int
    params_b: int
    bytes_a: int
    bytes_b: int
    file_bytes_a: int
    file_bytes_b: int
    groups: tuple[GroupDelta, ...]
    values: tuple[ValueResult, ...] | None = None
    bytes_read_a: int | None = None  # body bytes fetched over the network, for a URL
    bytes_read_b: int | None = None

    @property
    def delta_params(self) -> int:
        return self.params_b - self.params_a

    @property
    def delta_bytes(self) -> int:
        return self.bytes_b - self.bytes_a

    @property
    def structurally_identical(self) -> bool:
        return not (self.added or self.removed or self.changed or self.renamed)

    @property
    def values_differ(self) -> bool:
        return self.values is not None and any(v.equal is False for v in self.values)

    @property
    def identical(self) -> bool:
        return self.structurally_identical and not self.values_differ


def _side(rec: TensorRecord) -> TensorSide:
    return TensorSide(rec.name, rec.shape, rec.dtype, rec.counted_numel, rec.counted_nbytes, rec.shared_with)


def _strip(name: str, prefix: str) -> str:
    return name[len(prefix) :] if prefix and name.startswith(prefix) else name


def _common_first(names: list[str]) -> str | None:
    firsts = {n.split(".", 1)[0] for n in names if "." in n}
    if len(firsts) == 1 and all("." in n for n in names):
        return next(iter(firsts)) + "."
    return None


def find_rename(names_a: list[str], names_b: list[str]) -> tuple[str, str] | None:
    """The (prefix of A, prefix of B) whose removal makes the most names match, when it beats no mapping."""
    set_a, set_b = set(names_a), set(names_b)
    baseline = len(set_a & set_b)
    if baseline == len(set_a) == len(set_b):
        return None
    cands_a = set(RENAME_PREFIXES)
    cands_b = set(RENAME_PREFIXES)
    for names, cands in ((names_a, cands_a), (names_b, cands_b)):
        c = _common_first(names)
        if c:
            cands.add(c)
    best: tuple[int, tuple[str, str] | None] = (baseline, None)
    for pa in sorted(cands_a):
        if pa and not any(n.startswith(pa) for n in names_a):
            continue
        ka = {_strip(n, pa) for n in names_a}
        for pb in sorted(cands_b):
            if (not pa and not pb) or (pb and not any(n.startswith(pb) for n in names_b)):
                continue
            score = len(ka & {_strip(n, pb) for n in names_b})
            if score > best[0]:
                best = (score, (pa, pb))
    return best[1]


def _group(key: str) -> str:
    return key.split(".", 1)[0] if "." in key else "(top level)"


def _component_keys(inv: TensorInventory) -> dict[str, TensorRecord] | None:
    """Keys `COMPONENT.REST` for a diffusion model whose details name its components' key prefixes (a pipeline
    folder: `unet.`; a single-file checkpoint: `model.diffusion_model.`), so the two layouts pair up."""
    prefixes = inv.details.get("_component_prefixes")
    if not isinstance(prefixes, dict):
        return None
    ordered = sorted(prefixes.items(), key=lambda kv: -len(kv[1]))
    out: dict[str, TensorRecord] = {}
    for t in inv.tensors:
        key = t.name
        for comp, prefix in ordered:
            if t.name.startswith(prefix):
                key = f"{comp}.{t.name[len(prefix) :]}"
                break
        out.setdefault(key, t)
    return out


def _sides(a: TensorInventory, b: TensorInventory) -> tuple[tuple[str, str] | None, dict[str, TensorRecord],
                                                             dict[str, TensorRecord]]:  # fmt: skip
    ca, cb = _component_keys(a), _component_keys(b)
    if ca is not None and cb is not None:
        return ("(components)", "(components)"), ca, cb
    rename = find_rename([t.name for t in a.tensors], [t.name for t in b.tensors])
    pa, pb = rename or ("", "")
    return rename, {_strip(t.name, pa): t for t in a.tensors}, {_strip(t.name, pb): t for t in b.tensors}


def diff_inventories(a: TensorInventory, b: TensorInventory) -> DiffReport:
    """Compare two inventories by tensor name (after an obvious prefix rename, or by diffusion component when
    both name their components), shape and dtype."""
    rename, side_a, side_b = _sides(a, b)
    added = [_side(side_b[k]) for k in side_b if k not in side_a]
    removed = [_side(side_a[k]) for k in side_a if k not in side_b]
    changed: list[TensorChange] = []
    same = 0
    renamed = 0
    for k, ra in side_a.items():
        rb = side_b.get(k)
        if rb is None:
            continue
        if ra.name != rb.name:
            renamed += 1
        kinds = []
        if ra.shape != rb.shape:
            kinds.append("reshaped")
        if ra.dtype != rb.dtype:
            kinds.append("dtype")
        if kinds:
            changed.append(TensorChange(k, _side(ra), _side(rb), tuple(kinds)))
        else:
            same += 1
    groups: dict[str, list[int]] = {}
    for idx, side in ((0, side_a), (1, side_b)):
        for k, rec in side.items():
            if rec.section != "model":
                continue
            g = groups.setdefault(_group(k), [0, 0, 0, 0])
            g[idx] += rec.counted_numel
            g[2 + idx] += rec.counted_nbytes
    return DiffReport(
        path_a=a.path,
        path_b=b.path,
        format_a=a.format,
        format_b=b.format,
        rename=rename,
        renamed=renamed,
        added=tuple(added),
        removed=tuple(removed),
        changed=tuple(changed),
        same=same,
        params_a=a.total_params,
        params_b=b.total_params,
        bytes_a=a.total_bytes,
        bytes_b=b.total_bytes,
        file_bytes_a=a.file_bytes,
        file_bytes_b=b.file_bytes,
        groups=tuple(GroupDelta(n, v[0], v[1], v[2], v[3]) for n, v in groups.items()),
        bytes_read_a=_bytes_read(a),
        bytes_read_b=_bytes_read(b),
    )


def _bytes_read(inv: TensorInventory) -> int | None:
    return inv.read.bytes_read if inv.read is not None else None


def value_pairs(
    a: TensorInventory, b: TensorInventory, report: DiffReport
) -> list[tuple[str, TensorRecord, TensorRecord]]:
    """The tensors whose contents `--values` compares: held by both sides (after the rename) with one shape."""
    _rename, side_a, side_b = _sides(a, b)
    return [(k, side_a[k], side_b[k]) for k in side_a if k in side_b and side_a[k].shape == side_b[k].shape]


def compare_arrays(key: str, xa: Any, xb: Any, np: Any) -> ValueResult:
    """Element-wise comparison of two numpy arrays of one shape: mismatches (NaN equals NaN) and max |a-b|."""
    fa = xa.astype(np.float64) if xa.dtype.kind in "fc" or xb.dtype.kind in "fc" else xa.astype(np.int64)
    fb = xb.astype(np.float64) if fa.dtype.kind == "f" else xb.astype(np.int64)
    both_nan = np.isnan(fa) & np.isnan(fb) if fa.dtype.kind == "f" else np.zeros(fa.shape, dtype=bool)
    neq = (fa != fb) & ~both_nan
    mism = int(neq.sum())
    diff = float(np.nanmax(np.abs(fa - fb))) if mism and fa.size else 0.0
    return ValueResult(key, mism == 0, max_abs_diff=diff, mismatched=mism)


__all__ = ["DiffReport", "ValueResult", "compare_arrays", "diff_inventories", "find_rename", "value_pairs"]
