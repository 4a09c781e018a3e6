"""`mi graph` on full-size models: the seed's 197.7M-parameter decoder and the Llama-2-7B layout.

The 7B file is a sparse safetensors file (the real header, data left as a hole), so it costs no disk space.
Timings are printed (run with -s to see them), never asserted.
"""

from __future__ import annotations

import json
import re
import shutil
import struct
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.conftest import run_cli

DOT = shutil.which("dot")
needs_dot = pytest.mark.skipif(DOT is None, reason="Graphviz `dot` is not installed (apt-get install graphviz)")
ROW_ID = re.compile(r'ID="t\d+_(\d+)"')

pytestmark = pytest.mark.slow


def llama2_7b_shapes() -> dict[str, list[int]]:
    """The tensor names and shapes of meta-llama/Llama-2-7b-hf."""
    h, layers, vocab, inter = 4096, 32, 32000, 11008
    shapes = {"model.embed_tokens.weight": [vocab, h]}
    for i in range(layers):
        p = f"model.layers.{i}."
        for n in ("q_proj", "k_proj", "v_proj", "o_proj"):
            shapes[p + f"self_attn.{n}.weight"] = [h, h]
        shapes[p + "mlp.gate_proj.weight"] = [inter, h]
        shapes[p + "mlp.up_proj.weight"] = [inter, h]
        shapes[p + "mlp.down_proj.weight"] = [h, inter]
        shapes[p + "input_layernorm.weight"] = [h]
        shapes[p + "post_attention_layernorm.weight"] = [h]
    shapes["model.norm.weight"] = [h]
    shapes["lm_head.weight"] = [vocab, h]
    return shapes


def write_sparse_safetensors(path: Path, shapes: dict[str, list[int]], dtype: str = "F16") -> int:
    """A valid safetensors file: the real header, then `truncate` to full size (a hole, no disk blocks)."""
    header: dict[str, object] = {}
    offset = 0
    for name, shape in shapes.items():
        n = 1
        for d in shape:
            n *= d
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + 2 * n]}
        offset += 2 * n
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)))
        f.write(raw)
        f.truncate(8 + len(raw) + offset)
    return offset


@pytest.fixture(scope="module")
def llama7b(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("llama7b") / "Llama-2-7b"
    folder.mkdir()
    write_sparse_safetensors(folder / "model.safetensors", llama2_7b_shapes())
    return folder


@needs_dot
def test_7b_structure_graph_renders_in_seconds(llama7b: Path, tmp_path: Path) -> None:
    shapes = llama2_7b_shapes()
    for fmt in ("dot", "png", "svg"):
        start = time.perf_counter()
        r = run_cli("graph", str(llama7b), f"--{fmt}", "-o", str(tmp_path / f"g.{fmt}"), "--json")
        elapsed = time.perf_counter() - start
        assert r.code == 0, r.stderr
        doc = json.loads(r.stdout)
        print(f"\n7B structure graph --{fmt}: {elapsed:.2f} s, {doc['nodes']} nodes")
    text = (tmp_path / "g.dot").read_text()
    assert "layers.0-31 ×32" in text
    assert sum(int(n) for n in ROW_ID.findall(text)) == len(shapes) == 291
    assert "6,738,415,616 params" in text  # Llama-2-7B's published parameter count
    assert (tmp_path / "g.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    ET.parse(tmp_path / "g.svg")
    # Unfolded: one row per tensor, still a few seconds.
    start = time.perf_counter()
    r = run_cli("graph", str(llama7b), "--png", "--no-collapse", "-o", str(tmp_path / "full.png"), "--json")
    print(f"7B structure graph --no-collapse --png: {time.perf_counter() - start:.2f} s")
    assert r.code == 0, r.stderr


@needs_dot
def test_full_seed_png_svg_dot(seed_files: dict[str, Path], tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    sd = torch.load(seed_files["pth"], weights_only=True, map_location="meta")
    for src in (seed_files["pth"], seed_files["safetensors"]):
        for fmt in ("png", "svg", "dot"):
            r = run_cli("graph", str(src), f"--{fmt}", "-o", str(tmp_path / f"{src.suffix[1:]}.{fmt}"))
            assert r.code == 0, r.stderr
        text = (tmp_path / f"{src.suffix[1:]}.dot").read_text()
        assert sum(int(n) for n in ROW_ID.findall(text)) == len(sd)
        assert "168283×512" in text and "layers.0-5 ×6" in text
        assert f"{int(seed_files['numel'].read_text()):,} params" in text
        assert (tmp_path / f"{src.suffix[1:]}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        ET.parse(tmp_path / f"{src.suffix[1:]}.svg")


def test_full_seed_onnx_export_uses_meta_weights(seed_files: dict[str, Path], tmp_path: Path) -> None:
    onnx = pytest.importorskip("onnx")
    out = tmp_path / "seed.onnx"
    start = time.perf_counter()
    r = run_cli("graph", str(seed_files["pth"]), "--onnx", "-o", str(out), "--json")
    print(f"\nfull seed --onnx: {time.perf_counter() - start:.1f} s")
    assert r.code == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["kind"] == "rebuilt" and "TransformerDecoder ×6" in doc["architecture"]
    onnx.checker.check_model(str(out))
    model = onnx.load(str(out), load_external_data=False)
    dims = sorted(tuple(i.dims) for i in model.graph.initializer)
    assert (168283, 512) in dims  # the embedding, with the file's shape
    assert doc["op_histogram"]["Softmax"] == 12  # 6 layers × (self + cross attention)
    assert out.stat().st_size < 10 << 20  # the weights are not in the model file


@needs_dot
def test_full_seed_torchviz_png(seed_files: dict[str, Path], tmp_path: Path) -> None:
    """What the seed did by hand (torchviz of the full model), from the state dict alone, on the meta device."""
    pytest.importorskip("torchviz")
    torch = pytest.importorskip("torch")
    sd = torch.load(seed_files["pth"], weights_only=True, map_location="meta")
    start = time.perf_counter()
    r = run_cli("graph", str(seed_files["pth"]), "--torchviz", "--dot", "-o", str(tmp_path / "t.dot"), "--json")
    assert r.code == 0, r.stderr
    text = (tmp_path / "t.dot").read_text()
    for name in sd:  # every parameter is a named leaf of the autograd graph
        assert f'label="{name}\n' in text, name
    r = run_cli("graph", str(seed_files["pth"]), "--torchviz", "--png", "-o", str(tmp_path / "t.png"))
    print(f"\nfull seed --torchviz (dot + png): {time.perf_counter() - start:.1f} s")
    assert r.code == 0, r.stderr
    assert (tmp_path / "t.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_7b_torchviz_dot_on_meta(llama7b: Path, tmp_path: Path) -> None:
    pytest.importorskip("torchviz")
    (llama7b / "config.json").write_text(json.dumps({
        "model_type": "llama", "hidden_size": 4096, "intermediate_size": 11008, "num_hidden_layers": 32,
        "num_attention_heads": 32, "num_key_value_heads": 32, "vocab_size": 32000, "tie_word_embeddings": False,
    }))  # fmt: skip
    try:
        r = run_cli("graph", str(llama7b), "--torchviz", "--dot", "-o", str(tmp_path / "t.dot"), "--json")
    finally:
        (llama7b / "config.json").unlink()
    assert r.code == 0, r.stderr
    text = (tmp_path / "t.dot").read_text()
    shapes = llama2_7b_shapes()
    for name, shape in shapes.items():  # each of the 291 tensors is a leaf, with the file's shape
        assert f'label="{name}\n ({", ".join(map(str, shape))})"' in text, name
