"""The two changes made to `pickle_walk` for scanning hostile pickles, each run as a separate process so a
regression shows as a failed test instead of a crashed test run.

1. A dict key that is a tuple nested 10**6 deep used to crash CPython's tuple hash with a segfault (signal 11)
   inside `_set_items`; keys are now measured before hashing and refused past 64 levels / 10,000 nodes.
2. Naming the callee of a chain of REDUCEs on call results (`f()()()…`) walked the whole chain for every link:
   200,000 links took more than a minute (quadratic); names are now kept per call (linear).
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from modelscope_inspect.errors import MalformedFileError
from modelscope_inspect.loaders.pickle_walk import walk
from tests.conftest import ROOT


def run_walk(expr: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    code = (
        "from modelscope_inspect.loaders.pickle_walk import walk\n"
        "from modelscope_inspect.errors import InspectError\n"
        f"data = {expr}\n"
        "try:\n    r = walk(data)\n    print('ok', len(r.events), r.events[-1].target if r.events else '')\n"
        "except InspectError as e:\n    print('error', e.rule, e)\n"
    )
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout, cwd=ROOT)


def test_deep_tuple_key_is_refused_not_a_segfault() -> None:
    r = run_walk("b'\\x80\\x02}' + b')' + b'\\x85' * 1_000_000 + b'Ns.'")
    assert r.returncode == 0, f"walker process died with {r.returncode} (-11 is a segfault): {r.stderr[-300:]}"
    assert r.stdout.startswith("error pickle-limit") and "nested too deeply" in r.stdout


def test_wide_shared_tuple_key_is_refused() -> None:
    # t1 = (t0, t0), t2 = (t1, t1) … via DUP: 40 levels would cost 2**40 to hash.
    data = b"\x80\x02}" + b")" + b"2\x86" * 40 + b"Ns."
    with pytest.raises(MalformedFileError, match="too large"):
        walk(data)


def test_small_tuple_keys_still_work() -> None:
    data = b"\x80\x02}K\x01K\x02\x86K\x03s."
    assert walk(data).value == {(1, 2): 3}


def test_long_call_chain_is_linear() -> None:
    r = run_walk("b'\\x80\\x02cos\\nsystem\\n' + b')R' * 200_000 + b'.'", timeout=60)
    assert r.returncode == 0, r.stderr[-300:]
    assert r.stdout.split()[:2] == ["ok", "200001"]
    assert "199999 calls deep" in r.stdout


def test_call_chain_names() -> None:
    events = walk(b"\x80\x02cbuiltins\ngetattr\n)R)R)R.").events
    assert [e.target for e in events] == [
        "builtins.getattr",
        "builtins.getattr",
        "<result of calling builtins.getattr>",
        "<result of calling builtins.getattr (2 calls deep)>",
    ]
