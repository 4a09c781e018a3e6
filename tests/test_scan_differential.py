"""`mi scan` against CPython's own unpicklers, differentially.

The oracle is CPython: `_pickle.Unpickler` (C) and `pickle._Unpickler` (pure Python), each subclassed with a
`find_class` that records `(module, name)` and raises to abort, so nothing is ever imported or run (copyreg's
extension registry is empty, so `EXT*` never resolves either). Over generated pickles (random opcode
sequences, and `pickle.dumps` of random objects holding globals, every protocol):

- wherever either unpickler reaches `find_class(module, name)`, the scan names `module.name`, and the file
  is not "clean" unless that global is on the allowlist;
- the scan says "could not scan" only where both unpicklers also fail before any `find_class`.
"""

from __future__ import annotations

import collections
import io
import os
import pickle
import struct
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelscope_inspect.errors import InspectError
from modelscope_inspect.loaders.safety import is_safe_global
from modelscope_inspect.loaders.scanner import MemorySource, scan_source


class Abort(Exception):
    """Raised by the recording find_class: the unpickler reached a global."""


def _recorder(base: type) -> type:
    class Recorder(base):  # type: ignore[valid-type,misc]
        seen: list[str]

        def find_class(self, module: str, name: str) -> Any:
            self.seen.append(f"{module}.{name}")
            raise Abort

        def persistent_load(self, pid: Any) -> Any:  # torch defines one: let persistent ids load
            return None

    return Recorder


C_UNPICKLER = _recorder(pickle.Unpickler)
PY_UNPICKLER = _recorder(pickle._Unpickler)  # type: ignore[attr-defined]


def cpython(data: bytes) -> tuple[list[str], bool]:
    """(globals either unpickler reached, True when either loaded the pickle without reaching one)."""
    seen: list[str] = []
    loaded = False
    for cls in (C_UNPICKLER, PY_UNPICKLER):
        u = cls(io.BytesIO(data))
        u.seen = []
        try:
            u.load()
            loaded = True
        except Abort:
            pass
        except Exception:
            pass
        seen.extend(u.seen)
    return seen, loaded and not seen


def mi_scan(data: bytes) -> tuple[str, tuple[str, ...]]:
    """(status, globals) of `mi scan` on the bytes as a `.pkl` file; status `error` for could-not-scan."""
    try:
        rep = scan_source(MemorySource(data, "x.pkl"), "x.pkl")
    except InspectError:
        return "error", ()
    return rep.status, rep.globals


def check(data: bytes) -> None:
    seen, loaded = cpython(data)
    status, names = mi_scan(data)
    for g in seen:
        assert g in names, f"CPython reaches {g}; mi scan names {names} ({status}) for {data!r}"
        if not is_safe_global(g):
            assert status in ("dangerous", "unknown"), f"{g} not flagged ({status}) for {data!r}"
    if status == "error":
        assert not seen and not loaded, f"mi cannot scan what CPython loads ({seen}) for {data!r}"


NAMES = ["os", "system", "builtins", "eval", "posix", "__main__", "x", "os.path", "collections", "OrderedDict"]


def _text(s: str) -> bytes:
    return s.encode()


# One opcode (with its argument) per entry: the alphabet random pickles are written in.
def _opcode() -> st.SearchStrategy[bytes]:
    name = st.sampled_from(NAMES)
    small = st.integers(0, 6)
    return st.one_of(
        st.just(b"("),  # MARK
        st.just(b")"), st.just(b"]"), st.just(b"}"), st.just(b"N"), st.just(b"\x88"),  # empties, None, True
        small.map(lambda n: b"K" + bytes([n])),  # BININT1
        name.map(lambda s: b"\x8c" + bytes([len(s)]) + _text(s)),  # SHORT_BINUNICODE
        name.map(lambda s: b"X" + struct.pack("<I", len(s)) + _text(s)),  # BINUNICODE
        name.map(lambda s: b"S'" + _text(s) + b"'\n"),  # STRING
        name.map(lambda s: b"U" + bytes([len(s)]) + _text(s)),  # SHORT_BINSTRING
        name.map(lambda s: b"T" + struct.pack("<i", len(s)) + _text(s)),  # BINSTRING
        name.map(lambda s: b"V" + _text(s) + b"\n"),  # UNICODE
        st.tuples(name, name).map(lambda t: b"c" + _text(t[0]) + b"\n" + _text(t[1]) + b"\n"),  # GLOBAL
        st.tuples(name, name).map(lambda t: b"i" + _text(t[0]) + b"\n" + _text(t[1]) + b"\n"),  # INST
        st.just(b"\x93"),  # STACK_GLOBAL
        st.just(b"\x94"),  # MEMOIZE
        small.map(lambda n: b"q" + bytes([n])),  # BINPUT
        small.map(lambda n: b"h" + bytes([n])),  # BINGET
        small.map(lambda n: b"r" + struct.pack("<I", n)),  # LONG_BINPUT
        small.map(lambda n: b"j" + struct.pack("<I", n)),  # LONG_BINGET
        small.map(lambda n: b"p" + str(n).encode() + b"\n"),  # PUT
        small.map(lambda n: b"g" + str(n).encode() + b"\n"),  # GET
        st.sampled_from([b"t", b"\x85", b"\x86", b"\x87", b"l", b"d", b"a", b"e", b"s", b"u"]),
        st.sampled_from([b"R", b"b", b"\x81", b"o", b"0", b"1", b"2", b"Q", b"\x8f", b"\x90", b"\x91"]),
        st.integers(0, 40).map(lambda n: b"\x95" + struct.pack("<Q", n)),  # FRAME, any length
        st.integers(1, 3).map(lambda n: b"\x82" + bytes([n])),  # EXT1 (unregistered: CPython fails)
        st.integers(0, 5).map(lambda n: b"\x80" + bytes([n])),  # PROTO
    )  # fmt: skip


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.booleans(), st.lists(_opcode(), min_size=1, max_size=24))
def test_random_opcode_sequences(proto: bool, ops: list[bytes]) -> None:
    check((b"\x80\x04" if proto else b"") + b"".join(ops) + b".")


class Thing:
    """An instance pickles as a class reference to this module (a global the scan must name)."""

    def __init__(self, v: Any) -> None:
        self.v = v


_GLOBALS = [os.system, os.path.join, print, eval, collections.OrderedDict, struct.pack, Thing]


def _objects() -> st.SearchStrategy[Any]:
    leaves = st.one_of(
        st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=8),
        st.binary(max_size=8), st.sampled_from(_GLOBALS),
    )  # fmt: skip
    return st.recursive(
        leaves,
        lambda kids: st.one_of(
            st.lists(kids, max_size=4),
            st.tuples(kids, kids),
            st.dictionaries(st.text(max_size=4), kids, max_size=3),
            st.frozensets(st.integers(), max_size=3),
            kids.map(Thing),
            kids.map(lambda v: collections.OrderedDict(a=v)),
        ),
        max_leaves=12,
    )


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_objects(), st.integers(0, pickle.HIGHEST_PROTOCOL))
def test_dumps_of_random_objects(obj: Any, protocol: int) -> None:
    check(pickle.dumps(obj, protocol=protocol))


# Hand-picked disagreements with CPython this decoder once had (each names what CPython does).
@pytest.mark.parametrize(
    "data",
    [
        b"S'os'\nS'system'\n\x93S'id'\n\x85R.",  # STRING pushes str: STACK_GLOBAL os.system (GHSA-9gvj-pp9x-gcfr)
        b"\x80\x02U\x02osU\x06system\x93.",  # SHORT_BINSTRING, the same
        b"\x80\x02T\x02\x00\x00\x00osT\x06\x00\x00\x00system\x93.",  # BINSTRING, the same
        # FRAME of 5 bytes ending inside GLOBAL's name: pickle.loads reads os.system; the C unpickler reading
        # an io.BytesIO (torch.load) drops the rest of its frame buffer and reads `os.ystem`. Both are named.
        b"\x80\x04\x95\x05\x00\x00\x00\x00\x00\x00\x00cos\nsystem\n\x85.",
        # A frame ends in the middle of SHORT_BINUNICODE's argument, a new FRAME opcode comes later.
        b"\x80\x04\x95\x04\x00\x00\x00\x00\x00\x00\x00\x8c\x02os\x8c\x06system\x93N\x85R.",
        b"]K\x00aK\x00K\x01scos\nsystem\n.",  # SETITEM on a list (list[0] = 1) goes on to GLOBAL
        b"I0x10\ncos\nsystem\n.",  # INT in base 0 (strtol): then GLOBAL
        b"\x80\x02cos\nsystem\n\x94h\x00.",  # MEMOIZE then BINGET 0
        b"\x80\x02cos\nsystem\nr\x00\x00\x01\x00j\x00\x00\x01\x00.",  # LONG_BINPUT / LONG_BINGET 65536
        b"(cos\nsystem\nS'id'\no.",  # OBJ
        b"(S'id'\nios\nsystem\n.",  # INST
    ],
)
def test_known_disagreements(data: bytes) -> None:
    seen, _ = cpython(data)
    assert seen, "the case must reach find_class in CPython (the oracle), or it tests nothing"
    check(data)
