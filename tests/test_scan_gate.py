"""`mi scan` as a security gate: the bypasses of issue 17, each exits 1 naming the global (or 0 on purpose).

Every file is written here: payloads are hand-written pickles (each spelled out), containers by `zipfile`,
torch archives by `torch.save` / `torch.jit.save` themselves, numpy's own Python 2 test data from numpy's
package. CPython's own unpickler is the oracle that each hand-written payload really imports what the test
says (a recording `find_class` that aborts, so nothing runs).
"""

from __future__ import annotations

import io
import pickle
import resource
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, run_cli

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")

# picklescan's tests/data/malicious1_wrong_ext.zip: `builtins.eval("...")` as a protocol 0 pickle.
EVAL = b"cbuiltins\neval\n(S'print(1)'\ntR."
# Protocol 2: os.system("id").
SYSTEM = b"\x80\x02cos\nsystem\nq\x00X\x02\x00\x00\x00idq\x01\x85q\x02Rq\x03."
# picklescan's tests/data2/malicious23.pkl shape (GHSA-9gvj-pp9x-gcfr): STACK_GLOBAL fed by protocol 0 STRINGs.
STRING_STACK_GLOBAL = b"S'os'\nS'system'\n\x93S'id'\n\x85R."


def first_global(data: bytes) -> str:
    """The global CPython's own unpickler reaches first (find_class records it and aborts)."""
    seen: list[str] = []

    class Rec(pickle.Unpickler):
        def find_class(self, module: str, name: str) -> Any:
            seen.append(f"{module}.{name}")
            raise RuntimeError("stop")

    with pytest.raises(RuntimeError):
        Rec(io.BytesIO(data)).load()
    return seen[0]


def scan(*args: str) -> tuple[int, str]:
    r = run_cli("scan", *args, env={"COLUMNS": "200"})
    return r.code, r.stdout + r.stderr


def write_zip(path: Path, members: dict[str, bytes], compress: int = zipfile.ZIP_STORED) -> Path:
    with zipfile.ZipFile(path, "w", compress) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return path


@pytest.mark.parametrize("member", ["data.txt", "weights", "model/weights.bin", "a/b/c/d/e.json"])
@pytest.mark.parametrize("compress", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])
def test_zip_member_of_any_name(tmp_path: Path, member: str, compress: int) -> None:
    assert first_global(EVAL) == "builtins.eval"
    path = write_zip(tmp_path / "malicious1_wrong_ext.zip", {member: EVAL}, compress)
    code, out = scan(str(path))
    assert code == 1
    assert "builtins.eval" in out and member in out


def test_torch_archive_with_an_extra_pickle_member(tmp_path: Path) -> None:
    path = tmp_path / "model.pt"
    torch.save({"w": torch.ones(3)}, path)
    assert scan(str(path))[0] == 0
    with zipfile.ZipFile(path, "a") as z:  # CVE-2025-1889's class: a pickle under a name no scanner reads
        prefix = z.namelist()[0].split("/")[0]
        z.writestr(f"{prefix}/extra/config.txt", SYSTEM)
    code, out = scan(str(path))
    assert code == 1
    assert "os.system" in out and f"{prefix}/extra/config.txt" in out


def test_nested_zip(tmp_path: Path) -> None:
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as z:
        z.writestr("weights", SYSTEM)
    path = write_zip(tmp_path / "outer.zip", {"bundle.bin": inner.getvalue()}, zipfile.ZIP_DEFLATED)
    code, out = scan(str(path))
    assert code == 1 and "os.system" in out and "bundle.bin/weights" in out


def test_tensor_data_members_stay_clean(tmp_path: Path) -> None:
    """Storage members are read by content too; real tensor data (random floats) is not taken for a pickle."""
    torch.manual_seed(0)
    path = tmp_path / "big.pt"
    torch.save({f"t{i}": torch.randn(64, 64) for i in range(200)} | {"b": torch.arange(4096)}, path)
    code, out = scan(str(path))
    assert code == 0, out


def test_protocol0_strings_feed_stack_global(tmp_path: Path) -> None:
    assert first_global(STRING_STACK_GLOBAL) == "os.system"
    path = tmp_path / "malicious23.pkl"
    path.write_bytes(STRING_STACK_GLOBAL)
    code, out = scan(str(path))
    assert code == 1 and "os.system" in out and "STACK_GLOBAL" in out


class Net(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(3, 2)
        self.ks = [1, 2]
        self.ts = [torch.ones(1)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin(x) * self.ks[0] + self.ts[0]


def _torchscript(tmp_path: Path) -> list[Path]:
    script, trace = tmp_path / "script.pt", tmp_path / "trace.pt"
    torch.jit.save(torch.jit.script(Net()), script)
    torch.jit.save(torch.jit.trace(torch.nn.Linear(3, 2), torch.ones(1, 3)), trace)
    return [script, trace]


def test_torchscript_is_code_and_nothing_else(tmp_path: Path) -> None:
    from modelscope_inspect.api import scan_paths
    from modelscope_inspect.loaders.safety import Severity
    from modelscope_inspect.loaders.scanner import TORCHSCRIPT_CODE

    for path in _torchscript(tmp_path):
        report = scan_paths(str(path))
        f = report.files[0]
        assert f.format == "torchscript"
        assert f.findings, "the archive's code must be a finding"
        assert {x.severity for x in f.findings} == {Severity.code}, [x.target for x in f.findings]
        assert {x.reason for x in f.findings} == {TORCHSCRIPT_CODE}
        with zipfile.ZipFile(path) as z:
            code_files = {n.split("/code/", 1)[1] for n in z.namelist() if "/code/" in n}
        assert {x.target for x in f.findings} == code_files
        code, out = scan(str(path))
        assert code == 1 and "TorchScript code: runs on torch.jit.load / torch.load" in out
        assert "build_intlist" not in out.split("severity", 1)[1]
        assert scan("--allow", "torchscript", str(path))[0] == 0
        assert scan("--allow", "remote-code", str(path))[0] == 1


def test_torchscript_helpers_outside_torchscript_are_reported(tmp_path: Path) -> None:
    payload = b"\x80\x02ctorch.jit._pickle\nbuild_intlist\n]K\x01a\x85R."
    path = tmp_path / "x.pkl"
    path.write_bytes(payload)
    code, out = scan(str(path))
    assert code == 1 and "torch.jit._pickle.build_intlist" in out


def test_torchscript_archive_with_a_payload_still_names_it(tmp_path: Path) -> None:
    script = _torchscript(tmp_path)[0]
    with zipfile.ZipFile(script, "a") as z:
        z.writestr("script/extra/x", SYSTEM)
    code, out = scan("--allow", "torchscript", str(script))
    assert code == 1 and "os.system" in out


def test_numpy_python2_long_header() -> None:
    np = pytest.importorskip("numpy")
    data = Path(np.__file__).parent / "lib" / "tests" / "data" / "win64python2.npy"
    if not data.exists():
        pytest.skip("numpy's test data is not installed")
    assert b"(2L,)" in data.read_bytes()[:128]
    code, out = scan(str(data))
    assert code == 0, out


def test_numpy_object_array_with_python2_long_header(tmp_path: Path) -> None:
    np = pytest.importorskip("numpy")
    src = Path(np.__file__).parent / "lib" / "tests" / "data" / "py2-objarr.npy"
    if not src.exists():
        pytest.skip("numpy's test data is not installed")
    raw = src.read_bytes()
    assert b"'shape': (4,), }  " in raw
    path = tmp_path / "objarr.npy"
    path.write_bytes(raw.replace(b"'shape': (4,), }  ", b"'shape': (4L,), } ", 1))  # same header length
    from modelscope_inspect.api import scan_paths

    assert scan(str(path))[0] == 1  # the object array's pickle is read (its numpy globals are not a checkpoint's)
    f = scan_paths(str(path)).files[0]
    assert f.error is None and "numpy.ndarray" in f.globals and "numpy.dtype" in f.globals


def _peak_rss_mib(*args: str) -> tuple[int, float]:
    code = (
        "import resource, subprocess, sys\n"
        "p = subprocess.run(sys.argv[1:], capture_output=True)\n"
        "print(p.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
    )
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=ROOT, check=True)
    rc, kib = out.stdout.split()
    return int(rc), int(kib) / 1024


def test_zip_bomb_inspect_peak_rss(tmp_path: Path) -> None:
    """A deflated data.pkl that inflates to 1 GiB: `mi inspect` refuses it under 100 MiB peak RSS."""
    bomb = tmp_path / "bomb.pt"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as z, z.open("archive/data.pkl", "w") as fh:
        chunk = b"\x00" * (1 << 20)
        for _ in range(1024):
            fh.write(chunk)
    assert bomb.stat().st_size < 2 << 20
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # noqa: F841 - the parent is not measured
    for cmd in ("inspect", "scan"):
        rc, peak = _peak_rss_mib(sys.executable, "-m", "modelscope_inspect", cmd, str(bomb))
        assert rc == 2, cmd
        assert peak <= 100, f"mi {cmd} of a zip bomb peaked at {peak:.0f} MiB"


_MEASURE = """
import json, resource, subprocess, sys, time
t0 = time.monotonic()
p = subprocess.run(sys.argv[1:], capture_output=True, text=True, timeout=60)
wall = time.monotonic() - t0
docs = [json.loads(line) for line in p.stdout.splitlines() if line.startswith("{")]
print(json.dumps({"rc": p.returncode, "kib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
                  "seconds": [d["seconds"] for d in docs], "wall": wall}))
"""


def test_hostile_corpus_peak_rss_and_time(tmp_path: Path) -> None:
    """Every hostile-corpus file, `mi inspect` and `mi scan` in one process per file: ≤ 100 MiB peak RSS (the
    interpreter and its imports included) and ≤ 5 s per command."""
    import json

    from tests.hostile.corpus import malformed_cases
    from tests.hostile.harness import child_env

    worst: list[tuple[float, str]] = []
    for case in malformed_cases(tmp_path / "corpus"):
        argv = [["inspect", str(case.path)], ["scan", str(case.path)]]
        cmd = [sys.executable, "-c", _MEASURE, sys.executable, "-m", "tests.hostile.driver", json.dumps(argv)]
        out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=child_env(), check=True)
        doc = json.loads(out.stdout)
        mib = doc["kib"] / 1024
        worst.append((mib, case.name))
        assert doc["rc"] == 0 and len(doc["seconds"]) == 2, (case.name, doc)
        assert mib <= 100, f"{case.name}: peak RSS {mib:.0f} MiB"
        assert max(doc["seconds"]) <= 5, f"{case.name}: {doc['seconds']} s"
    print("peak RSS, worst five:", sorted(worst, reverse=True)[:5])


def _keras_models(tmp_path: Path) -> dict[str, Path]:
    import os

    os.environ.setdefault("KERAS_BACKEND", "torch")
    keras = pytest.importorskip("keras")
    lam = keras.Sequential(
        [keras.Input((3,)), keras.layers.Lambda(lambda x: x * 2, name="double"), keras.layers.Dense(2)]
    )
    clean = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    out = {
        "lambda.keras": tmp_path / "lambda.keras",
        "clean.keras": tmp_path / "clean.keras",
        "lambda.h5": tmp_path / "lambda.h5",
        "clean.h5": tmp_path / "clean.h5",
    }
    lam.save(out["lambda.keras"])
    clean.save(out["clean.keras"])
    lam.save(out["lambda.h5"])
    clean.save(out["clean.h5"])
    return out


def test_keras_lambda_layers(tmp_path: Path) -> None:
    files = _keras_models(tmp_path)
    for name in ("lambda.keras", "lambda.h5"):
        code, out = scan(str(files[name]))
        assert code == 1 and "Lambda layer double" in out, (name, out)
    for name in ("clean.keras", "clean.h5"):
        code, out = scan(str(files[name]))
        assert code == 0, (name, out)


def _varint(n: int) -> bytes:
    out = b""
    while True:
        b, n = n & 0x7F, n >> 7
        out += bytes([b | (0x80 if n else 0)])
        if not n:
            return out


def _len_field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _saved_model(nodes: list[tuple[str, str]], function_nodes: list[tuple[str, str]] = ()) -> bytes:  # type: ignore[assignment]
    """A minimal SavedModel, hand-built in the protobuf wire format (tensorflow/core/protobuf/saved_model.proto,
    meta_graph.proto, graph.proto, node_def.proto, function.proto): SavedModel{schema_version=1,
    meta_graphs=2{graph_def=2{node=1{name=1, op=2}..., library=2{function=1{node_def=3{name=1, op=2}}}}}}."""
    node = lambda name, op: _len_field(1, name.encode()) + _len_field(2, op.encode())  # noqa: E731
    graph = b"".join(_len_field(1, node(n, o)) for n, o in nodes)
    if function_nodes:
        fn = b"".join(_len_field(3, node(n, o)) for n, o in function_nodes)
        graph += _len_field(2, _len_field(1, fn))
    return b"\x08\x01" + _len_field(2, _len_field(2, graph))


def test_savedmodel_unsafe_ops(tmp_path: Path) -> None:
    d = tmp_path / "model"
    d.mkdir()
    pb = d / "saved_model.pb"
    pb.write_bytes(_saved_model([("x", "Placeholder"), ("steal", "ReadFile"), ("y", "Identity")]))
    code, out = scan(str(pb))
    assert code == 1 and "ReadFile node steal" in out
    pb.write_bytes(_saved_model([("x", "Placeholder")], [("f", "PyFunc")]))
    code, out = scan(str(pb))
    assert code == 1 and "PyFunc node f" in out
    pb.write_bytes(_saved_model([("x", "Placeholder"), ("y", "Identity")]))
    assert scan(str(pb))[0] == 0
    pb.write_bytes(_saved_model([("x", "Placeholder")])[:-3])  # cut: never clean
    assert scan(str(pb))[0] == 2
