"""Counts and bytes of files written by torch, safetensors and transformers themselves (the oracles)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import modelscope_inspect as mi
from modelscope_inspect.analysis.tree import module_tree, top_groups
from tests.conftest import run_cli

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")


# --- the seed model (acceptance example) -------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["pth", "safetensors"])
def test_seed_model_counts(seed_files: dict[str, Path], kind: str) -> None:
    path = seed_files[kind]
    inv = mi.load(str(path))
    expected = int(seed_files["numel"].read_text())
    assert expected == 197_714_267  # torch's own count of the model's parameters
    assert inv.total_params == expected
    assert inv.total_bytes == expected * 4  # all fp32
    assert round(inv.total_bytes / 2**20, 1) == 754.2
    assert inv.file_bytes == path.stat().st_size
    shares = {g.name: g.share for g in top_groups(inv)}
    assert round(100 * shares["embedding"], 1) == 43.6  # 86,160,896 / 197,714,267
    # The seed's formula (191,196,672) leaves out cross-attention, biases and norms: the tree shows them.
    doc = json.loads(run_cli("inspect", str(path), "--json").stdout)
    assert doc["total_params"] == expected
    assert sorted(g["name"] for g in doc["groups"]) == ["embedding", "fc_out", "transformer_decoder"]


@pytest.mark.slow
def test_seed_pth_file_size_and_text(seed_files: dict[str, Path]) -> None:
    r = run_cli("inspect", str(seed_files["pth"]))
    assert r.code == 0
    assert "754.3 MiB" in r.stdout  # the file on disk (the seed's "755M")
    assert "197,714,267" in r.stdout
    assert "transformer_decoder" in r.stdout and "layers.0-5 ×6" in r.stdout
    assert "43.6%" in r.stdout


# --- HF models written by transformers -----------------------------------------------------------------


def _tiny(name: str):  # type: ignore[no-untyped-def]
    torch.manual_seed(0)
    if name == "gpt2":
        cfg = transformers.GPT2Config(vocab_size=320, n_positions=64, n_embd=32, n_layer=3, n_head=4)
        return transformers.GPT2LMHeadModel(cfg)
    if name == "llama":
        cfg = transformers.LlamaConfig(
            vocab_size=320,
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            tie_word_embeddings=False,
        )
        return transformers.LlamaForCausalLM(cfg)
    if name == "bert":
        cfg = transformers.BertConfig(
            vocab_size=320, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64
        )
        return transformers.BertModel(cfg)
    raise AssertionError(name)


def _numel(model) -> int:  # type: ignore[no-untyped-def]
    return sum(p.numel() for p in model.parameters())  # parameters() yields tied weights once


@pytest.mark.parametrize("name", ["gpt2", "llama", "bert"])
def test_save_pretrained_single(tmp_path: Path, name: str) -> None:
    model = _tiny(name)
    model.save_pretrained(tmp_path)
    inv = mi.load(str(tmp_path))
    assert inv.format == "safetensors"
    assert inv.total_params == _numel(model)
    assert inv.config is not None and inv.config["model_type"] == name


@pytest.mark.parametrize("name", ["gpt2", "llama"])
def test_save_pretrained_sharded(tmp_path: Path, name: str) -> None:
    model = _tiny(name)
    model.save_pretrained(tmp_path, max_shard_size="20KB")
    shards = sorted(tmp_path.glob("*.safetensors"))
    assert len(shards) > 1 and (tmp_path / "model.safetensors.index.json").exists()
    inv = mi.load(str(tmp_path))
    assert inv.total_params == _numel(model)
    assert len(inv.files) == len(shards) + 1  # the index is read too
    # The index itself as the path gives the same answer.
    assert mi.load(str(tmp_path / "model.safetensors.index.json")).total_params == _numel(model)
    assert not [w for w in inv.warnings if "total_size" in w]


def test_gpt2_bin_tied_lm_head_counted_once(tmp_path: Path) -> None:
    model = _tiny("gpt2")
    sd = model.state_dict()
    assert sd["lm_head.weight"].data_ptr() == sd["transformer.wte.weight"].data_ptr()
    torch.save(sd, tmp_path / "pytorch_model.bin")
    (tmp_path / "config.json").write_text(model.config.to_json_string())
    inv = mi.load(str(tmp_path))
    assert inv.format == "torch-zip"
    assert inv.total_params == _numel(model)
    by_name = {t.name: t for t in inv.tensors}
    assert by_name["lm_head.weight"].shared_with == "transformer.wte.weight"
    assert by_name["lm_head.weight"].counted_numel == 0
    # Listed, so the tensor rows hold every state_dict entry, but the sum is over unique storage.
    assert len(inv.tensors) == len(sd)
    assert sum(t.counted_numel for t in inv.tensors) == inv.total_params


def test_sharded_pytorch_bin_index(tmp_path: Path) -> None:
    model = _tiny("llama")
    sd = model.state_dict()
    names = list(sd)
    half = len(names) // 2
    parts = {"pytorch_model-00001-of-00002.bin": names[:half], "pytorch_model-00002-of-00002.bin": names[half:]}
    weight_map = {}
    for fname, keys in parts.items():
        torch.save({k: sd[k] for k in keys}, tmp_path / fname)
        weight_map.update(dict.fromkeys(keys, fname))
    (tmp_path / "pytorch_model.bin.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    inv = mi.load(str(tmp_path))
    assert inv.total_params == _numel(model)
    assert {f.path for f in inv.files} == {"pytorch_model.bin.index.json", *parts}


def test_views_and_dtypes_match_torch(tmp_path: Path) -> None:
    base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
    sd = {
        "base": base,
        "t": base.t(),
        "rows_a": base[:2],
        "rows_b": base[2:],
        "col": base[:, 1],
        "h": torch.zeros(3, 5, dtype=torch.float16),
        "bf": torch.zeros(7, dtype=torch.bfloat16),
        "f8a": torch.zeros(4, dtype=torch.float8_e4m3fn),
        "f8b": torch.zeros(4, dtype=torch.float8_e5m2),
        "c": torch.zeros(2, dtype=torch.complex64),
        "i": torch.zeros(3, dtype=torch.int16),
        "u16": torch.zeros(3, dtype=torch.uint16),
        "b": torch.zeros(5, dtype=torch.bool),
        "scalar": torch.tensor(3.0),
        "empty": torch.zeros(0, 4),
    }
    torch.save(sd, tmp_path / "v.pth")
    inv = mi.load(str(tmp_path / "v.pth"))
    got = {t.name: t for t in inv.tensors}
    for k, v in sd.items():
        assert got[k].shape == tuple(v.shape), k
        assert got[k].numel == v.numel(), k
        assert got[k].nbytes == v.numel() * v.element_size(), k
    # Unique storage: the four views of `base` add nothing; every other tensor owns its storage.
    unique = {}
    for v in sd.values():
        s = v.untyped_storage()
        unique[s.data_ptr()] = s.nbytes()
    assert inv.total_bytes == sum(unique.values())
    assert {t.name for t in inv.shared} == {"t", "rows_a", "rows_b", "col"}


def test_safetensors_written_by_library_all_dtypes(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    tensors = {
        "f64": torch.zeros(2, 3, dtype=torch.float64),
        "f32": torch.zeros(5, dtype=torch.float32),
        "f16": torch.zeros(4, 4, dtype=torch.float16),
        "bf16": torch.zeros(3, dtype=torch.bfloat16),
        "f8_e4m3fn": torch.zeros(8, dtype=torch.float8_e4m3fn),
        "f8_e5m2": torch.zeros(8, dtype=torch.float8_e5m2),
        "i64": torch.zeros(2, dtype=torch.int64),
        "i32": torch.zeros(2, dtype=torch.int32),
        "i16": torch.zeros(2, dtype=torch.int16),
        "i8": torch.zeros(2, dtype=torch.int8),
        "u8": torch.zeros(2, dtype=torch.uint8),
        "bool": torch.zeros(2, dtype=torch.bool),
        "c64": torch.zeros(2, dtype=torch.complex64),
    }
    save_file(tensors, tmp_path / "all.safetensors", metadata={"format": "pt", "note": "x"})
    inv = mi.load(str(tmp_path / "all.safetensors"))
    got = {t.name: t for t in inv.tensors}
    for k, v in tensors.items():
        assert got[k].dtype == k
        assert got[k].nbytes == v.numel() * v.element_size()
    assert inv.metadata == {"format": "pt", "note": "x"}
    assert inv.total_bytes == sum(v.numel() * v.element_size() for v in tensors.values())


def test_tree_rows_sum_to_totals() -> None:
    inv = mi.load("fixtures/tiny_seed.pth")
    root = module_tree(inv, max_depth=10)
    stack = [root]
    while stack:
        g = stack.pop()
        if g.children:
            # Every level adds up to its parent (folded blocks add each relative path over all blocks).
            assert sum(c.params for c in g.children) == g.params, g.name
            assert sum(c.nbytes for c in g.children) == g.nbytes, g.name
        stack.extend(g.children)
    assert root.params == inv.total_params
    folded = [c for c in root.children[1].children] if root.children[1].children else []
    assert any(g.repeat == 2 for g in [root.children[1], *folded])
