"""NumPy `.npy` arrays and `.npz` archives as tensor files, from their headers only.

`.npy` (numpy's format spec, `numpy.lib.format`): the magic `\\x93NUMPY`, a version byte pair, a 2-byte (v1) or
4-byte (v2, v3) little-endian header length, then a Python-literal dict `{'descr': '<f4', 'fortran_order': False,
'shape': (3, 4)}` padded with spaces, then the data. The header is parsed with `ast.literal_eval` (never
evaluated), its shape checked for overflow, and the data it declares checked against the bytes that are there.
Object arrays (`descr` `'|O'`) hold pickles, not numbers: they are refused as tensors (`mi scan` reads them).

`.npz` (`numpy.savez`, `savez_compressed`): a zip of `NAME.npy` members; each member's header is read from its
first bytes (inflating only those when compressed), and the data size checked against the member's size.
"""

from __future__ import annotations

import ast
import zipfile
import zlib
from typing import Any

from ..dtypes import lookup
from ..errors import MalformedFileError, UnsupportedFormatError
from ..inventory import TensorRecord
from .base import FileScan
from .identify import truncated
from .source import ByteSource

NPY_MAGIC = b"\x93NUMPY"
MAX_HEADER = 1 << 20
MAX_NUMEL = 1 << 62
MAX_MEMBERS = 100_000
_KINDS = {"f": "float", "i": "int", "u": "uint", "c": "complex"}


def _dtype(descr: Any, where: str) -> str:
    """Our dtype name for a numpy type string (`'<f4'` → f32); objects and structured dtypes are refused."""
    if not isinstance(descr, str):
        raise UnsupportedFormatError(
            f"structured dtype {descr!r} is not a tensor (fields of several types)", path=where, rule="npy-dtype"
        )
    order, kind, size = descr[:1], descr[1:2], descr[2:]
    if kind == "O":
        raise UnsupportedFormatError(
            "object array: its data is a pickle, not numbers (`mi scan` shows what it would import)",
            path=where,
            rule="npy-object",
        )
    if order not in "<>|=" or not size.isdigit():
        raise MalformedFileError(f"numpy dtype {descr!r} is not a type string", path=where, rule="npy-dtype")
    if kind == "b" and size == "1":
        return lookup("bool").name
    if kind not in _KINDS:
        raise UnsupportedFormatError(f"numpy dtype {descr!r} is not a numeric tensor type", path=where,
                                     rule="npy-dtype")  # fmt: skip
    try:
        return lookup(f"{_KINDS[kind]}{int(size) * 8}").name
    except MalformedFileError:
        raise UnsupportedFormatError(f"numpy dtype {descr!r} has no tensor equivalent", path=where,
                                     rule="npy-dtype") from None  # fmt: skip


def parse_header(head: bytes, where: str) -> tuple[str, tuple[int, ...], bool, int, str]:
    """(dtype, shape, fortran order, data offset, byte order) from the first bytes of an `.npy` stream."""
    if head[:6] != NPY_MAGIC or len(head) < 10:
        raise MalformedFileError("not an npy array (no \\x93NUMPY magic)", path=where, rule="npy-header")
    major = head[6]
    if major == 1:
        hlen, start = int.from_bytes(head[8:10], "little"), 10
    elif major in (2, 3):
        hlen, start = int.from_bytes(head[8:12], "little"), 12
    else:
        raise MalformedFileError(f"unknown npy version {major}", path=where, rule="npy-header")
    if hlen > MAX_HEADER:
        raise MalformedFileError(f"npy header length {hlen:,} is not plausible", path=where, rule="npy-header")
    if start + hlen > len(head):
        raise MalformedFileError("npy header is cut short", path=where, rule="npy-header")
    try:
        header = ast.literal_eval(head[start : start + hlen].decode("latin-1" if major < 3 else "utf-8"))
    except (ValueError, SyntaxError, MemoryError, RecursionError, UnicodeDecodeError):
        raise MalformedFileError("npy header is not a Python literal", path=where, rule="npy-header") from None
    if not isinstance(header, dict) or not {"descr", "shape"} <= set(header):
        raise MalformedFileError("npy header has no descr and shape", path=where, rule="npy-header")
    shape = header["shape"]
    if not isinstance(shape, tuple) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0
                                               for d in shape):  # fmt: skip
        raise MalformedFileError(f"npy shape {shape!r} is not a tuple of sizes", path=where, rule="npy-header")
    numel = 1
    for dim in shape:
        numel *= dim
        if numel > MAX_NUMEL:
            raise MalformedFileError(f"npy shape {shape!r} overflows", path=where, rule="npy-shape")
    dtype = _dtype(header["descr"], where)
    order = header["descr"][:1] if isinstance(header["descr"], str) else "|"
    return dtype, shape, bool(header.get("fortran_order")), start + hlen, order


def _record(name: str, dtype: str, shape: tuple[int, ...], rel: str, storage: str) -> TensorRecord:
    numel = 1
    for d in shape:
        numel *= d
    return TensorRecord(name, shape, dtype, numel, lookup(dtype).nbytes(numel), storage, 0, rel)


def _head_of(src: ByteSource, info: zipfile.ZipInfo) -> bytes:
    """The first bytes of an npz member (enough for its header), inflating only those when compressed."""
    from .torchzip import member_start

    start = member_start(src, info)
    want = min(MAX_HEADER + 12, info.file_size)
    if info.compress_type == zipfile.ZIP_STORED:
        return src.read_exact(start, min(want, info.compress_size), info.filename)
    if info.compress_type != zipfile.ZIP_DEFLATED:
        raise MalformedFileError(f"member {info.filename} uses compression method {info.compress_type}",
                                 path=src.name, rule="zip-structure")  # fmt: skip
    inflater = zlib.decompressobj(-15)
    out = b""
    pos, end = start, start + info.compress_size
    try:
        while len(out) < want and pos < end and not inflater.eof:
            chunk = src.read_at(pos, min(64 << 10, end - pos))
            if not chunk:
                break
            pos += len(chunk)
            out += inflater.decompress(chunk, want - len(out))
    except zlib.error as exc:
        raise MalformedFileError(f"{info.filename} does not inflate: {exc}", path=src.name,
                                 rule="zip-structure") from None  # fmt: skip
    return out


class NpyLoader:
    """Reads `.npy` headers: one tensor per file."""

    name: str = "npy"
    extensions: tuple[str, ...] = (".npy",)

    def sniff(self, head: bytes, size: int) -> bool:
        return head[:6] == NPY_MAGIC

    def read(self, src: ByteSource, rel: str) -> FileScan:
        where = src.name
        head = src.read_at(0, min(src.size, MAX_HEADER + 12))
        dtype, shape, fortran, offset, order = parse_header(head, where)
        rec = _record(rel.rsplit("/", 1)[-1].removesuffix(".npy") or "array", dtype, shape, rel, f"{rel}:data")
        if offset + rec.nbytes > src.size:
            raise truncated(where, offset + rec.nbytes, src.size, f"the {shape} {dtype} array")
        warnings = [f"{src.size - offset - rec.nbytes:,} bytes after the array's data"] if src.size > offset + \
            rec.nbytes else []  # fmt: skip
        details: dict[str, Any] = {"npy": "fortran order" if fortran else "C order"}
        if order == ">":
            details["byte order"] = "big-endian"
        return FileScan("npy", [rec], rec.nbytes, warnings=warnings, details=details, header_bytes=offset)


class NpzLoader:
    """Reads `.npz` archives: one tensor per `.npy` member."""

    name: str = "npz"
    extensions: tuple[str, ...] = (".npz",)

    def sniff(self, head: bytes, size: int) -> bool:
        # A zip whose first member is an .npy (torch's archives start with NAME/data.pkl).
        if head[:4] != b"PK\x03\x04" or len(head) < 30:
            return False
        n_name = int.from_bytes(head[26:28], "little")
        name = head[30 : 30 + n_name]
        if len(name) < n_name:  # a long name cut by the head: torch's members are always FOLDER/NAME
            return b"/" not in name
        return name.lower().endswith(b".npy")

    def read(self, src: ByteSource, rel: str) -> FileScan:
        from .torchzip import open_zip

        where = src.name
        infos = open_zip(src)
        if len(infos) > MAX_MEMBERS:
            raise MalformedFileError(f"{len(infos):,} members is not a real npz", path=where, rule="zip-structure")
        records: list[TensorRecord] = []
        compressed = False
        header_bytes = 0
        for info in infos:
            if not info.filename.lower().endswith(".npy"):
                continue
            member = f"{where}:{info.filename}"
            dtype, shape, _f, offset, _o = parse_header(_head_of(src, info), member)
            name = info.filename[: -len(".npy")]
            rec = _record(name, dtype, shape, rel, f"{rel}:{info.filename}")
            if offset + rec.nbytes != info.file_size:
                raise MalformedFileError(
                    f"array {name} declares {rec.nbytes:,} bytes of data but its member holds "
                    f"{max(info.file_size - offset, 0):,}",
                    path=where,
                    rule="npy-shape",
                )
            compressed |= info.compress_type != zipfile.ZIP_STORED
            header_bytes += offset
            records.append(rec)
        if not records:
            raise UnsupportedFormatError("zip archive without .npy members (not an npz)", path=where)
        details = {"npz": f"{len(records)} arrays" + (", compressed" if compressed else "")}
        return FileScan("npz", records, sum(r.nbytes for r in records), details=details, header_bytes=header_bytes)


__all__ = ["NpyLoader", "NpzLoader", "parse_header"]
