"""PaddlePaddle `.pdparams` / `.pdopt`: what `paddle.save` writes for a state dict, walked, never unpickled.

`paddle.save(state_dict, path)` turns every tensor into a numpy array and pickles the dict (protocol 4 by
default; 2 and 3 split arrays over 4 GiB), with an extra `StructuredToParameterName@@` entry mapping each
structured name (`linear.weight`) to Paddle's parameter name (`linear_0.w_0`). A numpy array pickles as
`numpy.core.multiarray._reconstruct(ndarray, (0,), b'b')` then `BUILD (1, shape, dtype, fortran, raw bytes)`,
its dtype as `numpy.dtype('f4', False, True)`: the walk (`pickle_walk`, which imports and calls nothing) gives
the shape, the dtype string and the raw bytes' length, which must match.

The pickle is the whole file (its tensor bytes are inside it), so the file is read once, up to `MAX_FILE`. Any
global beyond numpy's array and dtype rebuilders and `OrderedDict` is refused: such a file is not a plain state
dict, and `mi scan` says what it would import.

`.pdiparams` (`paddle.jit.save` / `save_inference_model`) is Paddle's own binary: one serialized LoDTensor per
persistable variable, in the sorted order of their names (paddle/fluid/framework/lod_tensor.cc, tensor_util.cc):
uint32 version, uint64 LoD level count and each level's byte length + bytes, uint32 tensor version, int32
`TensorDesc` length, the `TensorDesc` protobuf (data type, dims), then the raw data, which is skipped. The names
are in the program beside it: a PIR `model.json` (Paddle 3) is read for its parameter ops' names and shapes, and
used when they match tensor for tensor; otherwise the tensors are numbered. The `.pdmodel` protobuf program is not
read.
"""

from __future__ import annotations

import json
import posixpath
from pathlib import Path
from typing import Any

from ..dtypes import lookup
from ..errors import LimitExceededError, MalformedFileError, UnsafePickleError, UnsupportedFormatError
from ..inventory import TensorRecord
from .base import FileScan
from .pickle_walk import Blob, Call, Global, walk
from .source import ByteSource

MAX_FILE = 4 << 30
NAME_TABLE = "StructuredToParameterName@@"
RECONSTRUCT = frozenset({"numpy.core.multiarray._reconstruct", "numpy._core.multiarray._reconstruct"})
# `_codecs.encode(text, "latin1")` is how protocol 2 spells bytes (numpy's raw data): it only makes bytes.
ALLOWED = RECONSTRUCT | {"numpy.ndarray", "numpy.dtype", "collections.OrderedDict", "_codecs.encode"}
# numpy dtype strings (kind + item size) → canonical name. Paddle saves bfloat16 as uint16 arrays.
_NUMPY = {
    "f2": "f16", "f4": "f32", "f8": "f64", "i1": "i8", "i2": "i16", "i4": "i32", "i8": "i64",
    "u1": "u8", "u2": "u16", "u4": "u32", "u8": "u64", "b1": "bool", "c8": "c64", "c16": "c128",
}  # fmt: skip


# framework.proto VarType.Type → canonical name (the element types a LoDTensor holds).
PADDLE_TYPES = {0: "bool", 1: "i16", 2: "i32", 3: "i64", 4: "f16", 5: "f32", 6: "f64", 20: "u8", 21: "i8", 22: "bf16",
                23: "c64", 24: "c128", 32: "f8_e4m3fn", 33: "f8_e5m2"}  # fmt: skip
MAX_TENSORS = 10_000_000
MAX_PROGRAM = 64 << 20
MAX_NUMEL = 1 << 62


def _varint(data: bytes, pos: int, where: str) -> tuple[int, int]:
    out = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise MalformedFileError("TensorDesc varint runs past its end", path=where, rule="pdiparams")
        b = data[pos]
        pos += 1
        out |= (b & 0x7F) << shift
        if b < 0x80:
            return out, pos
        shift += 7


def _tensor_desc(data: bytes, where: str) -> tuple[int, tuple[int, ...]]:
    """(data type, dims) of a `TensorDesc { required Type data_type = 1; repeated int64 dims = 2; }`."""
    dtype, dims, pos = -1, [], 0
    while pos < len(data):
        tag, pos = _varint(data, pos, where)
        if tag == 0x08:
            dtype, pos = _varint(data, pos, where)
        elif tag == 0x10:
            d, pos = _varint(data, pos, where)
            dims.append(d)
        elif tag == 0x12:  # packed dims
            n, pos = _varint(data, pos, where)
            end = pos + n
            while pos < end:
                d, pos = _varint(data, pos, where)
                dims.append(d)
        else:
            raise MalformedFileError(
                f"TensorDesc field tag {tag} is not one Paddle writes", path=where, rule="pdiparams"
            )
    if any(d >= 1 << 63 for d in dims):
        raise MalformedFileError("a tensor has a negative dimension", path=where, rule="pdiparams")
    return dtype, tuple(dims)


def read_pdiparams(src: ByteSource) -> list[tuple[tuple[int, ...], str, int, int]]:
    """(shape, dtype, nbytes, data offset) of every tensor of a `.pdiparams`, data skipped."""
    where = src.name
    out: list[tuple[tuple[int, ...], str, int, int]] = []
    pos = 0
    while pos < src.size:
        if len(out) >= MAX_TENSORS:
            raise LimitExceededError(f"more than {MAX_TENSORS:,} tensors", path=where, rule="pdiparams")
        head = src.read_exact(pos, 12, "LoDTensor header")
        version = int.from_bytes(head[:4], "little")
        levels = int.from_bytes(head[4:12], "little")
        if version != 0 or levels > 64:
            raise MalformedFileError(f"tensor {len(out)} at byte {pos:,} has version {version} and {levels:,} LoD "
                                     "levels: not a Paddle .pdiparams", path=where, rule="pdiparams")  # fmt: skip
        pos += 12
        for _ in range(levels):
            n = int.from_bytes(src.read_exact(pos, 8, "LoD level size"), "little")
            if n > src.size - pos - 8:
                raise MalformedFileError(f"a LoD level declares {n:,} bytes past the end", path=where, rule="pdiparams")
            pos += 8 + n
        head = src.read_exact(pos, 8, "tensor header")
        desc_len = int.from_bytes(head[4:8], "little", signed=True)
        if int.from_bytes(head[:4], "little") != 0 or not 0 <= desc_len <= 1 << 20:
            raise MalformedFileError(f"tensor {len(out)} has a TensorDesc of {desc_len:,} bytes", path=where,
                                     rule="pdiparams")  # fmt: skip
        code, shape = _tensor_desc(src.read_exact(pos + 8, desc_len, "TensorDesc"), where)
        pos += 8 + desc_len
        canonical = PADDLE_TYPES.get(code)
        if canonical is None:
            raise MalformedFileError(f"tensor {len(out)} has Paddle data type {code}", path=where, rule="dtype-known")
        numel = 1
        for d in shape:
            numel *= d
            if numel > MAX_NUMEL:
                raise MalformedFileError(f"tensor {len(out)} shape {list(shape)} overflows", path=where,
                                         rule="shape-overflow")  # fmt: skip
        nbytes = numel * lookup(canonical).bits // 8
        if nbytes > src.size - pos:
            raise MalformedFileError(f"tensor {len(out)} needs {nbytes:,} bytes but {src.size - pos:,} remain",
                                     path=where, rule="truncated")  # fmt: skip
        out.append((shape, canonical, nbytes, pos))
        pos += nbytes
    return out


def _program_names(src: ByteSource, rel: str) -> list[tuple[str, tuple[int, ...]]] | None:
    """The persistable parameters a PIR `model.json` beside a local `.pdiparams` declares, sorted by name."""
    p = Path(src.name)
    try:
        if not (p.is_file() and p.stat().st_size == src.size):
            return None
        program = p.parent / (posixpath.splitext(posixpath.basename(rel))[0] + ".json")
        if not program.is_file() or program.stat().st_size > MAX_PROGRAM:
            return None
        doc = json.loads(program.read_bytes().decode("utf-8"))
    except (OSError, ValueError, RecursionError):
        return None
    found: dict[str, tuple[int, ...]] = {}
    stack = [doc]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            attrs, out = node.get("A"), node.get("O")
            if node.get("#") == "p" and isinstance(attrs, list) and attrs and isinstance(attrs[-1], str):
                dense = out.get("TT", {}).get("D") if isinstance(out, dict) else None
                dims = dense[1] if isinstance(dense, list) and len(dense) > 1 else None
                if isinstance(dims, list) and all(type(d) is int for d in dims):
                    found[attrs[-1]] = tuple(dims)
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return sorted(found.items())


def _global(obj: Any) -> str:
    return obj.qualname if isinstance(obj, Global) else ""


def _array(value: Any, name: str, where: str) -> tuple[tuple[int, ...], str, int] | None:
    """(shape, dtype, raw length) of a pickled numpy array, or None when `value` is not one."""
    if not isinstance(value, Call) or _global(value.func) not in RECONSTRUCT:
        return None
    state = value.state
    if not (isinstance(state, tuple) and len(state) == 5):
        raise MalformedFileError(f"array {name!r} has no (version, shape, dtype, fortran, data) state", path=where,
                                 rule="paddle-array")  # fmt: skip
    _version, shape, dtype, _fortran, raw = state
    if not isinstance(shape, tuple) or not all(type(d) is int and d >= 0 for d in shape):
        raise MalformedFileError(f"array {name!r} has shape {shape!r}", path=where, rule="paddle-array")
    code = None
    if isinstance(dtype, Call) and _global(dtype.func) == "numpy.dtype" and isinstance(dtype.args, tuple):
        code = dtype.args[0] if dtype.args and isinstance(dtype.args[0], str) else None
    canonical = _NUMPY.get(code.lstrip("<>=|")) if code else None
    if canonical is None:
        raise MalformedFileError(f"array {name!r} has dtype {code!r}, not a tensor type", path=where,
                                 rule="dtype-known")  # fmt: skip
    if isinstance(raw, Call) and _global(raw.func) == "_codecs.encode" and isinstance(raw.args, tuple):
        # Protocol 2: the bytes as a latin-1 str, one character per byte.
        text = raw.args[0] if raw.args and raw.args[1:] == ("latin1",) else None
        raw = Blob(len(text)) if isinstance(text, str) else None
    length = raw.length if isinstance(raw, Blob) else len(raw) if isinstance(raw, (bytes, bytearray)) else -1
    return tuple(shape), canonical, length


class PaddleLoader:
    """Reads `paddle.save` state dicts (`.pdparams`, `.pdopt`) through the symbolic pickle walk."""

    name: str = "paddle"
    extensions: tuple[str, ...] = (".pdparams", ".pdopt", ".pdiparams", ".pdmodel")

    def sniff(self, head: bytes, size: int) -> bool:
        return False  # a pickle like any other: chosen by extension

    def read(self, src: ByteSource, rel: str) -> FileScan:
        where = src.name
        if rel.lower().endswith(".pdmodel"):
            raise UnsupportedFormatError(
                "a Paddle program (.pdmodel) holds no weights: inspect the .pdiparams beside it", path=where
            )
        if rel.lower().endswith(".pdiparams"):
            return self._pdiparams(src, rel)
        if src.size > MAX_FILE:
            raise LimitExceededError(f"{src.size:,} bytes is beyond the {MAX_FILE:,}-byte limit", path=where,
                                     rule="paddle-size")  # fmt: skip
        data = src.read_exact(0, src.size, "pickle")
        result = walk(data, where=where, persistent=False)
        if result.error:
            raise MalformedFileError(f"pickle stops early ({result.error})", path=where, rule="pickle")
        others = sorted({ev.target for ev in result.events if ev.kind == "global" and ev.target not in ALLOWED})
        if others:
            raise UnsafePickleError(
                f"imports {others[0]}{f' and {len(others) - 1} more' if len(others) > 1 else ''}: "
                "not a plain paddle.save state dict; `mi scan` lists what it would import and call",
                path=where,
                rule="pickle-global",
            )
        top = result.value
        if isinstance(top, Call) and _global(top.func) == "collections.OrderedDict":
            items = list(top.dict_items)
        elif isinstance(top, dict):
            items = list(top.items())
        else:
            raise MalformedFileError("pickle does not hold a dict: not a Paddle state dict", path=where,
                                     rule="paddle-dict")  # fmt: skip
        records: list[TensorRecord] = []
        names: dict[str, str] = {}
        section = "optimizer" if rel.lower().endswith(".pdopt") else "model"
        for key, value in items:
            if key == NAME_TABLE and isinstance(value, dict):
                names = {str(k): str(v) for k, v in value.items() if isinstance(v, str)}
                continue
            found = _array(value, str(key), where)
            if found is None:
                continue
            shape, dtype, length = found
            numel = 1
            for d in shape:
                numel *= d
            nbytes = numel * lookup(dtype).bits // 8
            if length != nbytes:
                raise MalformedFileError(
                    f"array {key!r}: {list(shape)} of {dtype} is {nbytes:,} bytes but its data holds {length:,}",
                    path=where,
                    rule="paddle-array",
                )
            records.append(
                TensorRecord(
                    name=str(key),
                    shape=shape,
                    dtype=dtype,
                    numel=numel,
                    nbytes=nbytes,
                    storage=f"{rel}:{key}",
                    offset=0,
                    file=rel,
                    section=section,
                )
            )
        details: dict[str, Any] = {"pickle protocol": result.protocol}
        if names:
            details["parameter names"] = f"{len(names):,} (Paddle's own, e.g. {next(iter(names.values()))})"
        return FileScan(
            format="paddle",
            records=records,
            storage_bytes=sum(r.nbytes for r in records),
            details=details,
        )

    @staticmethod
    def _pdiparams(src: ByteSource, rel: str) -> FileScan:
        tensors = read_pdiparams(src)
        names = _program_names(src, rel)
        named = names is not None and [shape for _n, shape in names] == [t[0] for t in tensors]
        records = [
            TensorRecord(
                name=names[i][0] if named and names is not None else f"tensor_{i}",
                shape=shape,
                dtype=dtype,
                numel=nbytes * 8 // lookup(dtype).bits,
                nbytes=nbytes,
                storage=f"{rel}@{offset}",
                offset=0,
                file=rel,
            )
            for i, (shape, dtype, nbytes, offset) in enumerate(tensors)
        ]
        details: dict[str, Any] = {
            "tensor names": "from the program (model.json) beside it" if named else "numbered (no matching program)"
        }
        return FileScan(format="paddle-inference", records=records, storage_bytes=sum(t[2] for t in tensors),
                        details=details)  # fmt: skip
