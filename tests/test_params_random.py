"""Random small decoder configs (hypothesis): `mi params` equals the transformers model built on meta."""

from __future__ import annotations

from typing import Any

import pytest

from modelscope_inspect.analysis.hparams import HParams
from modelscope_inspect.analysis.params import count_params

from .test_params_oracles import _hf_model, _n

pytest.importorskip("transformers")

hypothesis = pytest.importorskip("hypothesis")
st = hypothesis.strategies


@st.composite
def _decoder_configs(draw: Any) -> dict[str, Any]:
    """Random small configs of the decoder families, in the shape a config.json has."""
    mt = draw(st.sampled_from(["gpt2", "llama", "mistral", "qwen2", "qwen3", "gemma", "phi", "opt", "falcon"]))
    kv = draw(st.integers(1, 4))
    heads = kv * draw(st.integers(1, 3))
    head_dim = 2 * draw(st.integers(1, 8))
    d = heads * head_dim
    cfg: dict[str, Any] = {"model_type": mt, "vocab_size": draw(st.integers(1, 600))}
    layers = draw(st.integers(0, 3))
    ff = draw(st.integers(1, 90))
    tied = draw(st.booleans())
    if mt == "gpt2":
        cfg.update(n_embd=d, n_layer=layers, n_head=heads, n_inner=ff, n_positions=draw(st.integers(1, 64)))
    elif mt == "opt":
        cfg.update(hidden_size=d, num_hidden_layers=layers, num_attention_heads=heads, ffn_dim=ff,
                   enable_bias=draw(st.booleans()), do_layer_norm_before=draw(st.booleans()))  # fmt: skip
    elif mt == "falcon":
        cfg.update(hidden_size=d, num_hidden_layers=layers, num_attention_heads=heads, num_kv_heads=kv,
                   new_decoder_architecture=draw(st.booleans()), multi_query=draw(st.booleans()),
                   parallel_attn=draw(st.booleans()), bias=draw(st.booleans()), ffn_hidden_size=ff)  # fmt: skip
    else:
        cfg.update(hidden_size=d, num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=kv,
                   intermediate_size=ff)  # fmt: skip
        if mt in ("llama", "gemma", "qwen3"):
            cfg.update(head_dim=draw(st.sampled_from([head_dim, 2 * head_dim])), attention_bias=draw(st.booleans()))
    cfg["tie_word_embeddings"] = tied
    return cfg


@hypothesis.settings(max_examples=40, deadline=None, derandomize=True)
@hypothesis.given(_decoder_configs())
def test_random_decoder_configs_are_exact(cfg: dict[str, Any]) -> None:
    model = _hf_model(cfg, "AutoModelForCausalLM")
    assert count_params(HParams.from_config(cfg)).total_params == _n(model)
