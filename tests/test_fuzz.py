"""Property-based fuzzing: mutated headers of real safetensors / torch zip / ONNX / GGUF files (written by the
real libraries, committed as fixtures) must either read or fail with an `InspectError` subclass, quickly, within
bounded memory, for the readers (`mi.load`) and for `mi scan`. Any other exception type, a hang (5 s alarm) or
an allocation past the address-space cap (MemoryError) fails the property.
"""

from __future__ import annotations

import contextlib
import resource
import signal
import struct
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import modelscope_inspect as mi
from modelscope_inspect.api import scan_paths as scan_file
from modelscope_inspect.errors import InspectError
from tests.conftest import FIXTURES

SEEDS = {
    "safetensors": FIXTURES / "tiny_seed.safetensors",
    "zip": FIXTURES / "tiny_seed.pth",
    "onnx": FIXTURES / "tiny_mlp.onnx",
    "gguf": FIXTURES / "tiny_llama.gguf",
}
HEAD = 4096  # mutations land in the first bytes, where the headers and tables are (and the zip's end too)
ALARM = 5
EXTRA_AS = 1 << 30  # address space allowed on top of what the test process already maps


class Hang(Exception):
    pass


@contextlib.contextmanager
def bounded() -> Iterator[None]:
    """A 5 s alarm and an address-space cap for the body; both restored afterwards."""

    def on_alarm(signum: int, frame: Any) -> None:
        raise Hang("no result within 5 s")

    old_handler = signal.signal(signal.SIGALRM, on_alarm)
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    vm = 0
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmSize:"):
                vm = int(line.split()[1]) * 1024
    cap = vm + EXTRA_AS
    resource.setrlimit(resource.RLIMIT_AS, (cap if hard == resource.RLIM_INFINITY else min(cap, hard), hard))
    signal.alarm(ALARM)
    try:
        yield
    finally:
        signal.alarm(0)
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
        signal.signal(signal.SIGALRM, old_handler)


mutation = st.one_of(
    st.tuples(st.just("byte"), st.integers(0, HEAD - 1), st.integers(0, 255)),
    st.tuples(
        st.just("u64"),
        st.integers(0, HEAD - 8),
        st.sampled_from([0, 1, 2**31 - 1, 2**32, 2**62, 2**63, 2**64 - 1, 0x04034B50]),
    ),
    st.tuples(st.just("u32"), st.integers(0, HEAD - 4), st.sampled_from([0, 0xFFFFFFFF, 0x7FFFFFFF, 1 << 20])),
    st.tuples(st.just("truncate"), st.integers(0, HEAD), st.just(0)),
    st.tuples(st.just("varint"), st.integers(0, HEAD - 10), st.just(0)),
)


def mutate(data: bytes, muts: list[tuple[str, int, int]]) -> bytes:
    buf = bytearray(data)
    for kind, pos, value in muts:
        if pos >= len(buf):
            continue
        if kind == "byte":
            buf[pos] = value
        elif kind == "u64":
            buf[pos : pos + 8] = struct.pack("<Q", value)
        elif kind == "u32":
            buf[pos : pos + 4] = struct.pack("<I", value)
        elif kind == "varint":  # a protobuf length of 2**63
            buf[pos : pos + 10] = b"\xff" * 9 + b"\x7f"
        else:
            del buf[pos:]
    return bytes(buf)


def check_one(seed: Path, muts: list[tuple[str, int, int]]) -> None:
    data = mutate(seed.read_bytes(), muts)
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / seed.name
        p.write_bytes(data)
        for fn in (lambda: mi.load(str(p)), lambda: scan_file(p)):
            try:
                with bounded():
                    fn()
            except InspectError:
                pass
            # Anything else (MemoryError, RecursionError, Hang, KeyError, …) propagates and fails the property.


@pytest.mark.parametrize("fmt", list(SEEDS))
def test_mutated_headers_only_raise_inspect_errors(fmt: str) -> None:
    seed = SEEDS[fmt]
    if not seed.exists():
        pytest.skip(f"{seed.name} fixture not present")
    if fmt in ("onnx", "gguf"):
        import importlib.util

        if importlib.util.find_spec(f"modelscope_inspect.loaders.{fmt}") is None:
            pytest.skip(f"{fmt} reader not written yet")

    @settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)
    @given(st.lists(mutation, min_size=1, max_size=6))
    def prop(muts: list[tuple[str, int, int]]) -> None:
        check_one(seed, muts)

    prop()
