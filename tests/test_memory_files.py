"""`mi memory` and `mi params --config` on the files people have: a weights file with config.json beside it,
`--config` overriding a folder's config, and GGUF files whose header holds the hyperparameters.

Oracles: transformers. A model is built from an HF config (the "equivalent config"); its GGUF is written with
gguf-py's GGUFWriter with the metadata keys llama.cpp's `convert_hf_to_gguf.py` writes for that config and
tensors named by gguf-py's own HF → GGUF name map; then
* `kv_cache_bytes` equals the bytes of a real transformers DynamicCache after a forward (tests/oracles_memory.py),
* `mi params --config x.gguf` equals `sum(p.numel() for p in model.parameters())` on the meta device,
* the bytes as stored equal gguf-py's GGUFReader sum of tensor bytes,
* for llama and qwen2, transformers' own GGUF reader (`AutoConfig.from_pretrained(..., gguf_file=...)`) gives a
  config with the same parameter count.
The GGUF lacks nothing the counts need: the parameter count of a GGUF-derived config is the full model's (its
rotary `inv_freq` is a buffer, not a parameter, in transformers too).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import run_cli

gguf = pytest.importorskip("gguf")
np = pytest.importorskip("numpy")
torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from tests.oracles_memory import kv_cache_bytes  # noqa: E402

BASE: dict[str, Any] = {
    "vocab_size": 1000,
    "hidden_size": 128,
    "intermediate_size": 352,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "max_position_embeddings": 512,
}
MOE: dict[str, Any] = {**BASE, "num_experts": 4, "num_experts_per_tok": 2, "moe_intermediate_size": 64}
CONFIG_CLASSES = {
    "llama": "LlamaConfig",
    "mistral": "MistralConfig",
    "mixtral": "MixtralConfig",
    "qwen2": "Qwen2Config",
    "qwen2_moe": "Qwen2MoeConfig",
    "qwen3": "Qwen3Config",
    "qwen3_moe": "Qwen3MoeConfig",
    "gemma": "GemmaConfig",
    "phi": "PhiConfig",
    "gpt2": "GPT2Config",
}
# (HF model type, GGUF architecture llama.cpp writes for it, config overrides)
FAMILIES: list[tuple[str, str, dict[str, Any]]] = [
    ("llama", "llama", BASE),
    ("qwen2", "qwen2", {**BASE, "tie_word_embeddings": True}),
    ("qwen3", "qwen3", {**BASE, "head_dim": 48}),
    ("gemma", "gemma", {**BASE, "head_dim": 48}),
    ("mistral", "llama", {**BASE, "sliding_window": 32}),
    ("mixtral", "llama", {**BASE, "num_local_experts": 4, "num_experts_per_tok": 2}),
    ("qwen2_moe", "qwen2moe", {**MOE, "shared_expert_intermediate_size": 96}),
    ("qwen3_moe", "qwen3moe", {**MOE, "head_dim": 48}),
    ("phi", "phi2", {**BASE, "num_key_value_heads": 4, "partial_rotary_factor": 0.5}),
    ("gpt2", "gpt2", {"vocab_size": 1000, "n_embd": 128, "n_layer": 2, "n_head": 4, "n_positions": 512}),
]


def hf_config(kind: str, overrides: Mapping[str, Any]) -> Any:
    config = getattr(transformers, CONFIG_CLASSES[kind])(**overrides)
    config._attn_implementation = "eager"
    return config


def meta_params(config: Any) -> int:
    """transformers' own count: the model built on the meta device (no memory), parameters() deduplicated."""
    with torch.device("meta"):
        model = transformers.AutoModelForCausalLM.from_config(config)
    return sum(p.numel() for p in model.parameters())


def real_model(config: Any) -> Any:
    torch.manual_seed(0)
    return transformers.AutoModelForCausalLM.from_config(config, attn_implementation="eager", dtype=torch.float32)


def write_gguf(
    path: Path,
    arch: str,
    config: Any,
    tensors: Mapping[str, Any],
    *,
    drop: tuple[str, ...] = (),
    name: str = "tiny",
    head_count_kv: Any = None,
) -> None:
    """A GGUF with the metadata llama.cpp's converter writes for `config` (keys in `drop` left out)."""
    c = config.to_dict()
    w = gguf.GGUFWriter(str(path), arch)
    w.add_name(name)
    layers = c.get("num_hidden_layers", c.get("n_layer"))
    d = c.get("hidden_size", c.get("n_embd"))
    heads = c.get("num_attention_heads", c.get("n_head"))
    ff = c.get("intermediate_size") or c.get("n_inner") or 4 * d
    kv = c.get("num_key_value_heads") or heads
    values: dict[str, Any] = {
        "block_count": layers,
        "embedding_length": d,
        "feed_forward_length": ff,
        "context_length": c.get("max_position_embeddings", c.get("n_positions")),
        "head_count": heads,
        "head_count_kv": kv if head_count_kv is None else head_count_kv,
    }
    if "head_dim" in c and arch != "phi2":
        values["key_length"] = values["value_length"] = c["head_dim"]
    if c.get("sliding_window"):
        values["sliding_window"] = c["sliding_window"]
    experts = c.get("num_local_experts") or c.get("num_experts")
    if experts:
        values["expert_count"] = experts
        values["expert_used_count"] = c["num_experts_per_tok"]
    if c.get("moe_intermediate_size"):
        values["expert_feed_forward_length"] = c["moe_intermediate_size"]
    if c.get("shared_expert_intermediate_size"):
        values["expert_shared_feed_forward_length"] = c["shared_expert_intermediate_size"]
    if arch == "phi2":
        factor = (c.get("rope_parameters") or {}).get("partial_rotary_factor", c.get("partial_rotary_factor"))
        values["rope_dimension_count"] = int(factor * (d // heads))
    for key, value in values.items():
        if key not in drop and value is not None:
            getattr(w, f"add_{key}")(value)
    w.add_tokenizer_model("gpt2")
    w.add_token_list([f"t{i}" for i in range(c["vocab_size"])])
    for tname, data in tensors.items():
        w.add_tensor(tname, data)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def header_tensors(kind: str, config: Any) -> dict[str, Any]:
    """The tensors a converted file of this family holds that tell the header what it cannot say itself:
    the token embedding (vocabulary rows), `output.weight` unless tied (llama.cpp's GPT-2 converter always
    writes it, a copy of wte), the routers of MoE layers, Phi-2's output bias."""
    c = config.to_dict()
    d = c.get("hidden_size", c.get("n_embd"))
    v = c["vocab_size"]
    out: dict[str, Any] = {"token_embd.weight": np.zeros((v, d), np.float16)}
    if kind == "gpt2" or not config.tie_word_embeddings:
        out["output.weight"] = np.zeros((v, d), np.float16)
    if kind == "phi":
        out["output.bias"] = np.zeros(v, np.float32)
    experts = c.get("num_local_experts") or c.get("num_experts")
    if experts:
        for i in range(c["num_hidden_layers"]):
            out[f"blk.{i}.ffn_gate_inp.weight"] = np.zeros((experts, d), np.float32)
    return out


def all_tensors(model: Any, arch: str, layers: int) -> dict[str, Any]:
    """Every tensor of an HF model under the GGUF name gguf-py's name map gives it."""
    tmap = gguf.get_tensor_name_map(gguf.MODEL_ARCH[arch.upper()], layers)
    out = {}
    for name, t in model.state_dict().items():
        new = tmap.get_name(name, try_suffixes=(".weight", ".bias"))
        assert new is not None, name
        out[new] = t.detach().numpy()
    return out


def mi_json(*args: str) -> dict[str, Any]:
    r = run_cli(*args, "--json")
    assert r.code == 0, r.stderr
    return json.loads(r.stdout)  # type: ignore[no-any-return]


def stored_bytes(path: Path) -> int:
    return sum(int(t.n_bytes) for t in gguf.GGUFReader(str(path)).tensors)


# ---------------------------------------------------------------------------------------------------------------
# GGUF


def test_llama_gguf_memory_and_params_equal_transformers(tmp_path: Path) -> None:
    config = hf_config("llama", BASE)
    model = real_model(config)
    path = tmp_path / "llama.gguf"
    write_gguf(path, "llama", config, all_tensors(model, "llama", 2))
    n = sum(p.numel() for p in model.parameters())

    b, s = 2, 24
    measured, _shapes = kv_cache_bytes(model, torch.randint(0, 1000, (b, s)))
    doc = mi_json("memory", str(path), "--dtype", "fp32", "--batch", str(b), "--seq", str(s))
    assert doc["kv_cache_bytes"] == measured
    assert doc["params"] == n  # the file's tensors: the whole model
    assert doc["stored"]["bytes"] == stored_bytes(path)
    assert doc["arch"] == "llama"

    params = mi_json("params", "--config", str(path))
    assert params["total_params"] == n == meta_params(config)

    # transformers' own GGUF reader makes the same config out of the header.
    theirs = transformers.AutoConfig.from_pretrained(str(tmp_path), gguf_file=path.name)
    assert meta_params(theirs) == params["total_params"]


@pytest.mark.parametrize(("kind", "arch", "overrides"), FAMILIES, ids=[f[0] for f in FAMILIES])
def test_gguf_families_against_transformers(tmp_path: Path, kind: str, arch: str, overrides: dict[str, Any]) -> None:
    config = hf_config(kind, overrides)
    path = tmp_path / f"{kind}.gguf"
    write_gguf(path, arch, config, header_tensors(kind, config))

    params = mi_json("params", "--config", str(path))
    assert params["total_params"] == meta_params(config), kind

    model = real_model(config)
    b, s = 2, 48  # longer than mistral's window of 32
    measured, shapes = kv_cache_bytes(model, torch.randint(0, 1000, (b, s)))
    doc = mi_json("memory", str(path), "--dtype", "fp32", "--batch", str(b), "--seq", str(s))
    assert doc["kv_cache_bytes"] == measured, shapes
    assert doc["kv_cache_tokens_per_layer"] == [shape[2] for shape in shapes[::2]]
    assert doc["stored"]["bytes"] == stored_bytes(path)
    assert doc["arch"] == kind


def test_qwen2_gguf_config_matches_transformers_gguf_reader(tmp_path: Path) -> None:
    config = hf_config("qwen2", {**BASE, "tie_word_embeddings": True})
    path = tmp_path / "q.gguf"
    write_gguf(path, "qwen2", config, header_tensors("qwen2", config))
    theirs = transformers.AutoConfig.from_pretrained(str(tmp_path), gguf_file=path.name)
    assert theirs.tie_word_embeddings is True
    assert mi_json("params", "--config", str(path))["total_params"] == meta_params(theirs)


def test_per_layer_kv_heads_array(tmp_path: Path) -> None:
    """`head_count_kv` as one value per layer (12 layers: the reader keeps only the first items of the array,
    so the per-layer values come from the key projections' shapes)."""
    overrides = {**BASE, "hidden_size": 64, "intermediate_size": 96, "num_hidden_layers": 12}
    config = hf_config("llama", overrides)
    model = real_model(config)
    path = tmp_path / "per-layer.gguf"
    write_gguf(path, "llama", config, all_tensors(model, "llama", 12), head_count_kv=[2] * 12)
    measured, _ = kv_cache_bytes(model, torch.randint(0, 1000, (1, 16)))
    doc = mi_json("memory", str(path), "--dtype", "fp32", "--seq", "16")
    assert doc["kv_cache_bytes"] == measured

    short = hf_config("llama", {**BASE, "num_hidden_layers": 2})
    write_gguf(tmp_path / "mixed.gguf", "llama", short, header_tensors("llama", short), head_count_kv=[2, 4])
    r = run_cli("memory", str(tmp_path / "mixed.gguf"))
    assert r.code == 2 and "llama.attention.head_count_kv differs between layers (2, 4)" in r.stderr, r.stderr


def test_gguf_bad_input_exit_2_naming_the_key(tmp_path: Path) -> None:
    config = hf_config("llama", BASE)
    no_layers = tmp_path / "no-layers.gguf"
    write_gguf(no_layers, "llama", config, header_tensors("llama", config), drop=("block_count",))
    unknown = tmp_path / "mamba.gguf"
    write_gguf(unknown, "mamba", config, header_tensors("llama", config))
    for args in (["memory", str(no_layers)], ["params", "--config", str(no_layers)]):
        r = run_cli(*args)
        assert r.code == 2 and "llama.block_count" in r.stderr and "Traceback" not in r.stderr, r.stderr
        assert len(r.stderr.strip().splitlines()) == 1
    for args in (["memory", str(unknown)], ["params", "--config", str(unknown)]):
        r = run_cli(*args)
        assert r.code == 2 and "'mamba'" in r.stderr and "general.architecture" in r.stderr, r.stderr
        assert "llama" in r.stderr  # the architectures that are read are listed


# ---------------------------------------------------------------------------------------------------------------
# A weights file with config.json beside it; --config beside a PATH


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    folder = tmp_path_factory.mktemp("saved") / "tiny-llama"
    model = real_model(hf_config("llama", BASE))
    model.save_pretrained(folder)
    return folder, model


def _same(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k != "source"}


def test_weights_file_uses_the_config_beside_it(saved: tuple[Path, Any]) -> None:
    folder, model = saved
    args = ("--dtype", "fp32", "--batch", "2", "--seq", "20")
    of_file = mi_json("memory", str(folder / "model.safetensors"), *args)
    of_folder = mi_json("memory", str(folder), *args)
    assert _same(of_file) == _same(of_folder)
    assert of_file["source"] == str(folder / "model.safetensors")
    measured, _ = kv_cache_bytes(model, torch.randint(0, 1000, (2, 20)))
    assert of_file["kv_cache_bytes"] == measured
    assert of_file["params"] == sum(p.numel() for p in model.parameters())
    training = ("--training", "--seq", "20")
    assert _same(mi_json("memory", str(folder / "model.safetensors"), *training)) == _same(
        mi_json("memory", str(folder), *training)
    )


def test_config_overrides_the_folders(saved: tuple[Path, Any], tmp_path: Path) -> None:
    folder, model = saved
    other_config = hf_config("llama", {**BASE, "num_key_value_heads": 4})
    other = tmp_path / "other.json"
    other.write_text(other_config.to_json_string())
    args = ("--dtype", "fp32", "--batch", "2", "--seq", "20")
    measured, _ = kv_cache_bytes(real_model(other_config), torch.randint(0, 1000, (2, 20)))
    alone = mi_json("memory", "--config", str(other), *args)
    for path in (folder / "model.safetensors", folder):
        doc = mi_json("memory", str(path), "--config", str(other), *args)
        assert doc["kv_cache_bytes"] == measured == alone["kv_cache_bytes"]
        assert doc["hparams"]["kv_heads"] == 4
        # parameters and bytes as stored still come from the file
        assert doc["params"] == sum(p.numel() for p in model.parameters())
        assert doc["stored"]["bytes"] == sum(t.numel() * t.element_size() for t in model.state_dict().values())
    # size flags beside a config stay refused
    r = run_cli("memory", str(folder), "--config", str(other), "--layers", "3")
    assert r.code == 2 and "--layers" in r.stderr


def test_weights_file_without_a_config_still_says_so(tmp_path: Path) -> None:
    from safetensors.numpy import save_file

    save_file({"w": np.zeros((4, 4), np.float32)}, str(tmp_path / "model.safetensors"))
    r = run_cli("memory", str(tmp_path / "model.safetensors"))
    assert r.code == 2 and "config.json" in r.stderr and "--config" in r.stderr


def test_remote_weights_file_uses_the_config_beside_it(saved: tuple[Path, Any], tmp_path: Path) -> None:
    """The same over a hub URL and a plain HTTP URL of the file (a real server on 127.0.0.1)."""
    import shutil

    from tests.test_remote_server import serve

    folder, _model = saved
    shutil.copytree(folder, tmp_path / "org" / "tiny-llama")
    args = ("--dtype", "fp32", "--seq", "20")
    local = mi_json("memory", str(folder), *args)
    with serve(tmp_path) as (base, _st):
        env = {"MI_HF_ENDPOINT": base, "MI_NO_CACHE": "1"}
        for url in ("hf://org/tiny-llama/model.safetensors", f"{base}/files/org/tiny-llama/model.safetensors"):
            r = run_cli("memory", url, *args, "--json", env=env)
            assert r.code == 0, r.stderr
            doc = json.loads(r.stdout)
            doc["stored"].pop("bytes_read")
            assert _same(doc) == _same(local), url
