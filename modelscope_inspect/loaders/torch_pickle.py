"""Turning a walked torch pickle (see `pickle_walk`) into tensor descriptions, without running anything.

torch.save pickles each tensor as `torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)`
where `storage` is a persistent id `('storage', <storage class>, key, location, numel)` (the legacy format
adds a sixth field, `view_metadata`); newer dtypes use `_rebuild_tensor_v3(..., dtype)` with
`torch.storage.UntypedStorage` whose numel counts bytes. Parameters wrap a tensor in
`_rebuild_parameter(tensor, requires_grad, hooks)`; quantized tensors are
`_rebuild_qtensor(storage, offset, size, stride, quantizer_params, requires_grad, hooks)` where
`quantizer_params` is `(torch.per_tensor_affine, scale, zero_point)` or
`(torch.per_channel_affine, scales_tensor, zero_points_tensor, axis)`.

Beyond a plain state_dict (issue 3):

- **Whole modules** (`torch.save(model)`): protocol 2 pickles a module as `NEWOBJ(cls, ())` (protocols 0/1:
  `copyreg._reconstructor(cls, object, None)`; the legacy format replaces `cls` by a persistent id
  `('module', cls, source_file, source)`) followed by `BUILD` with the module's `__dict__`
  (`_parameters`, `_buffers`, `_modules`, ...). Such constructions become *stubs*: the class is never
  imported, `__new__`/`__setstate__` never run, and parameter names are rebuilt exactly as `state_dict()`
  spells them. A global that would be *called* (REDUCE) and is not on the allowlist in `safety.py` is still
  refused, module pickle or not (see `vet_pickle`).
- **Training checkpoints** are split into sections (`collect`): the model weights (names stripped of the
  checkpoint key, so they match the model's state_dict), `buffers` of whole modules, `optimizer` state,
  per-channel `quantization` parameters and `other` tensors. Only the `model` section counts as parameters.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from ..dtypes import TORCH_STORAGE_DTYPES, lookup, torch_dtype
from ..errors import MalformedFileError, UnsafePickleError
from ..inventory import TensorRecord, TorchInfo
from .buffers import buffer_note, is_known_buffer
from .pickle_walk import Call, Global, PersistentId, SetLike, WalkResult
from .safety import TORCHSCRIPT_HELPERS, Severity, classify, is_readable_global, is_safe_global
from .torchscript import ScriptClass, demangle

MAX_DEPTH = 500
MAX_NUMEL = 1 << 62
MAX_VISITS = 5_000_000
MAX_MODULE_REUSE = 1_000  # a submodule registered under this many paths is a cycle, not a model


# StorageRef and TensorSpec are internal to the torch readers and built once per tensor: plain slotted
# dataclasses, because a frozen dataclass's __init__ costs one object.__setattr__ per field.
@dataclass(slots=True)
class StorageRef:
    """A storage a tensor points into. `numel` counts elements of `dtype` (bytes when untyped).

    `view_offset` is set by very old legacy files that pickled a view of a storage (elements of `dtype`).
    """

    key: str
    dtype: str
    numel: int
    untyped: bool
    location: str
    view_offset: int = 0


@dataclass(frozen=True, slots=True)
class QuantInfo:
    """How a quantized tensor maps its integers to reals (`torch.Tensor.qscheme()` and its parameters)."""

    qscheme: str
    scale: float | None = None
    zero_point: int | None = None
    axis: int | None = None
    channels: int | None = None

    def as_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"qscheme": self.qscheme}
        for k in ("scale", "zero_point", "axis", "channels"):
            v = getattr(self, k)
            if v is not None:
                d[k] = v
        return d


@dataclass(slots=True)
class TensorSpec:
    """A tensor found in the pickle; `offset` is in elements of `dtype`.

    `kind` is "param", "buffer", "tensor" (a plain tensor value), "attribute" (a tensor stored as a plain
    attribute of a module, not in its state_dict) or "qparams" (per-channel scales/zero points).
    """

    name: str
    storage: StorageRef
    dtype: str
    offset: int
    shape: tuple[int, ...]
    stride: tuple[int, ...]
    is_param: bool
    kind: str = "tensor"
    section: str = "model"
    quant: QuantInfo | None = None


# --- the allowlist policy for module pickles ----------------------------------------------------------------

_RECONSTRUCTOR = frozenset({"copyreg._reconstructor", "copy_reg._reconstructor"})
_OBJECT = frozenset({"builtins.object", "__builtin__.object"})


def _qual(obj: Any) -> str | None:
    return obj.qualname if isinstance(obj, Global) else None


def _class_ref(obj: Any) -> Global | None:
    """The class a stub construction names: a Global, or the legacy `('module', cls, file, source)` id."""
    if isinstance(obj, Global):
        return obj
    if isinstance(obj, PersistentId) and isinstance(obj.pid, tuple) and len(obj.pid) >= 2:
        kind = obj.pid[0]
        if kind in ("module", b"module") and isinstance(obj.pid[1], Global):
            return obj.pid[1]
    return None


def _stub_class(call: Call) -> Global | None:
    """The class of `call` when it only *creates* an object without running its code, else None.

    Accepted: `NEWOBJ(cls, ())` / `NEWOBJ_EX(cls, (), {})` (protocol 2+: `cls.__new__(cls)`, i.e.
    `object.__new__` for modules) and `copyreg._reconstructor(cls, object, None)` (protocols 0/1).
    """
    if call.opcode == "NEWOBJ" or call.opcode == "NEWOBJ_EX":
        if call.args != () or (call.opcode == "NEWOBJ_EX" and call.kwargs not in ({}, None)):
            return None
        cls = _class_ref(call.func)
    elif call.opcode == "REDUCE" and _qual(call.func) in _RECONSTRUCTOR:
        a = call.args
        if not (isinstance(a, tuple) and len(a) == 3 and _qual(a[1]) in _OBJECT and a[2] is None):
            return None
        cls = _class_ref(a[0])
    else:
        return None
    if cls is None or classify(cls.qualname) is Severity.dangerous:
        # Defence in depth: a "class" such as subprocess.Popen or pathlib.os.system is never a model's class.
        return None
    return cls


def _children(obj: Any) -> list[Any]:
    if isinstance(obj, dict):
        return [x for kv in obj.items() for x in kv]
    if isinstance(obj, list | tuple):
        return list(obj)
    if isinstance(obj, SetLike):
        return list(obj.items)
    if isinstance(obj, PersistentId):
        return [obj.pid]
    if isinstance(obj, Call):
        out = [obj.func, obj.args, obj.kwargs, obj.state, *obj.list_items]
        out += [x for kv in obj.dict_items for x in kv]
        return out
    return []


def vet_pickle(result: WalkResult, where: str, torchscript: bool = False) -> list[str]:
    """Refuse a pickle that would run code on load; return the classes it only *names* (stubs).

    Every global outside the allowlist must be accounted for: the class of a stub construction (see
    `_stub_class`) or a value stored inside a stub's state (`activation = torch.nn.functional.relu`). Any
    other use — above all a REDUCE/OBJ/INST call of it, reachable or not — raises `UnsafePickleError`.
    """
    events = result.events
    for ev in events:  # the fast path: a plain checkpoint names only allowlisted globals
        if ev.kind == "global":
            if not is_readable_global(ev.target, torchscript):
                break
        elif ev.opcode == "BUILD" and ev.target.startswith("<BUILD on"):
            break
    else:
        if result.error:
            raise MalformedFileError(result.error, path=where, rule="pickle-structure")
        return []

    ok_globals: set[int] = set()  # offsets of accepted globals
    ok_calls: set[int] = set()  # offsets of accepted stub constructions
    classes: list[str] = []
    seen: set[tuple[int, bool]] = set()
    todo: list[tuple[Any, bool]] = [(result.value, False)]
    visits = 0
    while todo:
        obj, in_stub = todo.pop()
        key = (id(obj), in_stub)
        if key in seen:
            continue
        seen.add(key)
        visits += 1
        if visits > MAX_VISITS:
            raise MalformedFileError(f"more than {MAX_VISITS:,} objects to visit", path=where, rule="pickle-limit")
        if isinstance(obj, Global):
            if in_stub and classify(obj.qualname) is not Severity.dangerous:
                ok_globals.add(obj.offset)  # a value kept in an object's state, e.g. F.relu; never called
            continue
        if isinstance(obj, Call):
            cls = _stub_class(obj)
            if cls is not None:
                ok_calls.add(obj.offset)
                ok_globals.add(cls.offset)
                if obj.opcode == "REDUCE":
                    ok_globals.add(obj.func.offset)  # copyreg._reconstructor itself
                    ok_globals.add(obj.args[1].offset)  # builtins.object
                if cls.qualname not in classes:
                    classes.append(cls.qualname)
                todo.append((obj.state, True))
                todo.extend((c, True) for c in obj.list_items)
                todo.extend((c, True) for kv in obj.dict_items for c in kv)
                continue
        todo.extend((c, in_stub) for c in _children(obj))

    refused: list[str] = []
    for ev in events:
        if ev.kind == "global":
            ok = is_readable_global(ev.target, torchscript) or ev.offset in ok_globals
        elif ev.opcode == "BUILD":
            ok = not ev.target.startswith("<BUILD on")
        elif ev.opcode == "REDUCE" and is_readable_global(ev.target, torchscript):
            ok = True
        else:
            ok = ev.offset in ok_calls
        if not ok and ev.target not in refused:
            refused.append(ev.target)
    if result.error and not any(classify(t) is Severity.dangerous for t in refused):
        # A broken pickle (truncated whole-module file) leaves its classes unaccounted for: say what is wrong
        # with the file rather than calling harmless class names unsafe. Dangerous names are still reported.
        raise MalformedFileError(result.error, path=where, rule="pickle-structure")
    if refused:
        raise _unsafe(refused, where)
    if result.error:
        raise MalformedFileError(result.error, path=where, rule="pickle-structure")
    return classes


def _unsafe(names: list[str], where: str) -> UnsafePickleError:
    """The refusal for globals outside the allowlist: the first four named, never imported."""
    shown = ", ".join(names[:4]) + (f" and {len(names) - 4} more" if len(names) > 4 else "")
    return UnsafePickleError(
        f"pickle references {shown}, which would import and run code on load; refused without "
        "executing anything (run `mi scan` on it for details)",
        path=where,
        rule="pickle-global",
    )


def refuse_unsafe(result: WalkResult, where: str) -> None:
    """Raise `UnsafePickleError` naming the globals outside the allowlist (never imported).

    Strict: no stubs at all. Readers use `vet_pickle`, which also accepts whole-module pickles.
    """
    bad: list[str] = []
    for ev in result.events:
        if ev.kind == "global" and not is_safe_global(ev.target) and ev.target not in bad:
            bad.append(ev.target)
    if bad:
        raise _unsafe(bad, where)
    if result.error:
        raise MalformedFileError(result.error, path=where, rule="pickle-structure")


# --- tensors -----------------------------------------------------------------------------------------------


def _ints(value: Any, what: str, where: str) -> tuple[int, ...]:
    if isinstance(value, Call) and _qual(value.func) == "torch.Size" and isinstance(value.args, tuple):
        value = value.args[0] if value.args else ()
    if not isinstance(value, tuple | list) or not all(type(v) is int for v in value):
        raise MalformedFileError(f"tensor {what} is not a tuple of integers", path=where, rule="pickle-tensor")
    return tuple(value)


def storage_ref(pid: Any, where: str, dtype_override: str | None) -> StorageRef:
    """The storage a persistent id `('storage', cls, key, location, numel[, view])` names."""
    if not isinstance(pid, PersistentId):
        raise MalformedFileError("tensor storage is not a persistent id", path=where, rule="pickle-tensor")
    t = pid.pid
    if isinstance(t, tuple) and t and t[0] == b"storage":  # Python 2 era legacy files pickle str as bytes
        t = tuple(x.decode("utf-8", "replace") if isinstance(x, bytes) else x for x in t)
    if not (isinstance(t, tuple) and (len(t) == 5 or len(t) == 6) and t[0] == "storage"):
        raise MalformedFileError(f"unexpected persistent id {type(t).__name__}", path=where, rule="pickle-tensor")
    cls, key, location, numel = t[1], t[2], t[3], t[4]
    name = cls.qualname if isinstance(cls, Global) else None
    if type(key) is not str or type(numel) is not int or numel < 0 or type(location) is not str:
        raise MalformedFileError("malformed storage persistent id", path=where, rule="pickle-tensor")
    view_offset = 0
    if len(t) == 6 and t[5] is not None:
        # legacy view_metadata = (view_key, offset, view_size): a view into the root storage `key`.
        view = t[5]
        if not (isinstance(view, tuple) and len(view) == 3 and type(view[1]) is int and view[1] >= 0):
            raise MalformedFileError("malformed storage view metadata", path=where, rule="pickle-tensor")
        view_offset = view[1]
    if name is not None and name.startswith("torch.") and name[6:] in TORCH_STORAGE_DTYPES:
        dtype = TORCH_STORAGE_DTYPES[name[6:]]
        return StorageRef(key, dtype_override or dtype, numel, False, location, view_offset)
    if name in ("torch.storage.UntypedStorage", "torch.UntypedStorage"):
        return StorageRef(key, dtype_override or "u8", numel, True, location, view_offset)
    raise MalformedFileError(f"unknown storage class {name}", path=where, rule="pickle-tensor")


_PER_TENSOR = ("per_tensor_affine", "per_tensor_symmetric")
_PER_CHANNEL = ("per_channel_affine", "per_channel_symmetric", "per_channel_affine_float_qparams")


def _quantizer(params: Any, name: str, where: str, out: list[TensorSpec], shape: tuple[int, ...]) -> QuantInfo:
    """Read `quantizer_params`; per-channel scales/zero points become `qparams` specs appended to `out`."""
    if not isinstance(params, tuple) or not params:
        raise MalformedFileError(
            f"quantized tensor {name!r} without quantizer parameters", path=where, rule="pickle-tensor"
        )
    scheme = _qual(params[0]) or ""
    scheme = scheme.removeprefix("torch.")
    if scheme in _PER_TENSOR:
        if len(params) != 3 or not isinstance(params[1], float | int) or type(params[2]) is not int:
            raise MalformedFileError(
                f"quantized tensor {name!r}: bad {scheme} parameters", path=where, rule="pickle-tensor"
            )
        return QuantInfo(scheme, scale=float(params[1]), zero_point=params[2])
    if scheme in _PER_CHANNEL:
        if len(params) != 4 or type(params[3]) is not int or not isinstance(params[1], Call):
            raise MalformedFileError(
                f"quantized tensor {name!r}: bad {scheme} parameters", path=where, rule="pickle-tensor"
            )
        axis = params[3]
        if not 0 <= axis < max(len(shape), 1):
            raise MalformedFileError(
                f"quantized tensor {name!r}: axis {axis} out of range", path=where, rule="pickle-tensor"
            )
        scales = _tensor(params[1], f"{name}.q_per_channel_scales", where, False, out)
        zps = (
            _tensor(params[2], f"{name}.q_per_channel_zero_points", where, False, out)
            if isinstance(params[2], Call)
            else None
        )
        channels = shape[axis] if shape else 1
        for spec in (scales, zps):
            if spec is None:
                continue
            if check_numel(spec.shape, where, spec.name) != channels:
                raise MalformedFileError(
                    f"quantized tensor {name!r} has {channels} channels on axis {axis} but {spec.name} holds "
                    f"{check_numel(spec.shape, where, spec.name)} values",
                    path=where,
                    rule="pickle-tensor",
                )
            out.append(replace(spec, kind="qparams"))
        return QuantInfo(scheme, axis=axis, channels=channels)
    raise MalformedFileError(
        f"quantized tensor {name!r}: unknown qscheme {scheme or params[0]!r}", path=where, rule="pickle-tensor"
    )


def _tensor(call: Call, name: str, where: str, is_param: bool, extra: list[TensorSpec] | None = None) -> TensorSpec:
    fn = _qual(call.func)
    args = call.args
    if not isinstance(args, tuple):
        raise MalformedFileError(f"{fn} arguments are not a tuple", path=where, rule="pickle-tensor")
    if fn in ("torch._utils._rebuild_parameter", "torch._utils._rebuild_parameter_with_state"):
        if not args or not isinstance(args[0], Call):
            raise MalformedFileError("parameter without a tensor", path=where, rule="pickle-tensor")
        return _tensor(args[0], name, where, True, extra)
    if fn == "torch._tensor._rebuild_from_type_v2":
        if len(args) < 3 or not isinstance(args[2], tuple):
            raise MalformedFileError("_rebuild_from_type_v2 with bad arguments", path=where, rule="pickle-tensor")
        inner = Call(args[0], args[2], call.offset, call.opcode)
        param = _qual(args[1]) in ("torch.nn.parameter.Parameter", "torch.nn.Parameter")
        return _tensor(inner, name, where, is_param or param, extra)
    if fn in (
        "torch._utils._rebuild_tensor_v2",
        "torch._utils._rebuild_tensor",
        "torch._utils._rebuild_tensor_v3",
        "torch._utils._rebuild_qtensor",
    ):
        if len(args) < 4:
            raise MalformedFileError(f"{fn} with {len(args)} arguments", path=where, rule="pickle-tensor")
        dtype_override = None
        if fn == "torch._utils._rebuild_tensor_v3":
            dq = _qual(args[6]) if len(args) > 6 else None
            if dq is None or not dq.startswith("torch."):
                raise MalformedFileError("_rebuild_tensor_v3 without a dtype", path=where, rule="pickle-tensor")
            found = torch_dtype(dq)
            if found is None:
                raise MalformedFileError(f"tensor {name!r} has unknown dtype {dq}", path=where, rule="dtype-known")
            dtype_override = found.name
        storage = storage_ref(args[0], where, dtype_override)
        offset = args[1]
        if type(offset) is not int or offset < 0:
            raise MalformedFileError(f"tensor {name!r} has a bad storage offset", path=where, rule="pickle-tensor")
        shape = _ints(args[2], "size", where)
        stride = _ints(args[3], "stride", where)
        if len(shape) != len(stride) or any(d < 0 for d in shape) or any(s < 0 for s in stride):
            raise MalformedFileError(f"tensor {name!r} has bad size/stride", path=where, rule="pickle-tensor")
        quant = None
        if fn == "torch._utils._rebuild_qtensor":
            if len(args) < 5:
                raise MalformedFileError(f"quantized tensor {name!r} without qparams", path=where, rule="pickle-tensor")
            sink: list[TensorSpec] = [] if extra is None else extra
            quant = _quantizer(args[4], name, where, sink, shape)
        return TensorSpec(name, storage, storage.dtype, offset, shape, stride, is_param, quant=quant)
    raise MalformedFileError(f"cannot rebuild a tensor with {fn}", path=where, rule="pickle-tensor")


TENSOR_FUNCS = frozenset(
    {
        "torch._utils._rebuild_tensor",
        "torch._utils._rebuild_tensor_v2",
        "torch._utils._rebuild_tensor_v3",
        "torch._utils._rebuild_parameter",
        "torch._utils._rebuild_parameter_with_state",
        "torch._tensor._rebuild_from_type_v2",
        "torch._utils._rebuild_qtensor",
    }
)


SPARSE = "torch._utils._rebuild_sparse_tensor"
_PARAMETER_FUNCS = ("torch._utils._rebuild_parameter", "torch._utils._rebuild_parameter_with_state")
# Tensors torch.save writes through rebuilders that hold no storage mi can measure: counted in a warning.
UNREAD_TENSORS = {
    "torch._utils._rebuild_nested_tensor": "nested",
    "torch._utils._rebuild_wrapper_subclass": "tensor subclass (DTensor, FakeTensor …)",
    "torch._utils._rebuild_meta_tensor_no_storage": "meta (no data)",
    "torch._utils._rebuild_device_tensor_from_numpy": "device tensor from numpy",
    "torch._utils._rebuild_device_tensor_from_cpu_tensor": "device tensor",
}
# `torch.Tensor.__reduce_ex__` (torch/_tensor.py): COO is (indices, values, size[, is_coalesced]); the
# compressed layouts are (compressed_indices, plain_indices, values, size), named as their accessors are.
_SPARSE_PARTS = {
    "sparse_coo": ("indices", "values"),
    "sparse_csr": ("crow_indices", "col_indices", "values"),
    "sparse_bsr": ("crow_indices", "col_indices", "values"),
    "sparse_csc": ("ccol_indices", "row_indices", "values"),
    "sparse_bsc": ("ccol_indices", "row_indices", "values"),
}


def _sparse_call(call: Call) -> tuple[Call, bool] | None:
    """The `_rebuild_sparse_tensor` call behind `call` (a parameter may wrap it) and whether it is a parameter."""
    fn = _qual(call.func)
    if fn == SPARSE:
        return call, False
    if fn in _PARAMETER_FUNCS and isinstance(call.args, tuple) and call.args:
        inner = call.args[0]
        if isinstance(inner, Call) and _qual(inner.func) == SPARSE:
            return inner, True
    return None


def _layout(value: Any) -> str | None:
    """`torch.sparse_coo` as a global, or `torch.serialization._get_layout("torch.sparse_coo")` (what torch writes)."""
    if isinstance(value, Global):
        return value.qualname.removeprefix("torch.")
    if isinstance(value, Call) and _qual(value.func) == "torch.serialization._get_layout":
        args = value.args
        if isinstance(args, tuple) and len(args) == 1 and isinstance(args[0], str):
            return args[0].removeprefix("torch.")
    return None


def _sparse(call: Call, path: str, where: str, out: Found, kind: str, is_param: bool) -> None:
    """The index and value tensors of a sparse tensor, named `path.indices`, `path.values`, …; values count as
    the tensor's elements (its stored, non-zero ones), indices are stored but are not parameters."""
    args = call.args
    layout = _layout(args[0]) if isinstance(args, tuple) and len(args) == 2 else None
    data = args[1] if isinstance(args, tuple) and len(args) == 2 else None
    parts = _SPARSE_PARTS.get(layout or "")
    if parts is None or not isinstance(data, tuple) or len(data) < len(parts) + 1:
        raise MalformedFileError(
            f"sparse tensor {path!r} with layout {layout or '?'} cannot be read", path=where, rule="pickle-tensor"
        )
    shape = _ints(data[len(parts)], "size", where)
    nnz = 0
    for suffix, part in zip(parts, data, strict=False):
        if not isinstance(part, Call) or _qual(part.func) not in TENSOR_FUNCS:
            raise MalformedFileError(
                f"sparse tensor {path!r}: {suffix} is not a tensor", path=where, rule="pickle-tensor"
            )
        spec = _tensor(part, f"{path}.{suffix}" if path else suffix, where, is_param and suffix == "values")
        spec.kind = "sparse_index" if suffix != "values" else ("param" if is_param else kind)
        out.specs.append(spec)
        if suffix == "values":
            nnz = spec.shape[0] if spec.shape else 0
    out.sparse[path] = {"layout": layout, "shape": list(shape), "nnz": nnz}


# torch.ao quantized modules that pickle a tuple (their `__getstate__`, also in TorchScript): where the weights
# are. `_ConvNd.__getstate__` (torch/ao/nn/quantized/modules/conv.py) returns (in_channels, out_channels,
# kernel_size, stride, padding, dilation, transposed, output_padding, groups, padding_mode, weight, bias, scale,
# zero_point, training); a LinearPackedParamsBase script object pickles (weight, bias).
_QUANT_CONV = re.compile(
    r"(^|\.)ao\.nn\.quantized\.(dynamic\.)?modules\.conv\.(___torch_mangle_\d+\.)?Conv(Transpose)?[123]d$"
)
_PACKED_LINEAR = re.compile(r"(^|\.)classes\.quantized\.LinearPackedParamsBase$")


def _packed_names(qualname: str, state: Any) -> list[tuple[int, str]] | None:
    """The (index, name) of the weight and bias in a quantized module's tuple state, or None."""
    if not isinstance(state, tuple):
        return None
    if _QUANT_CONV.search(qualname) and len(state) >= 12:
        return [(10, "weight"), (11, "bias")]
    if _PACKED_LINEAR.search(qualname) and len(state) == 2:
        return [(0, "weight"), (1, "bias")]
    return None


def _key(k: Any) -> str:
    if isinstance(k, str):
        return k
    if isinstance(k, int | float | bool) or k is None:
        return str(k)
    if isinstance(k, bytes):
        return k.decode("utf-8", "replace")
    return f"<{type(k).__name__}>"


def _items(obj: Any) -> list[tuple[Any, Any]] | None:
    """Key/value pairs of a dict or an `OrderedDict()` call (protocol 2 spells those as REDUCE + SETITEMS)."""
    if isinstance(obj, dict):
        return list(obj.items())
    if isinstance(obj, Call) and _qual(obj.func) == "collections.OrderedDict":
        pairs = list(obj.dict_items)
        if isinstance(obj.args, tuple) and obj.args and isinstance(obj.args[0], list | tuple):
            # OrderedDict([(k, v), ...]) spelled through its constructor argument (protocols 0/1)
            pairs = [tuple(p) for p in obj.args[0] if isinstance(p, list | tuple) and len(p) == 2] + pairs
        return pairs
    return None


def _object_state(call: Call) -> dict[str, Any] | None:
    """The `__dict__` a stub receives through BUILD: a dict, or the dict half of `(dict, slots)`."""
    st = call.state
    if isinstance(st, tuple) and len(st) == 2 and all(h is None or isinstance(h, dict) for h in st):
        merged: dict[str, Any] = {}
        for half in st:
            if isinstance(half, dict):
                merged.update({_key(k): v for k, v in half.items()})
        return merged
    if isinstance(st, dict):
        return {_key(k): v for k, v in st.items()}
    return None


_MODULE_INTERNALS = frozenset({"_parameters", "_buffers", "_modules", "_non_persistent_buffers_set"})


@dataclass(slots=True)
class Found:
    """What `find_tensors` found: tensors plus, for whole-module pickles, the module classes by path."""

    specs: list[TensorSpec] = field(default_factory=list)
    module_types: dict[str, str] = field(default_factory=dict)  # module path ("" = root) → class qualname
    module_counts: Counter[str] = field(default_factory=Counter)
    objects: Counter[str] = field(default_factory=Counter)  # other stub objects (configs, ...) by class
    non_persistent: list[str] = field(default_factory=list)
    sparse: dict[str, dict[str, Any]] = field(default_factory=dict)  # path → layout, dense shape, nnz
    unread: Counter[str] = field(default_factory=Counter)  # tensors of kinds mi cannot measure


def find_tensors(
    value: Any,
    where: str,
    prefix: str = "",
    found: Found | None = None,
    script: Mapping[str, ScriptClass] | None = None,
) -> Found:
    """Every tensor reachable from the pickle's value, named by its dotted path of dict keys/list indexes.

    Whole modules are named as `state_dict()` names them: `<module path>.<parameter/buffer name>`, with
    parameters `kind="param"`, buffers `kind="buffer"` and tensors kept as plain module attributes
    `kind="attribute"`. `script` holds the classes of a TorchScript archive (`torchscript.py`): their objects
    are modules too, with the parameters and buffers their code declares. Iterative (no Python recursion), so
    deeply nested pickles fail with a clear limit error.
    """
    out = Found() if found is None else found
    specs = out.specs
    visits = 0
    seen: set[int] = set()  # containers already expanded (memo-shared or cyclic); tensors are never skipped
    expanded: dict[int, int] = {}  # how often a shared module was named again (state_dict() names it each time)
    todo: list[tuple[str, Any, int, str]] = [(prefix, value, 0, "tensor")]
    while todo:
        path, obj, depth, kind = todo.pop()
        visits += 1
        if depth > MAX_DEPTH:
            raise MalformedFileError(f"objects nested more than {MAX_DEPTH} deep", path=where, rule="pickle-depth")
        if visits > MAX_VISITS:
            # Shared sub-objects can make a small pickle describe an exponentially large tree.
            raise MalformedFileError(f"more than {MAX_VISITS:,} objects to visit", path=where, rule="pickle-limit")
        children: list[tuple[str, Any, str]]
        if isinstance(obj, dict):
            if id(obj) in seen:
                continue
            seen.add(id(obj))
            children = [(_key(k), v, kind) for k, v in obj.items()]
        elif isinstance(obj, list | tuple):
            if not obj or id(obj) in seen:
                continue
            seen.add(id(obj))
            children = [(str(i), v, kind) for i, v in enumerate(obj)]
        elif isinstance(obj, Call):
            fn = _qual(obj.func)
            sparse = _sparse_call(obj)
            if sparse is not None:
                _sparse(sparse[0], path, where, out, kind, sparse[1])
                continue
            if fn in UNREAD_TENSORS:
                out.unread[UNREAD_TENSORS[fn]] += 1  # reported, never silently dropped
                continue
            if script is not None and fn in TORCHSCRIPT_HELPERS and isinstance(obj.args, tuple) and obj.args:
                todo.append((path, obj.args[0], depth + 1, kind))  # build_intlist(x), restore_type_tag(x, t): x
                continue
            if fn in TENSOR_FUNCS:
                n = len(specs)
                spec = _tensor(obj, path, where, False, specs)
                if kind != "tensor":
                    spec.kind = kind
                elif spec.is_param:
                    spec.kind = "param"
                if len(specs) == n:
                    specs.append(spec)
                else:
                    specs.insert(n, spec)  # before its per-channel scales, which _tensor appended
                continue
            cls = _stub_class(obj)
            state = _object_state(obj) if cls is not None else None
            compiled = script.get(cls.qualname) if script is not None and cls is not None else None
            is_module = cls is not None and state is not None and "_parameters" in state and "_modules" in state
            is_module = is_module or (compiled is not None and state is not None)
            # A module shared under two paths is named under both (as state_dict() does); anything else that
            # is reached twice (memo sharing, cycles) is expanded once.
            if id(obj) in seen:
                if not (is_module and kind != "attribute"):
                    continue
                again = expanded[id(obj)] = expanded.get(id(obj), 1) + 1
                if again > MAX_MODULE_REUSE:
                    raise MalformedFileError(
                        f"module at {path!r} is reached more than {MAX_MODULE_REUSE:,} times (a cycle in _modules?)",
                        path=where,
                        rule="pickle-module",
                    )
            seen.add(id(obj))
            if cls is not None and state is not None and compiled is not None:
                # A TorchScript module: its attributes are set by BUILD; its code says which are parameters and
                # buffers. state_dict() order is parameters, buffers, then submodules.
                registered = kind != "attribute"
                if registered:
                    out.module_types[path] = demangle(cls.qualname)
                    out.module_counts[demangle(cls.qualname)] += 1
                member = "tensor" if registered else "attribute"
                children = [
                    (k, state[k], "param" if registered else "attribute") for k in compiled.parameters if k in state
                ]
                children += [
                    (k, state[k], "buffer" if registered else "attribute") for k in compiled.buffers if k in state
                ]
                declared = {*compiled.parameters, *compiled.buffers}
                for k, v in state.items():
                    if k in declared:
                        continue
                    sub = _stub_class(v) if isinstance(v, Call) else None
                    if sub is not None and script is not None and sub.qualname in script:
                        children.append((k, v, member))  # a submodule
                    elif k == "_packed_params" and registered:
                        children.append((k, v, "param"))  # torch.ao quantized weights, as below
                    else:
                        children.append((k, v, "attribute"))  # a plain attribute: not in state_dict()
            elif cls is not None and state is not None and is_module:
                # An nn.Module: state_dict() order is parameters, persistent buffers, then each child module.
                # A module kept as a plain attribute (not registered) is not part of state_dict().
                registered = kind != "attribute"
                if registered:
                    out.module_types[path] = cls.qualname
                    out.module_counts[cls.qualname] += 1
                children = []
                for k, v in _items(state.get("_parameters")) or []:
                    children.append((_key(k), v, "param" if registered else "attribute"))
                for k, v in _items(state.get("_buffers")) or []:
                    children.append((_key(k), v, "buffer" if registered else "attribute"))
                npb = state.get("_non_persistent_buffers_set")
                if isinstance(npb, Call) and isinstance(npb.args, tuple) and npb.args:
                    names = npb.args[0]
                    if isinstance(names, list | tuple):
                        out.non_persistent += [f"{path}.{_key(n)}" if path else _key(n) for n in names]
                for k, v in _items(state.get("_modules")) or []:
                    children.append((_key(k), v, "tensor" if registered else "attribute"))
                for k, v in state.items():
                    if k not in _MODULE_INTERNALS:
                        # torch.ao quantized Linear/Conv keep their weights in `_packed_params` (what their
                        # _save_to_state_dict writes); any other tensor attribute is not in state_dict().
                        packed = k == "_packed_params" and registered
                        children.append((k, v, "param" if packed else "attribute"))
            elif cls is not None:
                packed_at = _packed_names(cls.qualname, obj.state)
                if compiled is not None and kind != "attribute":
                    out.module_types[path] = demangle(cls.qualname)  # a module with its own __getstate__
                    out.module_counts[demangle(cls.qualname)] += 1
                else:
                    out.objects[demangle(cls.qualname) if script is not None else cls.qualname] += 1
                if state is not None:
                    children = [(k, v, kind) for k, v in state.items()]
                elif packed_at is not None:
                    inner = "attribute" if kind == "attribute" else "param"
                    children = [(name, obj.state[i], inner) for i, name in packed_at]
                elif isinstance(obj.state, list | tuple):  # __getstate__ returned a tuple (ScriptObject, ...)
                    children = [(str(i), v, kind) for i, v in enumerate(obj.state)]
                else:
                    children = [("state", obj.state, kind)] if obj.state is not None else []
                children += [(_key(k), v, kind) for k, v in obj.dict_items]
                children += [(str(i), v, kind) for i, v in enumerate(obj.list_items)]
            else:
                pairs = _items(obj)
                if pairs is not None:
                    children = [(_key(k), v, kind) for k, v in pairs]
                else:
                    children = [(_key(k), v, kind) for k, v in obj.dict_items]
                    children += [(str(i), v, kind) for i, v in enumerate(obj.list_items)]
        else:
            continue
        for k, v, kd in reversed(children):
            todo.append((f"{path}.{k}" if path else k, v, depth + 1, kd))
    return out


# --- sections of training checkpoints ------------------------------------------------------------------------

# Keys whose value is the model's weights, most specific first (Lightning, the PyTorch tutorials, common repos).
MODEL_KEYS = ("state_dict", "model_state_dict", "model", "model_state", "module", "net", "network", "weights")
OPTIMIZER_KEYS = frozenset(
    {"optimizer", "optimizer_state_dict", "optimizer_states", "optimizer_state", "optim", "opt", "optimizers"}
)
# Keys that hold training state beside the weights: never taken as the model when no model key is present.
OTHER_KEYS = frozenset(
    {
        "ema", "model_ema", "ema_state_dict", "ema_model", "scaler", "grad_scaler", "lr_scheduler", "lr_schedulers",
        "scheduler", "schedulers", "callbacks", "loops", "hyper_parameters", "hparams", "args", "config",
        "rng_state", "rng_states", "epoch", "global_step", "step", "metrics", "best_metric",
    }
)  # fmt: skip
_CHECKPOINT_KEYS = OPTIMIZER_KEYS | frozenset(MODEL_KEYS)
# Sections in the order their records are emitted: earlier sections own shared storage (a tensor that is both
# a model weight and, say, part of an EMA copy is counted as a model weight).
SECTION_ORDER = ("model", "buffers", "quantization", "optimizer", "other")


@dataclass(slots=True)
class Collected:
    """Tensors of a whole pickle, sectioned, plus what `mi inspect` reports about the file's structure."""

    specs: list[TensorSpec]
    found: Found
    section_sources: dict[str, str]  # section → the checkpoint key it came from ("state_dict", "optimizer", ...)
    layout: str  # "state_dict", "module", "checkpoint", "sequence" or "object"


def _section_for_kind(kind: str, base: str) -> str:
    if base != "model":
        return base
    if kind == "buffer":
        return "buffers"
    if kind == "attribute":
        return "other"
    if kind == "qparams":
        return "quantization"
    return "model"


def collect(value: Any, where: str, script: Mapping[str, ScriptClass] | None = None) -> Collected:
    """Find every tensor and put it in a section (see module docstring); `script`: see `find_tensors`."""
    pairs = _items(value)
    if (
        pairs is not None
        and all(type(k) is str for k, _ in pairs)
        and any(k in _CHECKPOINT_KEYS and not _is_tensor(v) for k, v in pairs)
    ):
        return _collect_checkpoint(pairs, where)
    found = find_tensors(value, where, script=script)
    specs = found.specs
    layout = "state_dict" if pairs is not None else "sequence" if isinstance(value, list | tuple) else "object"
    if found.module_types.get("") is not None:
        layout = "module"
    if found.module_types or any(s.kind == "qparams" for s in specs):
        specs = [replace(s, section=_section_for_kind(s.kind, "model")) for s in specs]
    specs = _ordered(known_buffers(specs))
    sources = {"model": ""} if specs else {}
    for section in ("buffers", "quantization"):
        if any(s.section == section for s in specs):
            sources[section] = ""
    return Collected(specs, found, sources, layout)


def known_buffers(specs: list[TensorSpec]) -> list[TensorSpec]:
    """Move the buffers a plain state dict holds (BatchNorm running stats, `position_ids`, …; see `buffers.py`)
    from the model weights to the `buffers` section, and the `scale` / `zero_point` pairs of a quantized model
    (torch.ao Quantize buffers, quantized Linear/Conv attributes their `_save_to_state_dict` writes) to the
    `quantization` section. Tensors whose kind the pickle tells (module parameters and buffers, `nn.Parameter`
    values) are left alone."""
    plain = [s.section == "model" and s.kind == "tensor" and not s.is_param for s in specs]
    qpairs: set[str] = set()
    if any(lookup(s.dtype).kind == "quant" for s in specs):
        by_name = {s.name: s for s, ok in zip(specs, plain, strict=True) if ok}
        for name, s in by_name.items():
            if name.endswith("zero_point") and check_numel(s.shape, "", name) <= 1:
                scale = by_name.get(name[: -len("zero_point")] + "scale")
                int_zp = lookup(s.dtype).kind in ("int", "uint")
                if (
                    scale is not None
                    and int_zp
                    and lookup(scale.dtype).kind == "float"
                    and check_numel(scale.shape, "", name) <= 1
                ):
                    qpairs.update((name, scale.name))
    out = []
    for s, ok in zip(specs, plain, strict=True):
        if ok and s.name in qpairs:
            s = replace(s, section="quantization", kind="qparams")
        elif ok and is_known_buffer(s.name, s.dtype, s.shape):
            s = replace(s, section="buffers", kind="buffer")
        out.append(s)
    return out


def _is_tensor(v: Any) -> bool:
    return isinstance(v, Call) and _qual(v.func) in TENSOR_FUNCS


def _collect_checkpoint(pairs: list[tuple[Any, Any]], where: str) -> Collected:
    found = Found()
    keys = [k for k, _ in pairs]
    # Tensors of each top-level key, found separately so each can be named and sectioned on its own.
    per_key: dict[str, list[TensorSpec]] = {}
    for k, v in pairs:
        start = len(found.specs)
        find_tensors(v, where, prefix=k, found=found)
        per_key[k] = found.specs[start:]
    values = dict(pairs)
    model_key = next((k for k in MODEL_KEYS if per_key.get(k) and not _is_tensor(values[k])), None)
    sources: dict[str, str] = {}
    specs: list[TensorSpec] = []
    if model_key is None:
        rest = [k for k in keys if per_key[k] and k not in OPTIMIZER_KEYS and k not in OTHER_KEYS]
        if len(rest) == 1 and not _is_tensor(values[rest[0]]):
            model_key = rest[0]
    if model_key is not None and any(p == model_key or p.startswith(f"{model_key}.") for p in found.module_types):
        # A whole module under the model key: its module paths, like its tensor names, lose the key.
        cut = len(model_key) + 1
        found.module_types = {
            (p[cut:] if p.startswith(f"{model_key}.") else "" if p == model_key else p): q
            for p, q in found.module_types.items()
        }
    for k in keys:
        got = per_key[k]
        if not got:
            continue
        if k == model_key:
            cut = len(k) + 1
            moved = known_buffers(
                [replace(s, name=s.name[cut:], section=_section_for_kind(s.kind, "model")) for s in got]
            )
            specs += moved
            sources.setdefault("model", k)
            for section in ("buffers", "quantization"):
                if any(s.section == section for s in moved):
                    sources.setdefault(section, k)
        elif k in OPTIMIZER_KEYS:
            specs += [replace(s, section="optimizer") for s in got]
            sources.setdefault("optimizer", k)
        elif model_key is None and k not in OTHER_KEYS:
            # No recognisable model key and several candidates: every other tensor is a weight, names kept.
            moved = known_buffers([replace(s, section=_section_for_kind(s.kind, "model")) for s in got])
            specs += moved
            sources.setdefault("model", "")
            for section in ("buffers", "quantization"):
                if any(s.section == section for s in moved):
                    sources.setdefault(section, "")
        else:
            specs += [replace(s, section="other") for s in got]
            sources.setdefault("other", k)
    return Collected(_ordered(specs), found, sources, "checkpoint")


def _ordered(specs: list[TensorSpec]) -> list[TensorSpec]:
    rank = {s: i for i, s in enumerate(SECTION_ORDER)}
    return sorted(specs, key=lambda s: rank.get(s.section, len(rank)))


# --- records ------------------------------------------------------------------------------------------------


def check_numel(shape: tuple[int, ...], where: str, name: str) -> int:
    """Product of `shape`, refusing overflow (a lying header could claim 2**64 elements)."""
    n = 1
    for d in shape:
        n *= d
        if n > MAX_NUMEL:
            raise MalformedFileError(f"tensor {name!r} shape {shape} overflows", path=where, rule="shape-overflow")
    return n


MAX_STORAGES = 10_000_000  # persistent ids collected from a cut archive's data.pkl


def persistent_storages(value: Any, where: str) -> dict[str, int]:
    """Bytes of every storage the persistent ids of a walked data.pkl name (key → bytes), found without
    interpreting the pickle any further."""
    out: dict[str, int] = {}
    todo, seen = [value], 0
    while todo and seen < MAX_STORAGES:
        obj = todo.pop()
        seen += 1
        if isinstance(obj, PersistentId):
            try:
                ref = storage_ref(obj, where, None)
            except MalformedFileError:
                continue
            out[ref.key] = storage_nbytes(ref)
        elif isinstance(obj, dict):
            todo.extend(x for kv in obj.items() for x in kv)
        elif isinstance(obj, list | tuple):
            todo.extend(obj)
        elif isinstance(obj, Call):
            todo.extend([obj.args, obj.state, *obj.list_items])
            todo.extend(x for kv in obj.dict_items for x in kv)
    return out


def storage_item_bits(dtype: str) -> int:
    """Bits of one element of a typed storage: a whole byte at least (a QUInt4x2Storage counts bytes, each
    holding two of its tensor's elements)."""
    return max(lookup(dtype).bits, 8)


def storage_nbytes(st: StorageRef) -> int:
    """Bytes the persistent id says the storage holds."""
    return st.numel if st.untyped else st.numel * storage_item_bits(st.dtype) // 8


def spec_record(spec: TensorSpec, rel: str, where: str, storage_bytes: int, rule: str) -> TensorRecord:
    """The `TensorRecord` of one spec, after checking that it fits inside its storage of `storage_bytes`."""
    st = spec.storage
    dt = lookup(spec.dtype)
    item_bits = dt.bits
    numel = check_numel(spec.shape, where, spec.name)
    nbytes = (numel * item_bits + 7) // 8  # torch pads sub-byte quantized storages (7 × quint4x2: 4 bytes)
    first = spec.offset + st.view_offset
    offset_bytes = first * item_bits // 8
    if numel:
        last = first + sum((d - 1) * s for d, s in zip(spec.shape, spec.stride, strict=True))
        if ((last + 1) * item_bits + 7) // 8 > storage_bytes:
            raise MalformedFileError(
                f"tensor {spec.name!r} reaches past the end of storage {st.key!r}", path=where, rule=rule
            )
    return TensorRecord(
        name=spec.name,
        shape=spec.shape,
        dtype=spec.dtype,
        numel=numel,
        nbytes=nbytes,
        storage=f"{rel}:{st.key}",
        offset=offset_bytes,
        file=rel,
        stride=spec.stride,
        section=spec.section,
        kind="param" if spec.kind == "tensor" else spec.kind,
    )


def describe(col: Collected, stub_classes: list[str], **layout: Any) -> tuple[TorchInfo, dict[str, Any], list[str]]:
    """What a torch reader adds besides tensors (modules, sections, quantized tensors; `layout` holds the
    container's own facts for `TorchInfo`), the details shown to people, and warnings."""
    info: dict[str, Any] = {}
    details: dict[str, Any] = {}
    warnings: list[str] = []
    found = col.found
    if found.module_counts:
        info["module_types"] = dict(found.module_types)
        info["module_classes"] = tuple(found.module_counts)
        details["modules"] = dict(found.module_counts.most_common())
        n_buf = sum(1 for s in col.specs if s.kind == "buffer")
        if n_buf:
            details["buffers"] = f"{n_buf} tensor(s), not counted as parameters"
        if found.non_persistent:
            info["non_persistent_buffers"] = tuple(found.non_persistent)
    else:
        named = [s.name for s in col.specs if s.kind == "buffer" and s.section == "buffers"]
        if named:
            details["buffers"] = buffer_note(named)
    if found.objects:
        details["other objects"] = dict(found.objects.most_common())
    if found.sparse:
        sparse = {
            name: f"{d['layout']} {'×'.join(map(str, d['shape'])) or 'scalar'} (nnz {d['nnz']:,})"
            for name, d in list(found.sparse.items())[:32]
        }
        if len(found.sparse) > 32:
            sparse["…"] = f"{len(found.sparse) - 32} more"
        details["sparse"] = sparse
    if found.unread:
        kinds = ", ".join(f"{n} {k}" for k, n in found.unread.most_common())
        warnings.append(f"{sum(found.unread.values())} tensor(s) were not read ({kinds}): they are not counted")
    if stub_classes:
        info["stub_classes"] = tuple(stub_classes)
        shown = ", ".join(stub_classes[:3]) + (f" and {len(stub_classes) - 3} more" if len(stub_classes) > 3 else "")
        warnings.append(
            f"whole-object pickle: torch.load(weights_only=False) would import {len(stub_classes)} class(es) "
            f"({shown}) and run their code; mi only read their names"
        )
    quant = {s.name: s.quant.as_dict() for s in col.specs if s.quant is not None}
    if quant:
        info["quantization"] = quant
        schemes = Counter(q["qscheme"] for q in quant.values())
        details["quantized"] = dict(schemes.most_common())
    if col.layout == "checkpoint" or len({s.section for s in col.specs}) > 1:
        info["section_sources"] = dict(col.section_sources)
        if col.section_sources.get("model"):
            details["weights from"] = f"'{col.section_sources['model']}' (names without that prefix)"
    return TorchInfo(**info, **layout), details, warnings
