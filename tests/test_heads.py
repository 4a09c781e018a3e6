"""Task heads named by `architectures`: counted as transformers builds them (meta device), never guessed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from modelscope_inspect.analysis.hparams import HParams
from modelscope_inspect.analysis.params import count_params

from .conftest import run_cli

torch = pytest.importorskip("torch")
T = pytest.importorskip("transformers")

SMALL_LLAMA = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4, vocab_size=1000)
SMALL_BERT = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128, vocab_size=1000)
LLAMA2_7B = dict(hidden_size=4096, intermediate_size=11008, num_hidden_layers=32, num_attention_heads=32,
                 vocab_size=32000)  # fmt: skip
MISTRAL_7B = dict(hidden_size=4096, intermediate_size=14336, num_hidden_layers=32, num_attention_heads=32,
                  num_key_value_heads=8, vocab_size=32000)  # fmt: skip

CASES = [
    # The six of the issue: heads another than the preset's assumed one.
    ("llama", "LlamaForSequenceClassification", {**LLAMA2_7B, "num_labels": 3}),
    ("mistral", "MistralModel", MISTRAL_7B),  # embedding models such as e5-mistral
    ("bert", "BertForSequenceClassification", {**SMALL_BERT, "num_labels": 3}),
    ("bert", "BertForTokenClassification", {**SMALL_BERT, "num_labels": 9}),
    ("roberta", "RobertaForSequenceClassification", {**SMALL_BERT, "num_labels": 3}),
    ("t5", "T5EncoderModel", dict(d_model=1024, num_layers=24, num_heads=16, d_kv=64, d_ff=4096, vocab_size=32128)),
    # The other generic heads.
    ("llama", "LlamaForTokenClassification", {**SMALL_LLAMA, "num_labels": 5}),
    ("llama", "LlamaForQuestionAnswering", SMALL_LLAMA),
    ("qwen2", "Qwen2ForSequenceClassification", {**SMALL_LLAMA, "num_key_value_heads": 2}),
    ("gpt2", "GPT2ForSequenceClassification", dict(n_embd=64, n_layer=2, n_head=4, vocab_size=1000, num_labels=4)),
    ("gpt2", "GPT2ForTokenClassification", dict(n_embd=64, n_layer=2, n_head=4, vocab_size=1000, num_labels=4)),
    ("gpt2", "GPT2Model", dict(n_embd=64, n_layer=2, n_head=4, vocab_size=1000)),
    ("bert", "BertForQuestionAnswering", SMALL_BERT),
    ("roberta", "RobertaForTokenClassification", {**SMALL_BERT, "num_labels": 3}),
    ("opt", "OPTForSequenceClassification", dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                                                   ffn_dim=128, vocab_size=1000, word_embed_proj_dim=64)),
    ("phi", "PhiForSequenceClassification", {**SMALL_LLAMA}),
]  # fmt: skip


def _config(model_type: str, arch: str, kw: dict[str, object]):  # type: ignore[no-untyped-def]
    cfg = T.AutoConfig.for_model(model_type, **kw)
    cfg.architectures = [arch]
    return cfg


@pytest.mark.parametrize(("model_type", "arch", "kw"), CASES, ids=[c[1] for c in CASES])
def test_head_counts_like_transformers(model_type: str, arch: str, kw: dict[str, object]) -> None:
    cfg = _config(model_type, arch, kw)
    with torch.device("meta"):
        model = getattr(T, arch)(cfg)
    expected = sum(p.numel() for p in model.parameters())
    report = count_params(HParams.from_config(json.loads(cfg.to_json_string())))
    assert report.total_params == expected
    assert sum(t.params for t in report.terms) == report.total_params


def test_unknown_head_counts_the_base_model_and_says_so(tmp_path: Path) -> None:
    cfg = _config("llama", "LlamaForMultipleChoiceSomething", SMALL_LLAMA)
    path = tmp_path / "config.json"
    path.write_text(cfg.to_json_string())
    with torch.device("meta"):
        base = T.LlamaModel(cfg)
    r = run_cli("params", "--config", str(path), "--json")
    doc = json.loads(r.stdout)
    assert r.code == 0 and doc["total_params"] == sum(p.numel() for p in base.parameters())
    assert any("LlamaForMultipleChoiceSomething" in a and "does not know" in a for a in doc["assumptions"])
