"""Malformed and hostile torch files beyond a plain state_dict: legacy storage tables that lie, broken quantizer
parameters, and module pickles that would run code. Each ends in one line naming the file and the rule (exit 2)
and nothing from the file is ever run: the marker files the payloads would create must not appear.
"""

from __future__ import annotations

import collections
import io
import os
import pickle
import pickletools
import struct
import subprocess
import tarfile
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest

import modelscope_inspect as mi
from modelscope_inspect.errors import InspectError, UnsafePickleError, UnsupportedFormatError
from tests.conftest import run_cli

torch = pytest.importorskip("torch")
nn = torch.nn
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")


def one_line_error(path: Path, rule: str | None, fragment: str) -> InspectError:
    """`mi.load` raises with `rule`; `mi inspect` prints the same as one line, exit 2, no traceback."""
    with pytest.raises(InspectError) as info:
        mi.load(str(path))
    if rule is not None:
        assert info.value.rule == rule, str(info.value)
    assert fragment in str(info.value), str(info.value)
    r = run_cli("inspect", str(path))
    assert r.code == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "Traceback" not in r.stderr, r.stderr
    assert fragment in lines[0]
    return info.value


# --- legacy storage tables -----------------------------------------------------------------------------------


def legacy_file(tmp_path: Path) -> tuple[bytes, dict[str, torch.Tensor]]:
    sd = {"a": torch.arange(6.0).reshape(2, 3), "b": torch.ones(4, dtype=torch.float16), "c": torch.arange(3)}
    p = tmp_path / "src.pth"
    torch.save(sd, p, _use_new_zipfile_serialization=False)
    return p.read_bytes(), sd


# Element widths by element count: every tensor in `legacy_file` has a distinct count.
WIDTHS = {6: 4, 4: 2, 3: 8}


def split_legacy(data: bytes) -> tuple[bytes, list[str], list[tuple[int, bytes]]]:
    """(the first four pickles, storage keys, [(count, bytes)]) — decoded with pickletools, never loaded."""
    pos = 0
    for _ in range(4):
        pos += next(p for op, _, p in pickletools.genops(data[pos:]) if op.name == "STOP") + 1
    head = data[:pos]
    keys_end = pos + next(p for op, _, p in pickletools.genops(data[pos:]) if op.name == "STOP") + 1
    keys = pickle.loads(data[pos:keys_end])  # a list of str this test wrote
    parts = []
    at = keys_end
    for _ in keys:
        (count,) = struct.unpack("<Q", data[at : at + 8])
        n = count * WIDTHS[count]
        parts.append((count, data[at + 8 : at + 8 + n]))
        at += 8 + n
    assert at == len(data)
    return head, keys, parts


def join_legacy(head: bytes, keys: list[str], parts: list[tuple[int, bytes]]) -> bytes:
    body = b"".join(struct.pack("<Q", c) + d for c, d in parts)
    return head + pickle.dumps(keys, protocol=2) + body


def test_split_helper_roundtrips(tmp_path: Path) -> None:
    data, sd = legacy_file(tmp_path)
    head, keys, parts = split_legacy(data)
    assert join_legacy(head, keys, parts) == data
    assert sorted(c for c, _ in parts) == sorted(v.numel() for v in sd.values())
    assert mi.load(str(tmp_path / "src.pth")).total_params == 6 + 4 + 3


def test_legacy_truncated_in_the_pickles(tmp_path: Path) -> None:
    data, _ = legacy_file(tmp_path)
    p = tmp_path / "t.pth"
    p.write_bytes(data[:200])
    one_line_error(p, "truncated", "the file ends inside its object pickle at byte 200")


def test_legacy_truncated_in_the_storage_data(tmp_path: Path) -> None:
    data, _ = legacy_file(tmp_path)
    p = tmp_path / "t.pth"
    p.write_bytes(data[:-5])
    one_line_error(p, "truncated", f"the storage table declares {len(data):,} bytes, the file has {len(data) - 5:,}")


def test_legacy_truncated_before_a_count(tmp_path: Path) -> None:
    data, _ = legacy_file(tmp_path)
    head, keys, _parts = split_legacy(data)
    p = tmp_path / "t.pth"
    p.write_bytes(head + pickle.dumps(keys, protocol=2) + b"\x01\x00")
    one_line_error(p, "truncated", "the storage table declares")


def test_legacy_lying_count(tmp_path: Path) -> None:
    data, _ = legacy_file(tmp_path)
    head, keys, parts = split_legacy(data)
    count, raw = parts[0]
    parts[0] = (count - 1, raw)  # fewer elements than the tensor header says, same bytes
    p = tmp_path / "lie.pth"
    p.write_bytes(join_legacy(head, keys, parts))
    one_line_error(p, "legacy-storage", "but its tensor header says")


@pytest.mark.parametrize("count", [2**63, 2**64 - 1, 10**12])
def test_legacy_huge_count(tmp_path: Path, count: int) -> None:
    data, _ = legacy_file(tmp_path)
    head, keys, parts = split_legacy(data)
    parts[-1] = (count, parts[-1][1])
    p = tmp_path / "huge.pth"
    p.write_bytes(join_legacy(head, keys, parts))
    one_line_error(p, "legacy-storage", "bytes are left in the file")


def test_legacy_missing_storage(tmp_path: Path) -> None:
    data, _ = legacy_file(tmp_path)
    head, keys, parts = split_legacy(data)
    p = tmp_path / "missing.pth"
    p.write_bytes(join_legacy(head, keys[1:], parts[1:]))
    one_line_error(p, "legacy-storage", "is not in the file's storage table")


def test_legacy_unused_storage_key(tmp_path: Path) -> None:
    data, _ = legacy_file(tmp_path)
    head, keys, parts = split_legacy(data)
    p = tmp_path / "extra.pth"
    p.write_bytes(join_legacy(head, [*keys, "999"], [*parts, (1, b"\0" * 4)]))
    one_line_error(p, "legacy-storage", "which no tensor uses")


def test_legacy_duplicate_storage_keys(tmp_path: Path) -> None:
    data, _ = legacy_file(tmp_path)
    head, keys, parts = split_legacy(data)
    p = tmp_path / "dupe.pth"
    p.write_bytes(join_legacy(head, [*keys, keys[0]], [*parts, parts[0]]))
    one_line_error(p, "legacy-storage", "duplicates")


def test_legacy_bad_protocol_version_and_keys(tmp_path: Path) -> None:
    data, _ = legacy_file(tmp_path)
    magic = pickle.dumps(0x1950A86A20F9469CFC6C, protocol=2)
    p = tmp_path / "proto.pth"
    p.write_bytes(magic + pickle.dumps(999, protocol=2) + data[len(magic) + 3 :])
    one_line_error(p, "legacy-header", "protocol version 999")
    head, _keys, parts = split_legacy(data)
    p2 = tmp_path / "keys.pth"
    p2.write_bytes(head + pickle.dumps({"not": "a list"}, protocol=2) + b"".join(d for _, d in parts))
    one_line_error(p2, "legacy-header", "list of storage keys")


def test_legacy_trailing_bytes_are_a_warning(tmp_path: Path) -> None:
    data, _ = legacy_file(tmp_path)
    p = tmp_path / "trail.pth"
    p.write_bytes(data + b"\0" * 10)
    inv = mi.load(str(p))
    assert inv.total_params == 13 and any("10 bytes after the last storage" in w for w in inv.warnings)


def test_legacy_large_object_pickle_is_read_in_steps(tmp_path: Path) -> None:
    # The object pickle is longer than the first read (1 MiB): the reader reads more and walks again.
    model = nn.Linear(3, 2)
    model.notes = "x" * 3_000_000
    p = tmp_path / "big.pth"
    torch.save(model, p, _use_new_zipfile_serialization=False)
    inv = mi.load(str(p))
    assert inv.total_params == 8 and inv.torch.pickle_bytes > 3_000_000


def test_legacy_tar_variant_is_refused_clearly(tmp_path: Path) -> None:
    p = tmp_path / "old.tar"
    with tarfile.open(p, "w", format=tarfile.PAX_FORMAT) as tar:
        for name in ("sys_info", "pickle", "tensors", "storages"):
            blob = pickle.dumps(0, protocol=2)
            info = tarfile.TarInfo(name)
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
    err = one_line_error(p, None, "tar-wrapped legacy torch checkpoint")
    assert isinstance(err, UnsupportedFormatError)


# --- quantizer parameters ------------------------------------------------------------------------------------


class _Storage:
    def __init__(self, cls: Any, key: str, numel: int) -> None:
        self.pid = ("storage", cls, key, "cpu", numel)


class _Rebuild:
    """Pickles as `fn(*args)`: lets a test write the exact REDUCE torch would, with chosen arguments."""

    def __init__(self, fn: Any, *args: Any) -> None:
        self.fn, self.args = fn, args

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return (self.fn, self.args)


class _Pickler(pickle.Pickler):
    def persistent_id(self, obj: Any) -> Any:
        return obj.pid if isinstance(obj, _Storage) else None


def torch_zip_of(obj: Any, storages: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    _Pickler(buf, protocol=2).dump(obj)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("archive/data.pkl", buf.getvalue())
        z.writestr("archive/version", b"3\n")
        z.writestr("archive/byteorder", b"little")
        for k, v in storages.items():
            z.writestr(f"archive/data/{k}", v)
    return out.getvalue()


def vec(cls: Any, key: str, n: int) -> _Rebuild:
    return _Rebuild(
        torch._utils._rebuild_tensor_v2, _Storage(cls, key, n), 0, (n,), (1,), False, collections.OrderedDict()
    )


def qtensor(qparams: tuple[Any, ...]) -> _Rebuild:
    return _Rebuild(
        torch._utils._rebuild_qtensor, _Storage(torch.QInt8Storage, "0", 12), 0, (4, 3), (3, 1), qparams, False,
        collections.OrderedDict(),
    )  # fmt: skip


STORAGES = {"0": b"\0" * 12, "1": b"\0" * 32, "2": b"\0" * 32}


def test_crafted_quantized_tensor_reads(tmp_path: Path) -> None:
    # the crafting helpers produce what torch produces: a sanity check for the malformed cases below
    qp = (torch.per_channel_affine, vec(torch.DoubleStorage, "1", 4), vec(torch.LongStorage, "2", 4), 0)
    p = tmp_path / "ok.pth"
    p.write_bytes(torch_zip_of({"w": qtensor(qp)}, STORAGES))
    inv = mi.load(str(p))
    assert inv.total_params == 12 and inv.total_elements == 20
    assert torch.load(p, weights_only=True)["w"].q_per_channel_axis() == 0  # torch agrees it is valid


@pytest.mark.parametrize(
    ("qparams", "fragment"),
    [
        ((torch.per_channel_affine, vec(torch.DoubleStorage, "1", 3), vec(torch.LongStorage, "2", 3), 0), "4 channels"),
        ((torch.per_channel_affine, vec(torch.DoubleStorage, "1", 4), vec(torch.LongStorage, "2", 4), 5), "axis 5"),
        ((torch.per_tensor_affine, "0.1", 3), "bad per_tensor_affine parameters"),
        ((torch.float32, 0.1, 3), "unknown qscheme"),
        ((), "without quantizer parameters"),
    ],
)
def test_bad_quantizer_parameters(tmp_path: Path, qparams: tuple[Any, ...], fragment: str) -> None:
    p = tmp_path / "q.pth"
    p.write_bytes(torch_zip_of({"w": qtensor(qparams)}, STORAGES))
    one_line_error(p, "pickle-tensor", fragment)


# --- module pickles: class names are stubs, calls are refused -------------------------------------------------


class _Call:
    def __init__(self, fn: Any, *args: Any) -> None:
        self.fn, self.args = fn, args

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return (self.fn, self.args)


def module_with(attr: Any) -> nn.Module:
    m = nn.Sequential(nn.Linear(2, 2))
    m[0].payload = attr  # a plain attribute inside the module's __dict__
    return m


@pytest.mark.parametrize(
    "make",
    [
        lambda marker: _Call(os.system, f"touch {marker}"),
        lambda marker: _Call(eval, f"open({str(marker)!r}, 'w')"),
        lambda marker: _Call(subprocess.Popen, ["touch", str(marker)]),
        lambda marker: _Call(getattr, str, "join"),
    ],
    ids=["os.system", "builtins.eval", "subprocess.Popen", "builtins.getattr"],
)
def test_calls_inside_module_pickles_are_refused(tmp_path: Path, make: Any) -> None:
    marker = tmp_path / "PWNED"
    p = tmp_path / "evil.pth"
    torch.save(module_with(make(marker)), p)
    err = one_line_error(p, "pickle-global", "would import and run code")
    assert isinstance(err, UnsafePickleError)
    assert not marker.exists()


def zip_with_pickle(tmp_path: Path, name: str, pk: bytes) -> Path:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("archive/data.pkl", pk)
    p = tmp_path / name
    p.write_bytes(out.getvalue())
    return p


def test_dangerous_class_stub_is_refused(tmp_path: Path) -> None:
    # NEWOBJ(subprocess.Popen, ()) + BUILD would build a Popen without __init__: never a model's class.
    pk = b"\x80\x02csubprocess\nPopen\n)\x81}(\x8c\x0b_parameters}\x8c\x08_modules}ub."
    one_line_error(zip_with_pickle(tmp_path, "popen.pth", pk), "pickle-global", "subprocess.Popen")


def test_module_class_stub_from_crafted_bytes_is_read(tmp_path: Path) -> None:
    # The same bytes with a user's class: a stub, reported, nothing imported.
    pk = b"\x80\x02c__main__\nNet\n)\x81}(\x8c\x0b_parameters}\x8c\x08_modules}ub."
    inv = mi.load(str(zip_with_pickle(tmp_path, "net.pth", pk)))
    assert inv.total_params == 0 and inv.torch.module_types == {"": "__main__.Net"}


def test_dotted_class_name_is_refused(tmp_path: Path) -> None:
    # STACK_GLOBAL('pathlib', 'os.system') reaches os.system by attribute lookups.
    pk = b"\x80\x04\x8c\x07pathlib\x8c\tos.system\x93)\x81}(\x8c\x0b_parameters}\x8c\x08_modules}ub."
    one_line_error(zip_with_pickle(tmp_path, "dotted.pth", pk), "pickle-global", "pathlib.os.system")


def test_dangerous_function_stored_as_attribute_is_refused(tmp_path: Path) -> None:
    p = tmp_path / "fnattr.pth"
    torch.save(module_with(os.system), p)  # a reference, not a call: still never a model's attribute
    one_line_error(p, "pickle-global", "system")


def test_global_value_outside_any_module_is_refused(tmp_path: Path) -> None:
    p = tmp_path / "value.pth"
    torch.save({"w": torch.zeros(2), "f": nn.functional.relu}, p)
    one_line_error(p, "pickle-global", "relu")


def test_unreachable_call_is_refused(tmp_path: Path) -> None:
    # A REDUCE whose result is popped still runs on load: fail closed even though nothing refers to it.
    marker = tmp_path / "PWNED"
    good = tmp_path / "good.pth"
    torch.save(nn.Linear(2, 2), good)
    with zipfile.ZipFile(good) as z:
        names = z.namelist()
        members = {n: z.read(n) for n in names}
    pkl = next(n for n in names if n.endswith("data.pkl"))
    assert members[pkl][:2] == b"\x80\x02"
    evil = b"\x80\x02cposix\nsystem\n\x8c" + bytes([len(f"touch {marker}")]) + f"touch {marker}".encode()
    members[pkl] = evil + b"\x85R0" + members[pkl][2:]
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for n, v in members.items():
            z.writestr(n, v)
    p = tmp_path / "popped.pth"
    p.write_bytes(out.getvalue())
    one_line_error(p, "pickle-global", "system")
    assert not marker.exists()


def test_module_relu_attribute_is_a_stub_not_a_refusal(tmp_path: Path) -> None:
    # The seed's decoder layers keep `activation = F.relu`: a global stored in a module's state, never called.
    layer = nn.TransformerDecoderLayer(8, 2, 16)
    p = tmp_path / "layer.pth"
    torch.save(layer, p)
    inv = mi.load(str(p))
    assert inv.total_params == sum(q.numel() for q in layer.parameters())


def test_module_cycle_in_modules_fails_fast(tmp_path: Path) -> None:
    # A module whose _modules holds itself twice: torch's state_dict() would recurse forever; we stop.
    pk = b"\x80\x02c__main__\nNet\n)\x81q\x00}(\x8c\x0b_parameters}\x8c\x08_modules}(\x8c\x01ah\x00\x8c\x01bh\x00uub."
    t = time.perf_counter()
    err = one_line_error(zip_with_pickle(tmp_path, "cycle.pth", pk), None, "")
    assert err.rule in ("pickle-depth", "pickle-module")
    assert time.perf_counter() - t < 20


def test_mutated_files_fail_cleanly(tmp_path: Path) -> None:
    # Random byte flips and truncations of real legacy / whole-module / checkpoint / quantized files: the
    # reader either succeeds or raises an InspectError, never anything else (seeded, so failures reproduce).
    import random

    model = bn_model_small()
    sources = []
    for name, kw in (("legacy", {"_use_new_zipfile_serialization": False}), ("zip", {})):
        p = tmp_path / f"{name}.pth"
        torch.save({"model": model, "q": torch.quantize_per_tensor(torch.randn(4), 0.1, 2, torch.quint8)}, p, **kw)
        sources.append(p.read_bytes())
    rng = random.Random(1234)
    target = tmp_path / "mutant.pth"
    outcomes = {"read": 0, "refused": 0}
    for _ in range(300):
        data = bytearray(rng.choice(sources))
        span = min(len(data), rng.choice([600, 4000, len(data)]))
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(span)] = rng.randrange(256)
        if rng.random() < 0.2:
            data = data[: rng.randrange(len(data))]
        target.write_bytes(bytes(data))
        try:
            mi.load(str(target))
            outcomes["read"] += 1
        except InspectError:
            outcomes["refused"] += 1
    assert outcomes["read"] > 10 and outcomes["refused"] > 10, outcomes  # both paths were exercised


def bn_model_small() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))


def test_truncated_whole_module_pickle_says_truncated(tmp_path: Path) -> None:
    good = tmp_path / "whole.pth"
    torch.save(nn.Sequential(nn.Linear(2, 2)), good)
    with zipfile.ZipFile(good) as z:
        members = {n: z.read(n) for n in z.namelist()}
    pkl = next(n for n in members if n.endswith("data.pkl"))
    members[pkl] = members[pkl][: len(members[pkl]) // 2]
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for n, v in members.items():
            z.writestr(n, v)
    p = tmp_path / "cut.pth"
    p.write_bytes(out.getvalue())
    one_line_error(p, "pickle-structure", "")
    # ... while a dangerous call before the cut is still named as such (fail closed)
    evil = b"\x80\x02cposix\nsystem\n\x8c\x04true\x85R0" + members[pkl][2:]
    p2 = zip_with_pickle(tmp_path, "cut_evil.pth", evil)
    one_line_error(p2, "pickle-global", "system")
