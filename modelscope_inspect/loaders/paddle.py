"""PaddlePaddle `.pdparams` / `.pdopt`: what `paddle.save` writes for a state dict, walked, never unpickled.

`paddle.save(state_dict, path)` turns every tensor into a numpy array and pickles the dict (protocol 4 by
default; 2 and 3 split arrays over 4 GiB), with an extra `StructuredToParameterName@@` entry mapping each
structured name (`linear.weight`) to Paddle's parameter name (`linear_0.w_0`). A numpy array pickles as
`numpy.core.multiarray._reconstruct(ndarray, (0,), b'b')` then `BUILD (1, shape, dtype, fortran, raw bytes)`,
its dtype as `numpy.dtype('f4', False, True)`: the walk (`pickle_walk`, which imports and calls nothing) gives
the shape, the dtype string and the raw bytes' length, which must match.

The pickle is the whole file (its tensor bytes are inside it), so the file is read once, up to `MAX_FILE`. Any
global beyond numpy's array and dtype rebuilders and `OrderedDict` is refused: such a file is not a plain state
dict, and `mi scan` says what it would import. `.pdiparams` (Paddle's own binary combined-params format, which
needs the `.pdmodel` program to name its tensors) and `.pdmodel` are not read.
"""

from __future__ import annotations

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
        if rel.lower().endswith((".pdiparams", ".pdmodel")):
            raise UnsupportedFormatError(
                "Paddle inference files (.pdmodel program, .pdiparams combined weights) are not read: "
                "their tensors are named only by the program; the training .pdparams state dict is",
                path=where,
            )
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
