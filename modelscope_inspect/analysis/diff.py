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

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import EXIT_FOUND, EXIT_OK, UsageError
from ..inventory import TensorInventory, TensorRecord

RENAME_PREFIXES = ("", "module.", "_orig_mod.", "model.", "module.model.", "_orig_mod.module.")
CHUNK = 16 << 20  # bytes compared at a time: memory stays flat whatever the tensor size
DETAIL_BYTES = 256 << 20  # differing tensors up to this size are re-read through numpy for counts and max |a-b|


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

    @property
    def exit_code(self) -> int:
        """0 identical, 1 different (like `diff`); unreadable inputs raise before a report exists."""
        return EXIT_OK if self.identical else EXIT_FOUND


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


def diff_inventories(a: TensorInventory, b: TensorInventory) -> DiffReport:
    """Compare two inventories by tensor name (after an obvious prefix rename), shape and dtype."""
    rename = find_rename([t.name for t in a.tensors], [t.name for t in b.tensors])
    pa, pb = rename or ("", "")
    side_a = {_strip(t.name, pa): t for t in a.tensors}
    side_b = {_strip(t.name, pb): t for t in b.tensors}
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
    read = inv.extra.get("bytes_read")
    return int(read) if read is not None else None


# --- values --------------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Located:
    """Where a tensor's bytes are: a file, the byte offset of its first element, and its layout."""

    file: Path
    start: int
    rec: TensorRecord
    contiguous: bool


@dataclass(slots=True)
class _Locator:
    """Finds the bytes of records of one inventory (safetensors and torch zip archives)."""

    inv: TensorInventory
    zip_members: dict[str, dict[str, tuple[int, int]]] = field(default_factory=dict)

    def file_of(self, rec: TensorRecord) -> Path:
        base = Path(self.inv.path)
        if base.is_dir():
            return base / rec.file
        if base.name == rec.file:
            return base
        return base.parent / rec.file

    def locate(self, rec: TensorRecord) -> _Located:
        path = self.file_of(rec)
        contiguous = rec.stride is None or rec.stride == _contiguous_strides(rec.shape) or rec.numel <= 1
        fmt = self.inv.format
        if "@" in rec.storage and (fmt == "safetensors" or fmt.startswith("safetensors")):
            start = int(rec.storage.rsplit("@", 1)[1]) + rec.offset
            return _Located(path, start, rec, contiguous)
        if ":" in rec.storage and "torch-zip" in fmt:
            key = rec.storage.rsplit(":", 1)[1]
            members = self._zip_members(path)
            hit = members.get(key)
            if hit is None:
                raise UsageError(f"storage {key!r} of {rec.name!r} is not in the archive", path=str(path))
            data_start, _size = hit
            return _Located(path, data_start + rec.offset, rec, contiguous)
        offsets = self.inv.extra.get("storage_offsets")
        if ":" in rec.storage and "torch-legacy" in fmt and isinstance(offsets, dict):
            # The legacy reader records where each storage's bytes start (after its 8-byte element count).
            key = rec.storage.rsplit(":", 1)[1]
            if key in offsets:
                return _Located(path, int(offsets[key]) + rec.offset, rec, contiguous)
        raise UsageError(f"--values cannot read tensor data from {fmt} files yet", path=self.inv.path)

    def _zip_members(self, path: Path) -> dict[str, tuple[int, int]]:
        key = str(path)
        if key not in self.zip_members:
            import zipfile

            from ..loaders.source import LocalFile
            from ..loaders.torchzip import LOCAL_HEADER, open_zip

            out: dict[str, tuple[int, int]] = {}
            with LocalFile(path) as src:
                infos = open_zip(src)
                folder = infos[0].filename.split("/", 1)[0] if infos and "/" in infos[0].filename else ""
                prefix = f"{folder}/data/".lower()
                for info in infos:
                    lower = info.filename.lower()
                    if not lower.startswith(prefix) or info.compress_type != zipfile.ZIP_STORED:
                        continue
                    hdr = src.read_exact(info.header_offset, LOCAL_HEADER.size, info.filename)
                    fields_ = LOCAL_HEADER.unpack(hdr)
                    start = info.header_offset + LOCAL_HEADER.size + fields_[-2] + fields_[-1]
                    out[info.filename[len(prefix) :]] = (start, info.file_size)
            self.zip_members[key] = out
        return self.zip_members[key]


def _contiguous_strides(shape: tuple[int, ...]) -> tuple[int, ...]:
    out = []
    acc = 1
    for d in reversed(shape):
        out.append(acc)
        acc *= max(d, 1)
    return tuple(reversed(out))


def _numpy_view(loc: _Located, np: Any) -> Any:
    """The tensor as a numpy array (float64 for floats, int64/bool otherwise), reading its whole span."""
    from ..dtypes import NUMPY_VIEWS, lookup
    from ..loaders.source import LocalFile

    rec = loc.rec
    names = NUMPY_VIEWS
    if rec.dtype not in names:
        raise UsageError(f"values of dtype {rec.dtype} cannot be compared")
    item = lookup(rec.dtype).bits // 8
    strides = rec.stride if rec.stride is not None else _contiguous_strides(rec.shape)
    span = (sum((d - 1) * s for d, s in zip(rec.shape, strides, strict=True)) + 1) * item if rec.numel else 0
    with LocalFile(loc.file) as src:
        raw = src.read_exact(loc.start, span, f"data of {rec.name}")
    flat = np.frombuffer(raw, dtype=names[rec.dtype])
    arr = np.lib.stride_tricks.as_strided(flat, shape=rec.shape, strides=[s * item for s in strides])
    if rec.dtype == "bf16":
        arr = (arr.astype(np.uint32) << 16).view(np.float32)
    return arr


def _compare_bytes(la: _Located, lb: _Located, progress: Callable[[int], None]) -> bool:
    from ..loaders.source import LocalFile

    n = la.rec.nbytes
    with LocalFile(la.file) as fa, LocalFile(lb.file) as fb:
        done = 0
        while done < n:
            k = min(CHUNK, n - done)
            if fa.read_exact(la.start + done, k, la.rec.name) != fb.read_exact(lb.start + done, k, lb.rec.name):
                progress(n - done)
                return False
            done += k
            progress(k)
    return True


def _compare_numpy(key: str, la: _Located, lb: _Located) -> ValueResult:
    try:
        import numpy as np
    except ImportError:
        return ValueResult(key, None, reason="needs numpy (different dtypes or a strided view)")
    try:
        xa = _numpy_view(la, np)
        xb = _numpy_view(lb, np)
    except UsageError as exc:
        return ValueResult(key, None, reason=exc.message)
    fa = xa.astype(np.float64) if xa.dtype.kind in "fc" or xb.dtype.kind in "fc" else xa.astype(np.int64)
    fb = xb.astype(np.float64) if fa.dtype.kind == "f" else xb.astype(np.int64)
    both_nan = np.isnan(fa) & np.isnan(fb) if fa.dtype.kind == "f" else np.zeros(fa.shape, dtype=bool)
    neq = (fa != fb) & ~both_nan
    mism = int(neq.sum())
    diff = float(np.nanmax(np.abs(fa - fb))) if mism and fa.size else 0.0
    return ValueResult(key, mism == 0, max_abs_diff=diff, mismatched=mism)


def compare_values(
    a: TensorInventory,
    b: TensorInventory,
    report: DiffReport,
    progress: Callable[[int, int], None] | None = None,
) -> DiffReport:
    """`report` with `values` filled in for every tensor both sides hold with the same shape."""
    from dataclasses import replace

    pa, pb = report.rename or ("", "")
    side_a = {_strip(t.name, pa): t for t in a.tensors}
    side_b = {_strip(t.name, pb): t for t in b.tensors}
    keys = [k for k in side_a if k in side_b and side_a[k].shape == side_b[k].shape]
    total = sum(max(side_a[k].nbytes, side_b[k].nbytes) for k in keys)
    done = 0

    def step(n: int) -> None:
        nonlocal done
        done += n
        if progress:
            progress(done, total)

    loc_a, loc_b = _Locator(a), _Locator(b)
    results: list[ValueResult] = []
    for k in keys:
        ra, rb = side_a[k], side_b[k]
        la, lb = loc_a.locate(ra), loc_b.locate(rb)
        if ra.dtype == rb.dtype and la.contiguous and lb.contiguous:
            equal = _compare_bytes(la, lb, step)
            detail = None
            if not equal and ra.nbytes <= DETAIL_BYTES:
                detail = _compare_numpy(k, la, lb)  # how many elements and by how much, when numpy is there
            results.append(detail if detail is not None and detail.equal is False else ValueResult(k, equal))
        else:
            results.append(_compare_numpy(k, la, lb))
            step(max(ra.nbytes, rb.nbytes))
    return replace(report, values=tuple(results))


def diff_paths(
    path_a: str | os.PathLike[str],
    path_b: str | os.PathLike[str],
    *,
    values: bool = False,
    progress: Callable[[int, int], None] | None = None,
    endpoint: str | None = None,
    token: str | None = None,
) -> DiffReport:
    """Load both paths (headers only) and compare them; with `values`, also compare tensor contents.

    Example:
        >>> r = diff_paths("model.pth", "model.safetensors")  # doctest: +SKIP
        >>> r.identical, r.delta_params  # doctest: +SKIP
        (True, 0)
    """
    from ..loaders.folder import load
    from ..remote import is_url  # light: the remote package loads only for URLs

    if values:
        for p in (path_a, path_b):
            if is_url(p):
                # Comparing values means downloading every tensor: not what a header reader does.
                raise UsageError(
                    "--values reads every tensor's data; download the model first (URLs are read headers only)",
                    path=str(p),
                    rule="options",
                )
    a = load(path_a, endpoint=endpoint, token=token)
    b = load(path_b, endpoint=endpoint, token=token)
    report = diff_inventories(a, b)
    if values:
        report = compare_values(a, b, report, progress)
    return report


def _side_doc(s: TensorSide) -> dict[str, Any]:
    return {
        "name": s.name,
        "shape": list(s.shape),
        "dtype": s.dtype,
        "params": s.params,
        "bytes": s.nbytes,
        "shared_with": s.shared_with,
    }


def diff_document(r: DiffReport) -> dict[str, Any]:
    """The `--json` document (schema_version 1)."""
    from ..inventory import SCHEMA_VERSION

    return {
        "schema_version": SCHEMA_VERSION,
        "command": "diff",
        "a": {"path": r.path_a, "format": r.format_a, "params": r.params_a, "bytes": r.bytes_a,
              "file_bytes": r.file_bytes_a,
              **({"bytes_read": r.bytes_read_a} if r.bytes_read_a is not None else {})},
        "b": {"path": r.path_b, "format": r.format_b, "params": r.params_b, "bytes": r.bytes_b,
              "file_bytes": r.file_bytes_b,
              **({"bytes_read": r.bytes_read_b} if r.bytes_read_b is not None else {})},
        "identical": r.identical,
        "structurally_identical": r.structurally_identical,
        "rename": None if r.rename is None else {"a_prefix": r.rename[0], "b_prefix": r.rename[1],
                                                  "tensors": r.renamed},
        "added": [_side_doc(s) for s in r.added],
        "removed": [_side_doc(s) for s in r.removed],
        "changed": [
            {"name": c.key, "kinds": list(c.kinds), "a": _side_doc(c.a), "b": _side_doc(c.b)} for c in r.changed
        ],
        "unchanged": r.same,
        "delta_params": r.delta_params,
        "delta_bytes": r.delta_bytes,
        "delta_file_bytes": r.file_bytes_b - r.file_bytes_a,
        "groups": [
            {"name": g.name, "params_a": g.params_a, "params_b": g.params_b, "delta_params": g.params_b - g.params_a,
             "bytes_a": g.bytes_a, "bytes_b": g.bytes_b, "delta_bytes": g.bytes_b - g.bytes_a}
            for g in r.groups
        ],
        "values": None if r.values is None else [
            {"name": v.key, "equal": v.equal, "max_abs_diff": v.max_abs_diff, "mismatched": v.mismatched,
             "reason": v.reason or None}
            for v in r.values
        ],
    }  # fmt: skip


__all__ = ["DiffReport", "diff_document", "diff_inventories", "diff_paths", "find_rename"]
