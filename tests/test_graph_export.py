"""`mi graph --onnx / --torchviz / --serve`: rebuilt models exported for Netron, autograd graphs, structure ONNX.

Oracles: `onnx.checker.check_model` on what we write, onnxruntime running it, operator counts derived from
the Llama architecture (not from a second export), tensor shapes from the model transformers builds.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import types
from collections import Counter
from pathlib import Path

import pytest

from tests.conftest import FIXTURES, ROOT, run_cli

pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
DOT = shutil.which("dot")
needs_dot = pytest.mark.skipif(DOT is None, reason="Graphviz `dot` is not installed (apt-get install graphviz)")

LAYERS = 2


@pytest.fixture(scope="module")
def tiny_llama(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An HF folder (config.json + model.safetensors) of a 2-layer Llama written by transformers."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=128, hidden_size=32, intermediate_size=64, num_hidden_layers=LAYERS,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64)  # fmt: skip
    out = tmp_path_factory.mktemp("llama") / "tiny-llama"
    LlamaForCausalLM(cfg).save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def llama_onnx(tiny_llama: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:  # type: ignore[type-arg]
    out = tmp_path_factory.mktemp("llama-onnx") / "tiny-llama.onnx"
    r = run_cli("graph", str(tiny_llama), "--onnx", "-o", str(out), "--json")
    assert r.code == 0, r.stderr
    return out, json.loads(r.stdout)


def test_tiny_llama_onnx_passes_checker_with_llama_operator_histogram(llama_onnx: tuple[Path, dict]) -> None:  # type: ignore[type-arg]
    out, doc = llama_onnx
    assert doc["kind"] == "rebuilt" and doc["architecture"].startswith("llama")
    onnx.checker.check_model(str(out), full_check=True)
    model = onnx.load(str(out))
    ops = Counter(n.op_type for n in model.graph.node)
    assert ops == Counter(doc["op_histogram"])
    # Per decoder layer: q, k, v, o, gate, up, down projections + Q·Kᵀ and attention·V = 9 MatMuls, one softmax,
    # one SiLU (Sigmoid × x), two RMSNorms (ReduceMean); plus lm_head (MatMul), final norm, embedding (Gather).
    assert ops["MatMul"] == 9 * LAYERS + 1
    assert ops["Softmax"] == LAYERS
    assert ops["Sigmoid"] == LAYERS
    assert ops["ReduceMean"] == 2 * LAYERS + 1
    assert ops["Gather"] >= 1
    assert "Conv" not in ops and "LayerNormalization" not in ops


def test_tiny_llama_onnx_carries_the_files_shapes_and_runs(
    llama_onnx: tuple[Path, dict],  # type: ignore[type-arg]
    tiny_llama: Path,
) -> None:
    from safetensors import safe_open

    out, _doc = llama_onnx
    model = onnx.load(str(out))
    inits = Counter(tuple(sorted(i.dims)) for i in model.graph.initializer)
    with safe_open(str(tiny_llama / "model.safetensors"), "pt") as f:
        wanted = Counter(tuple(sorted(f.get_slice(k).get_shape())) for k in f.keys())  # noqa: SIM118
    # Every tensor of the file is an initializer of the same shape (the exporter may transpose weights).
    assert not wanted - inits
    ort = pytest.importorskip("onnxruntime")
    import numpy as np

    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    feed = {i.name: np.zeros([d if isinstance(d, int) else 1 for d in i.shape], dtype=np.int64)
            for i in sess.get_inputs()}  # fmt: skip
    (logits,) = sess.run(None, feed)[:1]
    assert logits.shape[-1] == 128


def test_drawing_the_exported_llama(llama_onnx: tuple[Path, dict], tmp_path: Path) -> None:  # type: ignore[type-arg]
    out, _ = llama_onnx
    n_nodes = len(onnx.load(str(out)).graph.node)
    r = run_cli("graph", str(out), "--dot", "--no-collapse", "--json")
    assert r.code == 0, r.stderr
    doc = json.loads(r.stdout)
    assert len(re.findall(r'id="op:\d+"', doc["dot"])) == n_nodes
    # The dynamo exporter's module scopes become clusters.
    assert "<B>layers.0</B>" in doc["dot"] and "<B>self_attn</B>" in doc["dot"]
    r = run_cli("graph", str(out), "--dot", "--depth", "2", "--json")
    doc = json.loads(r.stdout)
    grouped = sum(int(n) for n in re.findall(r'id="scope:(\d+)"', doc["dot"]))
    assert grouped + len(re.findall(r'id="op:\d+"', doc["dot"])) + doc["details"]["constants_folded"] == n_nodes
    if DOT:
        r = run_cli("graph", str(out), "--png", "-o", str(tmp_path / "l.png"))
        assert r.code == 0, r.stderr
        assert (tmp_path / "l.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_gpt2_folder_and_tiny_seed_export(tmp_path: Path) -> None:
    r = run_cli("graph", str(ROOT / "examples" / "tiny-gpt2"), "--onnx", "-o", str(tmp_path / "g.onnx"), "--json")
    assert r.code == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["kind"] == "rebuilt" and doc["architecture"].startswith("gpt2")
    onnx.checker.check_model(str(tmp_path / "g.onnx"))
    ops = doc["op_histogram"]
    assert ops["Softmax"] == 2  # two GPT-2 blocks
    r = run_cli("graph", str(FIXTURES / "tiny_seed.pth"), "--onnx", "-o", str(tmp_path / "s.onnx"), "--json")
    assert r.code == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["kind"] == "rebuilt" and doc["architecture"].startswith("seed decoder")
    assert any("heads" in n for n in doc["notes"])  # the assumption is said
    onnx.checker.check_model(str(tmp_path / "s.onnx"))
    # 2 decoder layers × (self-attention + cross-attention) = 4 softmaxes.
    assert doc["op_histogram"]["Softmax"] == 4


def test_unknown_architecture_exports_structure_graph(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    src = FIXTURES / "views_and_dtypes.pth"
    out = tmp_path / "v.onnx"
    r = run_cli("graph", str(src), "--onnx", "-o", str(out), "--json")
    assert r.code == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["kind"] == "structure"
    onnx.checker.check_model(str(out), full_check=True)
    model = onnx.load(str(out), load_external_data=False)
    sd = torch.load(src, weights_only=True, map_location="meta")
    assert len(model.graph.initializer) == len(sd)
    for init in model.graph.initializer:
        assert tuple(init.dims) == tuple(sd[init.name].shape)
    # The placeholder data file is sparse: its size is right, yet nothing was written into it.
    data = Path(str(out) + ".data")
    assert data.stat().st_size >= sum(t.numel() * t.element_size() for t in sd.values())
    assert set(data.read_bytes()) <= {0}


def test_structure_onnx_for_tied_checkpoint_has_one_node_per_module(tmp_path: Path) -> None:
    """The tied GPT-2 .bin has no config.json, so it is not rebuilt: one node per module, file order."""
    torch = pytest.importorskip("torch")
    out = tmp_path / "t.onnx"
    r = run_cli("graph", str(FIXTURES / "tied_gpt2.bin"), "--onnx", "-o", str(out), "--json")
    assert r.code == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["kind"] == "structure"
    onnx.checker.check_model(str(out))
    sd = torch.load(FIXTURES / "tied_gpt2.bin", weights_only=True, map_location="meta")
    modules = list(dict.fromkeys(k.rsplit(".", 1)[0] for k in sd))
    model = onnx.load(str(out), load_external_data=False)
    assert [n.name for n in model.graph.node] == modules
    assert len(model.graph.initializer) == len(sd)


def test_onnx_input_is_refused_for_onnx_output(tmp_path: Path, llama_onnx: tuple[Path, dict]) -> None:  # type: ignore[type-arg]
    out, _ = llama_onnx
    r = run_cli("graph", str(out), "--onnx", "-o", str(tmp_path / "x.onnx"))
    assert r.code == 2 and "already ONNX" in r.stderr


def test_serve_without_netron_says_how_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "netron", None)  # import netron → ImportError
    out = tmp_path / "s.onnx"
    r = run_cli("graph", str(FIXTURES / "views_and_dtypes.pth"), "--serve", "-o", str(out))
    assert r.code == 2
    assert "pip install netron" in r.stderr and r.stderr.count("\n") == 1
    assert out.exists()  # the model was written before serving was attempted


def test_serve_prints_the_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, bool]] = []
    fake = types.ModuleType("netron")
    fake.start = lambda path, browse=True: calls.append((path, browse)) or ("localhost", 8081)  # type: ignore[attr-defined]
    fake.wait = lambda: None  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "netron", fake)
    out = tmp_path / "s.onnx"
    r = run_cli("graph", str(FIXTURES / "views_and_dtypes.pth"), "--serve", "-o", str(out))
    assert r.code == 0, r.stderr
    assert "Netron: http://localhost:8081" in r.stdout
    assert calls == [(str(out), False)]


def test_torchviz_of_the_tiny_seed(tmp_path: Path) -> None:
    pytest.importorskip("torchviz")
    r = run_cli("graph", str(FIXTURES / "tiny_seed.pth"), "--torchviz", "--dot", "-o", str(tmp_path / "t.dot"),
                "--json")  # fmt: skip
    assert r.code == 0, r.stderr
    doc = json.loads(r.stdout)
    text = (tmp_path / "t.dot").read_text()
    assert doc["kind"] == "torchviz"
    assert "MeanBackward0" in text  # y.mean(), as the seed does
    assert doc["nodes"] == len(re.findall(r"^\t\d+ \[label=", text, flags=re.M))
    # Every parameter of the rebuilt model is a named leaf of the autograd graph.
    torch = pytest.importorskip("torch")
    for name in torch.load(FIXTURES / "tiny_seed.pth", weights_only=True, map_location="meta"):
        assert f'label="{name}\n' in text, name
    if DOT:
        proc = subprocess.run([DOT, "-Tcanon"], input=text.encode(), capture_output=True, timeout=60)
        assert proc.returncode == 0


def test_torchviz_needs_a_rebuildable_model() -> None:
    r = run_cli("graph", str(FIXTURES / "tied_gpt2.bin"), "--torchviz", "--dot")
    assert r.code == 2 and "can be rebuilt" in r.stderr


def test_config_that_does_not_match_the_tensors_is_said(tmp_path: Path, tiny_llama: Path) -> None:
    """A folder whose config.json is a Llama but whose weights are the seed's: the rebuilt graph follows the
    config, and the mismatch is reported (names and shapes compared with the model transformers builds)."""
    import modelscope_inspect as mi
    from modelscope_inspect.render.graph.rebuild import recognise

    folder = tmp_path / "mixed"
    folder.mkdir()
    shutil.copy(tiny_llama / "config.json", folder / "config.json")
    shutil.copy(FIXTURES / "tiny_seed.safetensors", folder / "model.safetensors")
    recipe = recognise(mi.load(str(folder)))
    assert recipe is not None and recipe.architecture.startswith("llama")
    assert any("match 0 of the file's 39 tensors" in n for n in recipe.notes)
    good = recognise(mi.load(str(tiny_llama)))
    assert good is not None and not good.notes
