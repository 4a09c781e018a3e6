"""Vocabulary consistency: the config's `vocab_size`, the tokenizer's size and the embedding / lm_head rows.

A table with more rows than the tokenizer has tokens is fine (padded to a multiple for speed, or resized with
room to spare); a table with fewer rows than the tokenizer's highest id + 1 means some token ids would index
past it (the classic fine-tuning mistake: tokens added, embeddings not resized); a config whose `vocab_size`
is not the table's row count will not load.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..inventory import TensorInventory

# Last name parts of input embeddings and output heads across the families (HF and GGUF/Meta spellings).
EMBED_TAILS = ("embed_tokens.weight", "wte.weight", "word_embeddings.weight", "tok_embeddings.weight",
               "shared.weight", "embed_in.weight", "token_embd.weight")  # fmt: skip
HEAD_TAILS = ("lm_head.weight", "embed_out.weight", "output.weight")


@dataclass(frozen=True, slots=True)
class VocabTable:
    """An embedding or head matrix and its rows (token ids it can index)."""

    name: str
    rows: int
    note: str  # "", "padded to a multiple of 64 (28 unused rows)", "too small: …", …
    ok: bool


@dataclass(frozen=True, slots=True)
class VocabReport:
    """Config vocab_size vs tokenizer size vs table rows."""

    tokenizer_kind: str
    tokenizer_size: int
    needed: int  # the tokenizer's highest id + 1
    config_vocab: int | None
    tables: tuple[VocabTable, ...]

    @property
    def consistent(self) -> bool:
        return bool(self.tables) and all(t.ok for t in self.tables)

    @property
    def detail(self) -> str:
        """The first problem (and how many tables have one), or what the tables are, for one line."""
        if not self.tables:
            return "no embedding or lm_head table found"
        bad = [t for t in self.tables if not t.ok]
        if bad:
            more = f" (and {len(bad) - 1} more table{'s' if len(bad) > 2 else ''})" if len(bad) > 1 else ""
            return f"{bad[0].name}: {bad[0].note}{more}"
        return "; ".join(f"{t.name} {t.rows:,} rows" for t in self.tables)


def _is(name: str, tails: tuple[str, ...]) -> bool:
    return any(name == t or name.endswith("." + t) for t in tails)


def _padding(rows: int, size: int) -> str:
    """Why a table has more rows than tokens: a round multiple (padding) or not (resized with room)."""
    spare = rows - size
    for m in (1024, 512, 256, 128, 64, 32, 16, 8):
        if rows % m == 0 and spare < m:
            return f"padded to a multiple of {m} ({spare:,} unused rows)"
    return f"{spare:,} rows beyond the tokenizer (resized with room, unused by its ids)"


def vocab_report(inv: TensorInventory) -> VocabReport | None:
    """The report for a folder whose tokenizer was read (None when it has none)."""
    tok = inv.details.get("_tokenizer")
    if not isinstance(tok, Mapping):
        return None
    size, needed = int(tok["size"]), int(tok["needed"])
    cfg: Mapping[str, Any] = inv.config or {}
    text = cfg.get("text_config")
    vocab = cfg.get("vocab_size", text.get("vocab_size") if isinstance(text, Mapping) else None)
    config_vocab = vocab if isinstance(vocab, int) and not isinstance(vocab, bool) else None
    tables = []
    for t in inv.tensors:
        if len(t.shape) != 2 or not (_is(t.name, EMBED_TAILS) or _is(t.name, HEAD_TAILS)):
            continue
        rows = (
            t.shape[1]
            if t.name.endswith(("token_embd.weight", "output.weight")) and inv.format == "gguf"
            else t.shape[0]
        )
        if rows < needed:
            note, ok = f"too small: ids {rows:,}..{needed - 1:,} would index past the table", False
        elif config_vocab is not None and rows != config_vocab:
            note, ok = f"config vocab_size is {config_vocab:,}", False
        elif rows > size:
            note, ok = _padding(rows, size), True
        else:
            note, ok = "", True
        tables.append(VocabTable(t.name, rows, note, ok))
    return VocabReport(str(tok["kind"]), size, needed, config_vocab, tuple(tables))


__all__ = ["VocabReport", "VocabTable", "vocab_report"]
