"""The tokenizer beside the weights: kind and `len(tokenizer)` for tokenizers trained and saved by `tokenizers`,
`sentencepiece` and `transformers` themselves; config vocab_size vs tokenizer vs embedding rows in `mi inspect`
and `mi check --vocab-consistent`; hostile tokenizer files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from modelscope_inspect import load
from modelscope_inspect.analysis.vocab import vocab_report
from modelscope_inspect.cli import app

tokenizers = pytest.importorskip("tokenizers")
transformers = pytest.importorskip("transformers")

TEXT = [
    "the quick brown fox jumps over the lazy dog",
    "a model file says what is inside without running it",
    "tokenizers split words into pieces and pieces into ids",
] * 20
SPECIALS = ["<unk>", "<s>", "</s>", "<pad>"]


def _train(kind: str) -> object:
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    if kind == "BPE":
        tok = Tokenizer(models.BPE(unk_token="<unk>"))
        trainer: object = trainers.BpeTrainer(vocab_size=120, special_tokens=SPECIALS)
    elif kind == "WordPiece":
        tok = Tokenizer(models.WordPiece(unk_token="<unk>"))
        trainer = trainers.WordPieceTrainer(vocab_size=120, special_tokens=SPECIALS)
    else:
        tok = Tokenizer(models.Unigram())
        trainer = trainers.UnigramTrainer(vocab_size=80, special_tokens=SPECIALS, unk_token="<unk>")
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.train_from_iterator(TEXT, trainer=trainer)  # type: ignore[arg-type]
    return tok


def _fast(kind: str, folder: Path, extra: list[str] | None = None) -> int:
    from transformers import PreTrainedTokenizerFast

    fast = PreTrainedTokenizerFast(tokenizer_object=_train(kind), unk_token="<unk>", bos_token="<s>",
                                   eos_token="</s>", pad_token="<pad>")  # fmt: skip
    if extra:
        fast.add_tokens(extra)
    fast.save_pretrained(folder)
    return len(fast)


def _weights(folder: Path, rows: int, vocab_size: int | None = None) -> None:
    """A tiny llama's weights and config beside the tokenizer (config vocab_size = rows unless given)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=rows, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                      num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=16)  # fmt: skip
    LlamaForCausalLM(cfg).save_pretrained(folder)
    if vocab_size is not None:
        doc = json.loads((folder / "config.json").read_text())
        doc["vocab_size"] = vocab_size
        (folder / "config.json").write_text(json.dumps(doc))


@pytest.mark.parametrize("kind", ["BPE", "WordPiece", "Unigram"])
def test_tokenizer_json_kind_and_size(tmp_path: Path, kind: str) -> None:
    n = _fast(kind, tmp_path, extra=["<extra_a>", "<extra_b>"])
    _weights(tmp_path, n)
    inv = load(tmp_path)
    tok = inv.details["_tokenizer"]
    assert tok["kind"] == kind and tok["size"] == n
    assert tok["special"]["bos"] == "<s>" and tok["special"]["pad"] == "<pad>"
    rep = vocab_report(inv)
    assert rep is not None and rep.consistent and rep.tokenizer_size == n


def test_sentencepiece_model(tmp_path: Path) -> None:
    spm = pytest.importorskip("sentencepiece")
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(TEXT))
    for model_type, kind in (("unigram", "SentencePiece Unigram"), ("bpe", "SentencePiece BPE")):
        folder = tmp_path / model_type
        folder.mkdir()
        spm.SentencePieceTrainer.train(input=str(corpus), model_prefix=str(folder / "tokenizer"), vocab_size=40,
                                       model_type=model_type, minloglevel=2)  # fmt: skip
        (folder / "tokenizer.vocab").unlink()
        proc = spm.SentencePieceProcessor(model_file=str(folder / "tokenizer.model"))
        _weights(folder, 48)
        inv = load(folder)
        tok = inv.details["_tokenizer"]
        assert tok["kind"] == kind
        assert tok["size"] == proc.get_piece_size() == 40
        from transformers import LlamaTokenizer

        assert tok["size"] == len(LlamaTokenizer.from_pretrained(str(folder)))  # converted from tokenizer.model
        rep = vocab_report(inv)
        assert rep is not None and rep.consistent
        assert "padded to a multiple of 16 (8 unused rows)" in {t.note for t in rep.tables}


def test_slow_tokenizer_files(tmp_path: Path) -> None:
    from transformers import BertTokenizer, GPT2Tokenizer

    bert = tmp_path / "bert"
    bert.mkdir()
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "quick", "##ly", "fox"]
    (tmp_path / "v.txt").write_text("\n".join(words) + "\n")
    bt = BertTokenizer(vocab_file=str(tmp_path / "v.txt"))
    bt.save_pretrained(bert)
    _weights(bert, 16)
    tok = load(bert).details["_tokenizer"]
    assert tok["size"] == len(bt)
    gpt = tmp_path / "gpt"
    gpt.mkdir()
    (tmp_path / "vocab.json").write_text(json.dumps({"a": 0, "b": 1, "ab": 2, "<|endoftext|>": 3}))
    (tmp_path / "merges.txt").write_text("#version: 0.2\na b\n")
    gt = GPT2Tokenizer(vocab_file=str(tmp_path / "vocab.json"), merges_file=str(tmp_path / "merges.txt"))
    gt.add_tokens(["<new>"])
    gt.save_pretrained(gpt)
    _weights(gpt, 8)
    tok = load(gpt).details["_tokenizer"]
    assert tok["size"] == len(gt)


def test_embedding_smaller_than_tokenizer_fails_vocab_consistent(tmp_path: Path) -> None:
    n = _fast("BPE", tmp_path, extra=["<tool_call>", "<tool_end>"])  # tokens added, embeddings not resized
    _weights(tmp_path, n - 2)
    r = CliRunner().invoke(app, ["check", str(tmp_path), "--vocab-consistent", "--no-config"], env={"COLUMNS": "80"})
    assert r.exit_code == 1, r.output
    assert "vocab-consistent" in r.output and "FAIL" in r.output.upper()
    shown = CliRunner().invoke(app, ["inspect", str(tmp_path)], env={"COLUMNS": "80"})
    assert shown.exit_code == 0 and "too small" in shown.output and "would index past" in shown.output
    doc = json.loads(CliRunner().invoke(app, ["inspect", str(tmp_path), "--json"]).output)["vocabulary"]
    assert doc["tokenizer_size"] == n and doc["consistent"] is False
    assert {t["name"]: t["rows"] for t in doc["tables"]} == {
        "model.embed_tokens.weight": n - 2,
        "lm_head.weight": n - 2,
    }


def test_config_disagreeing_with_the_table_fails(tmp_path: Path) -> None:
    n = _fast("BPE", tmp_path)
    _weights(tmp_path, 128, vocab_size=n)
    r = CliRunner().invoke(app, ["check", str(tmp_path), "--vocab-consistent", "--no-config", "--json"])
    assert r.exit_code == 1, r.output
    ok = tmp_path / "ok"
    ok.mkdir()
    n = _fast("BPE", ok)
    _weights(ok, 128)
    r = CliRunner().invoke(app, ["check", str(ok), "--vocab-consistent", "--no-config"])
    assert r.exit_code == 0, r.output


def test_vocab_consistent_without_tokenizer_is_an_error(tmp_path: Path) -> None:
    r = CliRunner().invoke(app, ["check", "examples/tiny-gpt2", "--vocab-consistent", "--no-config"])
    assert r.exit_code == 2 and "needs a tokenizer" in r.output


def _one_line_exit_2(folder: Path) -> str:
    r = CliRunner().invoke(app, ["inspect", str(folder)])
    assert r.exit_code == 2, r.output
    assert len(r.output.strip().splitlines()) == 1 and "Traceback" not in r.output
    return r.output


def test_huge_tokenizer_json_is_refused(tmp_path: Path) -> None:
    _weights(tmp_path, 8)
    with open(tmp_path / "tokenizer.json", "wb") as f:
        f.truncate(65 << 20)  # sparse: declares 65 MiB, never read
    assert "too large" in _one_line_exit_2(tmp_path)


@pytest.mark.parametrize(
    "doc",
    [
        {"model": {"type": "BPE", "vocab": {"a": 10**15}}},
        {"model": {"type": "BPE", "vocab": {"a": -1}}},
        {"model": {"type": "BPE", "vocab": ["a"]}, "added_tokens": [{"id": "x", "content": "a"}]},
        {"model": "BPE"},
        {"model": {"type": "BPE", "vocab": {"a": 0}}, "added_tokens": [{"id": 1}]},
    ],
)
def test_lying_tokenizer_json_ends_cleanly(tmp_path: Path, doc: dict[str, object]) -> None:
    _weights(tmp_path, 8)
    (tmp_path / "tokenizer.json").write_text(json.dumps(doc))
    assert "tokenizer" in _one_line_exit_2(tmp_path)


def test_lying_sentencepiece_model_ends_cleanly(tmp_path: Path) -> None:
    _weights(tmp_path, 8)
    # field 1 (a piece) declaring 2^40 bytes in a 12-byte file
    (tmp_path / "tokenizer.model").write_bytes(b"\x0a\x80\x80\x80\x80\x80\x20" + b"abcde")
    _one_line_exit_2(tmp_path)
