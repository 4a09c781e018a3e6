"""The tensor inventory: the one type that every reader produces and every analysis reads.

Readers build `TensorRecord`s (no torch/onnx objects) and hand them to `build_inventory`, which works out
shared storage: a tensor whose bytes were already covered by an earlier tensor in the same storage (tied
`lm_head`/`wte`, slices, transposed views) is marked `shared_with` and adds nothing to the totals.
Totals are therefore sums over unique storage, and the per-tensor `counted_numel` values add up to them.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from .dtypes import lookup
from .errors import MalformedFileError

SCHEMA_VERSION = 1
NOT_PARAMS = frozenset({"quant_aux", "sparse_index"})  # record kinds whose bytes count but elements are not params


@dataclass(frozen=True, slots=True)
class TensorRecord:
    """One tensor as stored in a file.

    `storage` names the buffer the bytes live in (unique within an inventory) and `offset` is the byte
    offset of the tensor's first element inside it. `stride` is set when the file records one (torch).
    `counted_numel` and `shared_with` are filled in by `build_inventory`.
    """

    name: str
    shape: tuple[int, ...]
    dtype: str
    numel: int
    nbytes: int
    storage: str
    offset: int
    file: str
    stride: tuple[int, ...] | None = None
    section: str = "model"
    kind: str = "param"
    shared_with: str | None = None
    counted_numel: int = 0
    # Set when `numel` is a logical count that differs from the stored elements (GPTQ/AWQ int32-packed
    # weights, bitsandbytes 4-bit …): the rule that was applied, e.g. "gptq 4-bit: 8 per int32".
    packing: str | None = None

    @property
    def counted_params(self) -> int:
        """Parameters this tensor adds: its counted elements, except quantization scales / zero points
        (`kind == "quant_aux"`) and the indices of a sparse tensor (`kind == "sparse_index"`), which are stored
        alongside the values but are not model parameters."""
        return 0 if self.kind in NOT_PARAMS else self.counted_numel

    @property
    def counted_nbytes(self) -> int:
        """Bytes this tensor adds to the totals (0 when its storage was already counted)."""
        if self.counted_numel >= self.numel:
            return self.nbytes
        # Proportional, so block-quantized formats (4.5 bits per weight) need no per-element width.
        return self.nbytes * self.counted_numel // self.numel if self.numel else 0


@dataclass(frozen=True, slots=True)
class FileRecord:
    """A file the inventory was read from, relative to the inventory's `path` when that is a folder."""

    path: str
    nbytes: int


@dataclass(frozen=True, slots=True)
class UnreadFile:
    """A model-type file of a folder that the folder plan did not read (the same model in another format,
    training state, …): what `mi check` still counts (size, pickle) and `mi inspect` mentions."""

    path: str  # relative to the folder
    nbytes: int
    format: str | None  # what its first bytes say (`torch-zip`, `safetensors` …); None when it could not be opened
    reason: str  # why it was not read, for people


@dataclass(frozen=True, slots=True)
class DTypeTotal:
    """Unique parameters and bytes of one dtype."""

    params: int
    nbytes: int


@dataclass(frozen=True, slots=True)
class SectionTotal:
    """Tensors, unique elements and unique bytes of one section ("model", "optimizer", "buffers", ...)."""

    tensors: int
    elements: int
    nbytes: int


@dataclass(frozen=True, slots=True)
class TorchInfo:
    """What the torch readers learn besides tensors: module classes, sections, quantization, storage layout."""

    module_types: Mapping[str, str] = field(default_factory=dict)  # module path → class, whole-module pickles
    module_classes: tuple[str, ...] = ()  # classes met, first-seen order
    non_persistent_buffers: tuple[str, ...] = ()
    stub_classes: tuple[str, ...] = ()  # classes torch.load(weights_only=False) would import
    quantization: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # tensor → qscheme, scale, …
    section_sources: Mapping[str, str] = field(default_factory=dict)  # section → key it came from
    storage_offsets: Mapping[str, int] = field(default_factory=dict)  # legacy files: storage key → data offset
    archive_folder: str | None = None  # zip files: the folder torch.save named
    pickle_bytes: int = 0
    pickle_protocol: int | None = None


@dataclass(frozen=True, slots=True)
class ReadStats:
    """What a remote read cost: body bytes that crossed the network, requests, retries, revalidations, time."""

    bytes_read: int
    requests: int = 0
    retries: int = 0
    revalidated: int = 0
    seconds: float = 0.0


@dataclass(frozen=True, slots=True)
class TensorInventory:
    """Everything `mi` knows about a model file or folder, without its weights.

    Example:
        >>> inv = modelscope_inspect.load("model.safetensors")  # doctest: +SKIP
        >>> inv.total_params, inv.by_dtype["f32"].nbytes  # doctest: +SKIP
    """

    format: str
    path: str
    files: tuple[FileRecord, ...]
    tensors: tuple[TensorRecord, ...]
    storage_bytes: int
    metadata: Mapping[str, str] = field(default_factory=dict)
    config: Mapping[str, Any] | None = None
    warnings: tuple[str, ...] = ()
    details: Mapping[str, Any] = field(default_factory=dict)  # format facts: ONNX opset, GGUF architecture, …
    torch: TorchInfo | None = None
    header_bytes: int | None = None  # bytes of headers the readers parsed (safetensors, ONNX)
    read: ReadStats | None = None  # set for URLs
    unread_files: tuple[UnreadFile, ...] = ()  # folders: model-type files beside the ones read

    @property
    def file_bytes(self) -> int:
        """Size on disk of every file read."""
        return sum(f.nbytes for f in self.files)

    @property
    def total_params(self) -> int:
        """Unique parameters of the model-weights section (shared storage counted once; quantization scales
        and zero points are in `total_bytes` but not here)."""
        return sum(t.counted_params for t in self.tensors if t.section == "model")

    @property
    def total_bytes(self) -> int:
        """Unique bytes of the model-weights section."""
        return sum(t.counted_nbytes for t in self.tensors if t.section == "model")

    @property
    def total_elements(self) -> int:
        """Unique elements of every tensor in the file, whatever its section."""
        return sum(t.counted_numel for t in self.tensors)

    @property
    def by_dtype(self) -> dict[str, DTypeTotal]:
        """Unique params and bytes per dtype, largest first."""
        acc: dict[str, list[int]] = {}
        for t in self.tensors:
            if t.section != "model":
                continue
            slot = acc.setdefault(t.dtype, [0, 0])
            slot[0] += t.counted_params
            slot[1] += t.counted_nbytes
        ordered = sorted(acc.items(), key=lambda kv: -kv[1][1])
        return {k: DTypeTotal(v[0], v[1]) for k, v in ordered}

    @property
    def by_section(self) -> dict[str, SectionTotal]:
        """Per-section totals, the model weights first, then in file order of first appearance (training
        checkpoints, whole modules, buffers known by name)."""
        acc: dict[str, list[int]] = {"model": [0, 0, 0]} if any(t.section == "model" for t in self.tensors) else {}
        for t in self.tensors:
            slot = acc.setdefault(t.section, [0, 0, 0])
            slot[0] += 1
            slot[1] += t.counted_numel
            slot[2] += t.counted_nbytes
        return {k: SectionTotal(v[0], v[1], v[2]) for k, v in acc.items()}

    @property
    def shared(self) -> tuple[TensorRecord, ...]:
        """Tensors that reuse storage already counted for another tensor."""
        return tuple(t for t in self.tensors if t.shared_with is not None)


def _bits(dtype: str) -> int | None:
    try:
        return lookup(dtype).bits
    except MalformedFileError:
        return None  # block formats (GGUF quants) have no per-element width; their records carry nbytes


def _span_bytes(rec: TensorRecord, bits: int) -> int:
    """Bytes from the first to one past the last element the tensor can touch, honouring its stride."""
    if rec.numel == 0:
        return 0
    if rec.stride is None or len(rec.stride) != len(rec.shape):
        return rec.nbytes
    last = sum((dim - 1) * st for dim, st in zip(rec.shape, rec.stride, strict=True) if dim > 0)
    return ((last + 1) * bits + 7) // 8


MAX_RUNS = 1 << 16  # byte runs listed for one strided view; beyond, its span stands for it


def _runs(rec: TensorRecord, bits: int) -> list[tuple[int, int]]:
    """The byte ranges [lo, hi) of its storage that a tensor touches, sorted and merged.

    A contiguous tensor (or a transposed or permuted one, whose dims still tile a block) is one range; a slice
    of rows or columns, or every other element, is one range per run of adjacent elements. Dims of size 1 and
    broadcast dims (stride 0) touch nothing new. Views with more than `MAX_RUNS` runs are taken as their span.
    """
    if rec.numel == 0:
        return []
    if rec.stride is None or len(rec.stride) != len(rec.shape):
        return [(rec.offset, rec.offset + rec.nbytes)]
    dims = sorted((st, n) for n, st in zip(rec.shape, rec.stride, strict=True) if n > 1 and st > 0)
    run = 1  # elements in one contiguous run
    while dims and dims[0][0] == run:  # the innermost dims that tile a block merge into one run
        run *= dims[0][1]
        dims.pop(0)
    count = 1
    for _st, n in dims:
        count *= n
    if count > MAX_RUNS:
        return [(rec.offset, rec.offset + _span_bytes(rec, bits))]
    starts = [0]
    for st, n in dims:
        starts = [s + i * st for s in starts for i in range(n)]
    first = rec.offset * 8  # in bits: `offset` is the byte of the first element
    out: list[tuple[int, int]] = []
    for s in sorted(starts):
        lo, hi = (first + s * bits) // 8, (first + (s + run) * bits + 7) // 8
        if out and lo <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return out


def _add_interval(covered: list[tuple[int, int]], lo: int, hi: int) -> int:
    """Insert [lo, hi) into a sorted list of disjoint intervals (touching ones merged); return the new bytes."""
    i = bisect_left(covered, (lo, lo))
    if i > 0 and covered[i - 1][1] >= lo:
        i -= 1
    j, new = i, hi - lo
    merged_lo, merged_hi = lo, hi
    while j < len(covered) and covered[j][0] <= hi:
        a, b = covered[j]
        new -= max(0, min(b, hi) - max(a, lo))
        merged_lo, merged_hi = min(merged_lo, a), max(merged_hi, b)
        j += 1
    covered[i:j] = [(merged_lo, merged_hi)]
    return new


def resolve_sharing(records: Iterable[TensorRecord]) -> list[TensorRecord]:
    """Fill `counted_numel` / `shared_with` for records in file order.

    Within one storage, the bytes a tensor touches that no earlier tensor touched are counted (the union of
    their byte ranges, strides honoured: two overlapping slices count their shared elements once, a broadcast
    view the elements it stores); a tensor that adds no new bytes is `shared_with` the first tensor it
    overlaps. Distinct storages never share.
    """
    out: list[TensorRecord] = []
    covered: dict[str, list[tuple[int, int]]] = {}
    owners: dict[str, list[tuple[int, int, str]]] = {}
    for rec in records:
        bits = _bits(rec.dtype)
        runs = [(rec.offset, rec.offset + rec.nbytes)] if bits is None else _runs(rec, bits)
        own = sum(hi - lo for lo, hi in runs)
        intervals = covered.get(rec.storage)
        if intervals is None:  # the common case: a storage per tensor, nothing to merge
            covered[rec.storage] = list(runs)
            new_bytes = own
        else:
            new_bytes = sum(_add_interval(intervals, lo, hi) for lo, hi in runs)
        lo, hi = (runs[0][0], runs[-1][1]) if runs else (rec.offset, rec.offset)
        shared_with = None
        if new_bytes < own:
            for a, b, owner in owners.get(rec.storage, []):
                if a < hi and b > lo:
                    shared_with = owner
                    break
        owners.setdefault(rec.storage, []).append((lo, hi, rec.name))
        if new_bytes <= 0:
            counted = 0
        elif bits is not None and own < rec.nbytes:
            # A broadcast (stride 0) or self-overlapping view: its elements repeat, count the ones it stores.
            counted = min(rec.numel, new_bytes * 8 // bits)
        elif new_bytes >= own:
            counted = rec.numel
        else:
            # A partially overlapping view: count the new bytes as elements, never more than its own numel.
            counted = min(rec.numel, new_bytes * rec.numel // max(own, 1))
        out.append(replace(rec, counted_numel=counted, shared_with=shared_with if counted == 0 else None))
    return out


def build_inventory(
    *,
    format: str,
    path: str,
    files: Iterable[FileRecord],
    records: Iterable[TensorRecord],
    storage_bytes: int,
    metadata: Mapping[str, str] | None = None,
    config: Mapping[str, Any] | None = None,
    warnings: Iterable[str] = (),
    details: Mapping[str, Any] | None = None,
    torch: TorchInfo | None = None,
    header_bytes: int | None = None,
) -> TensorInventory:
    """Resolve shared storage and freeze everything into a `TensorInventory`."""
    tensors = tuple(resolve_sharing(records))
    warn = list(warnings)
    counted = sum(t.counted_nbytes for t in tensors)
    if storage_bytes > counted:
        warn.append(
            f"{storage_bytes - counted:,} bytes of stored data are not reachable from any tensor "
            "(a view was saved with its whole storage)"
        )
    return TensorInventory(
        format=format,
        path=path,
        files=tuple(files),
        tensors=tensors,
        storage_bytes=storage_bytes,
        metadata=dict(metadata or {}),
        config=config,
        warnings=tuple(warn),
        details=dict(details or {}),
        torch=torch,
        header_bytes=header_bytes,
    )
