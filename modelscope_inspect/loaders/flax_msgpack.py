"""Flax `flax_model.msgpack` (`flax.serialization.to_bytes`): a msgpack tree of dicts with array leaves.

Each array is a msgpack ext of type 1 whose payload is itself msgpack: `(shape, dtype name, raw bytes)`
(flax/serialization.py `_ndarray_to_bytes`); type 3 is a numpy scalar in the same layout, type 2 a complex. Arrays
over 1 GiB are split into `{'__msgpack_chunked_array__': True, 'shape': {...}, 'chunks': {...}}`.

The tree is walked by our own decoder over the byte source: every declared length is checked against the bytes
left before anything is read, container counts cannot exceed the bytes that could hold them, nesting and item
counts are capped, and array payloads are skipped (only their small inner header is read), so the cost is the
tree's structure, not its weights. Names join the tree's keys with dots (`bert.embeddings.word_embeddings.
embedding`); the `batch_stats` collection is the `buffers` section, `opt_state` the optimizer's.
"""

from __future__ import annotations

import struct
from typing import Any

from ..dtypes import lookup
from ..errors import LimitExceededError, MalformedFileError
from ..inventory import TensorRecord
from .base import FileScan
from .source import ByteSource

MAX_DEPTH = 64
MAX_ITEMS = 10_000_000
MAX_KEY = 1 << 16  # a key or other string kept in memory
MAX_NUMEL = 1 << 62
CHUNK = 1 << 16
CHUNKED = "__msgpack_chunked_array__"
EXT_NDARRAY, EXT_COMPLEX, EXT_SCALAR = 1, 2, 3


# Flax variable collections → sections: `params` are the parameters (what Flax counts), `batch_stats` are the
# running statistics torch calls buffers. HF's flax_model.msgpack holds the params tree alone (no collection key).
_COLLECTIONS = {"params": "model", "batch_stats": "buffers", "opt_state": "optimizer", "cache": "cache"}


class _Array:
    __slots__ = ("dtype", "nbytes", "numel", "offset", "shape")

    def __init__(self, shape: tuple[int, ...], dtype: str, numel: int, nbytes: int, offset: int) -> None:
        self.shape, self.dtype, self.numel, self.nbytes, self.offset = shape, dtype, numel, nbytes, offset


class _Skipped:
    """A value that is not kept (a long string, binary data, a complex)."""

    __slots__ = ()


SKIPPED = _Skipped()


class _Reader:
    def __init__(self, src: ByteSource) -> None:
        self.src = src
        self.pos = 0
        self.items = 0
        self._buf = b""
        self._buf_at = 0

    def bad(self, msg: str, rule: str = "msgpack") -> MalformedFileError:
        return MalformedFileError(f"{msg} (at byte {self.pos:,})", path=self.src.name, rule=rule)

    def take(self, n: int) -> bytes:
        if n > self.src.size - self.pos:
            raise self.bad(f"declares {n:,} bytes but {self.src.size - self.pos:,} remain", "msgpack-length")
        rel = self.pos - self._buf_at
        if rel < 0 or rel + n > len(self._buf):
            if n > CHUNK:
                out = self.src.read_exact(self.pos, n, "msgpack value")
                self.pos += n
                return out
            self._buf_at = self.pos
            self._buf = self.src.read_at(self.pos, CHUNK)
            rel = 0
        out = self._buf[rel : rel + n]
        self.pos += n
        return out

    def skip(self, n: int) -> None:
        if n > self.src.size - self.pos:
            raise self.bad(f"declares {n:,} bytes but {self.src.size - self.pos:,} remain", "msgpack-length")
        self.pos += n

    def uint(self, n: int) -> int:
        return int.from_bytes(self.take(n), "big")

    def count(self, n: int, per_item: int) -> int:
        """A container's declared item count, checked against the bytes that could hold that many items."""
        if n * per_item > self.src.size - self.pos:
            raise self.bad(f"declares {n:,} items but only {self.src.size - self.pos:,} bytes remain", "msgpack-length")
        self.items += n
        if self.items > MAX_ITEMS:
            raise LimitExceededError(f"more than {MAX_ITEMS:,} msgpack items", path=self.src.name, rule="msgpack")
        return n

    def value(self, depth: int) -> Any:
        if depth > MAX_DEPTH:
            raise LimitExceededError(f"msgpack nested deeper than {MAX_DEPTH}", path=self.src.name, rule="msgpack")
        b = self.take(1)[0]
        if b <= 0x7F:
            return b
        if b >= 0xE0:
            return b - 0x100
        if 0x80 <= b <= 0x8F:
            return self.map(b & 0x0F, depth)
        if 0x90 <= b <= 0x9F:
            return self.array(b & 0x0F, depth)
        if 0xA0 <= b <= 0xBF:
            return self.string(b & 0x1F)
        simple = {0xC0: None, 0xC2: False, 0xC3: True}
        if b in simple:
            return simple[b]
        sizes = {0xC4: 1, 0xC5: 2, 0xC6: 4}  # bin
        if b in sizes:
            self.skip(self.uint(sizes[b]))
            return SKIPPED
        exts = {0xC7: 1, 0xC8: 2, 0xC9: 4}
        if b in exts:
            n = self.uint(exts[b])
            return self.ext(self.take(1)[0], n)
        fixext = {0xD4: 1, 0xD5: 2, 0xD6: 4, 0xD7: 8, 0xD8: 16}
        if b in fixext:
            return self.ext(self.take(1)[0], fixext[b])
        if b == 0xCA:
            return struct.unpack(">f", self.take(4))[0]
        if b == 0xCB:
            return struct.unpack(">d", self.take(8))[0]
        uints = {0xCC: 1, 0xCD: 2, 0xCE: 4, 0xCF: 8}
        if b in uints:
            return self.uint(uints[b])
        ints = {0xD0: 1, 0xD1: 2, 0xD2: 4, 0xD3: 8}
        if b in ints:
            return int.from_bytes(self.take(ints[b]), "big", signed=True)
        strs = {0xD9: 1, 0xDA: 2, 0xDB: 4}
        if b in strs:
            return self.string(self.uint(strs[b]))
        if b in (0xDC, 0xDD):
            return self.array(self.uint(2 if b == 0xDC else 4), depth)
        if b in (0xDE, 0xDF):
            return self.map(self.uint(2 if b == 0xDE else 4), depth)
        raise self.bad(f"byte 0x{b:02x} starts no msgpack value")

    def string(self, n: int) -> Any:
        if n > MAX_KEY:
            self.skip(n)
            return SKIPPED
        try:
            return self.take(n).decode("utf-8")
        except UnicodeDecodeError:
            raise self.bad("string is not UTF-8") from None

    def array(self, n: int, depth: int) -> list[Any]:
        return [self.value(depth + 1) for _ in range(self.count(n, 1))]

    def map(self, n: int, depth: int) -> dict[Any, Any]:
        out: dict[Any, Any] = {}
        for _ in range(self.count(n, 2)):
            key = self.value(depth + 1)
            if not isinstance(key, (str, int)):
                raise self.bad(f"map key {key!r} is not a string")
            if key in out:
                raise self.bad(f"duplicate map key {key!r}")
            out[key] = self.value(depth + 1)
        return out

    def ext(self, code: int, n: int) -> Any:
        if n > self.src.size - self.pos:
            raise self.bad(f"ext declares {n:,} bytes but {self.src.size - self.pos:,} remain", "msgpack-length")
        end = self.pos + n
        if code not in (EXT_NDARRAY, EXT_SCALAR):
            self.skip(n)
            return SKIPPED
        # The payload: msgpack (shape, dtype name, raw bytes); the raw bytes are skipped, never read.
        if self.take(1) != b"\x93":
            raise self.bad("array payload is not a 3-element array", "flax-array")
        shape = self.value(MAX_DEPTH - 2)
        dtype = self.value(MAX_DEPTH - 2)
        if isinstance(dtype, bytes):
            dtype = dtype.decode("ascii", "replace")
        if not isinstance(shape, list) or not all(type(d) is int and d >= 0 for d in shape):
            raise self.bad(f"array shape {shape!r} is not a list of sizes", "flax-array")
        if not isinstance(dtype, str):
            raise self.bad("array dtype is not a name", "flax-array")
        head = self.take(1)[0]
        lens = {0xC4: 1, 0xC5: 2, 0xC6: 4}
        if head not in lens:
            raise self.bad("array data is not msgpack bin", "flax-array")
        length = self.uint(lens[head])
        data_at = self.pos
        if data_at + length != end:
            raise self.bad(f"array data of {length:,} bytes does not end its {n:,}-byte ext", "msgpack-length")
        self.skip(length)
        try:
            dt = lookup(dtype)
        except MalformedFileError:
            raise self.bad(f"array dtype {dtype!r} is not one this tool knows", "dtype-known") from None
        numel = 1
        for d in shape:
            numel *= d
            if numel > MAX_NUMEL:
                raise self.bad(f"array shape {shape} overflows", "shape-overflow")
        nbytes = numel * dt.bits // 8
        if nbytes != length:
            raise self.bad(f"array {shape} of {dtype} needs {nbytes:,} bytes but holds {length:,}", "flax-array")
        return _Array(tuple(shape), dt.name, numel, nbytes, data_at)


def _leaves(tree: Any, path: list[str], out: list[tuple[str, _Array]]) -> None:
    if isinstance(tree, _Array):
        out.append((".".join(path), tree))
    elif isinstance(tree, dict):
        if tree.get(CHUNKED) is True:
            _chunked(tree, path, out)
            return
        for key, value in tree.items():
            _leaves(value, [*path, str(key)], out)
    elif isinstance(tree, list):
        for i, value in enumerate(tree):
            _leaves(value, [*path, str(i)], out)


def _chunked(tree: dict[Any, Any], path: list[str], out: list[tuple[str, _Array]]) -> None:
    """A chunked array: one tensor of `shape`, its bytes the sum of its chunks' (stored apart)."""
    shape_d, chunks = tree.get("shape"), tree.get("chunks")
    if not isinstance(shape_d, dict) or not isinstance(chunks, dict):
        return
    shape = tuple(shape_d.get(str(i)) for i in range(len(shape_d)))
    parts = [chunks.get(str(i)) for i in range(len(chunks))]
    if not all(type(d) is int for d in shape) or not all(isinstance(p, _Array) for p in parts) or not parts:
        return
    arrays = [p for p in parts if isinstance(p, _Array)]
    dims = [d for d in shape if isinstance(d, int)]
    numel = 1
    for d in dims:
        numel *= d
    if numel != sum(a.numel for a in arrays):
        return
    out.append(
        (".".join(path), _Array(tuple(dims), arrays[0].dtype, numel, sum(a.nbytes for a in arrays), arrays[0].offset))
    )


class FlaxMsgpackLoader:
    """Reads Flax msgpack checkpoints (`flax_model.msgpack`) without reading their arrays."""

    name: str = "flax-msgpack"
    extensions: tuple[str, ...] = (".msgpack",)

    def sniff(self, head: bytes, size: int) -> bool:
        return False  # a msgpack map starts with any of 18 bytes: chosen by extension

    def read(self, src: ByteSource, rel: str) -> FileScan:
        r = _Reader(src)
        tree = r.value(0)
        if r.pos != src.size:
            raise MalformedFileError(
                f"{src.size - r.pos:,} bytes after the msgpack tree ends", path=src.name, rule="msgpack-length"
            )
        if not isinstance(tree, dict):
            raise MalformedFileError(
                "msgpack does not hold a map: not a Flax checkpoint", path=src.name, rule="msgpack"
            )
        leaves: list[tuple[str, _Array]] = []
        _leaves(tree, [], leaves)
        records = []
        for name, arr in leaves:
            top = name.split(".", 1)[0]
            section = _COLLECTIONS.get(top, "model") if isinstance(tree.get(top), dict) else "model"
            records.append(
                TensorRecord(
                    name=name,
                    shape=arr.shape,
                    dtype=arr.dtype,
                    numel=arr.numel,
                    nbytes=arr.nbytes,
                    storage=f"{rel}@{arr.offset}",
                    offset=0,
                    file=rel,
                    section=section,
                    kind="buffer" if section == "buffers" else "param",
                )
            )
        return FileScan(
            format="flax-msgpack",
            records=records,
            storage_bytes=sum(r.nbytes for r in records),
            details={"collections": ", ".join(str(k) for k in list(tree)[:6])} if tree else {},
        )
