"""Which pickle globals a plain checkpoint may reference, and how bad the others are.

The allowlist is modelled on the globals torch's `weights_only=True` unpickler accepts
(`torch/_weights_only_unpickler.py`, `_get_allowed_globals()` in torch 2.13): tensor and parameter rebuild
helpers, storage and legacy tensor classes, dtypes and quantization schemes, `collections.OrderedDict` /
`Counter`, `torch.Size`, `torch.device`, and the few builtins protocol-2 pickles use for bytes, sets and
complex numbers. Anything else would import and run code when loaded with `pickle` or
`torch.load(weights_only=False)`: it is reported and never resolved.

`classify()` grades a global that is not allowlisted: `dangerous` when it is (or reaches into) a known
code-execution or I/O callable, `unknown` otherwise (e.g. `__main__.Net` in a whole-model pickle: it runs
that class's code on load, which may be harmless, but nothing in the file proves it). A denylist alone has
always been bypassed (docs/SECURITY.md), so `unknown` fails a scan too; severity only orders the report.
"""

from __future__ import annotations

from enum import StrEnum

from ..dtypes import TORCH_STORAGE_DTYPES

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
        "torch._utils._rebuild_device_tensor_from_cpu_tensor",
        "torch._utils._rebuild_nested_tensor",
    }
)

# torch dtype objects (`torch.float32` …) as pickled: attribute names of the torch module.
TORCH_DTYPE_NAMES = frozenset(
    {
        "float64", "float32", "float16", "bfloat16", "float8_e4m3fn", "float8_e4m3fnuz", "float8_e5m2",
        "float8_e5m2fnuz", "float8_e8m0fnu", "int64", "int32", "int16", "int8", "uint64", "uint32", "uint16",
        "uint8", "bool", "complex32", "complex64", "complex128", "qint8", "quint8", "qint32", "quint4x2",
        "quint2x4", "float4_e2m1fn_x2", "int1", "int2", "int3", "int4", "int5", "int6", "int7", "uint1",
        "uint2", "uint3", "uint4", "uint5", "uint6", "uint7", "bits1x8", "bits2x4", "bits4x2", "bits8", "bits16",
        "double", "float", "half", "long", "int", "short", "cfloat", "cdouble", "per_tensor_affine",
        "per_channel_affine", "per_tensor_symmetric", "per_channel_symmetric", "per_channel_affine_float_qparams",
    }
)  # fmt: skip

# Legacy tensor classes (`torch.FloatTensor`, `torch.cuda.FloatTensor`, `torch.sparse.FloatTensor`).
_TENSOR_TYPES = ("BFloat16", "Bool", "Byte", "Char", "Double", "Float", "Half", "Int", "Long", "Short")
LEGACY_TENSOR_CLASSES = frozenset(
    {f"torch.{t}Tensor" for t in _TENSOR_TYPES}
    | {f"torch.cuda.{t}Tensor" for t in _TENSOR_TYPES}
    | {f"torch.sparse.{t}Tensor" for t in _TENSOR_TYPES if t != "Bool"}
    | {f"torch.cuda.sparse.{t}Tensor" for t in _TENSOR_TYPES if t != "Bool"}
)

SAFE_GLOBALS = frozenset(
    TENSOR_REBUILDERS
    | LEGACY_TENSOR_CLASSES
    | {f"torch.{name}" for name in TORCH_STORAGE_DTYPES}
    | {f"torch.cuda.{name}" for name in TORCH_STORAGE_DTYPES if not name.startswith("Q")}
    | {f"torch.{name}" for name in TORCH_DTYPE_NAMES}
    | {
        "collections.OrderedDict",
        "collections.Counter",
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
        "builtins.bytearray",
        "builtins.complex",
    }
)

# TorchScript archives (`torch.jit.save`) tag their lists and dicts with these (torch/jit/_pickle.py), each of
# which returns its argument (or looks a tensor up by id); torch's own TorchScript unpickler
# (torch/csrc/jit/serialization/unpickler.cpp, `readGlobal`) accepts exactly this module's helpers. They are
# allowed inside a TorchScript archive only (`is_readable_global`, and `mi scan` of an archive with a code/
# folder, which reports that code as a finding of its own); in any other pickle they are reported.
TORCHSCRIPT_HELPERS = frozenset(
    {
        "torch.jit._pickle.build_intlist",
        "torch.jit._pickle.build_tensorlist",
        "torch.jit._pickle.build_doublelist",
        "torch.jit._pickle.build_boollist",
        "torch.jit._pickle.build_tensor_from_id",
        "torch.jit._pickle.restore_type_tag",
    }
)

# BUILD (`obj.__setstate__(state)` or `obj.__dict__.update(state)`) is accepted by torch only on these.
BUILD_TARGETS = frozenset(
    TENSOR_REBUILDERS
    | {"collections.OrderedDict", "torch.nn.parameter.Parameter", "torch.nn.Parameter", "torch.Tensor"}
)


def resolve_compat(qualname: str) -> str:
    """The global Python 3 really imports for `qualname`.

    Protocol 0-2 pickles are written with Python 2 names (`pickle` maps `builtins` to `__builtin__` on dump,
    torch.save uses protocol 2) and `Unpickler.find_class` maps them back through `_compat_pickle`: a file's
    `__builtin__.eval` is `builtins.eval`, `copy_reg._reconstructor` is `copyreg._reconstructor`. Mapping
    whatever the protocol is the safe reading: for protocol 3+ the Python 2 name would not import at all.
    """
    import _compat_pickle

    parts = qualname.split(".")
    for i in range(len(parts) - 1, 0, -1):
        module, name = ".".join(parts[:i]), ".".join(parts[i:])
        if (module, name) in _compat_pickle.NAME_MAPPING:
            m, n = _compat_pickle.NAME_MAPPING[(module, name)]
            return f"{m}.{n}"
        if module in _compat_pickle.IMPORT_MAPPING:
            return f"{_compat_pickle.IMPORT_MAPPING[module]}.{name}"
    return qualname


def is_safe_global(qualname: str) -> bool:
    """True when `qualname` (after Python 2 name mapping) is on the allowlist of what a plain checkpoint needs."""
    return qualname in SAFE_GLOBALS or resolve_compat(qualname) in SAFE_GLOBALS


def is_readable_global(qualname: str, torchscript: bool) -> bool:
    """`is_safe_global`, plus the identity helpers of `TORCHSCRIPT_HELPERS` when reading a TorchScript archive."""
    return is_safe_global(qualname) or (torchscript and qualname in TORCHSCRIPT_HELPERS)


class Severity(StrEnum):
    """How bad a finding is: `dangerous` runs commands / code / I/O by itself; `unknown` runs code we can't vet;
    `code`: the file ships code that its loader runs (TorchScript, remote code), which a gate may accept on
    purpose (`mi scan --allow`)."""

    dangerous = "dangerous"
    unknown = "unknown"
    code = "code"  # code the model ships (TorchScript, remote code), run when loaded; `--allow` accepts it


# Modules whose every attribute is a way to run code, touch files or the network when called from a pickle.
DANGEROUS_MODULES = frozenset(
    {
        "os", "posix", "nt", "posixpath", "ntpath", "subprocess", "sys", "socket", "pty", "runpy", "shutil",
        "webbrowser", "pickle", "_pickle", "cPickle", "dill", "cloudpickle", "joblib", "marshal", "shelve",
        "importlib", "imp", "pkgutil", "zipimport", "code", "codeop", "commands", "popen2", "ctypes", "_ctypes",
        "cffi", "multiprocessing", "asyncio", "concurrent", "threading", "_thread", "signal", "pdb", "bdb",
        "timeit", "trace", "cProfile", "profile", "pip", "setuptools", "distutils", "ensurepip", "venv",
        "urllib", "urllib2", "http", "httplib", "ftplib", "smtplib", "telnetlib", "poplib", "imaplib",
        "requests", "aiohttp", "xmlrpc", "socketserver", "ssl", "select", "selectors", "tempfile", "glob",
        "io", "_io", "fileinput", "linecache", "tarfile", "zipfile", "sqlite3", "_posixsubprocess",
        "_winapi", "winreg", "msvcrt", "platform", "uuid", "gc", "inspect", "types", "functools", "operator",
        "copyreg", "copy_reg", "logging", "site", "sysconfig", "IPython", "numpy.testing",
        "torch.hub", "torch.utils.collect_env", "torch.jit", "torch.package", "torch.serialization",
        "torch._dynamo", "torch._inductor", "torch.fx", "torch.utils.cpp_extension",
    }
)  # fmt: skip

# Callables that run code or do I/O whatever module they are reached through (`builtins.eval`,
# `numpy.load`, dotted names like `pathlib.os.system`).
DANGEROUS_NAMES = frozenset(
    {
        "eval", "exec", "execfile", "compile", "open", "file", "input", "raw_input", "__import__", "getattr",
        "setattr", "delattr", "globals", "locals", "vars", "breakpoint", "apply", "reload", "system", "popen",
        "popen2", "popen3", "popen4", "spawn", "spawnl", "spawnv", "spawnve", "spawnlp", "spawnvp", "execl",
        "execv", "execve", "execvp", "execlp", "fork", "forkpty", "startfile", "call", "check_call",
        "check_output", "run", "Popen", "getoutput", "getstatusoutput", "load", "loads", "load_module",
        "import_module", "resolve_name", "run_path", "run_module", "attrgetter", "methodcaller", "partial",
        "urlopen", "urlretrieve", "create_connection", "remove", "unlink", "rmtree", "rename", "write",
        "write_text", "write_bytes", "mkdir", "makedirs", "chmod", "chown", "kill", "putenv", "dlopen",
        "CDLL", "PyDLL", "WinDLL", "cdll", "FunctionType", "CodeType", "LambdaType", "MethodType",
        "__builtins__", "__globals__", "__code__", "__subclasses__", "__reduce__", "__reduce_ex__",
        "__setstate__", "__getattribute__", "main",
    }
)  # fmt: skip

_BUILTINS = frozenset({"builtins", "__builtin__", "__builtins__"})
# Plain data types: constructing one runs no code of the file's choosing, but torch refuses them, so `unknown`.
_BUILTIN_DATA = frozenset({"list", "dict", "tuple", "int", "float", "str", "bytes", "bool", "range", "frozenset"})


def classify(qualname: str) -> Severity | None:
    """None when allowlisted; otherwise how bad importing (and calling) `qualname` is.

    Every dotted component counts: pickle resolves `STACK_GLOBAL('pathlib', 'os.system')` by attribute
    lookups, so `pathlib.os.system` reaches `os.system`.
    """
    if is_safe_global(qualname):
        return None
    mapped = resolve_compat(qualname)
    if mapped != qualname and classify(mapped) == Severity.dangerous:
        return Severity.dangerous
    parts = qualname.split(".")
    for i in range(1, len(parts) + 1):
        if ".".join(parts[:i]) in DANGEROUS_MODULES:
            return Severity.dangerous
    if any(p in DANGEROUS_MODULES for p in parts[1:]):  # `pathlib.os.system`, `torch.os.popen`
        return Severity.dangerous
    if any(p in DANGEROUS_NAMES for p in parts[1:]):
        return Severity.dangerous
    if parts[0] in _BUILTINS and not (len(parts) == 2 and parts[1] in _BUILTIN_DATA):
        # Builtins beyond the data types above are all ways to reach code (getattr, eval, type, object…).
        return Severity.dangerous
    return Severity.unknown
