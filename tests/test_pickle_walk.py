"""The symbolic decoder agrees with CPython's pickle on benign data (the oracle) and stays bounded on hostile data.

`pickle.loads` here only ever reads pickles this test wrote itself, to compare values.
"""

from __future__ import annotations

import pickle
import struct
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelscope_inspect.errors import LimitExceededError, MalformedFileError
from modelscope_inspect.loaders.pickle_walk import Blob, Call, Global, Limits, PersistentId, SetLike, walk


def to_python(obj: Any) -> Any:
    """Turn the walker's symbolic value back into plain Python for comparison."""
    if isinstance(obj, list):
        return [to_python(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(to_python(v) for v in obj)
    if isinstance(obj, dict):
        return {to_python(k): to_python(v) for k, v in obj.items()}
    if isinstance(obj, SetLike):
        items = {to_python(v) for v in obj.items}
        return frozenset(items) if obj.frozen else items
    if isinstance(obj, Call) and isinstance(obj.func, Global):
        name = obj.func.qualname
        if name == "_codecs.encode":
            return obj.args[0].encode(obj.args[1])
        if name in ("builtins.set", "__builtin__.set"):
            return set(to_python(obj.args[0]) if obj.args else [])
        if name in ("builtins.frozenset", "__builtin__.frozenset"):
            return frozenset(to_python(obj.args[0]) if obj.args else [])
        if name in ("builtins.bytes", "__builtin__.bytes"):
            return bytes(to_python(obj.args[0]) if obj.args else b"")
        if name in ("builtins.bytearray", "__builtin__.bytearray"):
            return bytearray(to_python(obj.args[0]) if obj.args else b"")
    if isinstance(obj, Blob):
        raise AssertionError("unexpected blob")
    return obj


scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**200), max_value=2**200)
    | st.floats(allow_nan=False)
    | st.text(max_size=20)
    | st.binary(max_size=20)
)
values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=5)
        | st.tuples(children, children)
        | st.dictionaries(st.text(max_size=5) | st.integers(), children, max_size=5)
        | st.frozensets(st.integers() | st.text(max_size=4), max_size=4)
    ),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=values, protocol=st.integers(min_value=0, max_value=5))
def test_walk_matches_pickle(value: Any, protocol: int) -> None:
    data = pickle.dumps(value, protocol=protocol)
    result = walk(data)
    assert result.error is None
    assert result.end == len(data)
    assert to_python(result.value) == pickle.loads(data)


def test_shared_references_and_memo() -> None:
    shared = [1, 2]
    data = pickle.dumps({"a": shared, "b": shared}, protocol=4)
    v = walk(data).value
    assert v["a"] is v["b"]


def test_globals_and_calls_are_recorded_never_resolved() -> None:
    import os

    class Evil:
        def __reduce__(self):  # type: ignore[no-untyped-def]
            return (os.system, ("echo pwned",))

    for proto in range(6):
        r = walk(pickle.dumps([Evil()], protocol=proto))
        kinds = [(e.kind, e.target) for e in r.events]
        assert ("global", f"{os.system.__module__}.system") in kinds, proto
        assert any(k == "call" for k, _ in kinds)
        call = r.value[0]
        assert isinstance(call, Call) and call.args == ("echo pwned",)


def test_persistent_ids() -> None:
    import io

    class Storage:
        pass

    class P(pickle.Pickler):
        def persistent_id(self, obj):  # type: ignore[no-untyped-def]
            return ("storage", "key0", 12) if isinstance(obj, Storage) else None

    buf = io.BytesIO()
    P(buf, protocol=2).dump({"t": Storage()})
    v = walk(buf.getvalue()).value
    assert isinstance(v["t"], PersistentId) and v["t"].pid == ("storage", "key0", 12)


def test_concatenated_pickles() -> None:
    data = pickle.dumps(1, protocol=2) + pickle.dumps("two", protocol=2)
    first = walk(data)
    second = walk(data, start=first.end)
    assert (first.value, second.value) == (1, "two")


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (b"\x80\x02X\xff\xff\xff\x7f", "declares"),  # BINUNICODE longer than the data
        (b"\x80\x02\x8e" + struct.pack("<Q", 2**63) + b"x", "declares"),  # BINBYTES8 claiming 2**63 bytes
        (b"\x80\x02h\x05.", "never stored"),  # BINGET of an unknown memo key
        (b"\x80\x02R.", "empty stack"),
        (b"\x80\x02\xff", "unknown opcode"),
        (b"\x80\x09N.", "unsupported pickle protocol"),
        (b"\x80\x02N", "declares"),  # no STOP
    ],
)
def test_malformed_pickles(data: bytes, fragment: str) -> None:
    with pytest.raises(MalformedFileError) as info:
        walk(data)
    assert fragment in str(info.value)


def test_limits() -> None:
    deep = b"\x80\x02" + b"(" * 200 + b"N."
    with pytest.raises(LimitExceededError):
        walk(deep, limits=Limits(max_marks=100))
    many = b"\x80\x02" + b"N0" * 1000 + b"N."
    with pytest.raises(LimitExceededError):
        walk(many, limits=Limits(max_ops=500))
    huge_long = b"\x80\x02\x8b" + struct.pack("<i", 10**6) + b"\0" * 10
    with pytest.raises(LimitExceededError):
        walk(huge_long)


def test_partial_result_keeps_dangerous_global() -> None:
    # A parse error after a dangerous global still reports the global (fail closed).
    data = b"\x80\x02cos\nsystem\nq\x00\xff"
    r = walk(data)
    assert r.error is not None and any(e.target == "os.system" for e in r.events)


def test_large_bytes_become_blobs() -> None:
    data = pickle.dumps(b"x" * 5000, protocol=4)
    v = walk(data, limits=Limits(keep_bytes=100)).value
    assert isinstance(v, Blob) and v.length == 5000
