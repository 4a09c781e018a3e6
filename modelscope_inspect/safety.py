"""Which pickle globals a plain checkpoint may reference.

Modelled on the globals torch's `weights_only=True` unpickler accepts (torch/_weights_only_unpickler.py):
tensor and parameter rebuild helpers, storage classes, dtypes, `collections.OrderedDict`, `torch.Size`.
Anything else would import and run code when loaded with `pickle`/`torch.load(weights_only=False)`; we
report it and never resolve it.
"""

from __future__ import annotations

from .dtypes import TORCH_STORAGE_DTYPES

TENSOR_REBUILDERS = frozenset(
    {
        "torch._utils._rebuild_tensor",
        "torch._utils._rebuild_tensor_v2",
        "torch._utils._rebuild_tensor_v3",
        "torch._utils._rebuild_parameter",
        "torch._utils._rebuild_parameter_with_state",
        "torch._utils._rebuild_qtensor",
        "torch._utils._rebuild_sparse_tensor",
        "torch._utils._rebuild_meta_tensor_no_storage",
        "torch._utils._rebuild_wrapper_subclass",
        "torch._tensor._rebuild_from_type_v2",
        "torch._utils._rebuild_device_tensor_from_numpy",
        "torch._utils._rebuild_nested_tensor",
    }
)

# torch dtype objects (`torch.float32` …) as pickled: attribute names of the torch module.
TORCH_DTYPE_NAMES = frozenset(
    {
        "float64", "float32", "float16", "bfloat16", "float8_e4m3fn", "float8_e4m3fnuz", "float8_e5m2",
        "float8_e5m2fnuz", "float8_e8m0fnu", "int64", "int32", "int16", "int8", "uint64", "uint32", "uint16",
        "uint8", "bool", "complex32", "complex64", "complex128", "qint8", "quint8", "qint32", "quint4x2",
        "quint2x4", "float4_e2m1fn_x2", "int4", "uint4", "double", "float", "half", "long", "int", "short",
        "cfloat", "cdouble", "per_tensor_affine", "per_channel_affine", "per_tensor_symmetric",
        "per_channel_symmetric", "per_channel_affine_float_qparams",
    }
)  # fmt: skip

SAFE_GLOBALS = frozenset(
    TENSOR_REBUILDERS
    | {f"torch.{name}" for name in TORCH_STORAGE_DTYPES}
    | {f"torch.{name}" for name in TORCH_DTYPE_NAMES}
    | {
        "collections.OrderedDict",
        "torch.Size",
        "torch.storage.UntypedStorage",
        "torch.storage.TypedStorage",
        "torch.device",
        "torch.Tensor",
        "torch._tensor.Tensor",
        "torch.nn.parameter.Parameter",
        "torch.nn.Parameter",
        "torch.serialization._get_layout",
        "torch.strided",
        "torch.sparse_coo",
        "_codecs.encode",  # protocol-2 pickles spell bytes as _codecs.encode(str, "latin1")
        "builtins.set",
        "builtins.frozenset",
        "builtins.bytearray",
        "builtins.slice",
        "builtins.complex",
        "__builtin__.set",
    }
)


def is_safe_global(qualname: str) -> bool:
    """True when `qualname` is on the allowlist of what a plain checkpoint needs."""
    return qualname in SAFE_GLOBALS
