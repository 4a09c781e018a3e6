"""The tokenizer saved beside the weights: its kind, its size as `len(tokenizer)` gives it, its special tokens.

Files, in the order transformers prefers them: `tokenizer.json` (the `tokenizers` library's one file: `model.type`
BPE / WordPiece / Unigram / WordLevel, `model.vocab`, `added_tokens`), `tokenizer.model` (a SentencePiece
`ModelProto`, read with the bounded protobuf reader: field 1 the pieces, field 2 the trainer spec whose field 3
is the model type), `vocab.json` + `merges.txt` (GPT-2 BPE), `vocab.txt` (WordPiece, one token a line). Added
tokens come from `tokenizer.json`, else `tokenizer_config.json`'s `added_tokens_decoder` and `added_tokens.json`;
special tokens from `special_tokens_map.json` and `tokenizer_config.json`.

`len(tokenizer)` counts distinct token strings: the base vocabulary and the added tokens it does not hold. The
highest id + 1 is what an embedding table must have rows for. Nothing here imports `tokenizers` or
`sentencepiece`; every file is size-capped and every id checked.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from ..errors import LimitExceededError, MalformedFileError
from .protobuf import LEN, VARINT, WireReader

if TYPE_CHECKING:
    from .folder import ModelDir
    from .source import ByteSource

TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer.model",
    "vocab.json",
    "merges.txt",
    "vocab.txt",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
)
MAX_TOKENIZER = 64 << 20  # a 256k-token tokenizer.json is ~20 MB
MAX_ID = (1 << 31) - 1
MAX_TOKENS = 4_000_000
SPECIAL_KEYS = ("bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token")
SP_TYPES = {1: "Unigram", 2: "BPE", 3: "Word", 4: "Char"}  # sentencepiece TrainerSpec.ModelType


def _bad(where: str, msg: str, rule: str = "tokenizer") -> MalformedFileError:
    return MalformedFileError(msg, path=where, rule=rule)


def _json(d: ModelDir, name: str) -> Any:
    from .names import read_json_source

    with d.open(name) as src:
        if src.size > MAX_TOKENIZER:
            raise LimitExceededError(f"{src.size:,} bytes is too large for {name}", path=src.name, rule="tokenizer")
        return read_json_source(src, "tokenizer")


def _check_id(tid: Any, where: str, token: object) -> int:
    if not isinstance(tid, int) or isinstance(tid, bool) or not 0 <= tid <= MAX_ID:
        raise _bad(where, f"token {token!r} has id {tid!r}, not an integer in 0..{MAX_ID:,}")
    return tid


def _vocab_dict(vocab: Any, where: str) -> dict[str, int]:
    if not isinstance(vocab, dict):
        raise _bad(where, "vocab is not an object of token → id")
    if len(vocab) > MAX_TOKENS:
        raise LimitExceededError(f"{len(vocab):,} tokens is beyond {MAX_TOKENS:,}", path=where, rule="tokenizer")
    return {str(k): _check_id(v, where, k) for k, v in vocab.items()}


def _from_tokenizer_json(d: ModelDir) -> tuple[str, dict[str, int], dict[str, int], set[str]]:
    """(kind, base vocab, added tokens, special contents) of a tokenizer.json."""
    doc = _json(d, "tokenizer.json")
    where = f"{d.display.rstrip('/')}/tokenizer.json"
    model = doc.get("model") if isinstance(doc, dict) else None
    if not isinstance(model, dict):
        raise _bad(where, "tokenizer.json has no model object")
    kind = model.get("type") if isinstance(model.get("type"), str) else None
    vocab = model.get("vocab")
    if kind is None:  # older files: the vocab's shape says it
        kind = (
            "Unigram" if isinstance(vocab, list) else ("WordPiece" if "continuing_subword_prefix" in model else "BPE")
        )
    if isinstance(vocab, list):  # Unigram: [[piece, score], …], ids are positions
        if len(vocab) > MAX_TOKENS:
            raise LimitExceededError(f"{len(vocab):,} tokens is beyond {MAX_TOKENS:,}", path=where, rule="tokenizer")
        base: dict[str, int] = {}
        for i, entry in enumerate(vocab):
            if not isinstance(entry, list) or not entry or not isinstance(entry[0], str):
                raise _bad(where, f"Unigram vocab entry {i:,} is not [piece, score]")
            base.setdefault(entry[0], i)
    else:
        base = _vocab_dict(vocab, where)
    added: dict[str, int] = {}
    special: set[str] = set()
    entries = doc.get("added_tokens") or []
    if not isinstance(entries, list) or len(entries) > MAX_TOKENS:
        raise _bad(where, "added_tokens is not a list of tokens")
    for e in entries:
        if not isinstance(e, dict) or not isinstance(e.get("content"), str):
            raise _bad(where, "an added_tokens entry has no content string")
        added[e["content"]] = _check_id(e.get("id"), where, e["content"])
        if e.get("special") is True:
            special.add(e["content"])
    return kind, base, added, special


def _read_sentencepiece(src: ByteSource) -> tuple[str, dict[str, int]]:
    """(kind, pieces → id) of a SentencePiece ModelProto, fields located without reading the rest."""
    if src.size > MAX_TOKENIZER:
        raise LimitExceededError(f"{src.size:,} bytes is too large for tokenizer.model", path=src.name,
                                 rule="tokenizer")  # fmt: skip
    r = WireReader(src, "sentencepiece")
    pieces: dict[str, int] = {}
    kind = "Unigram"  # TrainerSpec's default model type
    n = 0
    for f in r.fields(0, src.size, depth=0):
        if f.number == 1 and f.wire == LEN:  # SentencePiece { string piece = 1; float score = 2; Type type = 3 }
            piece = ""
            for g in r.fields(f.value, f.value + f.length, depth=1):
                if g.number == 1 and g.wire == LEN:
                    piece = r.read_str(g, 1 << 16, "piece")
            pieces.setdefault(piece, n)
            n += 1
            if n > MAX_TOKENS:
                raise LimitExceededError(f"more than {MAX_TOKENS:,} pieces", path=src.name, rule="tokenizer")
        elif f.number == 2 and f.wire == LEN:  # TrainerSpec { …; ModelType model_type = 3; … }
            for g in r.fields(f.value, f.value + f.length, depth=1):
                if g.number == 3 and g.wire == VARINT:
                    kind = SP_TYPES.get(g.value, f"type {g.value}")
    if not pieces:
        raise _bad(src.name, "tokenizer.model holds no pieces (not a SentencePiece model)")
    return kind, pieces


def _lines(d: ModelDir, name: str) -> list[str]:
    with d.open(name) as src:
        if src.size > MAX_TOKENIZER:
            raise LimitExceededError(f"{src.size:,} bytes is too large for {name}", path=src.name, rule="tokenizer")
        text = src.read_exact(0, src.size, name).decode("utf-8", "replace")
    return text.split("\n")


def _content(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and isinstance(value.get("content"), str):
        return str(value["content"])
    return None


def _named_specials(docs: Iterable[Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    for doc in docs:
        if not isinstance(doc, dict):
            continue
        for key in SPECIAL_KEYS:
            c = _content(doc.get(key))
            if c is not None:
                out.setdefault(key.removesuffix("_token"), c)
    return out


def read_tokenizer(d: ModelDir, names: list[str]) -> dict[str, Any] | None:
    """What the tokenizer files among `names` say, or None when there are none:
    `{kind, file, size, needed, special}` (`size` as `len(tokenizer)`, `needed` the highest id + 1)."""
    have = set(names)
    if not have & set(TOKENIZER_FILES[:5]):
        return None
    added: dict[str, int] = {}
    special: set[str] = set()
    config = _json(d, "tokenizer_config.json") if "tokenizer_config.json" in have else None
    smap = _json(d, "special_tokens_map.json") if "special_tokens_map.json" in have else None
    if "tokenizer.json" in have:
        kind, base, added, special = _from_tokenizer_json(d)
        file = "tokenizer.json"
    else:
        if "tokenizer.model" in have:
            with d.open("tokenizer.model") as src:
                sp_kind, base = _read_sentencepiece(src)
            kind, file = f"SentencePiece {sp_kind}", "tokenizer.model"
        elif "vocab.json" in have:
            base = _vocab_dict(_json(d, "vocab.json"), f"{d.display.rstrip('/')}/vocab.json")
            kind, file = "BPE", "vocab.json" + (" + merges.txt" if "merges.txt" in have else "")
        elif "vocab.txt" in have:
            lines = _lines(d, "vocab.txt")
            if lines and lines[-1] == "":
                lines.pop()
            base = {}
            for i, tok in enumerate(lines):
                base.setdefault(tok.rstrip("\r"), i)
            kind, file = "WordPiece", "vocab.txt"
        else:
            return None
        if isinstance(config, dict) and isinstance(config.get("added_tokens_decoder"), dict):
            where = f"{d.display.rstrip('/')}/tokenizer_config.json"
            for sid, entry in config["added_tokens_decoder"].items():
                c = _content(entry)
                if c is None or not str(sid).isdigit():
                    raise _bad(where, "added_tokens_decoder maps ids to {content: …} entries")
                added[c] = _check_id(int(sid), where, c)
                if isinstance(entry, dict) and entry.get("special") is True:
                    special.add(c)
        if "added_tokens.json" in have:
            added.update(_vocab_dict(_json(d, "added_tokens.json"), f"{d.display.rstrip('/')}/added_tokens.json"))
    tokens = set(base) | set(added)
    ids = [*base.values(), *added.values()]
    named = _named_specials([smap, config])
    return {
        "kind": kind,
        "file": file,
        "size": len(tokens),
        "needed": max(ids) + 1 if ids else 0,
        "special": named,
        "special_count": len(special | set(named.values())),
    }


def tokenizer_line(tok: dict[str, Any]) -> str:
    """One line for people: `BPE, 1,000 tokens (tokenizer.json); bos=<s> eos=</s>`."""
    line = f"{tok['kind']}, {tok['size']:,} tokens ({tok['file']})"
    if tok["needed"] != tok["size"]:
        line += f", ids up to {tok['needed'] - 1:,}"
    if tok["special"]:
        line += "; " + " ".join(f"{k}={v}" for k, v in tok["special"].items())
    return line


__all__ = ["TOKENIZER_FILES", "read_tokenizer", "tokenizer_line"]
