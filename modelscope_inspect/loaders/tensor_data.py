"""Where a tensor's bytes are, for the commands that read data (`mi diff --values`): safetensors files, torch
zip archives (stored members, found through their local headers) and legacy torch files."""

from __future__ import annotations

import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..dtypes import NUMPY_VIEWS, lookup
from ..errors import UsageError
from ..inventory import TensorInventory, TensorRecord
from .source import LocalFile
from .torchzip import member_start, open_zip

CHUNK = 16 << 20  # bytes compared at a time: memory stays flat whatever the tensor size


@dataclass(slots=True)
class Located:
    """Where a tensor's bytes are: a file, the byte offset of its first element, and its layout."""

    file: Path
    start: int
    rec: TensorRecord
    contiguous: bool


def contiguous_strides(shape: tuple[int, ...]) -> tuple[int, ...]:
    out = []
    acc = 1
    for d in reversed(shape):
        out.append(acc)
        acc *= max(d, 1)
    return tuple(reversed(out))


@dataclass(slots=True)
class Locator:
    """Finds the bytes of the records of one local inventory."""

    inv: TensorInventory
    zip_members: dict[str, dict[str, tuple[int, int]]] = field(default_factory=dict)

    def file_of(self, rec: TensorRecord) -> Path:
        base = Path(self.inv.path)
        if base.is_dir():
            return base / rec.file
        if base.name == rec.file:
            return base
        return base.parent / rec.file

    def locate(self, rec: TensorRecord) -> Located:
        path = self.file_of(rec)
        contiguous = rec.stride is None or rec.stride == contiguous_strides(rec.shape) or rec.numel <= 1
        fmt = self.inv.format
        if "@" in rec.storage and (fmt == "safetensors" or fmt.startswith("safetensors")):
            start = int(rec.storage.rsplit("@", 1)[1]) + rec.offset
            return Located(path, start, rec, contiguous)
        if ":" in rec.storage and "torch-zip" in fmt:
            key = rec.storage.rsplit(":", 1)[1]
            hit = self._zip_members(path).get(key)
            if hit is None:
                raise UsageError(f"storage {key!r} of {rec.name!r} is not in the archive", path=str(path))
            data_start, _size = hit
            return Located(path, data_start + rec.offset, rec, contiguous)
        offsets = self.inv.torch.storage_offsets if self.inv.torch is not None else {}
        if ":" in rec.storage and "torch-legacy" in fmt:
            # The legacy reader records where each storage's bytes start (after its 8-byte element count).
            key = rec.storage.rsplit(":", 1)[1]
            if key in offsets:
                return Located(path, int(offsets[key]) + rec.offset, rec, contiguous)
        raise UsageError(f"--values cannot read tensor data from {fmt} files yet", path=self.inv.path)

    def _zip_members(self, path: Path) -> dict[str, tuple[int, int]]:
        key = str(path)
        if key not in self.zip_members:
            out: dict[str, tuple[int, int]] = {}
            with LocalFile(path) as src:
                infos = open_zip(src)
                folder = infos[0].filename.split("/", 1)[0] if infos and "/" in infos[0].filename else ""
                prefix = f"{folder}/data/".lower()
                constants = f"{folder}/constants/".lower()  # TorchScript constants: keys `constants/<key>`
                for info in infos:
                    lower = info.filename.lower()
                    if info.compress_type != zipfile.ZIP_STORED:
                        continue
                    if lower.startswith(prefix):
                        out[info.filename[len(prefix) :]] = (member_start(src, info), info.file_size)
                    elif lower.startswith(constants):
                        key = "constants/" + info.filename[len(constants) :]
                        out[key] = (member_start(src, info), info.file_size)
            self.zip_members[key] = out
        return self.zip_members[key]


def numpy_view(loc: Located, np: Any) -> Any:
    """The tensor as a numpy array (bf16 widened to f32), reading its whole span."""
    rec = loc.rec
    if rec.dtype not in NUMPY_VIEWS:
        raise UsageError(f"values of dtype {rec.dtype} cannot be compared")
    item = lookup(rec.dtype).bits // 8
    strides = rec.stride if rec.stride is not None else contiguous_strides(rec.shape)
    span = (sum((d - 1) * s for d, s in zip(rec.shape, strides, strict=True)) + 1) * item if rec.numel else 0
    with LocalFile(loc.file) as src:
        raw = src.read_exact(loc.start, span, f"data of {rec.name}")
    flat = np.frombuffer(raw, dtype=NUMPY_VIEWS[rec.dtype])
    arr = np.lib.stride_tricks.as_strided(flat, shape=rec.shape, strides=[s * item for s in strides])
    if rec.dtype == "bf16":
        arr = (arr.astype(np.uint32) << 16).view(np.float32)
    return arr


def same_bytes(la: Located, lb: Located, progress: Callable[[int], None]) -> bool:
    """True when both tensors' bytes are equal, read `CHUNK` at a time; `progress` gets the bytes covered."""
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
