"""`mi params`: the command, its JSON, bad input, the seed's numbers, LoRA, and the inspect cross-check.

The per-preset exactness against transformers / torch modules is in test_params_oracles.py.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from modelscope_inspect.analysis.hparams import KNOWN_MODEL_TYPES, HParams
from modelscope_inspect.analysis.params import PRESETS, count_params
from modelscope_inspect.api import open_config as load_config

from .conftest import FIXTURES, ROOT, run_cli

SEED = ("--vocab", "168283", "--d-model", "512", "--layers", "6")

# The seed's chatglm3-6b config (/work/shared/seeds/002_*.txt), the keys that decide the parameter count.
CHATGLM3_6B = {
    "model_type": "chatglm",
    "architectures": ["ChatGLMModel"],
    "add_bias_linear": False,
    "add_qkv_bias": True,
    "ffn_hidden_size": 13696,
    "hidden_size": 4096,
    "kv_channels": 128,
    "multi_query_attention": True,
    "multi_query_group_num": 2,
    "num_attention_heads": 32,
    "num_layers": 28,
    "padded_vocab_size": 65024,
    "post_layer_norm": True,
    "rmsnorm": True,
    "seq_length": 131072,
    "torch_dtype": "float16",
    "tie_word_embeddings": False,
}


def _json(*args: str) -> dict:
    r = run_cli("params", *args, "--json")
    assert r.code == 0, r.stderr
    return json.loads(r.stdout)


# ---- the seed's numbers ------------------------------------------------------------------------------------


def test_seed_formula_prints_191196672() -> None:
    r = run_cli("params", *SEED)
    assert r.code == 0, r.stderr
    assert "191,196,672" in r.stdout
    # The formula's omissions are listed, and they add up to the real model's count.
    assert "left out by this formula" in r.stdout
    assert "cross-attention" in r.stdout and "=197,714,267" in r.stdout


def test_seed_formula_json_terms_and_left_out() -> None:
    doc = _json(*SEED)
    assert doc["schema_version"] == 1 and doc["command"] == "params"
    assert doc["arch"] == "seed"
    assert doc["total_params"] == 191_196_672
    # vocab×d + d + (4d² + 2·d·d_ff)×layers + vocab×d, written out with d_ff = 4d = 2048.
    assert doc["total_params"] == 168283 * 512 + 512 + (4 * 512 * 512 + 2 * 512 * 2048) * 6 + 168283 * 512
    assert sum(t["params"] for t in doc["terms"]) == doc["total_params"]
    assert abs(sum(t["share"] for t in doc["terms"]) - 1.0) < 1e-9
    assert doc["total_params"] + doc["left_out_total"] == 197_714_267
    assert doc["total_bytes"] == 4 * doc["total_params"] and doc["dtype"] == "f32"
    assert any("d_ff = 4·d" in a for a in doc["assumptions"])


def test_torch_decoder_prints_197714267() -> None:
    r = run_cli("params", *SEED, "--arch", "torch-decoder", "--heads", "8", "--d-ff", "2048")
    assert r.code == 0, r.stderr
    assert "197,714,267" in r.stdout
    assert "754.2 MiB" in r.stdout  # 197,714,267 × 4 bytes: the seed's 754 MiB checkpoint, minus pickle overhead
    doc = _json(*SEED, "--arch", "torch-decoder", "--heads", "8", "--d-ff", "2048")
    assert doc["total_params"] == 197_714_267
    names = [t["name"] for t in doc["terms"]]
    assert names == ["embedding", "self-attention", "cross-attention", "mlp", "norms", "fc_out"]


def test_chatglm_from_flags_gives_6243584000() -> None:
    args = ("--vocab", "65024", "--d-model", "4096", "--layers", "28", "--heads", "32", "--kv-heads", "2")
    doc = _json("--arch", "chatglm", *args, "--head-dim", "128", "--d-ff", "13696", "--dtype", "f16")
    assert doc["total_params"] == 6_243_584_000


def test_sub_byte_dtype_rounds_up() -> None:
    doc = _json("--vocab", "3", "--d-model", "1", "--layers", "1", "--dtype", "i4")
    # 3 + 1 + (4·1² + 2·1·4) + 3 = 19 parameters; 19 × 4 bits = 76 bits → 10 bytes
    assert doc["total_params"] == 19 and doc["total_bytes"] == 10


def test_chatglm_seed_config_gives_6243584000(tmp_path: Path) -> None:
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps(CHATGLM3_6B))
    doc = _json("--config", str(cfg))
    assert doc["arch"] == "chatglm"
    assert doc["total_params"] == 6_243_584_000
    assert doc["dtype"] == "f16" and doc["total_bytes"] == 2 * 6_243_584_000


def _seed_chatglm_file() -> Path | None:
    for base in (ROOT.parent / "shared" / "seeds", Path("/work/shared/seeds")):
        hits = sorted(base.glob("002_*.txt")) if base.is_dir() else []
        if hits:
            return hits[0]
    return None


@pytest.mark.skipif(_seed_chatglm_file() is None, reason="the seed notes (shared/seeds) are not beside the repo")
def test_chatglm_from_the_seed_note_itself(tmp_path: Path) -> None:
    """The config block of the seed note, comments stripped, read as config.json."""
    note = _seed_chatglm_file()
    assert note is not None
    text = note.read_text(encoding="utf-8")
    start = text.index('{\n"_name_or_path"')
    end = text.index("}\n", text.index('"pad_token_id"')) + 1
    block = re.sub(r"\s+#[^\n]*", "", text[start:end])
    cfg = tmp_path / "config.json"
    cfg.write_text(block)
    assert json.loads(block)["model_type"] == "chatglm"
    assert _json("--config", str(cfg))["total_params"] == 6_243_584_000


# ---- config.json -------------------------------------------------------------------------------------------


def test_config_example_folder_and_file() -> None:
    by_file = _json("--config", "examples/tiny-gpt2/config.json")
    by_dir = _json("--config", str(ROOT / "examples" / "tiny-gpt2"))
    assert by_file["total_params"] == by_dir["total_params"] == 11_904  # what mi inspect counts in the file
    assert by_file["arch"] == "gpt2" and by_file["model_type"] == "gpt2"


def test_public_gpt2_config_from_cli(tmp_path: Path) -> None:
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps({"model_type": "gpt2", "vocab_size": 50257, "n_embd": 768, "n_layer": 12, "n_head": 12}))
    doc = _json("--config", str(cfg))
    assert doc["total_params"] == 124_439_808
    # n_positions absent: transformers' default (1024) is used and said so.
    assert any("n_positions not in config.json" in a for a in doc["assumptions"])


def test_config_dtype_override(tmp_path: Path) -> None:
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps(CHATGLM3_6B))
    doc = _json("--config", str(cfg), "--dtype", "bf16")
    assert doc["dtype"] == "bf16" and doc["total_bytes"] == 2 * doc["total_params"]
    doc = _json("--config", str(cfg), "--dtype", "float32")
    assert doc["dtype"] == "f32" and doc["total_bytes"] == 4 * doc["total_params"]


def test_moe_reports_total_and_active(tmp_path: Path) -> None:
    cfg = tmp_path / "config.json"
    mixtral = {
        "model_type": "mixtral",
        "vocab_size": 32000,
        "hidden_size": 4096,
        "intermediate_size": 14336,
        "num_hidden_layers": 32,
        "num_attention_heads": 32,
        "num_key_value_heads": 8,
        "num_local_experts": 8,
        "num_experts_per_tok": 2,
    }
    cfg.write_text(json.dumps(mixtral))
    doc = _json("--config", str(cfg))
    assert doc["total_params"] == 46_702_792_704  # Mixtral-8x7B, 46.7B published
    assert doc["active_params"] == 12_879_925_248  # 12.9B active per token, published
    # Active = total minus the 6 unused experts of 3·d·d_ff each, in every layer.
    assert doc["total_params"] - doc["active_params"] == 6 * 3 * 4096 * 14336 * 32
    text = run_cli("params", "--config", str(cfg)).stdout
    assert "active/token" in text and "12,879,925,248" in text


def test_every_known_model_type_has_a_preset() -> None:
    for mt in KNOWN_MODEL_TYPES:
        hp = HParams.from_config(
            {"model_type": mt, "vocab_size": 64, "hidden_size": 32, "n_embd": 32, "d_model": 32, "num_layers": 2,
             "num_hidden_layers": 2, "n_layer": 2, "num_attention_heads": 4, "num_key_value_heads": 4,
             "n_head": 4, "num_heads": 4, "padded_vocab_size": 64, "head_dim": 8, "kv_channels": 8, "d_kv": 8,
             "encoder_attention_heads": 4, "decoder_attention_heads": 4,
             # DeepSeek's latent width has no default mi takes; Mamba-2 needs expand·d = heads·head_dim.
             "kv_lora_rank": 8, "expand": 1, "n_groups": 1}
        )  # fmt: skip
        assert hp.arch in PRESETS
        assert count_params(hp).total_params > 0


# ---- LoRA ----------------------------------------------------------------------------------------------------


def test_lora_on_llama_7b() -> None:
    args = ("--vocab", "32000", "--d-model", "4096", "--layers", "32", "--heads", "32", "--d-ff", "11008")
    doc = _json(*args, "--arch", "llama", "--lora-r", "8", "--lora-targets", "q_proj,v_proj")
    # r·(in+out) per matrix: 8·(4096+4096) × 2 matrices × 32 layers = 4,194,304 (PEFT's published figure
    # for LLaMA-7B with r=8 on q_proj,v_proj: "trainable params: 4,194,304").
    assert doc["lora_params"] == 4_194_304
    assert doc["lora"]["matrices"] == 64
    assert doc["lora"]["share"] == pytest.approx(4_194_304 / 6_738_415_616)
    text = run_cli("params", *args, "--arch", "llama", "--lora-r", "8", "--lora-targets", "q_proj,v_proj").stdout
    assert "4,194,304 trainable" in text


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (("--lora-r", "8", "--lora-targets", "nope"), "no module named nope in llama; LoRA can target:"),
        (("--lora-r", "8"), "--lora-r needs --lora-targets: the linear modules of llama are down_proj, gate_proj"),
        (("--lora-targets", "q_proj"), "--lora-r must be a positive integer"),
        (("--lora-r", "0", "--lora-targets", "q_proj"), "--lora-r must be a positive integer"),
    ],
)
def test_lora_bad_input(extra: tuple[str, ...], message: str) -> None:
    r = run_cli(
        "params", "--vocab", "100", "--d-model", "64", "--layers", "2", "--heads", "4", "--arch", "llama", *extra
    )
    assert r.code == 2
    assert message in r.stderr
    assert "Traceback" not in r.stderr + r.stdout


# ---- bad input -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--vocab", "-5", "--d-model", "512", "--layers", "6"), "vocab must be positive, got -5"),
        (("--vocab", "100", "--d-model", "0", "--layers", "6"), "d_model must be positive, got 0"),
        (("--vocab", "100", "--d-model", "64", "--layers", "-1"), "layers must be positive, got -1"),
        (("--vocab", "100", "--d-model", "64", "--layers", "2", "--d-ff", "-3"), "d_ff must be positive"),
        (
            ("--vocab", "100", "--d-model", "512", "--layers", "6", "--heads", "7"),
            "heads (7) must divide d_model (512)",
        ),
        (
            ("--vocab", "100", "--d-model", "512", "--layers", "6", "--heads", "8", "--kv-heads", "3"),
            "kv_heads (3) must divide heads (8)",
        ),
        (("--vocab", "100", "--d-model", "64"), "give --layers (or --config config.json)"),
        (("--d-model", "64", "--layers", "2"), "give --vocab"),
        (
            ("--vocab", "100", "--d-model", "64", "--layers", "2", "--arch", "llama"),
            "needs the number of attention heads",
        ),
        (
            ("--vocab", "100", "--d-model", "64", "--layers", "2", "--arch", "mistral", "--bias"),
            "has no --bias/--no-bias option",
        ),
        (("--vocab", "100", "--d-model", "64", "--layers", "2", "--dtype", "f7"), "unknown dtype 'f7'"),
        (("--config", "examples/tiny-gpt2/config.json", "--layers", "3"), "--config gives the sizes; drop --layers"),
        (("--config", "examples/tiny-gpt2/config.json", "--arch", "torch-decoder"), "cannot read a config.json"),
        (
            ("--vocab", "100", "--d-model", "64", "--layers", "2", "--arch", "gpt2", "--kv-heads", "2"),
            "no --kv-heads option",
        ),
    ],
)
def test_bad_options_exit_2(args: tuple[str, ...], message: str) -> None:
    r = run_cli("params", *args)
    assert r.code == 2, (r.stdout, r.stderr)
    assert message in r.stderr
    assert "Traceback" not in r.stderr + r.stdout
    assert len(r.stderr.strip().splitlines()) == 1


def test_unknown_arch_exit_2() -> None:
    r = run_cli("params", *SEED, "--arch", "gpt5")
    assert r.code == 2
    assert "gpt5" in r.stderr and "torch-decoder" in r.stderr  # typer lists the valid choices


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"{not json", "config.json is not valid JSON"),
        (b'{"model_type": "gpt2", "vocab_size": NaN}', "config.json is not valid JSON"),
        (b"[1, 2]", "config.json must hold a JSON object"),
        (b"\xff\xfe\x00garbage", "config.json is not UTF-8"),
        (b"[" * 100_000 + b"]" * 100_000, "nests too deeply"),
        (b'{"model_type": "no_such_model", "vocab_size": 10}', "does not know model_type 'no_such_model'"),
        (b'{"vocab_size": 10}', "no preset for a config without model_type"),
        (b'{"model_type": "gpt2", "vocab_size": 10, "n_layer": 2}', "config.json has no 'n_embd'"),
        (b'{"model_type": "llama", "hidden_size": 64, "num_hidden_layers": 2}', "has no 'vocab_size'"),
        (b'{"model_type": "gpt2", "vocab_size": "big", "n_embd": 8, "n_layer": 1}', "'vocab_size' must be an integer"),
        (b'{"model_type": "gpt2", "vocab_size": 10, "n_embd": 10, "n_layer": 1, "n_head": 3}', "heads (3) must divide"),
        (
            b'{"model_type": "gpt2", "vocab_size": -10, "n_embd": 8, "n_layer": 1, "n_head": 2}',
            "vocab must be positive",
        ),
        (
            b'{"model_type": "bert", "vocab_size": 10, "hidden_size": 8, "num_hidden_layers": 1, '
            b'"num_attention_heads": 2, "add_cross_attention": true}',
            "config sets 'add_cross_attention' (True), which adds modules the bert preset does not count",
        ),
        (
            b'{"model_type": "chatglm", "padded_vocab_size": 10, "hidden_size": 8, "num_layers": 1, '
            b'"num_attention_heads": 2, "kv_channels": 4, "pre_seq_len": 16}',
            "config sets 'pre_seq_len' (16)",
        ),
    ],
)
def test_bad_config_exit_2(tmp_path: Path, content: bytes, message: str) -> None:
    cfg = tmp_path / "config.json"
    cfg.write_bytes(content)
    before = cfg.read_bytes()
    r = run_cli("params", "--config", str(cfg))
    assert r.code == 2, (r.stdout, r.stderr)
    assert message in r.stderr
    assert "Traceback" not in r.stderr + r.stdout
    assert cfg.read_bytes() == before  # input never modified


def test_unreadable_config_paths(tmp_path: Path) -> None:
    r = run_cli("params", "--config", str(tmp_path / "missing.json"))
    assert r.code == 2 and "no such file" in r.stderr
    r = run_cli("params", "--config", str(tmp_path))  # a folder without config.json
    assert r.code == 2 and "config.json" in r.stderr and "no such file" in r.stderr
    big = tmp_path / "huge.json"
    with big.open("wb") as fh:
        fh.truncate(17 * 1024 * 1024)  # sparse: 17 MiB claimed, nothing read
    r = run_cli("params", "--config", str(big))
    assert r.code == 2 and "too large for a config.json" in r.stderr


@pytest.mark.skipif(sys.platform == "win32", reason="FIFOs")
def test_fifo_config_does_not_hang(tmp_path: Path) -> None:
    import os

    fifo = tmp_path / "config.json"
    os.mkfifo(fifo)
    r = run_cli("params", "--config", str(fifo))
    assert r.code == 2 and "not a regular file" in r.stderr


def test_load_config_accepts_bom(tmp_path: Path) -> None:
    cfg = tmp_path / "config.json"
    cfg.write_bytes(b"\xef\xbb\xbf" + json.dumps({"model_type": "gpt2"}).encode())
    assert load_config(str(cfg))["model_type"] == "gpt2"


# ---- no heavy imports on this path --------------------------------------------------------------------------


def test_params_imports_no_torch_transformers_numpy() -> None:
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from modelscope_inspect.cli import app\n"
        "r = CliRunner().invoke(app, ['params', '--vocab', '168283', '--d-model', '512', '--layers', '6',"
        " '--arch', 'torch-decoder'])\n"
        "assert r.exit_code == 0, r.output\n"
        "r = CliRunner().invoke(app, ['params', '--config', 'examples/tiny-gpt2/config.json', '--json'])\n"
        "assert r.exit_code == 0, r.output\n"
        "print(sorted(m for m in ('torch', 'transformers', 'numpy', 'onnx') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


# ---- the cross-check in mi inspect ---------------------------------------------------------------------------


def test_inspect_cross_check_automatic_in_folder() -> None:
    r = run_cli("inspect", "examples/tiny-gpt2")
    assert r.code == 0, r.stderr
    assert "cross-check with config.json" in r.stdout and "match" in r.stdout
    doc = json.loads(run_cli("inspect", "examples/tiny-gpt2", "--json").stdout)
    cc = doc["cross_check"]
    assert cc["analytic_params"] == cc["file_params"] == doc["total_params"] == 11_904
    assert cc["matches"] is True and cc["difference"] == 0
    assert sum(t["file"] for t in cc["terms"]) == doc["total_params"]  # every tensor assigned to a term


def test_inspect_cross_check_with_tied_pickle() -> None:
    # lm_head.weight is stored but shares wte's storage: counted once, so the counts agree.
    doc = json.loads(
        run_cli(
            "inspect", str(FIXTURES / "tied_gpt2.bin"), "--config", "examples/tiny-gpt2/config.json", "--json"
        ).stdout
    )
    assert doc["cross_check"]["matches"] is True


def test_inspect_cross_check_explains_a_difference(tmp_path: Path) -> None:
    """An untied head the config says is tied, and a stray buffer: both named, with their sizes."""
    torch = pytest.importorskip("torch")
    from safetensors.torch import save_file

    cfg = load_config("examples/tiny-gpt2")
    tensors = {}
    from safetensors import safe_open

    with safe_open(str(ROOT / "examples" / "tiny-gpt2" / "model.safetensors"), "pt") as f:
        for k in f.keys():  # noqa: SIM118 - safe_open is not a mapping
            tensors[k] = f.get_tensor(k)
    tensors["lm_head.weight"] = torch.zeros(300, 16)  # a separate head: +4,800
    tensors["transformer.adapter.scale"] = torch.zeros(4)  # not part of gpt2: +4
    tensors["transformer.rotary.inv_freq"] = torch.zeros(4)  # a buffer known by name: not a parameter
    save_file(tensors, tmp_path / "model.safetensors")
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    doc = json.loads(run_cli("inspect", str(tmp_path), "--json").stdout)
    cc = doc["cross_check"]
    assert cc["difference"] == 4_800 + 4 and cc["matches"] is False
    assert {"name": "transformer.adapter.scale", "params": 4} in cc["unmatched"]
    assert not [u for u in cc["unmatched"] if "inv_freq" in u["name"]]
    text = run_cli("inspect", str(tmp_path)).stdout
    assert "+4,804" in text and "differs" in text
    assert "not in the gpt2 layout: transformer.adapter.scale (4)" in text
    # The untied head lands on the lm_head row, which the tied config says holds nothing.
    assert {"name": "lm_head", "analytic": 0, "file": 4_800, "difference": 4_800} in cc["terms"]
    assert "lm_head: config implies 0, file has 4,800 (+4,800)" in text


def test_inspect_bad_config_option_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "config.json"
    bad.write_text('{"model_type": "xlnet", "vocab_size": 10}')
    r = run_cli("inspect", "examples/tiny-gpt2", "--config", str(bad))
    assert r.code == 2 and "no preset for model_type 'xlnet'" in r.stderr


def test_inspect_folder_with_unknown_config_still_inspects(tmp_path: Path) -> None:
    import shutil

    shutil.copy(ROOT / "examples" / "tiny-gpt2" / "model.safetensors", tmp_path / "model.safetensors")
    (tmp_path / "config.json").write_text('{"model_type": "xlnet"}')
    r = run_cli("inspect", str(tmp_path), "--json")
    assert r.code == 0, r.stderr
    assert "cross_check" not in json.loads(r.stdout)


def test_unknown_model_type_counts_through_transformers_or_names_the_extra(tmp_path: Path) -> None:
    """A model type no family record reads: counted through transformers on the meta device when it is
    installed (the JSON says how), else the error lists the families and names the extra."""
    import importlib.util

    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps({"model_type": "xlm", "vocab_size": 100, "emb_dim": 32, "n_layers": 2, "n_heads": 4}))
    r = run_cli("params", "--config", str(cfg), "--json")
    if importlib.util.find_spec("transformers") is None or importlib.util.find_spec("torch") is None:
        assert r.code == 2 and "known model types:" in r.stderr and "[exact]" in r.stderr
        return
    import torch
    import transformers

    config = transformers.AutoConfig.for_model("xlm", vocab_size=100, emb_dim=32, n_layers=2, n_heads=4)
    with torch.device("meta"):
        model = transformers.AutoModelForCausalLM.from_config(config)  # no architectures: the causal-LM class
    doc = json.loads(r.stdout)
    assert r.code == 0 and doc["method"] == "transformers-meta"
    assert doc["total_params"] == sum(p.numel() for p in model.parameters())
    assert any("has no family record" in a for a in doc["assumptions"])


def test_exact_agrees_with_the_analytic_count(tmp_path: Path) -> None:
    cfg = tmp_path / "config.json"
    cfg.write_bytes((ROOT / "examples" / "configs" / "llama-3-8b.json").read_bytes())
    analytic = json.loads(run_cli("params", "--config", str(cfg), "--json").stdout)
    r = run_cli("params", "--config", str(cfg), "--exact", "--json")
    if r.code == 2 and "[exact]" in r.stderr:
        pytest.skip("torch/transformers not installed")
    exact = json.loads(r.stdout)
    assert analytic["method"] == "analytic" and exact["method"] == "transformers-meta"
    assert exact["total_params"] == analytic["total_params"] == 8_030_261_248
