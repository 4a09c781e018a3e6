"""What every model family record is made of, and the blocks the records' parameter builders compose.

A `Family` holds everything `mi` knows about one family: the `model_type`s and `architectures` it claims, how its
config spells each quantity and transformers' defaults for omitted keys, tying, its parameter builder, and the
facts its memory model needs. Nothing here imports `HParams` at run time (the builders only read its
attributes), so `analysis/hparams.py` can read the records without an import cycle.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ...errors import UsageError

if TYPE_CHECKING:
    from ..hparams import HParams


@dataclass(frozen=True, slots=True)
class ParamTerm:
    """One line of the accounting: `count` copies of a block of `each` parameters.

    `patterns` are regular expressions over state-dict names that this term accounts for (used by the
    cross-check against a file). `active_each` is set for MoE blocks: parameters used per token.
    """

    name: str
    each: int
    count: int = 1
    formula: str = ""
    patterns: tuple[str, ...] = ()
    active_each: int | None = None

    @property
    def params(self) -> int:
        return self.each * self.count

    @property
    def active(self) -> int:
        return (self.each if self.active_each is None else self.active_each) * self.count


@dataclass(frozen=True, slots=True)
class LinearSpec:
    """A weight matrix LoRA can adapt: module name as in the reference implementation, its in/out widths."""

    name: str
    d_in: int
    d_out: int
    count: int


@dataclass
class Build:
    terms: list[ParamTerm] = field(default_factory=list)
    linears: list[LinearSpec] = field(default_factory=list)
    assumptions: list[str] = field(default_factory=list)
    left_out: list[tuple[str, int]] = field(default_factory=list)
    is_moe: bool = False

    def term(
        self,
        name: str,
        each: int,
        count: int = 1,
        formula: str = "",
        patterns: Iterable[str] = (),
        active_each: int | None = None,
        keep: bool = False,
    ) -> None:
        if count and (each or active_each or keep):
            self.terms.append(ParamTerm(name, each, count, formula, tuple(patterns), active_each))

    def linear(self, name: str, d_in: int, d_out: int, count: int) -> None:
        if count:
            self.linears.append(LinearSpec(name, d_in, d_out, count))


def lin(d_in: int, d_out: int, bias: bool) -> int:
    """nn.Linear(d_in, d_out, bias): weight d_out×d_in, bias d_out."""
    return d_in * d_out + (d_out if bias else 0)


def when(flag: bool, s: str) -> str:
    return s if flag else ""


def layer_re(*parts: str) -> str:
    """Regex for a per-layer submodule: `<prefix>.<block>.<i>.<part>`."""
    return r"(^|\.)" + r"\.".join(parts) + r"\."


def dff(hp: HParams, default: int) -> int:
    return hp.d_ff if hp.d_ff is not None else default


def reject(hp: HParams, **flags: object) -> None:
    """Refuse switches the reference implementation does not have (instead of silently ignoring them)."""
    spelled = {"kv_heads": "--kv-heads", "head_dim": "--head-dim", "bias": "--bias/--no-bias", "tied": "--tied"}
    for name, value in flags.items():
        if value is not None:
            raise UsageError(
                f"--arch {hp.arch} has no {spelled.get(name, name)} option (its reference implementation fixes it)",
                path=hp.path,
                rule="arch-option",
            )


def lm_head(b: Build, hp: HParams, tied: bool, name: str = "lm_head", d: int | None = None, bias: int = 0) -> None:
    d = hp.d_model if d is None else d
    b.linear(name, d, hp.vocab, 1)  # an nn.Linear even when its weight is tied (LoRA can target it)
    pat = (rf"(^|\.){re.escape(name)}\.",)
    if tied:
        # Shown with 0 (its weight is the embedding's): a file that stores an untied copy differs on this row.
        b.term(name, bias, 1, "vocab (bias); weight tied" if bias else "tied to the embedding", pat, keep=True)
        b.assumptions.append(f"{name} weight tied to the token embedding (counted once)")
    else:
        b.term(name, hp.vocab * d + bias, 1, "vocab·d" + (" + vocab" if bias else ""), pat)


@dataclass(frozen=True, slots=True)
class CacheLayout:
    """What a family's transformers cache holds, in elements, when it is not `2·kv_heads·head_dim` per token.

    `kv_per_token`: elements one token keeps in one attention layer (keys and values together, as stored).
    `expanded_per_token`: for latent attention (MLA), the per-head keys and values the layer rebuilds from the
    latent at every step (not kept; shown beside the stored size). `conv_state` / `ssm_state`: elements one sequence
    keeps in one state-space layer (independent of the sequence length); the conv state is kept in the model's
    dtype, the ssm state in fp32 (what transformers' `LinearAttentionLayer` holds after a forward).
    """

    kv_per_token: int
    kv_formula: str
    expanded_per_token: int | None = None
    expanded_formula: str = ""
    conv_state: int = 0
    ssm_state: int = 0
    state_formula: str = ""


@dataclass(frozen=True, slots=True)
class MemoryFacts:
    """What a family's transformers implementation keeps for backward and caches, as `analysis/memory.py` needs it.

    `rotary`: `"full"` (every head dim), `"none"`, or `"partial"` (a fraction read from `rotary_key` of the config,
    `rotary_default` when absent). `dropouts`: for the embedding, attention-probabilities, residual and MLP-activation
    dropout, the config keys to read (first found wins) and the default. `learned_positions`: rows beyond
    `max_positions` (OPT's offset) or None when positions are not learned.
    """

    norm: str = "rmsnorm"  # "layernorm" | "rmsnorm"
    mlp: str = "gated"  # "gated" | "plain"
    act: str = "silu"  # default hidden_act
    act_keys: tuple[str, ...] = ()  # config keys naming the activation before `hidden_act` / `activation_function`
    rotary: str = "full"
    rotary_key: str = "partial_rotary_factor"
    rotary_default: float = 1.0
    learned_positions: int | None = None
    position_ids_per_sequence: bool = False
    softmax_fp32: bool = False
    dropouts: tuple[tuple[tuple[str, ...], float], ...] = ((), 0.0), (("attention_dropout",), 0.0), ((), 0.0), ((), 0.0)
    norms_per_layer: Callable[[HParams], int] | None = None  # None: 2 (pre-attention and pre-MLP)
    norm_topk: bool = True  # MoE: top-k routing weights renormalised unless the config's norm_topk_prob says no
    rotary_dims: Callable[[HParams], int] | None = None  # rotary width the family works out (overrides `rotary`)
    d_ff: Callable[[HParams], int] | None = None  # MLP width when no config key gives it (gpt-j's 4·d)
    fused_qkv: bool = False  # one fused q/k/v projection: its whole output is live at once (inference)
    norm_impl: str = ""  # a norm that saves more than nn.LayerNorm / Llama's RMSNorm: "gemma", "cohere", "fp32"
    # tanh softcapping (Gemma 2/3): transformers' defaults of attn_logit_softcapping and final_logit_softcapping,
    # None for a cap the config class leaves off; the keys are read when present (null: no cap). None: no softcap.
    softcap: tuple[float | None, float | None] | None = None
    rotary_per_layer: bool = False  # every layer saves its own copy of cos & sin (GLM-4 interleaves them per call)
    fused_gate_up: bool = False  # one fused gate_up projection: its 2·d_ff output is live through the MLP (inference)
    qk_norm: str = ""  # norms on q and k: "head" (each head over head_dim), "width" (all heads at once), "": none
    measured: bool = False  # checked against autograd's saved tensors in the test suite
    # The cache layout when it is not 2·kv_heads·head_dim per token per layer (MLA latents, SSM states).
    cache: Callable[[HParams], CacheLayout] | None = None


@dataclass(frozen=True, slots=True)
class Family:
    """One model family: one record that `mi params`, `mi memory`, `--arch` and the README's table all read."""

    name: str  # the preset name `--arch` takes
    build: Callable[[HParams, Build], None]
    summary: str  # the reference implementation, for the README table and `--help`
    model_types: tuple[str, ...] = ()  # HF `model_type` values this family reads
    architectures: tuple[str, ...] = ()  # HF `architectures` names that identify it without a model_type
    keys: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # spellings that replace the common ones
    defaults: Mapping[str, Any] | None = None  # transformers' config defaults; None: no config.json form
    tied: bool | None = None  # tie_word_embeddings when the config omits it
    read: Callable[[Mapping[str, Any], dict[str, Any]], dict[str, Any]] | None = None  # family-specific reading
    unsupported: tuple[str, ...] = ()  # config switches that add modules the builder does not count: refused
    memory: MemoryFacts = field(default_factory=MemoryFacts)
    encoder_only: bool = False
    encoder_decoder: bool = False
    # Task heads named by `architectures`: "generic" (a decoder whose …Model, …ForSequenceClassification,
    # …ForTokenClassification and …ForQuestionAnswering follow transformers' Generic* heads, applied by
    # `apply_head`), "builder" (the builder reads `hp.get("head")` itself), or "none" (no HF head classes).
    heads: str = "generic"
    lm_terms: tuple[str, ...] = ("lm_head",)  # the terms of the language-model head a base model lacks
    # Composite configs (llava, qwen2_vl, gemma3, clip): the top-level keys a nested config supplies (the text model's
    # vocab_size, hidden_size, …), read as if the top level had them; keys the top level has win.
    lift: Callable[[Mapping[str, Any]], Mapping[str, Any]] | None = None

    @property
    def reads_config(self) -> bool:
        return self.defaults is not None


# `architectures` suffix → head kind, longest first ("…ForCausalLM" before "…Model").
HEAD_SUFFIXES: tuple[tuple[str, str], ...] = (
    ("ForSequenceClassification", "seq-cls"),
    ("ForTokenClassification", "token-cls"),
    ("ForQuestionAnswering", "qa"),
    ("ForConditionalGeneration", "lm"),
    ("ForCausalLM", "lm"),
    ("LMHeadModel", "lm"),
    ("ForMaskedLM", "mlm"),
    ("ForPreTraining", "pretraining"),
    ("EncoderModel", "encoder"),
    ("Model", "base"),
)


def head_kind(architectures: Iterable[str]) -> tuple[str, str | None]:
    """The task head the first `architectures` entry names (`lm` when none does), and that name."""
    for name in architectures:
        for suffix, kind in HEAD_SUFFIXES:
            if name.endswith(suffix):
                return kind, name
        return "unknown", name
    return "lm", None


def num_labels(config: Mapping[str, Any]) -> int:
    """What transformers' PretrainedConfig takes as the label count: `id2label`'s size, else `num_labels`, else 2."""
    id2label = config.get("id2label")
    if isinstance(id2label, dict) and id2label:
        return len(id2label)
    n = config.get("num_labels")
    return n if isinstance(n, int) and not isinstance(n, bool) and n > 0 else 2


def apply_head(hp: HParams, b: Build, fam: Family) -> None:
    """Swap a decoder's language-model head for the head `hp.architectures` names (transformers' Generic*
    classes: `score` without bias for sequence classification, `score` with bias for token classification,
    `qa_outputs` (d → 2) for question answering; none for the base …Model). An unknown head is left out, said."""
    if fam.heads != "generic":
        return
    kind, name = head_kind(hp.architectures)
    if kind == "lm":
        return
    if kind not in ("base", "seq-cls", "token-cls", "qa"):
        b.assumptions.append(
            f"architectures names {name}, a head the {fam.name} family does not know: counted as the base model "
            "without any head (mi params --exact counts it through transformers)"
        )
        kind = "base"
    d = hp.d_model
    b.terms[:] = [t for t in b.terms if t.name not in fam.lm_terms]
    b.linears[:] = [x for x in b.linears if x.name not in fam.lm_terms]
    b.assumptions[:] = [a for a in b.assumptions if not any(a.startswith(f"{t} weight tied") for t in fam.lm_terms)]
    labels = int(hp.get("num_labels", 2) or 2)
    if kind == "base":
        b.assumptions.append(f"{name}: the base model, no language-model head")
    elif kind == "seq-cls":
        b.term("score", d * labels, 1, f"d·num_labels ({labels})", (r"(^|\.)score\.",))
        b.linear("score", d, labels, 1)
        b.assumptions.append(f"{name}: score head for {labels} labels, no bias")
    elif kind == "token-cls":
        b.term("score", lin(d, labels, True), 1, f"d·num_labels + num_labels ({labels})", (r"(^|\.)score\.",))
        b.linear("score", d, labels, 1)
        b.assumptions.append(f"{name}: token-classification head for {labels} labels")
    else:
        b.term("qa_outputs", lin(d, 2, True), 1, "2·d + 2 (start, end)", (r"(^|\.)qa_outputs\.",))
        b.linear("qa_outputs", d, 2, 1)
        b.assumptions.append(f"{name}: question-answering head (start and end logits)")


# Every record by name, filled by the package's `__init__` once all the modules are imported: a builder that counts
# a nested model with another family's record (a composite config's text model) reads it here, without importing
# the package that imports it.
REGISTRY: dict[str, Family] = {}
