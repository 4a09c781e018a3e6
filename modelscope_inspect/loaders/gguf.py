"""GGUF reader (llama.cpp / ggml): header, metadata key/values and tensor infos; tensor data is never read.

Layout (ggml docs/gguf.md, https://github.com/ggml-org/ggml/blob/master/docs/gguf.md), little-endian unless
the file is byte-swapped (then the version reads as 0x03000000 and everything is big-endian):

    magic "GGUF" · version u32 (2 or 3) · tensor_count u64 · metadata_kv_count u64
    kv × count:     key (string) · value_type u32 · value
    tensor × count: name (string) · n_dims u32 · dims u64 × n_dims (ne0 first) · ggml_type u32 · offset u64
    padding to `general.alignment` (default 32), then the data section; tensor offsets are relative to it.

    string = u64 length + UTF-8 bytes; array = item type u32 + count u64 + items.

Every count and length is checked against the bytes left in the file before anything is read or allocated
(gguf-py 0.19.0 hangs on a 49-byte file declaring 2^63 array elements; here that is one error line).
Shapes are reported as stored (ggml `ne` order, innermost first), as gguf-py and llama.cpp show them.
"""

from __future__ import annotations

import itertools
import struct
from collections import Counter
from typing import Any

from ..dtypes import GGML_BLOCKS, GGML_PLAIN, lookup
from ..errors import LimitExceededError, MalformedFileError
from ..inventory import TensorRecord
from .base import FileScan
from .identify import truncated
from .source import ByteSource

MAGIC = b"GGUF"
DEFAULT_ALIGNMENT = 32
MAX_DIMS = 4  # GGML_MAX_DIMS; llama.cpp refuses more
MAX_STRING = 16 << 20  # one metadata string (chat templates are a few KiB; 16 MiB is far beyond real)
MAX_ARRAY_NESTING = 8
MAX_NUMEL = 1 << 62
FIRST_WINDOW = 64 << 10  # most headers fit; a remote file is not asked for more than it needs
WINDOW = 1 << 20
SHOW_ITEMS = 8
# Counts a real file can have. Beyond the bytes left but below these, the file was cut short (a download that
# stopped); beyond these, the header lies.
PLAUSIBLE_KV = 1 << 16
PLAUSIBLE_TENSORS = 1 << 20
PLAUSIBLE_ITEMS = 1 << 26  # array items: a 256K-token vocabulary has 2^18

# GGUF metadata value types (gguf.md "gguf_metadata_value_type"): id → (name, struct code, size).
_SCALARS: dict[int, tuple[str, str, int]] = {
    0: ("u8", "B", 1),
    1: ("i8", "b", 1),
    2: ("u16", "H", 2),
    3: ("i16", "h", 2),
    4: ("u32", "I", 4),
    5: ("i32", "i", 4),
    6: ("f32", "f", 4),
    7: ("bool", "?", 1),
    10: ("u64", "Q", 8),
    11: ("i64", "q", 8),
    12: ("f64", "d", 8),
}
STRING, ARRAY = 8, 9

# llama_ftype (llama.h) names, for `general.file_type`.
FILE_TYPES: dict[int, str] = {
    0: "ALL_F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 7: "Q8_0", 8: "Q5_0", 9: "Q5_1", 10: "Q2_K", 11: "Q3_K_S",
    12: "Q3_K_M", 13: "Q3_K_L", 14: "Q4_K_S", 15: "Q4_K_M", 16: "Q5_K_S", 17: "Q5_K_M", 18: "Q6_K",
    19: "IQ2_XXS", 20: "IQ2_XS", 21: "Q2_K_S", 22: "IQ3_XS", 23: "IQ3_XXS", 24: "IQ1_S", 25: "IQ4_NL",
    26: "IQ3_S", 27: "IQ3_M", 28: "IQ2_S", 29: "IQ2_M", 30: "IQ4_XS", 31: "IQ1_M", 32: "BF16", 36: "TQ1_0",
    37: "TQ2_0", 38: "MXFP4_MOE", 39: "NVFP4", 40: "Q1_0",
}  # fmt: skip

# Per-architecture hyperparameters shown in `details`, as `{arch}.<suffix>` keys (llama.cpp llama-arch.cpp).
_ARCH_KEYS = (
    ("context_length", "context length"),
    ("embedding_length", "embedding"),
    ("block_count", "layers"),
    ("feed_forward_length", "feed forward"),
    ("attention.head_count", "heads"),
    ("attention.head_count_kv", "kv heads"),
    ("expert_count", "experts"),
    ("expert_used_count", "experts used"),
    ("vocab_size", "vocab size"),
)


class _Cursor:
    """Sequential reads through a window that starts at 64 KiB and doubles up to 1 MiB with each refill (a
    header of a few KiB costs one small read, a 30 MB vocabulary a few dozen), every read checked against the
    file size."""

    def __init__(self, src: ByteSource, endian: str) -> None:
        self.src = src
        self.pos = 0
        self.e = endian
        self._buf = b""
        self._base = 0
        self._window = FIRST_WINDOW

    def bad(self, msg: str, rule: str) -> MalformedFileError:
        return MalformedFileError(msg, path=self.src.name, rule=rule)

    @property
    def left(self) -> int:
        return self.src.size - self.pos

    def cut(self, n: int, what: str) -> MalformedFileError:
        """The file ends inside its header: a download cut short."""
        return self.bad(
            f"truncated: {what} needs {n:,} bytes at offset {self.pos:,}, the file has {self.src.size:,}; "
            "the download is incomplete",
            "truncated",
        )

    def take(self, n: int, what: str) -> bytes:
        if n > self.left:
            raise self.cut(n, what)
        i = self.pos - self._base
        if i < 0 or i + n > len(self._buf):
            # Windows end on 64 KiB boundaries: a remote source's first fetch (64 KiB) then covers a small
            # header exactly, instead of the 24 header bytes pushing the window into a second request.
            end = (self.pos + self._window) // FIRST_WINDOW * FIRST_WINDOW
            self._buf = self.src.read_exact(self.pos, max(n, min(end, self.src.size) - self.pos), what)
            self._base, i = self.pos, 0
            self._window = min(self._window * 2, WINDOW)
        self.pos += n
        return self._buf[i : i + n]

    def skip(self, n: int, what: str) -> None:
        if n > self.left:
            raise self.cut(n, what)
        self.pos += n

    def u32(self, what: str) -> int:
        return int(struct.unpack(self.e + "I", self.take(4, what))[0])

    def u64(self, what: str) -> int:
        return int(struct.unpack(self.e + "Q", self.take(8, what))[0])

    def string(self, what: str, cap: int = MAX_STRING, keep: bool = True) -> str:
        n = self.u64(f"{what} length")
        if n > self.left:
            if n <= MAX_STRING:  # a plausible length: the file was cut inside the string
                raise self.cut(n, what)
            raise self.bad(f"{what} declares {n:,} bytes but only {self.left:,} are left in the file", "gguf-length")
        if not keep:
            self.skip(n, what)
            return ""
        if n > cap:
            raise LimitExceededError(f"{what} is {n:,} bytes (limit {cap:,})", path=self.src.name, rule="gguf-limit")
        return self.take(n, what).decode("utf-8", "replace")


def _short(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[:limit] + f"… ({len(text):,} chars)"


class GgufLoader:
    """Reads `.gguf` headers: metadata and tensor infos, with GGML block quantizations sized exactly."""

    name: str = "gguf"
    extensions: tuple[str, ...] = (".gguf",)

    def sniff(self, head: bytes, size: int) -> bool:
        return head[:4] == MAGIC

    def read(self, src: ByteSource, rel: str) -> FileScan:
        where = src.name

        def bad(msg: str, rule: str) -> MalformedFileError:
            return MalformedFileError(msg, path=where, rule=rule)

        if src.size < 24:
            if src.read_at(0, 4) == MAGIC:  # a GGUF file that stops inside its fixed header: cut short
                raise truncated(where, 24, src.size, "the GGUF header", at_least=True)
            raise bad(f"file is {src.size} bytes, too short for the 24-byte GGUF header", "gguf-header")
        head = src.read_exact(0, 24, "GGUF header")
        if head[:4] != MAGIC:
            raise bad(f"magic is {head[:4]!r}, not b'GGUF'", "gguf-header")
        endian = "<"
        (version,) = struct.unpack("<I", head[4:8])
        if version & 0xFFFF == 0 and struct.unpack(">I", head[4:8])[0] in (1, 2, 3):
            endian = ">"
            (version,) = struct.unpack(">I", head[4:8])
        if version == 1:
            raise bad("GGUF version 1 (32-bit lengths, dropped by llama.cpp in 2023) is not supported", "gguf-version")
        if version not in (2, 3):
            raise bad(f"GGUF version {version} is not 2 or 3", "gguf-version")
        cur = _Cursor(src, endian)
        cur.pos = 8
        n_tensors = cur.u64("tensor count")
        n_kv = cur.u64("metadata count")
        # Smallest possible entries: a kv is an empty key (8) + type (4) + a 1-byte value; a tensor info is an
        # empty name (8) + n_dims (4) + type (4) + offset (8). Counts beyond what the file can hold are lies.
        fits = n_kv <= cur.left // 13 and n_tensors <= cur.left // 24
        if not fits and n_kv <= PLAUSIBLE_KV and n_tensors <= PLAUSIBLE_TENSORS:  # real counts, a header cut short
            raise truncated(where, 24 + 13 * n_kv + 24 * n_tensors, src.size, at_least=True)
        if n_kv > cur.left // 13:
            raise bad(f"header declares {n_kv:,} metadata entries, more than the file can hold", "gguf-count")
        if n_tensors > cur.left // 24:
            raise bad(f"header declares {n_tensors:,} tensors, more than the file can hold", "gguf-count")

        metadata: dict[str, str] = {}
        values: dict[str, Any] = {}
        array_lengths: dict[str, int] = {}
        for i in range(n_kv):
            key = cur.string(f"metadata key #{i}", cap=1 << 16)
            if key in metadata:
                raise bad(f"metadata key {key!r} appears twice", "gguf-duplicate")
            vtype = cur.u32(f"type of {key!r}")
            value, shown, length = self._value(cur, vtype, key, 0)
            metadata[key] = shown
            if length is not None:
                array_lengths[key] = length
            elif value is not None:
                values[key] = value

        alignment = DEFAULT_ALIGNMENT
        if "general.alignment" in metadata:
            a = values.get("general.alignment")
            if not isinstance(a, int) or isinstance(a, bool) or a <= 0 or a & (a - 1):
                raise bad(f"general.alignment {metadata['general.alignment']} is not a power of two", "gguf-alignment")
            alignment = a

        infos: list[tuple[str, tuple[int, ...], int, int]] = []
        names: set[str] = set()
        for i in range(n_tensors):
            name = cur.string(f"tensor #{i} name", cap=1 << 16)
            if name in names:
                raise bad(f"tensor {name!r} appears twice", "gguf-duplicate")
            names.add(name)
            n_dims = cur.u32(f"tensor {name!r} n_dims")
            if n_dims > MAX_DIMS:
                raise bad(f"tensor {name!r} has {n_dims} dimensions (GGML_MAX_DIMS is {MAX_DIMS})", "gguf-dims")
            dims = tuple(cur.u64(f"tensor {name!r} dims") for _ in range(n_dims))
            ggml_type = cur.u32(f"tensor {name!r} type")
            offset = cur.u64(f"tensor {name!r} offset")
            infos.append((name, dims, ggml_type, offset))

        data_start = cur.pos + (-cur.pos) % alignment
        data_size = max(src.size - data_start, 0)
        cut_at = 0  # the furthest byte a tensor needs, when past the end of the file

        records: list[TensorRecord] = []
        spans: list[tuple[int, int, str]] = []
        for name, dims, ggml_type, offset in infos:
            numel = 1
            for d in dims:
                numel *= d
                if numel > MAX_NUMEL:
                    raise bad(f"tensor {name!r} shape {list(dims)} overflows", "shape-overflow")
            block = GGML_BLOCKS.get(ggml_type)
            if block is not None:
                if not dims or dims[0] % block.block_size:  # ggml quantizes along ne0, whole blocks only
                    raise bad(
                        f"tensor {name!r}: first dimension {dims[0] if dims else '(none)'} is not a multiple of the "
                        f"{block.name.upper()} block size {block.block_size}",
                        "gguf-block",
                    )
                dtype = block.name
                nbytes = numel // block.block_size * block.type_size
            elif ggml_type in GGML_PLAIN:
                dtype = GGML_PLAIN[ggml_type]
                nbytes = numel * lookup(dtype).bits // 8
            else:
                raise bad(f"tensor {name!r} has unknown ggml type {ggml_type}", "dtype-known")
            if offset % alignment:
                raise bad(
                    f"tensor {name!r} offset {offset:,} is not a multiple of the alignment {alignment}", "gguf-offsets"
                )
            if data_start + offset + nbytes > src.size:
                cut_at = max(cut_at, data_start + offset + nbytes)
                continue
            spans.append((offset, offset + nbytes, name))
            records.append(
                TensorRecord(
                    name=name,
                    shape=dims,
                    dtype=dtype,
                    numel=numel,
                    nbytes=nbytes,
                    storage=f"{rel}@{data_start + offset}",
                    offset=0,
                    file=rel,
                )
            )
        if cut_at:
            # The tensor infos are whole and in bounds of their own rules; the data stops early: a cut download.
            raise truncated(where, cut_at, src.size)
        spans.sort()
        for (_a0, a1, name_a), (b0, _b1, name_b) in itertools.pairwise(spans):
            if b0 < a1:
                raise bad(f"tensors {name_a!r} and {name_b!r} overlap in the data section", "gguf-offsets")

        details = self._details(version, endian, values, array_lengths, alignment, data_start, records)
        warnings: list[str] = []
        used = sum(r.nbytes for r in records)
        if spans and data_size - spans[-1][1] > alignment:
            warnings.append(f"{data_size - spans[-1][1]:,} bytes after the last tensor are not described")
        return FileScan(
            format="gguf",
            records=records,
            storage_bytes=used,
            metadata=metadata,
            warnings=warnings,
            details=details,
        )

    def _value(self, cur: _Cursor, vtype: int, key: str, depth: int) -> tuple[Any, str, int | None]:
        """Read one metadata value: (python value for scalars/strings, display text, array length or None)."""
        if vtype in _SCALARS:
            tname, code, size = _SCALARS[vtype]
            (v,) = struct.unpack(cur.e + code, cur.take(size, f"value of {key!r}"))
            return v, str(v), None
        if vtype == STRING:
            s = cur.string(f"value of {key!r}")
            return s, _short(s), None
        if vtype != ARRAY:
            raise cur.bad(f"metadata {key!r} has unknown value type {vtype}", "gguf-type")
        if depth >= MAX_ARRAY_NESTING:
            raise LimitExceededError(
                f"metadata {key!r} nests arrays deeper than {MAX_ARRAY_NESTING}", path=cur.src.name, rule="gguf-limit"
            )
        itype = cur.u32(f"array type of {key!r}")
        count = cur.u64(f"array length of {key!r}")
        if itype in _SCALARS:
            tname, code, size = _SCALARS[itype]
            if count > cur.left // size:
                if count <= PLAUSIBLE_ITEMS:
                    raise cur.cut(count * size, f"array {key!r}")
                raise cur.bad(
                    f"array {key!r} declares {count:,} × {size} bytes but only {cur.left:,} are left", "gguf-length"
                )
            shown_n = min(count, SHOW_ITEMS)
            items = list(struct.unpack(cur.e + code * shown_n, cur.take(size * shown_n, f"array {key!r}")))
            cur.skip(size * (count - shown_n), f"array {key!r}")
            label = tname
        elif itype == STRING:
            if count > cur.left // 8:
                if count <= PLAUSIBLE_ITEMS:
                    raise cur.cut(count * 8, f"array {key!r}")
                raise cur.bad(f"array {key!r} declares {count:,} strings, more than the file can hold", "gguf-length")
            items = []
            for j in range(count):
                keep = j < SHOW_ITEMS
                s = cur.string(f"item {j} of {key!r}", keep=keep)
                if keep:
                    items.append(_short(s, 40))
            label = "str"
        elif itype == ARRAY:
            if count > cur.left // 12:
                raise cur.bad(f"array {key!r} declares {count:,} arrays, more than the file can hold", "gguf-length")
            items = []
            for _ in range(count):
                _v, shown, _n = self._value(cur, ARRAY, key, depth + 1)
                if len(items) < SHOW_ITEMS:
                    items.append(shown)
            label = "array"
        else:
            raise cur.bad(f"array {key!r} has unknown item type {itype}", "gguf-type")
        more = ", …" if count > len(items) else ""
        return None, f"[{count:,} × {label}: {', '.join(map(str, items))}{more}]", count

    @staticmethod
    def _details(
        version: int,
        endian: str,
        values: dict[str, Any],
        arrays: dict[str, int],
        alignment: int,
        data_start: int,
        records: list[TensorRecord],
    ) -> dict[str, Any]:
        d: dict[str, Any] = {"gguf version": version if endian == "<" else f"{version} (big-endian)"}
        arch = values.get("general.architecture")
        if isinstance(arch, str):
            d["architecture"] = arch
        for key, label in (("general.name", "name"), ("general.size_label", "size label")):
            if isinstance(values.get(key), str):
                d[label] = _short(values[key], 80)
        ft = values.get("general.file_type")
        if isinstance(ft, int):
            d["file type"] = f"{FILE_TYPES.get(ft, 'unknown')} ({ft})"
        if isinstance(arch, str):
            for suffix, label in _ARCH_KEYS:
                v = values.get(f"{arch}.{suffix}")
                if isinstance(v, int | float) and not isinstance(v, bool):
                    d[label] = v
                elif f"{arch}.{suffix}" in arrays:  # per-layer values (e.g. head_count_kv of hybrid models)
                    d[label] = f"per layer ({arrays[f'{arch}.{suffix}']} values)"
        if "tokenizer.ggml.tokens" in arrays and "vocab size" not in d:
            d["vocab size"] = arrays["tokenizer.ggml.tokens"]
        if isinstance(values.get("tokenizer.ggml.model"), str):
            d["tokenizer"] = values["tokenizer.ggml.model"]
        d["alignment"] = alignment
        d["data offset"] = data_start
        d.update(type_summary(records))
        return d


def type_summary(records: list[TensorRecord]) -> dict[str, Any]:
    """`tensor types` (count per GGML type, most common first) and `bits per weight` over `records`."""
    types = Counter(r.dtype for r in records)
    out: dict[str, Any] = {"tensor types": dict(sorted(types.items(), key=lambda kv: (-kv[1], kv[0])))}
    numel = sum(r.numel for r in records)
    if numel:
        out["bits per weight"] = round(sum(r.nbytes for r in records) * 8 / numel, 4)
    return out
