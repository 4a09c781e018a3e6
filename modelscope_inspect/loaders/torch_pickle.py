"""Turning a walked torch pickle (see `pickle_walk`) into tensor descriptions, without running anything.

torch.save pickles each tensor as `torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)`
where `storage` is a persistent id `('storage', <storage class>, key, location, numel)`; newer dtypes use
`_rebuild_tensor_v3(..., dtype)` with `torch.storage.UntypedStorage` whose numel counts bytes.
Parameters wrap a tensor in `_rebuild_parameter(tensor, requires_grad, hooks)`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..dtypes import TORCH_STORAGE_DTYPES, lookup
from ..errors import MalformedFileError, UnsafePickleError
from ..pickle_walk import Call, Global, PersistentId, WalkResult
from ..safety import is_safe_global

MAX_DEPTH = 500
MAX_NUMEL = 1 << 62
MAX_VISITS = 5_000_000


@dataclass(frozen=True, slots=True)
class StorageRef:
    """A storage a tensor points into. `numel` counts elements of `dtype` (bytes when untyped)."""

    key: str
    dtype: str
    numel: int
    untyped: bool
    location: str


@dataclass(frozen=True, slots=True)
class TensorSpec:
    """A tensor found in the pickle; `offset` is in elements of `dtype`."""

    name: str
    storage: StorageRef
    dtype: str
    offset: int
    shape: tuple[int, ...]
    stride: tuple[int, ...]
    is_param: bool


def refuse_unsafe(result: WalkResult, where: str) -> None:
    """Raise `UnsafePickleError` naming the globals outside the allowlist (never imported)."""
    bad: list[str] = []
    for ev in result.events:
        if ev.kind == "global" and not is_safe_global(ev.target) and ev.target not in bad:
            bad.append(ev.target)
    if bad:
        shown = ", ".join(bad[:4]) + (f" and {len(bad) - 4} more" if len(bad) > 4 else "")
        raise UnsafePickleError(
            f"pickle references {shown}, which would import and run code on load; refused without "
            "executing anything (run `mi scan` on it for details)",
            path=where,
            rule="pickle-global",
        )
    if result.error:
        raise MalformedFileError(result.error, path=where, rule="pickle-structure")


def _qual(obj: Any) -> str | None:
    return obj.qualname if isinstance(obj, Global) else None


def _ints(value: Any, what: str, where: str) -> tuple[int, ...]:
    if isinstance(value, Call) and _qual(value.func) == "torch.Size" and isinstance(value.args, tuple):
        value = value.args[0] if value.args else ()
    if not isinstance(value, tuple | list) or not all(type(v) is int for v in value):
        raise MalformedFileError(f"tensor {what} is not a tuple of integers", path=where, rule="pickle-tensor")
    return tuple(value)


def _storage(pid: Any, where: str, dtype_override: str | None) -> StorageRef:
    if not isinstance(pid, PersistentId):
        raise MalformedFileError("tensor storage is not a persistent id", path=where, rule="pickle-tensor")
    t = pid.pid
    if not (isinstance(t, tuple) and len(t) == 5 and t[0] == "storage"):
        raise MalformedFileError(f"unexpected persistent id {type(t).__name__}", path=where, rule="pickle-tensor")
    _, cls, key, location, numel = t
    name = _qual(cls)
    if not isinstance(key, str) or type(numel) is not int or numel < 0 or not isinstance(location, str):
        raise MalformedFileError("malformed storage persistent id", path=where, rule="pickle-tensor")
    if name is not None and name.startswith("torch.") and name[6:] in TORCH_STORAGE_DTYPES:
        dtype = TORCH_STORAGE_DTYPES[name[6:]]
        return StorageRef(key, dtype_override or dtype, numel, False, location)
    if name in ("torch.storage.UntypedStorage", "torch.UntypedStorage"):
        return StorageRef(key, dtype_override or "u8", numel, True, location)
    raise MalformedFileError(f"unknown storage class {name}", path=where, rule="pickle-tensor")


def _tensor(call: Call, name: str, where: str, is_param: bool) -> TensorSpec:
    fn = _qual(call.func)
    args = call.args
    if not isinstance(args, tuple):
        raise MalformedFileError(f"{fn} arguments are not a tuple", path=where, rule="pickle-tensor")
    if fn in ("torch._utils._rebuild_parameter", "torch._utils._rebuild_parameter_with_state"):
        if not args or not isinstance(args[0], Call):
            raise MalformedFileError("parameter without a tensor", path=where, rule="pickle-tensor")
        return _tensor(args[0], name, where, True)
    if fn == "torch._tensor._rebuild_from_type_v2":
        if len(args) < 3 or not isinstance(args[2], tuple):
            raise MalformedFileError("_rebuild_from_type_v2 with bad arguments", path=where, rule="pickle-tensor")
        inner = Call(args[0], args[2], call.offset, call.opcode)
        param = _qual(args[1]) in ("torch.nn.parameter.Parameter", "torch.nn.Parameter")
        return _tensor(inner, name, where, is_param or param)
    if fn in ("torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_tensor", "torch._utils._rebuild_tensor_v3"):
        if len(args) < 4:
            raise MalformedFileError(f"{fn} with {len(args)} arguments", path=where, rule="pickle-tensor")
        dtype_override = None
        if fn == "torch._utils._rebuild_tensor_v3":
            dq = _qual(args[6]) if len(args) > 6 else None
            if dq is None or not dq.startswith("torch."):
                raise MalformedFileError("_rebuild_tensor_v3 without a dtype", path=where, rule="pickle-tensor")
            dtype_override = lookup(dq).name
        storage = _storage(args[0], where, dtype_override)
        offset = args[1]
        if type(offset) is not int or offset < 0:
            raise MalformedFileError(f"tensor {name!r} has a bad storage offset", path=where, rule="pickle-tensor")
        shape = _ints(args[2], "size", where)
        stride = _ints(args[3], "stride", where)
        if len(shape) != len(stride) or any(d < 0 for d in shape) or any(s < 0 for s in stride):
            raise MalformedFileError(f"tensor {name!r} has bad size/stride", path=where, rule="pickle-tensor")
        return TensorSpec(name, storage, storage.dtype, offset, shape, stride, is_param)
    raise MalformedFileError(f"cannot rebuild a tensor with {fn}", path=where, rule="pickle-tensor")


TENSOR_FUNCS = frozenset(
    {
        "torch._utils._rebuild_tensor",
        "torch._utils._rebuild_tensor_v2",
        "torch._utils._rebuild_tensor_v3",
        "torch._utils._rebuild_parameter",
        "torch._utils._rebuild_parameter_with_state",
        "torch._tensor._rebuild_from_type_v2",
    }
)


def _key(k: Any) -> str:
    if isinstance(k, str):
        return k
    if isinstance(k, int | float | bool) or k is None:
        return str(k)
    return f"<{type(k).__name__}>"


def find_tensors(value: Any, where: str) -> list[TensorSpec]:
    """Every tensor reachable from the pickle's value, named by its dotted path of dict keys/list indexes.

    Iterative (no Python recursion), so deeply nested pickles fail with a clear limit error.
    """
    out: list[TensorSpec] = []
    visits = 0
    todo: list[tuple[str, Any, int]] = [("", value, 0)]
    while todo:
        prefix, obj, depth = todo.pop()
        visits += 1
        if depth > MAX_DEPTH:
            raise MalformedFileError(f"objects nested more than {MAX_DEPTH} deep", path=where, rule="pickle-depth")
        if visits > MAX_VISITS:
            # Shared sub-objects can make a small pickle describe an exponentially large tree.
            raise MalformedFileError(f"more than {MAX_VISITS:,} objects to visit", path=where, rule="pickle-limit")
        children: list[tuple[str, Any]] = []
        if isinstance(obj, dict):
            children = [(_key(k), v) for k, v in obj.items()]
        elif isinstance(obj, list | tuple):
            children = [(str(i), v) for i, v in enumerate(obj)]
        elif isinstance(obj, Call):
            fn = _qual(obj.func)
            if fn in TENSOR_FUNCS:
                out.append(_tensor(obj, prefix, where, False))
                continue
            children = [(_key(k), v) for k, v in obj.dict_items]
            children += [(str(i), v) for i, v in enumerate(obj.list_items)]
        else:
            continue
        for k, v in reversed(children):
            todo.append((f"{prefix}.{k}" if prefix else k, v, depth + 1))
    return out


def check_numel(shape: tuple[int, ...], where: str, name: str) -> int:
    """Product of `shape`, refusing overflow (a lying header could claim 2**64 elements)."""
    n = 1
    for d in shape:
        n *= d
        if n > MAX_NUMEL:
            raise MalformedFileError(f"tensor {name!r} shape {shape} overflows", path=where, rule="shape-overflow")
    return n
