"""`mi graph`: structure graphs of state dicts / safetensors and the graph of ONNX files, as DOT, PNG and SVG.

Oracles: tensor names and counts come from torch / safetensors themselves (the files' writers), ONNX node and
initializer counts from `onnx.load`; `dot` itself validates the DOT text; PNGs are checked by their magic
bytes and SVGs by parsing them.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.conftest import FIXTURES, ROOT, run_cli

DOT = shutil.which("dot")
needs_dot = pytest.mark.skipif(DOT is None, reason="Graphviz `dot` is not installed (apt-get install graphviz)")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
ROW_ID = re.compile(r'ID="t\d+_(\d+)"')


def _state_dict_names(path: Path) -> list[str]:
    """Oracle: the tensor names as torch or safetensors read them."""
    if path.is_dir():
        path = path / "model.safetensors"
    if path.suffix == ".safetensors":
        from safetensors import safe_open

        with safe_open(str(path), "pt") as f:
            return list(f.keys())
    torch = pytest.importorskip("torch")
    return list(torch.load(path, weights_only=True, map_location="meta").keys())


def _dot_accepts(text: str) -> None:
    assert DOT is not None
    proc = subprocess.run([DOT, "-Tcanon"], input=text.encode(), capture_output=True, timeout=60)
    assert proc.returncode == 0, proc.stderr.decode()


def _svg_nodes(path: Path) -> int:
    root = ET.parse(path).getroot()
    ns = "{http://www.w3.org/2000/svg}"
    return sum(1 for g in root.iter(f"{ns}g") if g.get("class") == "node")


STRUCTURE_INPUTS = [FIXTURES / "tied_gpt2.bin", ROOT / "examples" / "tiny-gpt2", FIXTURES / "tiny_seed.pth"]


@pytest.mark.parametrize("src", STRUCTURE_INPUTS, ids=lambda p: p.name)
def test_structure_dot_rows_cover_every_tensor(src: Path, tmp_path: Path) -> None:
    names = _state_dict_names(src)
    r = run_cli("graph", str(src), "--dot", "-o", str(tmp_path / "g.dot"), "--json")
    assert r.code == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["schema_version"] == 1 and doc["command"] == "graph" and doc["kind"] == "structure"
    text = (tmp_path / "g.dot").read_text()
    # Folded rows stand for several tensors (`h.0-1 ×2`: one row, 2 tensors); together they cover the file.
    covered = [int(n) for n in ROW_ID.findall(text)]
    assert sum(covered) == len(names)
    assert len(covered) < len(names)  # every one of these models has repeated blocks to fold
    assert doc["details"]["tensors"] == len(names)
    # Unfolded, there is exactly one row per tensor.
    r = run_cli("graph", str(src), "--dot", "--no-collapse")
    assert r.code == 0, r.stderr
    assert [int(n) for n in ROW_ID.findall(r.stdout)] == [1] * len(names)
    # Every tensor's leaf name and shape is written (e.g. `weight` … `300×16`).
    torch = pytest.importorskip("torch")
    if src.suffix in (".bin", ".pth"):
        sd = torch.load(src, weights_only=True, map_location="meta")
        for name, t in sd.items():
            shape = "×".join(str(d) for d in t.shape) or "scalar"
            assert f">{shape}<" in r.stdout, name


@needs_dot
@pytest.mark.parametrize("src", STRUCTURE_INPUTS, ids=lambda p: p.name)
def test_structure_png_svg_dot_are_valid(src: Path, tmp_path: Path) -> None:
    before = hashlib.sha256(src.read_bytes()).hexdigest() if src.is_file() else None
    outs = {}
    for fmt in ("png", "svg", "dot"):
        out = tmp_path / f"g.{fmt}"
        r = run_cli("graph", str(src), f"--{fmt}", "-o", str(out), "--json")
        assert r.code == 0, r.stderr
        outs[fmt] = (out, json.loads(r.stdout))
    assert outs["png"][0].read_bytes()[:8] == PNG_MAGIC
    _dot_accepts(outs["dot"][0].read_text())
    # The SVG parses and holds exactly the nodes the DOT declares.
    assert _svg_nodes(outs["svg"][0]) == outs["svg"][1]["nodes"] == outs["dot"][1]["nodes"]
    if before is not None:
        assert hashlib.sha256(src.read_bytes()).hexdigest() == before  # input never modified


def test_tied_weights_are_drawn_as_shared_storage() -> None:
    r = run_cli("graph", str(FIXTURES / "tied_gpt2.bin"), "--dot")
    assert r.code == 0
    assert "tied → transformer.wte.weight" in r.stdout
    assert r.stdout.count("shares storage") == 1
    r = run_cli("graph", str(ROOT / "examples" / "tiny-gpt2"), "--dot")
    assert "shares storage" not in r.stdout


def test_folded_block_label_and_shares() -> None:
    r = run_cli("graph", str(FIXTURES / "tiny_seed.pth"), "--dot")
    assert r.code == 0
    assert "layers.0-1 ×2" in r.stdout
    # Shares printed on nodes are the module tree's: fc_out holds 3,400 of 13,288 params = 25.6%.
    assert "25.6%" in r.stdout and "13,288 params" in r.stdout


def test_depth_collapses_modules_and_still_covers_every_tensor() -> None:
    names = _state_dict_names(FIXTURES / "tiny_seed.pth")
    r = run_cli("graph", str(FIXTURES / "tiny_seed.pth"), "--dot", "--depth", "1")
    assert r.code == 0
    rows = [int(n) for n in ROW_ID.findall(r.stdout)]
    collapsed = [int(n) for n in re.findall(r'id="cm\d+_(\d+)"', r.stdout)]
    assert collapsed  # transformer_decoder is drawn as one node
    assert sum(rows) + sum(collapsed) == len(names)


def test_automatic_depth_keeps_big_graphs_small() -> None:
    import modelscope_inspect as mi
    from modelscope_inspect.render.graph.structure import structure_graph

    inv = mi.load(str(FIXTURES / "tiny_seed.pth"))
    full = structure_graph(inv, collapse=False)
    small = structure_graph(inv, collapse=False, max_nodes=4)
    assert small.graph.n_nodes <= 4 < full.graph.n_nodes
    assert small.tensors_covered == full.tensors_covered == len(inv.tensors)
    assert any("--depth" in n for n in small.notes)


def test_module_classes_become_labels() -> None:
    from modelscope_inspect.inventory import TensorRecord, TorchInfo, build_inventory
    from modelscope_inspect.render.graph.structure import structure_graph

    def rec(name: str, shape: tuple[int, ...], off: int) -> TensorRecord:
        n = 1
        for d in shape:
            n *= d
        return TensorRecord(name, shape, "f32", n, 4 * n, name, 0, "m.pth")

    recs = [rec("enc.0.weight", (4, 4), 0), rec("enc.1.weight", (4, 4), 0), rec("head.weight", (2, 4), 0)]
    types = {"": "my.pkg.Net", "enc.0": "torch.nn.modules.linear.Linear", "head": "torch.nn.modules.linear.Linear"}
    inv = build_inventory(format="torch-zip", path="m.pth", files=[], records=recs, storage_bytes=4 * 40,
                          torch=TorchInfo(module_types=types))  # fmt: skip
    text = structure_graph(inv).graph.to_dot()
    assert "<I>Linear</I>" in text and "m.pth (Net)" in text


# ---- ONNX -----------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small two-block model exported by torch.onnx (TorchScript exporter: `/block.0/fc/Gemm` node names)."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnx")
    from torch import nn

    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(8, 8)
            self.norm = nn.LayerNorm(8)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.norm(torch.relu(self.fc(x)) + x)

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.block = nn.Sequential(Block(), Block())
            self.head = nn.Linear(8, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.head(self.block(x)).softmax(-1)

    out = tmp_path_factory.mktemp("onnx") / "net.onnx"
    torch.manual_seed(0)
    torch.onnx.export(Net().eval(), (torch.randn(2, 8),), str(out), dynamo=False, input_names=["x"],
                      output_names=["probs"], opset_version=17)  # fmt: skip
    return out


def _onnx_nodes(path: Path) -> tuple[int, int, int]:
    import onnx

    m = onnx.load(str(path))
    consts = sum(1 for n in m.graph.node if n.op_type == "Constant")
    return len(m.graph.node), len(m.graph.initializer), consts


def test_onnx_graph_draws_every_operator(small_onnx: Path) -> None:
    n_nodes, n_inits, n_consts = _onnx_nodes(small_onnx)
    r = run_cli("graph", str(small_onnx), "--dot", "--no-collapse", "--json")
    assert r.code == 0, r.stderr
    doc = json.loads(r.stdout)
    text = doc["dot"]
    assert doc["kind"] == "onnx"
    assert len(re.findall(r'id="op:\d+"', text)) == n_nodes
    assert len(re.findall(r'id="init:\d+"', text)) == n_inits
    # Folded (default): initializers and Constants go into their consumer; the operators are all still drawn.
    r = run_cli("graph", str(small_onnx), "--dot")
    assert len(re.findall(r'id="op:\d+"', r.stdout)) == n_nodes - n_consts
    assert not re.findall(r'id="init:\d+"', r.stdout)
    assert "Gemm" in r.stdout and "LayerNormalization" in r.stdout
    # Clusters per module scope from the exporter's `/block/block.0/fc/Gemm` names, edges labelled with shapes.
    assert "<B>block.0</B>" in r.stdout and "<B>head</B>" in r.stdout
    assert 'label=" 2×8"' in r.stdout


def test_onnx_depth_groups_scopes(small_onnx: Path) -> None:
    n_nodes, _, n_consts = _onnx_nodes(small_onnx)
    r = run_cli("graph", str(small_onnx), "--dot", "--depth", "1", "--json")
    doc = json.loads(r.stdout)
    text = doc["dot"]
    ops = len(re.findall(r'id="op:\d+"', text))
    grouped = [int(n) for n in re.findall(r'id="scope:(\d+)"', text)]
    assert len(grouped) == 2  # block.0 and block.1 inside the `block` cluster
    assert ops + sum(grouped) + n_consts == n_nodes
    assert doc["details"]["operators"] == n_nodes


@needs_dot
def test_onnx_png_svg_dot_are_valid(small_onnx: Path, tmp_path: Path) -> None:
    for fmt in ("png", "svg", "dot"):
        r = run_cli("graph", str(small_onnx), f"--{fmt}", "-o", str(tmp_path / f"g.{fmt}"))
        assert r.code == 0, r.stderr
    assert (tmp_path / "g.png").read_bytes()[:8] == PNG_MAGIC
    _dot_accepts((tmp_path / "g.dot").read_text())
    n_nodes, _, n_consts = _onnx_nodes(small_onnx)
    # Operators + graph input + graph output.
    assert _svg_nodes(tmp_path / "g.svg") == n_nodes - n_consts + 2


# ---- errors and missing tools ---------------------------------------------------------------------------------


def test_bad_inputs_are_one_line_errors(tmp_path: Path) -> None:
    bad = tmp_path / "broken.onnx"
    bad.write_bytes(b"\xff\xff\xff\xffnot a protobuf")
    for args in (["graph", str(tmp_path / "missing.pth")], ["graph", str(bad), "--dot"],
                 ["graph", str(FIXTURES / "tiny_seed.pth"), "--png", "--svg"],
                 ["graph", str(FIXTURES / "tiny_seed.pth"), "--torchviz", "--onnx"]):  # fmt: skip
        r = run_cli(*args)
        assert r.code == 2, (args, r.stdout)
        assert r.stderr.startswith("error:") and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr


def test_refuses_to_overwrite_the_input(tmp_path: Path) -> None:
    src = tmp_path / "m.pth"
    shutil.copy(FIXTURES / "tiny_seed.pth", src)
    before = src.read_bytes()
    r = run_cli("graph", str(src), "--dot", "-o", str(src))
    assert r.code == 2 and "[output] would overwrite the input" in r.stderr
    assert src.read_bytes() == before


def test_without_dot_binary_png_fails_and_dot_still_works(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: None)
    r = run_cli("graph", str(FIXTURES / "tiny_seed.pth"), "--png", "-o", str(tmp_path / "g.png"))
    assert r.code == 2
    assert "apt-get install graphviz" in r.stderr and r.stderr.count("\n") == 1
    assert not (tmp_path / "g.png").exists()
    r = run_cli("graph", str(FIXTURES / "tiny_seed.pth"), "--dot", "-o", str(tmp_path / "g.dot"))
    assert r.code == 0 and (tmp_path / "g.dot").read_text().startswith("digraph")


def test_import_graph_package_needs_no_heavy_deps() -> None:
    code = (
        "import sys, modelscope_inspect.render.graph, modelscope_inspect.render.graph.structure;"
        "import modelscope_inspect.cli.graph;"
        "bad = {'torch', 'onnx', 'numpy', 'graphviz', 'transformers', 'torchviz'} & set(sys.modules);"
        "print(sorted(bad)); sys.exit(1 if bad else 0)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_whole_module_pickle_labels_boxes_with_module_classes(tmp_path: Path) -> None:
    """`torch.save(model)`: the classes the pickle names (read, never imported) label the boxes; submodules
    without tensors (Dropout) are listed too. Oracle: the module's own `named_modules()`."""
    torch = pytest.importorskip("torch")
    from fixtures.make_fixtures import tiny_seed

    model = tiny_seed()
    src = tmp_path / "whole.pth"
    torch.save(model, src)
    r = run_cli("graph", str(src), "--dot")
    assert r.code == 0, r.stderr
    assert "whole.pth (SeedDecoder)" in r.stdout
    for name, mod in model.named_modules():
        if not name or ".layers.1" in name:  # the root is in the title; layer 1 is folded into layer 0's box
            continue
        cls = type(mod).__name__
        has_tensors = any(True for _ in mod.parameters(recurse=False)) or any(True for _ in mod.children())
        if has_tensors:
            assert re.search(rf"<I>({cls}( in \w+)?|\w+ in {cls})</I>", r.stdout), name
        else:  # e.g. dropout1: listed in its parent's "(no parameters)" box
            assert f">{name.rsplit('.', 1)[-1]}<" in r.stdout and f">{cls}<" in r.stdout, name


def _write_gguf(path: Path) -> int:
    """A tiny llama-style GGUF written by gguf-py, with one Q8_0 block-quantized tensor; returns tensor count."""
    gguf = pytest.importorskip("gguf")
    np = pytest.importorskip("numpy")
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_block_count(2)
    rng = np.random.default_rng(0)
    w.add_tensor("token_embd.weight", rng.standard_normal((64, 32), dtype=np.float32))
    for i in range(2):
        for n in ("attn_q", "attn_k", "attn_v", "attn_output"):
            w.add_tensor(f"blk.{i}.{n}.weight", rng.standard_normal((32, 32), dtype=np.float32).astype(np.float16))
        q = gguf.quants.quantize(rng.standard_normal((32, 64), dtype=np.float32), gguf.GGMLQuantizationType.Q8_0)
        w.add_tensor(f"blk.{i}.ffn_up.weight", q, raw_dtype=gguf.GGMLQuantizationType.Q8_0)
        w.add_tensor(f"blk.{i}.attn_norm.weight", np.ones(32, dtype=np.float32))
    w.add_tensor("output_norm.weight", np.ones(32, dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return len(gguf.GGUFReader(str(path)).tensors)  # oracle: gguf-py's own reader


def test_gguf_structure_graph_and_structure_onnx(tmp_path: Path) -> None:
    src = tmp_path / "tiny.gguf"
    n = _write_gguf(src)
    r = run_cli("graph", str(src), "--dot", "--json")
    assert r.code == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["details"]["format"] == "gguf"
    assert sum(int(x) for x in ROW_ID.findall(doc["dot"])) == n
    assert "blk.0-1 ×2" in doc["dot"] and "q8_0" in doc["dot"].lower()
    onnx = pytest.importorskip("onnx")
    r = run_cli("graph", str(src), "--onnx", "-o", str(tmp_path / "g.onnx"), "--json")
    assert r.code == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["kind"] == "structure" and any("uint8" in note for note in doc["notes"])
    onnx.checker.check_model(str(tmp_path / "g.onnx"))
    assert len(onnx.load(str(tmp_path / "g.onnx"), load_external_data=False).graph.initializer) == n


def test_default_output_goes_to_the_current_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    r = run_cli("graph", str(FIXTURES / "tiny_seed.pth"), "--dot", "-o", "-")
    assert r.code == 0 and r.stdout.startswith("digraph")  # `--dot` without a file: stdout
    if DOT:
        r = run_cli("graph", str(FIXTURES / "tiny_seed.pth"), "--svg")
        assert r.code == 0, r.stderr
        assert (tmp_path / "tiny_seed.pth.graph.svg").exists()
    empty = tmp_path / "empty.safetensors"
    empty.write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}      ")
    r = run_cli("graph", str(empty), "--dot")
    assert r.code == 0 and "no model tensors" in r.stdout


def test_onnx_input_without_the_onnx_package_names_the_extra(small_onnx: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx → ImportError
    r = run_cli("graph", str(small_onnx), "--dot")
    assert r.code == 2
    assert "pip install 'modelscope-inspect[onnx]'" in r.stderr and r.stderr.count("\n") == 1
