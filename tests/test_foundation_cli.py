"""CLI behaviour, JSON schema, import laziness, header-only reading and the dtype table."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import modelscope_inspect as mi
from benchmarks.layouts import LLAMA2_7B, numel, write_sparse_safetensors
from modelscope_inspect.dtypes import DTYPES, lookup
from tests.conftest import FIXTURES, ROOT, run_cli

SCHEMA_KEYS = {
    "schema_version", "command", "format", "path", "files", "file_bytes", "total_params", "total_bytes",
    "total_elements", "storage_bytes", "by_dtype", "groups", "tree", "tensors", "metadata", "details", "warnings",
}  # fmt: skip


def test_json_schema_and_arithmetic() -> None:
    r = run_cli("inspect", str(FIXTURES / "tied_gpt2.bin"), "--json")
    assert r.code == 0
    doc = json.loads(r.stdout)
    assert set(doc) >= SCHEMA_KEYS
    assert doc["schema_version"] == 1 and doc["command"] == "inspect"
    # Totals are over unique storage: rows minus shared rows sum to the total.
    assert sum(t["numel"] for t in doc["tensors"] if not t["shared_with"]) == doc["total_params"]
    assert sum(g["params"] for g in doc["groups"]) == doc["total_params"]
    assert sum(v["params"] for v in doc["by_dtype"].values()) == doc["total_params"]
    assert abs(sum(g["share"] for g in doc["groups"]) - 1) < 1e-4
    tensor = next(t for t in doc["tensors"] if t["name"] == "lm_head.weight")
    assert tensor["shared_with"] == "transformer.wte.weight"
    assert {"name", "shape", "dtype", "numel", "nbytes", "shared_with"} <= set(tensor)


def test_tensors_filter_sort() -> None:
    r = run_cli("inspect", str(FIXTURES / "tiny_seed.pth"), "--filter", "*norm1*", "--sort", "name")
    assert r.code == 0
    table = r.stdout.split("tensors", 1)[1]
    rows = [line.split()[0] for line in table.strip().splitlines()[1:]]
    assert rows == sorted(rows) and rows and all("norm1" in n for n in rows)
    doc = json.loads(run_cli("inspect", str(FIXTURES / "tiny_seed.pth"), "--json", "--sort", "bytes").stdout)
    sizes = [t["nbytes"] for t in doc["tensors"]]
    assert sizes == sorted(sizes, reverse=True)


def test_depth_changes_tree() -> None:
    shallow = json.loads(run_cli("inspect", "examples/tiny-gpt2", "--json", "--depth", "1").stdout)["tree"]
    deep = json.loads(run_cli("inspect", "examples/tiny-gpt2", "--json", "--depth", "5").stdout)["tree"]

    def height(node: dict) -> int:  # type: ignore[type-arg]
        return 1 + max((height(c) for c in node.get("children", [])), default=0)

    assert height(shallow) < height(deep)


def test_usage_errors_exit_2() -> None:
    assert run_cli("inspect").code == 2
    assert run_cli("inspect", "x", "--depth", "0").code == 2
    assert run_cli("inspect", "x", "--sort", "weird").code == 2


def test_version_and_module_entry() -> None:
    out = subprocess.run([sys.executable, "-m", "modelscope_inspect", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.startswith("mi ")


BLOCKER = textwrap.dedent(
    """
    import sys
    BLOCKED = ("torch", "numpy", "onnx", "transformers", "safetensors", "graphviz", "gguf")
    class Block:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ImportError(f"blocked for this test: {name}")
            return None
    sys.meta_path.insert(0, Block())
    sys.argv = ["mi", *sys.argv[1:]]
    from modelscope_inspect.cli import main
    try:
        main()
    finally:
        heavy = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
        assert not heavy, heavy
    """
)


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["inspect", str(FIXTURES / "tiny_seed.safetensors")],
        ["inspect", str(FIXTURES / "tiny_seed.pth"), "--json"],
        ["inspect", str(ROOT / "examples" / "tiny-gpt2")],
    ],
)
def test_runs_without_heavy_dependencies(args: list[str]) -> None:
    out = subprocess.run([sys.executable, "-c", BLOCKER, *args], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr


def test_sparse_7b_is_header_only(tmp_path: Path) -> None:
    path = tmp_path / "llama-2-7b.safetensors"
    data_bytes = write_sparse_safetensors(path, LLAMA2_7B, "BF16")
    assert path.stat().st_size > 12 * 2**30  # the real size (12.6 GiB), but sparse on disk
    code = textwrap.dedent(
        f"""
        import time, json
        def hwm():
            # VmHWM is this process's own peak (ru_maxrss would include the parent's size at fork time).
            for line in open("/proc/self/status"):
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
        t = time.perf_counter()
        import modelscope_inspect as mi
        inv = mi.load({str(path)!r})
        print(json.dumps({{"params": inv.total_params, "bytes": inv.total_bytes,
            "seconds": time.perf_counter() - t,
            "rss_mib": hwm() / 1024}}))
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout)
    assert res["params"] == sum(numel(s) for _, s in LLAMA2_7B) == 6_738_415_616
    assert res["bytes"] == data_bytes
    # Bounded memory whatever the file size: the process never holds weights (rss includes the interpreter).
    assert res["rss_mib"] < 64, res


def test_dtype_table_matches_torch() -> None:
    torch = pytest.importorskip("torch")
    names = "float64 float32 float16 bfloat16 float8_e4m3fn float8_e5m2 int64 int32 int16 int8 uint8 bool complex64"
    for name in (*names.split(), "complex128", "uint16", "uint32", "uint64"):
        dt = getattr(torch, name)
        assert lookup(name).bits == torch.empty(0, dtype=dt).element_size() * 8, name
    for st_name, canonical in (("F32", "f32"), ("BF16", "bf16"), ("F8_E4M3", "f8_e4m3fn"), ("I4", "i4"), ("F4", "f4")):
        assert lookup(st_name).name == canonical
    assert {"f64", "f32", "f16", "bf16", "f8_e4m3fn", "f8_e5m2", "i64", "i32", "i16", "i8", "u8", "bool", "c64",
            "c128"} <= set(DTYPES)  # fmt: skip


def test_python_api() -> None:
    inv = mi.load("examples/tiny-gpt2")
    assert inv.total_params == 11904 and inv.by_dtype["f32"].nbytes == 47616
    assert isinstance(inv, mi.TensorInventory)


def test_single_command_app_behaves_like_the_full_one() -> None:
    from modelscope_inspect.cli import _app_for, app

    assert _app_for(["mi", "--help"]) is app and _app_for(["mi", "nope"]) is app
    single = _app_for(["mi", "inspect"])
    assert [c.name for c in single.registered_commands] == ["inspect"]
    path = str(FIXTURES / "tied_gpt2.bin")
    whole = subprocess.run(
        [sys.executable, "-m", "modelscope_inspect", "inspect", path, "--json"], capture_output=True, text=True
    )
    assert whole.returncode == 0
    assert json.loads(whole.stdout) == json.loads(run_cli("inspect", path, "--json").stdout)
    bad = subprocess.run(
        [sys.executable, "-m", "modelscope_inspect", "inspect", "--depth", "0", path], capture_output=True, text=True
    )
    assert bad.returncode == 2 and "--depth" in bad.stderr
