"""`mi scan`: every global and call a pickle would make, found without executing it.

Oracles: files written by torch itself (state_dicts scan clean; whole-module pickles name the module classes
torch's own `weights_only` loader refuses), and `pickletools.genops` over the same bytes for every global the
pickle really imports and its opcode offset. Exploit files and the "marker never appears" check live in
tests/test_hostile.py.
"""

from __future__ import annotations

import io
import json
import pickle
import pickletools
import struct
import zipfile
from pathlib import Path

import pytest

from modelscope_inspect.api import exit_code
from modelscope_inspect.api import scan_paths as scan
from modelscope_inspect.errors import InspectError
from modelscope_inspect.loaders.safety import SAFE_GLOBALS, Severity, classify
from tests.conftest import FIXTURES, run_cli

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")


def globals_by_pickletools(data: bytes) -> list[tuple[int, str]]:
    """(offset, module.name) of every GLOBAL / STACK_GLOBAL / INST, by pickletools' own opcode walk.

    For STACK_GLOBAL the two strings are the arguments of the two previous string opcodes or memo gets; this
    simple oracle only handles pickles that push them directly (what torch and pickle write).
    """
    out = []
    strings: list[str] = []
    memo: dict[int, str] = {}
    for op, arg, pos in pickletools.genops(data):
        if op.name in ("GLOBAL", "INST"):
            mod, name = str(arg).split(" ", 1)
            out.append((pos, f"{mod}.{name}"))
        elif op.name in ("SHORT_BINUNICODE", "BINUNICODE", "UNICODE"):
            strings.append(str(arg))
        elif op.name == "MEMOIZE" and strings:
            memo[len(memo)] = strings[-1]
        elif op.name == "STACK_GLOBAL":
            out.append((pos, f"{strings[-2]}.{strings[-1]}"))
    return out


def test_torch_state_dict_scans_clean(tmp_path: Path) -> None:
    sd = {"w": torch.ones(3, 2), "b": torch.zeros(2, dtype=torch.bfloat16), "n": torch.tensor(3)}
    p = tmp_path / "sd.pth"
    torch.save(sd, p)
    torch.load(p, weights_only=True)  # the oracle: torch's own restricted loader accepts it
    report = scan(p)
    f = report.files[0]
    assert exit_code(report) == 0 and f.status == "clean" and f.format == "torch-zip"
    assert f.findings == () and set(f.globals) <= SAFE_GLOBALS
    with zipfile.ZipFile(p) as zf:
        data = zf.read(next(n for n in zf.namelist() if n.endswith("data.pkl")))
    assert set(f.globals) == {g for _, g in globals_by_pickletools(data)}


def test_every_committed_fixture_scans_clean_but_the_whole_module() -> None:
    report = scan(FIXTURES)
    status = {Path(f.path).name: f.status for f in report.files}
    assert {"tiny_seed.pth", "tied_gpt2.bin", "tiny_seed.safetensors"} <= set(status)
    # tiny_seed_whole.pth is torch.save(model): it names the model's classes, which torch's weights_only refuses.
    # tiny_script.pt is torch.jit.save's archive: its code/ files run on torch.jit.load, a finding of its own.
    assert {n for n, s in status.items() if s != "clean"} == {"tiny_seed_whole.pth", "tiny_script.pt"}, status
    assert status["tiny_seed_whole.pth"] == "unknown" and exit_code(report) == 1
    assert status["tiny_script.pt"] == "code"


def test_legacy_format_five_pickles(tmp_path: Path) -> None:
    p = tmp_path / "legacy.pt"
    torch.save({"w": torch.ones(4)}, p, _use_new_zipfile_serialization=False)
    f = scan(p).files[0]
    assert f.format == "torch-legacy" and f.status == "clean"
    assert len(f.streams) == 5  # magic, protocol, sys info, object, storage keys; raw storage bytes not walked
    data = p.read_bytes()
    # The oracle: pickle itself reads the same five streams back to back, each ending where ours does.
    bio = io.BytesIO(data)
    ends = []
    for _ in range(5):
        pickle.Unpickler(bio).load() if _ != 3 else _skip_persistent(bio)
        ends.append(bio.tell())
    assert [s.end for s in f.streams] == ends


def _skip_persistent(bio: io.BytesIO) -> None:
    class U(pickle.Unpickler):
        def persistent_load(self, pid: object) -> object:
            return None

        def find_class(self, module: str, name: str) -> object:
            # This is the test's own file written by torch.save a line above: no payload; return a stub callable.
            return lambda *a, **k: None

    U(bio).load()


def test_whole_module_pickle_is_unknown_not_dangerous(tmp_path: Path) -> None:
    p = tmp_path / "whole.pth"
    torch.save(torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.ReLU()), p)
    with pytest.raises(Exception):  # the oracle: torch's weights_only loader refuses it too
        torch.load(p, weights_only=True)
    f = scan(p).files[0]
    targets = {x.target for x in f.findings}
    assert "torch.nn.modules.linear.Linear" in targets and "torch.nn.modules.container.Sequential" in targets
    assert {x.severity for x in f.findings} == {Severity.unknown}
    assert f.status == "unknown"
    r = run_cli("scan", str(p))
    assert r.code == 1 and "torch.nn.modules.linear.Linear" in r.stdout


def test_offsets_match_pickletools(tmp_path: Path) -> None:
    class Payload:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            import os

            return (os.system, ("true",))  # never run: the file is only scanned

    data = pickle.dumps({"a": 1, "x": Payload(), "f": print}, protocol=4)
    p = tmp_path / "p.pkl"
    p.write_bytes(data)
    f = scan(p).files[0]
    expected = globals_by_pickletools(data)
    got = [(x.offset, x.target) for x in f.findings if x.kind == "global"]
    assert got == [(o, g) for o, g in expected if classify(g) is not None]
    sev = {x.target: x.severity for x in f.findings}
    assert sev[expected[0][1]] == Severity.dangerous  # posix.system
    assert sev["builtins.print"] == Severity.dangerous  # builtins beyond data types reach code


def test_npy_object_array(tmp_path: Path) -> None:
    np = pytest.importorskip("numpy")
    good = tmp_path / "plain.npy"
    np.save(good, np.arange(6, dtype=np.float32))
    assert scan(good).files[0].status == "clean"
    obj = tmp_path / "objects.npy"
    np.save(obj, np.array([{"a": 1}, print], dtype=object), allow_pickle=True)
    f = scan(obj).files[0]
    assert f.format == "npy" and any(x.target == "builtins.print" for x in f.findings)
    npz = tmp_path / "bundle.npz"
    np.savez(npz, a=np.arange(3), b=np.array([print], dtype=object))
    f = scan(npz).files[0]
    assert f.format == "npz" and any(x.target == "builtins.print" for x in f.findings)


def test_no_pickle_formats_scan_clean(tmp_path: Path) -> None:
    f = scan(FIXTURES / "tiny_seed.safetensors").files[0]
    assert f.status == "clean" and f.format == "safetensors" and "no pickle" in f.notes[0]
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    np = pytest.importorskip("numpy")
    w = numpy_helper.from_array(np.ones((2, 2), dtype=np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])],
        [w],
    )
    op = tmp_path / "m.onnx"
    onnx.save(helper.make_model(graph), op)
    assert scan(op).files[0].status == "clean"
    gguf = pytest.importorskip("gguf")
    gp = tmp_path / "m.gguf"
    writer = gguf.GGUFWriter(str(gp), "llama")
    writer.add_tensor("w", np.ones((4, 4), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    assert scan(gp).files[0].status == "clean"


def test_fail_closed_broken_after_global(tmp_path: Path) -> None:
    p = tmp_path / "b.pkl"
    p.write_bytes(b"\x80\x02cos\nsystem\nX\x04\x00\x00\x00true\x85R\xff\xff")
    report = scan(p)
    f = report.files[0]
    assert exit_code(report) == 1 and f.findings[0].target == "os.system" and f.error


def test_unreadable_pickle_is_never_clean(tmp_path: Path) -> None:
    p = tmp_path / "t.pkl"
    p.write_bytes(pickle.dumps(list(range(100)), protocol=2)[:-30])
    report = scan(p)
    assert exit_code(report) == 2 and report.files[0].status == "error"
    r = run_cli("scan", str(p))
    assert r.code == 2 and len(r.stderr.strip().splitlines()) == 1 and "t.pkl" in r.stderr


def test_ext_inst_obj_build(tmp_path: Path) -> None:
    cases = {
        "ext.pkl": (b"\x80\x02\x82\x01)R.", "<extension code 1>", Severity.unknown),
        "inst.pkl": (b"(S'x'\nimy.mod\nThing\n.", "my.mod.Thing", Severity.unknown),
        "obj.pkl": (b"\x80\x02(cmy.mod\nThing\no.", "my.mod.Thing", Severity.unknown),
        "build_module.pkl": (b"\x80\x02cos\npath\n}b.", "os.path", Severity.dangerous),
        "build_size.pkl": (b"\x80\x02ctorch\nSize\n)R}b.", "torch.Size.__setstate__", Severity.unknown),
        "call_result.pkl": (b"\x80\x02ccollections\nOrderedDict\n)R)R.", "<result of calling", Severity.unknown),
    }
    for name, (data, target, sev) in cases.items():
        p = tmp_path / name
        p.write_bytes(data)
        f = scan(p).files[0]
        hits = [x for x in f.findings if x.target.startswith(target)]
        assert hits and hits[0].severity == sev, (name, f.findings, f.error)
    f = scan(tmp_path / "build_module.pkl").files[0]
    assert any(x.kind == "build" and x.severity == Severity.dangerous for x in f.findings)


def test_stack_global_via_memo_and_dotted(tmp_path: Path) -> None:
    def sb(b: bytes) -> bytes:
        return b"\x8c" + bytes([len(b)]) + b

    # Strings memoized, popped, fetched back in the other order: a pattern matcher reading the two previous
    # strings sees ("system", "os") reversed or nothing at all; the symbolic stack sees os.system.
    data = b"\x80\x04" + sb(b"system") + b"\x94" + b"0" + sb(b"os") + b"\x94" + b"0" + b"h\x01h\x00\x93)R."
    p = tmp_path / "memo.pkl"
    p.write_bytes(data)
    assert scan(p).files[0].findings[0].target == "os.system"
    p2 = tmp_path / "dotted.pkl"
    p2.write_bytes(b"\x80\x04" + sb(b"torch") + sb(b"os.system") + b"\x93)R.")
    f = scan(p2).files[0]
    assert f.findings[0].target == "torch.os.system" and f.findings[0].severity == Severity.dangerous


def test_every_zip_member_and_concatenated_streams(tmp_path: Path) -> None:
    evil = b"\x80\x02cos\nsystem\nX\x04\x00\x00\x00true\x85R."
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("weird_folder/data.pkl", pickle.dumps({"a": 1}, protocol=2) + evil)
        zf.writestr("weird_folder/sub/other.PKL", evil)
        zf.writestr("weird_folder/data/0", evil)  # a pickle under a storage's name is read by content too
    p = tmp_path / "z.pth"
    p.write_bytes(buf.getvalue())
    f = scan(p).files[0]
    streams = {x.stream for x in f.findings}
    assert streams == {"weird_folder/data.pkl #2", "weird_folder/sub/other.PKL", "weird_folder/data/0"}, f.findings


def test_folder_scan_recursive_and_bounded(tmp_path: Path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    torch.save({"w": torch.ones(2)}, tmp_path / "a" / "ok.pth")
    (tmp_path / "a" / "b" / "evil.bin").write_bytes(b"\x80\x02cos\nsystem\nX\x04\x00\x00\x00true\x85R.")
    (tmp_path / "README.md").write_text("hi")
    (tmp_path / "a" / "loop").symlink_to(tmp_path)  # directory links are not followed: no loop
    report = scan(tmp_path)
    assert exit_code(report) == 1
    assert sorted(Path(f.path).name for f in report.files) == ["evil.bin", "ok.pth"]
    r = run_cli("scan", str(tmp_path), "--json")
    doc = json.loads(r.stdout)
    assert r.code == 1 and doc["command"] == "scan" and doc["schema_version"] == 1
    assert {f["status"] for f in doc["files"]} == {"clean", "dangerous"}


def test_json_schema(tmp_path: Path) -> None:
    p = tmp_path / "e.pkl"
    p.write_bytes(b"\x80\x02cbuiltins\neval\nX\x01\x00\x00\x001\x85R.")
    r = run_cli("scan", str(p), "--json")
    doc = json.loads(r.stdout)
    assert r.code == 1
    f = doc["files"][0]
    assert set(f) >= {"path", "format", "status", "globals", "streams", "findings", "notes", "error"}
    assert f["findings"][0] == {
        "stream": "pickle",
        "offset": 2,
        "opcode": "GLOBAL",
        "kind": "global",
        "target": "builtins.eval",
        "severity": "dangerous",
        "reason": f["findings"][0]["reason"],
    }


def test_text_and_missing(tmp_path: Path) -> None:
    p = tmp_path / "notes.pkl"
    p.write_text("hello world\n")
    with pytest.raises(InspectError):
        scan(p)
    with pytest.raises(InspectError):
        scan(tmp_path / "nope.pth")


def test_allowlist_covers_torch_weights_only() -> None:
    """Every global torch 2.13's weights_only loader accepts is on our allowlist (the reference)."""
    from torch._weights_only_unpickler import _get_allowed_globals

    missing = set(_get_allowed_globals()) - SAFE_GLOBALS
    assert not missing, sorted(missing)


@pytest.mark.parametrize(
    "name",
    ["os.system", "posix.system", "subprocess.Popen", "builtins.exec", "builtins.getattr", "runpy._run_code",
     "pty.spawn", "socket.socket", "webbrowser.open", "pickle.loads", "builtins.__import__", "nt.system",
     "pathlib.os.system", "torch.hub.load", "numpy.load", "pip.main", "operator.attrgetter"],
)  # fmt: skip
def test_dangerous_names(name: str) -> None:
    assert classify(name) == Severity.dangerous


def test_struct_sanity() -> None:
    assert struct.calcsize("<Q") == 8


def legacy_tar(tmp_path: Path, storage_args: bytes | None = None, obj: bytes | None = None) -> Path:
    """The tar-wrapped legacy format laid out as torch/serialization.py `legacy_load` reads it."""
    import tarfile

    storages = (
        pickle.dumps(1, protocol=2)
        + (storage_args or pickle.dumps((0, "cpu", torch.FloatStorage), protocol=2))
        + struct.pack("<q", 4)
        + b"\0" * 16
        + pickle.dumps([], protocol=2)
    )
    tensors = (
        pickle.dumps(1, protocol=2)
        + pickle.dumps((1, 0, torch.FloatTensor), protocol=2)
        + struct.pack("<ii", 1, 0)
        + struct.pack("<qqq", 4, 1, 0)
    )
    members = {
        "sys_info": pickle.dumps({"protocol_version": 1001, "little_endian": True}, protocol=2),
        "pickle": obj or pickle.dumps({"w": 1}, protocol=2),
        "storages": storages,
        "tensors": tensors,
    }
    p = tmp_path / "old.tar"
    with tarfile.open(p, "w", format=tarfile.PAX_FORMAT) as tar:
        for name, blob in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
    return p


def test_legacy_tar_every_member_and_record(tmp_path: Path) -> None:
    f = scan(legacy_tar(tmp_path)).files[0]
    assert f.format == "torch-legacy-tar" and f.status == "clean", (f.error, f.findings)
    # sys_info, pickle, storages: count + 1 record + views, tensors: count + 1 record
    assert [s.name for s in f.streams] == [
        "sys_info", "pickle", "storages #1", "storages #2", "storages #3", "tensors #1", "tensors #2",
    ]  # fmt: skip
    evil = b"\x80\x02cos\nsystem\nX\x04\x00\x00\x00true\x85R."
    (tmp_path / "e").mkdir()
    f = scan(legacy_tar(tmp_path / "e", storage_args=evil)).files[0]
    assert any(x.target == "os.system" and x.stream == "storages #2" for x in f.findings)
    (tmp_path / "o").mkdir()
    f = scan(legacy_tar(tmp_path / "o", obj=evil)).files[0]
    assert [x.stream for x in f.findings] == ["pickle"]


def _differential_objects() -> dict[str, object]:
    import collections

    np = pytest.importorskip("numpy")
    lin = torch.nn.Linear(3, 2)
    opt = torch.optim.SGD(lin.parameters(), lr=0.1, momentum=0.9)
    lin(torch.ones(1, 3)).sum().backward()
    opt.step()
    return {
        "state_dict": lin.state_dict(),
        "training_ckpt": {"model": lin.state_dict(), "optimizer": opt.state_dict(), "epoch": 3, "loss": 0.5},
        "nested": {"a": [torch.ones(2), (torch.zeros(1, dtype=torch.int8), {"b": torch.arange(3)})]},
        "ordered_counter": {"o": collections.OrderedDict(x=1), "c": collections.Counter("aab")},
        "bytes_set_complex": {"b": b"\x00\xff", "s": {1, 2}, "z": 1 + 2j, "ba": bytearray(b"x")},
        "parameter": torch.nn.Parameter(torch.ones(2)),
        "bf16_view": torch.arange(12, dtype=torch.bfloat16).reshape(3, 4).t(),
        "whole_module": torch.nn.Sequential(torch.nn.Linear(2, 2)),
        "numpy_scalar": {"acc": np.float64(0.9)},
        "numpy_array": {"x": np.arange(3)},
        "function": {"f": torch.nn.functional.relu},
        "slice": {"s": slice(1, 5)},
        "frozenset": {"s": frozenset({1})},
        "dtype_obj": {"d": torch.float16, "dev": torch.device("cpu")},
    }


@pytest.mark.parametrize("name", list(_differential_objects()))
def test_differential_against_weights_only(tmp_path: Path, name: str) -> None:
    """scan says clean exactly when torch's own weights_only loader accepts the file (same torch writes it)."""
    obj = _differential_objects()[name]
    p = tmp_path / f"{name}.pth"
    torch.save(obj, p)
    try:
        torch.load(p, weights_only=True)
        accepted = True
    except Exception:
        accepted = False
    f = scan(p).files[0]
    assert (f.status == "clean") == accepted, (name, accepted, f.status, [x.target for x in f.findings])
