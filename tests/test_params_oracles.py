"""Oracles for `mi params`: every preset against the real module, exact, term by term.

transformers models are built on the meta device (no memory, no weights) from the same config dict we give
`HParams.from_config`; torch.nn.Transformer models from the same flags. `parameters()` yields a tied weight
once, which is what we count. Per term, the model's named parameters are assigned to terms by the same name
patterns `mi inspect` uses for its cross-check, so a formula that is right in total but wrong per term fails.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from modelscope_inspect.analysis.hparams import HParams
from modelscope_inspect.analysis.params import ParamReport, count_params, cross_check

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
nn = torch.nn


# ---- helpers ------------------------------------------------------------------------------------------------


class _Rec:
    """The two fields of TensorRecord the cross-check reads, for a model's named parameters."""

    def __init__(self, name: str, numel: int) -> None:
        self.name, self.counted_numel, self.section = name, numel, "model"


class _Inv:
    def __init__(self, model: Any, config: dict[str, Any]) -> None:
        self.tensors = [_Rec(n, p.numel()) for n, p in model.named_parameters()]  # tied weights listed once
        self.total_params = sum(r.counted_numel for r in self.tensors)
        self.config = config


def _n(model: Any) -> int:
    return sum(p.numel() for p in model.parameters())


def _hf_model(cfg: dict[str, Any], auto: str) -> Any:
    kwargs = {k: v for k, v in cfg.items() if k not in ("model_type", "architectures")}
    config = transformers.AutoConfig.for_model(cfg["model_type"], **kwargs)
    factory = getattr(transformers, auto)
    with torch.device("meta"):
        return factory.from_config(config) if auto.startswith("Auto") else factory(config)


def _assert_exact(report: ParamReport, model: Any, config: dict[str, Any]) -> None:
    assert report.total_params == _n(model)
    cc = cross_check(_Inv(model, config))
    assert cc.unmatched == (), f"parameters no term accounts for: {cc.unmatched[:5]}"
    wrong = [(name, want, got) for name, want, got in cc.terms if want != got]
    assert wrong == [], f"terms that disagree with the model (term, ours, model): {wrong}"


# ---- transformers presets -----------------------------------------------------------------------------------

# (id, config.json dict, model class). Public configurations use the published values of their config.json.
HF_CASES: list[tuple[str, dict[str, Any], str]] = [
    # gpt2 (124,439,808 published) and a small untied one with n_inner
    ("gpt2", {"model_type": "gpt2", "vocab_size": 50257, "n_positions": 1024, "n_embd": 768, "n_layer": 12,
              "n_head": 12}, "AutoModelForCausalLM"),
    ("gpt2-small-untied", {"model_type": "gpt2", "vocab_size": 300, "n_positions": 32, "n_embd": 16, "n_layer": 3,
                           "n_head": 2, "n_inner": 40, "tie_word_embeddings": False}, "AutoModelForCausalLM"),
    # bert-base-uncased: 109,482,240 with pooler; the MLM and pretraining heads
    ("bert-base", {"model_type": "bert", "architectures": ["BertModel"], "vocab_size": 30522, "hidden_size": 768,
                   "num_hidden_layers": 12, "num_attention_heads": 12, "intermediate_size": 3072,
                   "max_position_embeddings": 512, "type_vocab_size": 2}, "AutoModel"),
    ("bert-base-mlm", {"model_type": "bert", "architectures": ["BertForMaskedLM"], "vocab_size": 30522,
                       "hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12,
                       "intermediate_size": 3072}, "AutoModelForMaskedLM"),
    ("bert-small-pretraining", {"model_type": "bert", "architectures": ["BertForPreTraining"], "vocab_size": 1000,
                                "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
                                "intermediate_size": 100, "type_vocab_size": 3}, "BertForPreTraining"),
    # roberta-base: 124,645,632 with pooler
    ("roberta-base", {"model_type": "roberta", "architectures": ["RobertaModel"], "vocab_size": 50265,
                      "hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12,
                      "intermediate_size": 3072, "max_position_embeddings": 514, "type_vocab_size": 1}, "AutoModel"),
    ("roberta-small-mlm", {"model_type": "roberta", "architectures": ["RobertaForMaskedLM"], "vocab_size": 1000,
                           "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
                           "intermediate_size": 100, "max_position_embeddings": 66, "type_vocab_size": 1},
     "AutoModelForMaskedLM"),
    # t5-small: 60,506,624; a v1.1-style gated model with asymmetric depth
    ("t5-small", {"model_type": "t5", "vocab_size": 32128, "d_model": 512, "d_kv": 64, "d_ff": 2048, "num_layers": 6,
                  "num_heads": 8, "relative_attention_num_buckets": 32, "feed_forward_proj": "relu"},
     "AutoModelForSeq2SeqLM"),
    ("t5-gated", {"model_type": "t5", "vocab_size": 500, "d_model": 48, "d_kv": 8, "d_ff": 96, "num_layers": 3,
                  "num_decoder_layers": 2, "num_heads": 4, "relative_attention_num_buckets": 16,
                  "feed_forward_proj": "gated-gelu", "tie_word_embeddings": False}, "AutoModelForSeq2SeqLM"),
    # llama-2-7b: 6,738,415,616 published; a small GQA model with every bias and tied embeddings
    ("llama-2-7b", {"model_type": "llama", "vocab_size": 32000, "hidden_size": 4096, "intermediate_size": 11008,
                    "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 32,
                    "max_position_embeddings": 4096, "tie_word_embeddings": False}, "AutoModelForCausalLM"),
    ("llama-small-gqa-bias", {"model_type": "llama", "vocab_size": 1000, "hidden_size": 64, "intermediate_size": 100,
                              "num_hidden_layers": 2, "num_attention_heads": 8, "num_key_value_heads": 2,
                              "attention_bias": True, "mlp_bias": True, "tie_word_embeddings": True,
                              "head_dim": 16}, "AutoModelForCausalLM"),
    # Mistral-7B-v0.1: 7,241,732,096; a sparse config that leans on MistralConfig's defaults (kv heads 8, d_ff 14336)
    ("mistral-7b", {"model_type": "mistral", "vocab_size": 32000, "hidden_size": 4096, "intermediate_size": 14336,
                    "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8},
     "AutoModelForCausalLM"),
    ("mistral-defaults", {"model_type": "mistral", "vocab_size": 1000, "hidden_size": 256, "num_hidden_layers": 1},
     "AutoModelForCausalLM"),
    # Qwen2-0.5B: 494,032,768 (tied); a small untied one
    ("qwen2-0.5b", {"model_type": "qwen2", "vocab_size": 151936, "hidden_size": 896, "intermediate_size": 4864,
                    "num_hidden_layers": 24, "num_attention_heads": 14, "num_key_value_heads": 2,
                    "tie_word_embeddings": True}, "AutoModelForCausalLM"),
    ("qwen2-small", {"model_type": "qwen2", "vocab_size": 1000, "hidden_size": 64, "intermediate_size": 100,
                     "num_hidden_layers": 3, "num_attention_heads": 8, "num_key_value_heads": 4},
     "AutoModelForCausalLM"),
    # gemma-7b: 8,537,680,896 (head_dim 256 ≠ d/heads); gemma-2b's multi-query; a sparse config (head_dim default)
    ("gemma-7b", {"model_type": "gemma", "vocab_size": 256000, "hidden_size": 3072, "intermediate_size": 24576,
                  "num_hidden_layers": 28, "num_attention_heads": 16, "num_key_value_heads": 16, "head_dim": 256},
     "AutoModelForCausalLM"),
    ("gemma-2b", {"model_type": "gemma", "vocab_size": 256000, "hidden_size": 2048, "intermediate_size": 16384,
                  "num_hidden_layers": 18, "num_attention_heads": 8, "num_key_value_heads": 1, "head_dim": 256},
     "AutoModelForCausalLM"),
    ("gemma-defaults", {"model_type": "gemma", "vocab_size": 500, "hidden_size": 64, "num_hidden_layers": 1,
                        "num_attention_heads": 4, "num_key_value_heads": 2, "intermediate_size": 96},
     "AutoModelForCausalLM"),
    # opt-125m: 125,239,296; opt-350m's projections and post-norm; no biases, no affine norms
    ("opt-125m", {"model_type": "opt", "vocab_size": 50272, "hidden_size": 768, "num_hidden_layers": 12,
                  "ffn_dim": 3072, "num_attention_heads": 12, "max_position_embeddings": 2048}, "AutoModelForCausalLM"),
    ("opt-350m-like", {"model_type": "opt", "vocab_size": 1000, "hidden_size": 64, "num_hidden_layers": 2,
                       "ffn_dim": 100, "num_attention_heads": 4, "word_embed_proj_dim": 32,
                       "do_layer_norm_before": False, "max_position_embeddings": 40}, "AutoModelForCausalLM"),
    ("opt-no-bias", {"model_type": "opt", "vocab_size": 1000, "hidden_size": 64, "num_hidden_layers": 2, "ffn_dim": 100,
                     "num_attention_heads": 4, "enable_bias": False, "layer_norm_elementwise_affine": False},
     "AutoModelForCausalLM"),
    # phi-2: 2,779,683,840; a small one with GQA and q/k LayerNorm
    ("phi-2", {"model_type": "phi", "vocab_size": 51200, "hidden_size": 2560, "intermediate_size": 10240,
               "num_hidden_layers": 32, "num_attention_heads": 32}, "AutoModelForCausalLM"),
    ("phi-small-qk", {"model_type": "phi", "vocab_size": 1000, "hidden_size": 64, "intermediate_size": 100,
                      "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "qk_layernorm": True,
                      "tie_word_embeddings": True}, "AutoModelForCausalLM"),
    # falcon-7b: 6,921,720,704 (multi-query, parallel attention); 40B-style grouped KV; classic sequential MHA
    ("falcon-7b", {"model_type": "falcon", "vocab_size": 65024, "hidden_size": 4544, "num_hidden_layers": 32,
                   "num_attention_heads": 71, "multi_query": True, "parallel_attn": True, "bias": False},
     "AutoModelForCausalLM"),
    ("falcon-40b-like", {"model_type": "falcon", "vocab_size": 1000, "hidden_size": 64, "num_hidden_layers": 2,
                         "num_attention_heads": 8, "num_kv_heads": 2, "new_decoder_architecture": True, "bias": True},
     "AutoModelForCausalLM"),
    ("falcon-rw-like", {"model_type": "falcon", "vocab_size": 1000, "hidden_size": 64, "num_hidden_layers": 2,
                        "num_attention_heads": 8, "multi_query": False, "parallel_attn": False, "bias": True,
                        "ffn_hidden_size": 100, "tie_word_embeddings": False}, "AutoModelForCausalLM"),
    ("falcon-one-ln", {"model_type": "falcon", "vocab_size": 1000, "hidden_size": 64, "num_hidden_layers": 2,
                       "num_attention_heads": 8, "num_kv_heads": 4, "new_decoder_architecture": True,
                       "num_ln_in_parallel_attn": 1}, "AutoModelForCausalLM"),
    # Mixtral-8x7B: 46,702,792,704; a small one
    ("mixtral-8x7b", {"model_type": "mixtral", "vocab_size": 32000, "hidden_size": 4096, "intermediate_size": 14336,
                      "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8,
                      "num_local_experts": 8, "num_experts_per_tok": 2}, "AutoModelForCausalLM"),
    ("mixtral-small", {"model_type": "mixtral", "vocab_size": 1000, "hidden_size": 64, "intermediate_size": 96,
                       "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
                       "num_local_experts": 4, "num_experts_per_tok": 1, "tie_word_embeddings": True},
     "AutoModelForCausalLM"),
    # Qwen1.5-MoE-A2.7B: 14,315,784,192; a small one with dense-only layers and a sparse step
    ("qwen1.5-moe-a2.7b", {"model_type": "qwen2_moe", "vocab_size": 151936, "hidden_size": 2048,
                           "intermediate_size": 5632, "num_hidden_layers": 24, "num_attention_heads": 16,
                           "num_key_value_heads": 16, "num_experts": 60, "num_experts_per_tok": 4,
                           "moe_intermediate_size": 1408, "shared_expert_intermediate_size": 5632},
     "AutoModelForCausalLM"),
    ("qwen2-moe-small", {"model_type": "qwen2_moe", "vocab_size": 1000, "hidden_size": 64, "intermediate_size": 100,
                         "num_hidden_layers": 4, "num_attention_heads": 4, "num_key_value_heads": 2, "num_experts": 6,
                         "num_experts_per_tok": 2, "moe_intermediate_size": 24, "shared_expert_intermediate_size": 48,
                         "decoder_sparse_step": 2, "mlp_only_layers": [3], "qkv_bias": False},
     "AutoModelForCausalLM"),
    # Qwen3-0.6B: 596,049,920 (tied, head_dim 128 ≠ d/heads, q/k norms); a small untied one with biases
    ("qwen3-0.6b", {"model_type": "qwen3", "vocab_size": 151936, "hidden_size": 1024, "intermediate_size": 3072,
                    "num_hidden_layers": 28, "num_attention_heads": 16, "num_key_value_heads": 8, "head_dim": 128,
                    "tie_word_embeddings": True}, "AutoModelForCausalLM"),
    ("qwen3-small-bias", {"model_type": "qwen3", "vocab_size": 1000, "hidden_size": 64, "intermediate_size": 100,
                          "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 24,
                          "attention_bias": True}, "AutoModelForCausalLM"),
    # Qwen3-30B-A3B: 30,532,122,624 total; a small one with a dense-only layer
    ("qwen3-30b-a3b", {"model_type": "qwen3_moe", "vocab_size": 151936, "hidden_size": 2048,
                       "intermediate_size": 6144, "num_hidden_layers": 48, "num_attention_heads": 32,
                       "num_key_value_heads": 4, "head_dim": 128, "num_experts": 128, "num_experts_per_tok": 8,
                       "moe_intermediate_size": 768}, "AutoModelForCausalLM"),
    ("qwen3-moe-small", {"model_type": "qwen3_moe", "vocab_size": 1000, "hidden_size": 64, "intermediate_size": 100,
                         "num_hidden_layers": 3, "num_attention_heads": 4, "num_key_value_heads": 2, "num_experts": 5,
                         "num_experts_per_tok": 2, "moe_intermediate_size": 24, "mlp_only_layers": [1]},
     "AutoModelForCausalLM"),
]  # fmt: skip

# Published totals, checked independently of the model build.
PUBLISHED = {
    "gpt2": 124_439_808,
    "bert-base": 109_482_240,
    "t5-small": 60_506_624,
    "llama-2-7b": 6_738_415_616,
    "mistral-7b": 7_241_732_096,
    "qwen2-0.5b": 494_032_768,
    "gemma-7b": 8_537_680_896,
    "opt-125m": 125_239_296,
    "phi-2": 2_779_683_840,
    "mixtral-8x7b": 46_702_792_704,
    "qwen1.5-moe-a2.7b": 14_315_784_192,
}


@pytest.mark.parametrize(("case", "cfg", "auto"), HF_CASES, ids=[c[0] for c in HF_CASES])
def test_hf_preset_exact(case: str, cfg: dict[str, Any], auto: str) -> None:
    model = _hf_model(cfg, auto)
    report = count_params(HParams.from_config(cfg))
    _assert_exact(report, model, cfg)
    if case in PUBLISHED:
        assert report.total_params == PUBLISHED[case]


def test_every_hf_preset_has_two_sizes() -> None:
    arches = [HParams.from_config(cfg).arch for _, cfg, _ in HF_CASES]
    for arch in set(arches):
        assert arches.count(arch) >= 2, arch


@pytest.mark.parametrize(
    "case", [c for c in HF_CASES if c[1]["model_type"] in ("mixtral", "qwen2_moe", "qwen3_moe")], ids=lambda c: c[0]
)
def test_moe_active_params(case: tuple[str, dict[str, Any], str]) -> None:
    """Active = the model's parameters minus the routed experts a token does not use (k of E)."""
    _, cfg, auto = case
    model = _hf_model(cfg, auto)
    report = count_params(HParams.from_config(cfg))
    experts = sum(p.numel() for n, p in model.named_parameters() if ".experts." in n)
    e = cfg.get("num_local_experts", cfg.get("num_experts"))
    k = cfg["num_experts_per_tok"]
    assert experts % e == 0
    assert report.active_params == _n(model) - experts // e * (e - k)
    assert report.is_moe


def test_refinedweb_configs_read_as_the_falcon_port() -> None:
    """Pre-port Falcon configs (model_type RefinedWeb / RefinedWebModel) count as transformers' FalconConfig."""
    old_40b = {"model_type": "RefinedWeb", "vocab_size": 1000, "hidden_size": 64, "n_layer": 2, "n_head": 8,
               "n_head_kv": 2, "parallel_attn": True, "bias": False}  # fmt: skip
    port = {"model_type": "falcon", "vocab_size": 1000, "hidden_size": 64, "num_hidden_layers": 2,
            "num_attention_heads": 8, "num_kv_heads": 2, "new_decoder_architecture": True, "bias": False}  # fmt: skip
    assert count_params(HParams.from_config(old_40b)).total_params == _n(_hf_model(port, "AutoModelForCausalLM"))
    old_7b = {"model_type": "RefinedWebModel", "vocab_size": 1000, "hidden_size": 64, "n_layer": 2, "n_head": 8,
              "multi_query": True, "parallel_attn": True, "bias": False}  # fmt: skip
    port = {"model_type": "falcon", "vocab_size": 1000, "hidden_size": 64, "num_hidden_layers": 2,
            "num_attention_heads": 8, "multi_query": True, "parallel_attn": True, "bias": False}  # fmt: skip
    assert count_params(HParams.from_config(old_7b)).total_params == _n(_hf_model(port, "AutoModelForCausalLM"))


def test_from_options_matches_from_config() -> None:
    """The CLI-flag constructor gives the same count as the config for the same sizes (llama-2-7b, gpt2)."""
    cfg = next(c for n, c, _ in HF_CASES if n == "llama-2-7b")
    flags = HParams.from_options(arch="llama", vocab=32000, d_model=4096, layers=32, heads=32, d_ff=11008)
    assert count_params(flags).total_params == count_params(HParams.from_config(cfg)).total_params
    flags = HParams.from_options(arch="gpt2", vocab=50257, d_model=768, layers=12, heads=12)
    assert count_params(flags).total_params == 124_439_808


# ---- torch.nn presets ---------------------------------------------------------------------------------------


class SeedLike(nn.Module):  # type: ignore[misc]
    """fixtures/make_fixtures.py SeedDecoder, with the bias and tying switches the preset accepts."""

    def __init__(self, vocab: int, d: int, heads: int, d_ff: int, layers: int, bias: bool, tied: bool) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab, d)
        layer = nn.TransformerDecoderLayer(d, heads, d_ff, bias=bias)
        self.transformer_decoder = nn.TransformerDecoder(layer, layers)
        self.fc_out = nn.Linear(d, vocab, bias=bias)
        if tied:
            self.fc_out.weight = self.embedding.weight


class EncDec(nn.Module):  # type: ignore[misc]
    def __init__(self, vocab: int, d: int, heads: int, d_ff: int, enc: int, dec: int, bias: bool) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab, d)
        self.transformer = nn.Transformer(d, heads, enc, dec, d_ff, bias=bias)
        self.fc_out = nn.Linear(d, vocab, bias=bias)


def test_torch_decoder_is_the_seed_model() -> None:
    from fixtures.make_fixtures import SeedDecoder

    with torch.device("meta"):
        model = SeedDecoder()
    hp = HParams.from_options(arch="torch-decoder", vocab=168283, d_model=512, layers=6, heads=8, d_ff=2048)
    report = count_params(hp)
    assert report.total_params == _n(model) == 197_714_267
    _assert_terms(report, model)


@pytest.mark.parametrize(
    ("vocab", "d", "heads", "d_ff", "layers", "bias", "tied"),
    [(200, 16, 2, 32, 2, True, False), (1000, 64, 4, 80, 3, False, False), (500, 32, 4, 48, 1, True, True)],
)
def test_torch_decoder_variants(vocab: int, d: int, heads: int, d_ff: int, layers: int, bias: bool, tied: bool) -> None:
    with torch.device("meta"):
        model = SeedLike(vocab, d, heads, d_ff, layers, bias, tied)
    hp = HParams.from_options(
        arch="torch-decoder", vocab=vocab, d_model=d, layers=layers, heads=heads, d_ff=d_ff, bias=bias, tied=tied
    )
    report = count_params(hp)
    assert report.total_params == _n(model)
    _assert_terms(report, model)


@pytest.mark.parametrize(
    ("vocab", "d", "heads", "d_ff", "enc", "dec", "bias"),
    [(168283, 512, 8, 2048, 6, 6, True), (300, 32, 4, 64, 3, 2, True), (300, 32, 4, 64, 1, 4, False)],
)
def test_torch_encoder_decoder(vocab: int, d: int, heads: int, d_ff: int, enc: int, dec: int, bias: bool) -> None:
    with torch.device("meta"):
        model = EncDec(vocab, d, heads, d_ff, enc, dec, bias)
    hp = HParams.from_options(
        arch="torch-encoder-decoder", vocab=vocab, d_model=d, layers=enc, heads=heads, d_ff=d_ff, bias=bias,
        encoder_layers=enc, decoder_layers=dec,
    )  # fmt: skip
    report = count_params(hp)
    assert report.total_params == _n(model)
    _assert_terms(report, model)


def test_torch_default_d_ff_is_torchs() -> None:
    """Without --d-ff the torch presets use nn.TransformerDecoderLayer's own default (2048), not 4·d."""
    with torch.device("meta"):
        layer = nn.TransformerDecoderLayer(64, 4)
        model = SeedLike(100, 64, 4, layer.linear1.out_features, 2, True, False)
    hp = HParams.from_options(arch="torch-decoder", vocab=100, d_model=64, layers=2)
    assert count_params(hp).total_params == _n(model)


def _assert_terms(report: ParamReport, model: Any) -> None:
    import re

    rows = {t.name: 0 for t in report.terms}
    for name, p in model.named_parameters():
        term = next((t for t in report.terms if any(re.search(pat, name) for pat in t.patterns)), None)
        assert term is not None, f"no term for {name}"
        rows[term.name] += p.numel()
    assert rows == {t.name: t.params for t in report.terms}


# ---- chatglm: THUDM's modeling_chatglm.py, module by module --------------------------------------------------


class _RMSNorm(nn.Module):  # type: ignore[misc]
    def __init__(self, d: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(d))


class _GLMBlock(nn.Module):  # type: ignore[misc]
    """The parameter-holding modules of GLMBlock / SelfAttention / MLP in modeling_chatglm.py (ChatGLM2/3)."""

    def __init__(self, c: dict[str, Any]) -> None:
        super().__init__()
        d, heads, kvc = c["hidden_size"], c["num_attention_heads"], c["kv_channels"]
        norm: Callable[[int], nn.Module] = _RMSNorm if c["rmsnorm"] else nn.LayerNorm
        projection = kvc * heads
        qkv = 3 * projection
        if c["multi_query_attention"]:
            qkv = projection + 2 * kvc * c["multi_query_group_num"]
        self.input_layernorm = norm(d)
        self.self_attention = nn.Module()
        self.self_attention.query_key_value = nn.Linear(d, qkv, bias=c["add_bias_linear"] or c["add_qkv_bias"])
        self.self_attention.dense = nn.Linear(projection, d, bias=c["add_bias_linear"])
        self.post_attention_layernorm = norm(d)
        self.mlp = nn.Module()
        self.mlp.dense_h_to_4h = nn.Linear(d, 2 * c["ffn_hidden_size"], bias=c["add_bias_linear"])
        self.mlp.dense_4h_to_h = nn.Linear(c["ffn_hidden_size"], d, bias=c["add_bias_linear"])


class _ChatGLM(nn.Module):  # type: ignore[misc]
    """ChatGLMForConditionalGeneration: transformer.{embedding.word_embeddings, encoder, output_layer}."""

    def __init__(self, c: dict[str, Any]) -> None:
        super().__init__()
        d = c["hidden_size"]
        self.transformer = nn.Module()
        self.transformer.embedding = nn.Module()
        self.transformer.embedding.word_embeddings = nn.Embedding(c["padded_vocab_size"], d)
        self.transformer.encoder = nn.Module()
        self.transformer.encoder.layers = nn.ModuleList(_GLMBlock(c) for _ in range(c["num_layers"]))
        if c["post_layer_norm"]:
            self.transformer.encoder.final_layernorm = (_RMSNorm if c["rmsnorm"] else nn.LayerNorm)(d)
        self.transformer.output_layer = nn.Linear(d, c["padded_vocab_size"], bias=False)


CHATGLM3_6B = {
    "model_type": "chatglm", "padded_vocab_size": 65024, "hidden_size": 4096, "num_layers": 28,
    "num_attention_heads": 32, "kv_channels": 128, "ffn_hidden_size": 13696, "multi_query_attention": True,
    "multi_query_group_num": 2, "add_bias_linear": False, "add_qkv_bias": True, "rmsnorm": True,
    "post_layer_norm": True, "tie_word_embeddings": False,
}  # fmt: skip


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"padded_vocab_size": 512, "hidden_size": 64, "num_layers": 2, "num_attention_heads": 4, "kv_channels": 16,
         "ffn_hidden_size": 96},
        {"padded_vocab_size": 512, "hidden_size": 64, "num_layers": 3, "num_attention_heads": 4, "kv_channels": 8,
         "ffn_hidden_size": 96, "multi_query_attention": False, "add_bias_linear": True, "rmsnorm": False,
         "post_layer_norm": False},
    ],
    ids=["chatglm3-6b", "small-mqa", "small-mha-bias-layernorm"],
)  # fmt: skip
def test_chatglm(changes: dict[str, Any]) -> None:
    cfg = {**CHATGLM3_6B, **changes}
    with torch.device("meta"):
        model = _ChatGLM(cfg)
    report = count_params(HParams.from_config(cfg))
    _assert_exact(report, model, cfg)
    if not changes:
        assert report.total_params == 6_243_584_000


# ---- LoRA against PEFT --------------------------------------------------------------------------------------

LORA_CASES = [
    ("llama-small-gqa-bias", ["q_proj", "v_proj"], 8),
    ("llama-small-gqa-bias", ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"], 4),
    ("gpt2-small-untied", ["c_attn", "c_proj"], 4),
    ("bert-small-pretraining", ["query", "value", "dense"], 2),
    ("t5-gated", ["q", "v", "wi_0", "wo"], 4),
    ("falcon-40b-like", ["query_key_value", "dense_4h_to_h"], 8),
    ("opt-350m-like", ["q_proj", "fc1"], 4),
    ("opt-350m-like", ["project_in", "project_out", "lm_head"], 2),
    ("gpt2-small-untied", ["lm_head", "c_fc"], 2),
    ("phi-small-qk", ["q_proj", "dense", "fc2"], 4),
    ("qwen2-moe-small", ["q_proj", "gate_proj"], 4),
    # Not down_proj/gate_proj here: PEFT ≥ 0.18 also adapts transformers 5's fused expert parameters under
    # those names (and then skips the dense layers' modules), which `mi params` does not model (README).
    ("qwen3-moe-small", ["k_proj", "o_proj"], 4),
]


@pytest.mark.parametrize(("case", "targets", "r"), LORA_CASES, ids=[f"{c[0]}-{len(c[1])}" for c in LORA_CASES])
def test_lora_matches_peft(case: str, targets: list[str], r: int) -> None:
    peft = pytest.importorskip("peft")
    _, cfg, auto = next(c for c in HF_CASES if c[0] == case)
    kwargs = {k: v for k, v in cfg.items() if k not in ("model_type", "architectures")}
    config = transformers.AutoConfig.for_model(cfg["model_type"], **kwargs)
    factory = getattr(transformers, auto)
    model = factory.from_config(config) if auto.startswith("Auto") else factory(config)  # small: real CPU model
    lora_model = peft.get_peft_model(model, peft.LoraConfig(r=r, target_modules=targets, lora_alpha=2 * r))
    trainable = sum(p.numel() for n, p in lora_model.named_parameters() if "lora_" in n)
    report = count_params(HParams.from_config(cfg), lora_r=r, lora_targets=targets)
    assert report.lora is not None
    assert report.lora.params == trainable


def test_lora_torch_decoder_matches_peft() -> None:
    peft = pytest.importorskip("peft")
    model = SeedLike(200, 16, 2, 32, 2, True, False)
    lora_model = peft.get_peft_model(model, peft.LoraConfig(r=4, target_modules=["linear1", "linear2", "fc_out"]))
    trainable = sum(p.numel() for n, p in lora_model.named_parameters() if "lora_" in n)
    hp = HParams.from_options(arch="torch-decoder", vocab=200, d_model=16, layers=2, heads=2, d_ff=32)
    report = count_params(hp, lora_r=4, lora_targets=["linear1", "linear2", "fc_out"])
    assert report.lora is not None and report.lora.params == trainable
