"""The first families: torch's own Transformer layers, the seed's hand formula, and the transformers families
`mi` counted from the start (gpt2, bert, roberta, t5, llama, mistral, qwen2, qwen3, gemma, opt, phi, falcon,
chatglm, mixtral, qwen2_moe, qwen3_moe). Each builder reproduces one reference implementation exactly (the
tests build the real modules on the meta device); each reader turns that family's config spellings into
`HParams` fields.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ...errors import MalformedFileError, UsageError
from .base import Build, Family, MemoryFacts, dff, head_kind, layer_re, lin, lm_head, num_labels, reject, when

if TYPE_CHECKING:
    from ..hparams import HParams


def _seed(hp: HParams, b: Build) -> None:
    """The seed notes' formula: vocab×d + d + (4d² + 2·d·d_ff)×layers + vocab×d."""
    reject(hp, kv_heads=hp.kv_heads, head_dim=hp.head_dim, bias=hp.bias, tied=hp.tied)
    d, v, n = hp.d_model, hp.vocab, hp.layers
    ff = dff(hp, 4 * d)
    b.term("embedding", v * d, 1, "vocab·d", (r"(^|\.)embedding\.",))
    b.term("+ d (as written in the seed)", d, 1, "d")
    b.term("attention", 4 * d * d, n, "4·d²", (layer_re(r"\w+", r"\d+", "self_attn"),))
    b.term("mlp", 2 * d * ff, n, "2·d·d_ff", (layer_re(r"\w+", r"\d+", r"linear[12]"),))
    b.term("output", v * d, 1, "vocab·d", (r"(^|\.)fc_out\.",))
    if hp.d_ff is None:
        b.assumptions.append(f"d_ff = 4·d = {ff:,} (give --d-ff to change)")
    b.assumptions.append("the seed's hand formula: self-attention and MLP weights only, untied output layer")
    # What nn.TransformerDecoder + embedding + fc_out (the seed's real model) adds, term by term.
    b.left_out.extend(
        [
            ("cross-attention weights (multihead_attn, 4·d² per layer)", 4 * d * d * n),
            (
                "Linear biases in the layers (2 attentions × 4d, d_ff + d in the MLP)",
                (2 * 4 * d + ff + d) * n,
            ),
            ("LayerNorms (norm1-3, 2d each per layer)", 3 * 2 * d * n),
            ("fc_out bias (vocab)", v),
            ("the formula's lone '+ d' (no such tensor)", -d),
        ]
    )


def _torch_attn(d: int, bias: bool) -> int:
    # nn.MultiheadAttention: in_proj_weight 3d×d (+ in_proj_bias 3d), out_proj Linear(d, d, bias).
    return 4 * d * d + (4 * d if bias else 0)


def _torch_common(hp: HParams, b: Build) -> tuple[int, int, bool]:
    reject(hp, kv_heads=hp.kv_heads, head_dim=hp.head_dim)
    d = hp.d_model
    ff = dff(hp, 2048)
    bias = hp.bias if hp.bias is not None else True
    if hp.d_ff is None:
        b.assumptions.append("d_ff = 2048 (the torch.nn.Transformer*Layer default dim_feedforward)")
    if hp.heads is None:
        b.assumptions.append("heads do not change the count of nn.MultiheadAttention (any divisor of d_model)")
    b.assumptions.append(
        "post-norm layers as constructed by torch.nn; " + ("with biases" if bias else "bias=False everywhere")
    )
    return d, ff, bias


def _torch_decoder_layers(b: Build, d: int, ff: int, bias: bool, n: int, prefix: str) -> None:
    b.term("self-attention", _torch_attn(d, bias), n, "4·d² + 4d", (layer_re(prefix, r"\d+", "self_attn"),))
    b.term("cross-attention", _torch_attn(d, bias), n, "4·d² + 4d", (layer_re(prefix, r"\d+", "multihead_attn"),))
    b.term(
        "mlp",
        lin(d, ff, bias) + lin(ff, d, bias),
        n,
        "2·d·d_ff" + when(bias, " + d_ff + d"),
        (layer_re(prefix, r"\d+", r"linear[12]"),),
    )
    b.term("norms", 3 * (2 * d if bias else d), n, "3 LayerNorm", (layer_re(prefix, r"\d+", r"norm[123]"),))
    b.linear("out_proj", d, d, 2 * n)
    b.linear("linear1", d, ff, n)
    b.linear("linear2", ff, d, n)


def _torch_decoder(hp: HParams, b: Build) -> None:
    """embedding + nn.TransformerDecoder(nn.TransformerDecoderLayer(d, heads, d_ff, bias=…), L) + fc_out."""
    d, ff, bias = _torch_common(hp, b)
    v, n = hp.vocab, hp.layers
    b.term("embedding", v * d, 1, "vocab·d", (r"(^|\.)embedding\.",))
    _torch_decoder_layers(b, d, ff, bias, n, r"layers")
    tied = bool(hp.tied)
    b.term(
        "fc_out",
        (0 if tied else v * d) + (v if bias else 0),
        1,
        ("" if tied else "vocab·d") + (" + vocab" if bias else ""),
        (r"(^|\.)fc_out\.",),
    )
    if tied:
        b.assumptions.append("fc_out.weight tied to embedding.weight (counted once)")
    b.linear("fc_out", d, v, 1)
    b.assumptions.append("nn.TransformerDecoder without a final norm (norm=None, its default)")


def _torch_encoder_decoder(hp: HParams, b: Build) -> None:
    """embedding (shared by source and target) + nn.Transformer(d, heads, enc, dec, d_ff, bias=…) + fc_out."""
    d, ff, bias = _torch_common(hp, b)
    v = hp.vocab
    ne = hp.encoder_layers if hp.encoder_layers is not None else hp.layers
    nd = hp.decoder_layers if hp.decoder_layers is not None else hp.layers
    norm = 2 * d if bias else d
    b.term("embedding", v * d, 1, "vocab·d", (r"(^|\.)embedding\.",))
    b.term(
        "encoder self-attention",
        _torch_attn(d, bias),
        ne,
        "4·d² + 4d",
        (layer_re("encoder", "layers", r"\d+", "self_attn"),),
    )
    b.term(
        "encoder mlp",
        lin(d, ff, bias) + lin(ff, d, bias),
        ne,
        "2·d·d_ff" + when(bias, " + d_ff + d"),
        (layer_re("encoder", "layers", r"\d+", r"linear[12]"),),
    )
    b.term("encoder norms", 2 * norm, ne, "2 LayerNorm", (layer_re("encoder", "layers", r"\d+", r"norm[12]"),))
    b.term("encoder final norm", norm, 1, "LayerNorm", (r"(^|\.)encoder\.norm\.",))
    b.term(
        "decoder self-attention",
        _torch_attn(d, bias),
        nd,
        "4·d² + 4d",
        (layer_re("decoder", "layers", r"\d+", "self_attn"),),
    )
    b.term(
        "decoder cross-attention",
        _torch_attn(d, bias),
        nd,
        "4·d² + 4d",
        (layer_re("decoder", "layers", r"\d+", "multihead_attn"),),
    )
    b.term(
        "decoder mlp",
        lin(d, ff, bias) + lin(ff, d, bias),
        nd,
        "2·d·d_ff" + when(bias, " + d_ff + d"),
        (layer_re("decoder", "layers", r"\d+", r"linear[12]"),),
    )
    b.term("decoder norms", 3 * norm, nd, "3 LayerNorm", (layer_re("decoder", "layers", r"\d+", r"norm[123]"),))
    b.term("decoder final norm", norm, 1, "LayerNorm", (r"(^|\.)decoder\.norm\.",))
    tied = bool(hp.tied)
    b.term(
        "fc_out",
        (0 if tied else v * d) + (v if bias else 0),
        1,
        ("" if tied else "vocab·d") + when(bias, " + vocab"),
        (r"(^|\.)fc_out\.",),
    )
    b.linear("out_proj", d, d, ne + 2 * nd)
    b.linear("linear1", d, ff, ne + nd)
    b.linear("linear2", ff, d, ne + nd)
    b.linear("fc_out", d, v, 1)
    b.assumptions.append("one nn.Embedding shared by source and target; nn.Transformer's encoder and decoder norms")


def _gpt2(hp: HParams, b: Build) -> None:
    """transformers GPT2LMHeadModel."""
    reject(hp, kv_heads=hp.kv_heads, head_dim=hp.head_dim, bias=hp.bias)
    d, v, n = hp.d_model, hp.vocab, hp.layers
    p = hp.max_positions if hp.max_positions is not None else 1024
    ff = dff(hp, 4 * d)
    b.term("token embedding (wte)", v * d, 1, "vocab·d", (r"(^|\.)wte\.",))
    b.term("position embedding (wpe)", p * d, 1, "max_positions·d", (r"(^|\.)wpe\.",))
    b.term("attention", lin(d, 3 * d, True) + lin(d, d, True), n, "4·d² + 4d", (layer_re("h", r"\d+", "attn"),))
    b.term("mlp", lin(d, ff, True) + lin(ff, d, True), n, "2·d·d_ff + d_ff + d", (layer_re("h", r"\d+", "mlp"),))
    b.term("norms", 2 * 2 * d, n, "2 LayerNorm", (layer_re("h", r"\d+", r"ln_[12]"),))
    b.term("final norm (ln_f)", 2 * d, 1, "LayerNorm", (r"(^|\.)ln_f\.",))
    lm_head(b, hp, hp.tied if hp.tied is not None else True)
    if hp.max_positions is None:
        b.assumptions.append("max_positions = 1024 (GPT2Config default n_positions)")
    if hp.d_ff is None:
        b.assumptions.append(f"d_ff = 4·d = {ff:,} (n_inner unset)")
    b.linear("c_attn", d, 3 * d, n)
    b.linear("c_proj", d, d, n)  # attn.c_proj
    b.linear("c_proj", ff, d, n)  # mlp.c_proj (PEFT targets both by the name)
    b.linear("c_fc", d, ff, n)


def _bert_like(hp: HParams, b: Build) -> None:
    """transformers BertModel / RobertaModel (with pooler), or the …ForMaskedLM / BertForPreTraining heads."""
    reject(hp, kv_heads=hp.kv_heads, head_dim=hp.head_dim, bias=hp.bias)
    d, v, n = hp.d_model, hp.vocab, hp.layers
    p = hp.max_positions if hp.max_positions is not None else 512
    ff = dff(hp, 3072)
    tv = int(hp.get("type_vocab_size", 2))
    head = str(hp.get("head", "base"))
    b.term("token embedding", v * d, 1, "vocab·d", (r"embeddings\.word_embeddings\.",))
    b.term("position embedding", p * d, 1, "max_positions·d", (r"embeddings\.position_embeddings\.",))
    b.term("token-type embedding", tv * d, 1, "type_vocab·d", (r"embeddings\.token_type_embeddings\.",))
    b.term("embedding norm", 2 * d, 1, "LayerNorm", (r"embeddings\.LayerNorm\.",))
    b.term(
        "attention",
        4 * lin(d, d, True),
        n,
        "4·d² + 4d",
        (layer_re("layer", r"\d+", "attention", "self"), layer_re("layer", r"\d+", "attention", "output", "dense")),
    )
    b.term(
        "mlp",
        lin(d, ff, True) + lin(ff, d, True),
        n,
        "2·d·d_ff + d_ff + d",
        (layer_re("layer", r"\d+", "intermediate"), layer_re("layer", r"\d+", "output", "dense")),
    )
    b.term("norms", 2 * 2 * d, n, "2 LayerNorm", (layer_re("layer", r"\d+", r"(attention\.)?output", "LayerNorm"),))
    roberta = hp.arch == "roberta"
    pooled = head in ("base", "pretraining") or (head == "seq-cls" and not roberta)
    if pooled:
        b.term("pooler", lin(d, d, True), 1, "d² + d", (r"(^|\.)pooler\.",))
        b.linear("dense", d, d, 1)  # pooler.dense
    labels = int(hp.get("num_labels", 2) or 2)
    if head == "seq-cls" and roberta:  # RobertaClassificationHead: dense d→d, out_proj d→labels
        b.term("classifier", lin(d, d, True) + lin(d, labels, True), 1, f"d² + d + (d + 1)·{labels}",
               (r"(^|\.)classifier\.",))  # fmt: skip
        b.linear("dense", d, d, 1)
        b.linear("out_proj", d, labels, 1)
    elif head in ("seq-cls", "token-cls"):
        b.term("classifier", lin(d, labels, True), 1, f"(d + 1)·num_labels ({labels})", (r"(^|\.)classifier\.",))
        b.linear("classifier", d, labels, 1)
    elif head == "qa":  # qa_outputs is d → num_labels (2 by default: start and end)
        b.term("qa_outputs", lin(d, labels, True), 1, f"(d + 1)·{labels}", (r"(^|\.)qa_outputs\.",))
        b.linear("qa_outputs", d, labels, 1)
    if head in ("mlm", "pretraining"):
        tied = hp.tied if hp.tied is not None else True
        pats = (r"(^|\.)cls\.predictions\.", r"(^|\.)lm_head\.")
        b.term(
            "mlm transform",
            lin(d, d, True) + 2 * d,
            1,
            "d² + d + LayerNorm",
            (r"predictions\.transform\.", r"lm_head\.(dense|layer_norm)\."),
        )
        b.term("mlm decoder", v + (0 if tied else v * d), 1, "vocab" + ("" if tied else " + vocab·d"), pats)
        if tied:
            b.assumptions.append("MLM decoder weight tied to the token embedding (counted once); its bias counted")
    if head == "pretraining":
        b.term("next-sentence head", lin(d, 2, True), 1, "2d + 2", (r"seq_relationship\.",))
        b.linear("seq_relationship", d, 2, 1)
    if head in ("mlm", "pretraining"):
        b.linear("dense", d, d, 1)  # the MLM transform's dense
        b.linear("decoder", d, v, 1)
    model = "BertModel" if hp.arch == "bert" else "RobertaModel"
    b.assumptions.append(
        {
            "base": f"{model} with its pooler (no task head)",
            "mlm": "masked-LM head (…ForMaskedLM, no pooler)",
            "pretraining": "BertForPreTraining: pooler, MLM and next-sentence heads",
            "seq-cls": f"sequence-classification head for {labels} labels"
            + (" (RobertaClassificationHead, no pooler)" if roberta else " on the pooler"),
            "token-cls": f"token-classification head for {labels} labels, no pooler",
            "qa": "question-answering head (start and end logits), no pooler",
        }[head]
    )
    if hp.get("unknown_head"):
        b.assumptions.append(
            f"architectures names {hp.get('unknown_head')}, a head mi does not know: counted without it"
        )
    b.linear("query", d, d, n)
    b.linear("key", d, d, n)
    b.linear("value", d, d, n)
    b.linear("dense", d, d, n)  # attention.output.dense
    b.linear("dense", d, ff, n)  # intermediate.dense
    b.linear("dense", ff, d, n)  # output.dense


def _t5(hp: HParams, b: Build) -> None:
    """transformers T5ForConditionalGeneration (v1.0 relu FF or v1.1 gated-gelu)."""
    reject(hp, kv_heads=hp.kv_heads, bias=hp.bias)
    d, v = hp.d_model, hp.vocab
    h = hp.n_heads
    inner = h * hp.d_head
    ff = dff(hp, 2048)
    ne = hp.encoder_layers if hp.encoder_layers is not None else hp.layers
    nd = hp.decoder_layers if hp.decoder_layers is not None else hp.layers
    gated = bool(hp.get("gated", False))
    buckets = int(hp.get("relative_attention_num_buckets", 32))
    attn = 4 * d * inner
    mlp = (3 if gated else 2) * d * ff
    b.term("shared embedding", v * d, 1, "vocab·d", (r"(^|\.)shared\.", r"embed_tokens\."))
    b.term(
        "relative position bias",
        buckets * h,
        (1 if ne else 0) + (1 if nd else 0),
        "buckets·heads (block 0)",
        (r"relative_attention_bias\.",),
    )
    b.term(
        "encoder self-attention",
        attn,
        ne,
        "4·d·heads·d_kv",
        (layer_re("encoder", "block", r"\d+", "layer", "0", "SelfAttention"),),
    )
    b.term(
        "encoder mlp",
        mlp,
        ne,
        ("3" if gated else "2") + "·d·d_ff",
        (layer_re("encoder", "block", r"\d+", "layer", "1", "DenseReluDense"),),
    )
    b.term(
        "encoder norms", 2 * d, ne, "2 RMS norms", (layer_re("encoder", "block", r"\d+", "layer", r"\d", "layer_norm"),)
    )
    b.term("encoder final norm", d, 1, "d", (r"(^|\.)encoder\.final_layer_norm\.",))
    b.term(
        "decoder self-attention",
        attn,
        nd,
        "4·d·heads·d_kv",
        (layer_re("decoder", "block", r"\d+", "layer", "0", "SelfAttention"),),
    )
    b.term(
        "decoder cross-attention",
        attn,
        nd,
        "4·d·heads·d_kv",
        (layer_re("decoder", "block", r"\d+", "layer", "1", "EncDecAttention"),),
    )
    b.term(
        "decoder mlp",
        mlp,
        nd,
        ("3" if gated else "2") + "·d·d_ff",
        (layer_re("decoder", "block", r"\d+", "layer", "2", "DenseReluDense"),),
    )
    b.term(
        "decoder norms", 3 * d, nd, "3 RMS norms", (layer_re("decoder", "block", r"\d+", "layer", r"\d", "layer_norm"),)
    )
    if hp.get("head") == "encoder":
        b.assumptions.append("T5EncoderModel: the shared embedding and the encoder (no decoder, no lm_head)")
    else:
        b.term("decoder final norm", d, 1, "d", (r"(^|\.)decoder\.final_layer_norm\.",))
        lm_head(b, hp, hp.tied if hp.tied is not None else True)
    if hp.get("unknown_head"):
        b.assumptions.append(
            f"architectures names {hp.get('unknown_head')}, a head mi does not know: counted without it"
        )
    if hp.get("untied_in_config"):
        b.assumptions.append(
            "config says tie_word_embeddings false, but transformers ≥ 5 ties T5's lm_head anyway; a file saved by "
            f"transformers 4 holds a separate lm_head (+{v * d:,})"
        )
    b.assumptions.append(f"{'gated-gelu (T5 v1.1)' if gated else 'relu (T5 v1.0)'} feed-forward, no biases")
    for name in ("q", "k", "v"):
        b.linear(name, d, inner, ne + 2 * nd)
    b.linear("o", inner, d, ne + 2 * nd)
    if gated:
        b.linear("wi_0", d, ff, ne + nd)
        b.linear("wi_1", d, ff, ne + nd)
    else:
        b.linear("wi", d, ff, ne + nd)
    b.linear("wo", ff, d, ne + nd)


def _llama_attention(hp: HParams, b: Build, n: int, *, all_bias: bool, qkv_bias: bool, qk_norm: bool = False) -> None:
    d, q, kv = hp.d_model, hp.q_dim, hp.kv_dim
    attn = lin(d, q, all_bias or qkv_bias) + 2 * lin(d, kv, all_bias or qkv_bias) + lin(q, d, all_bias)
    formula = "d·(2·heads + 2·kv_heads)·head_dim"
    if all_bias:
        formula += " + biases"
    elif qkv_bias:
        formula += " + q/k/v biases"
    if qk_norm:  # Qwen3: RMSNorm over head_dim on queries and keys
        attn += 2 * hp.d_head
        formula += " + q/k norms"
    b.term("attention", attn, n, formula, (layer_re("layers", r"\d+", "self_attn"),))
    b.linear("q_proj", d, q, n)
    b.linear("k_proj", d, kv, n)
    b.linear("v_proj", d, kv, n)
    b.linear("o_proj", q, d, n)


def _llama_family(hp: HParams, b: Build) -> None:
    """transformers LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM, GemmaForCausalLM, Qwen3ForCausalLM."""
    d, v, n = hp.d_model, hp.vocab, hp.layers
    arch = hp.arch
    default_ff = {"llama": 11008, "mistral": 14336, "qwen2": 22016, "gemma": 24576, "qwen3": 22016}[arch]
    ff = dff(hp, default_ff)
    if arch == "qwen2":
        reject(hp, bias=hp.bias)
        all_bias, qkv_bias = False, True
    elif arch == "mistral":
        reject(hp, bias=hp.bias)
        all_bias, qkv_bias = False, False
    else:
        all_bias, qkv_bias = bool(hp.bias), False
    mlp_bias = bool(hp.get("mlp_bias", False))
    if hp.d_ff is None:
        b.assumptions.append(f"d_ff = {ff:,} ({arch} config default intermediate_size)")
    b.term("embedding", v * d, 1, "vocab·d", (r"embed_tokens\.",))
    _llama_attention(hp, b, n, all_bias=all_bias, qkv_bias=qkv_bias, qk_norm=arch == "qwen3")
    b.term(
        "mlp",
        2 * lin(d, ff, mlp_bias) + lin(ff, d, mlp_bias),
        n,
        "3·d·d_ff" + when(mlp_bias, " + biases"),
        (layer_re("layers", r"\d+", "mlp"),),
    )
    b.term("norms", 2 * d, n, "2 RMSNorm", (layer_re("layers", r"\d+", r"(input_layernorm|post_attention_layernorm)"),))
    b.term("final norm", d, 1, "RMSNorm", (r"(^|\.)norm\.weight$",))
    lm_head(b, hp, hp.tied if hp.tied is not None else arch == "gemma")
    kvh = hp.n_kv_heads
    if kvh != hp.n_heads:
        b.assumptions.append(f"grouped-query attention: {hp.n_heads} query heads share {kvh} key/value heads")
    if hp.head_dim is not None and hp.head_dim * hp.n_heads != d:
        b.assumptions.append(f"head_dim {hp.head_dim} (heads·head_dim = {hp.q_dim:,} ≠ d_model)")
    b.linear("gate_proj", d, ff, n)
    b.linear("up_proj", d, ff, n)
    b.linear("down_proj", ff, d, n)


def _opt(hp: HParams, b: Build) -> None:
    """transformers OPTForCausalLM."""
    reject(hp, kv_heads=hp.kv_heads, head_dim=hp.head_dim)
    d, v, n = hp.d_model, hp.vocab, hp.layers
    p = hp.max_positions if hp.max_positions is not None else 2048
    ff = dff(hp, 3072)
    bias = hp.bias if hp.bias is not None else True
    wdim = int(hp.get("word_embed_proj_dim", d))
    affine = bool(hp.get("layer_norm_elementwise_affine", True))
    ln = 2 * d if affine else 0
    final = bool(hp.get("do_layer_norm_before", True)) and not bool(hp.get("remove_final_layer_norm", False))
    b.term(
        "token embedding", v * wdim, 1, "vocab·word_embed_proj_dim" if wdim != d else "vocab·d", (r"embed_tokens\.",)
    )
    b.term("position embedding", (p + 2) * d, 1, "(max_positions + 2)·d", (r"embed_positions\.",))
    if wdim != d:
        b.term("project in/out", 2 * wdim * d, 1, "2·word_embed_proj_dim·d", (r"(^|\.)project_(in|out)\.",))
        b.linear("project_in", wdim, d, 1)
        b.linear("project_out", d, wdim, 1)
    attn_pat = (layer_re("layers", r"\d+", "self_attn"),)
    b.term("attention", 4 * lin(d, d, bias), n, "4·d²" + when(bias, " + 4d"), attn_pat)
    b.term(
        "mlp",
        lin(d, ff, bias) + lin(ff, d, bias),
        n,
        "2·d·d_ff" + when(bias, " + d_ff + d"),
        (layer_re("layers", r"\d+", r"fc[12]"),),
    )
    b.term("norms", 2 * ln, n, "2 LayerNorm", (layer_re("layers", r"\d+", r"(self_attn_layer_norm|final_layer_norm)"),))
    if final:
        b.term("final norm", ln, 1, "LayerNorm", (r"decoder\.final_layer_norm\.",))
    lm_head(b, hp, hp.tied if hp.tied is not None else True, d=wdim)
    b.assumptions.append("learned positions with OPT's offset of 2 rows")
    for name in ("q_proj", "k_proj", "v_proj", "out_proj"):
        b.linear(name, d, d, n)
    b.linear("fc1", d, ff, n)
    b.linear("fc2", ff, d, n)


def _phi(hp: HParams, b: Build) -> None:
    """transformers PhiForCausalLM (phi-1, phi-1.5, phi-2)."""
    reject(hp, bias=hp.bias)
    d, v, n = hp.d_model, hp.vocab, hp.layers
    ff = dff(hp, 8192)
    q, kv = hp.q_dim, hp.kv_dim
    qk_norm = bool(hp.get("qk_layernorm", False))
    b.term("embedding", v * d, 1, "vocab·d", (r"embed_tokens\.",))
    attn = lin(d, q, True) + 2 * lin(d, kv, True) + lin(q, d, True)
    if qk_norm:
        attn += 2 * 2 * (d // hp.n_heads)
    b.term(
        "attention",
        attn,
        n,
        "d·(2·heads + 2·kv_heads)·head_dim + biases" + when(qk_norm, " + q/k LayerNorm"),
        (layer_re("layers", r"\d+", "self_attn"),),
    )
    b.term("mlp", lin(d, ff, True) + lin(ff, d, True), n, "2·d·d_ff + d_ff + d", (layer_re("layers", r"\d+", "mlp"),))
    b.term(
        "norm",
        2 * d,
        n,
        "LayerNorm (shared by the parallel attention and MLP)",
        (layer_re("layers", r"\d+", "input_layernorm"),),
    )
    b.term("final norm", 2 * d, 1, "LayerNorm", (r"final_layernorm\.",))
    lm_head(b, hp, hp.tied if hp.tied is not None else False, bias=v)
    b.linear("q_proj", d, q, n)
    b.linear("k_proj", d, kv, n)
    b.linear("v_proj", d, kv, n)
    b.linear("dense", q, d, n)
    b.linear("fc1", d, ff, n)
    b.linear("fc2", ff, d, n)


def _falcon(hp: HParams, b: Build) -> None:
    """transformers FalconForCausalLM (7B-style multi-query, 40B-style grouped KV, or classic MHA)."""
    reject(hp, head_dim=hp.head_dim)
    d, v, n = hp.d_model, hp.vocab, hp.layers
    h = hp.n_heads
    hd = d // h
    ff = dff(hp, 4 * d)
    bias = bool(hp.bias)
    new_arch = hp.get("new_decoder_architecture")
    multi_query = hp.get("multi_query")
    kvh = hp.kv_heads
    if new_arch is None:  # from flags: infer the variant from --kv-heads
        new_arch = kvh is not None and kvh not in (1, h)
        multi_query = kvh is None or kvh == 1
    parallel = bool(hp.get("parallel_attn", True))
    n_ln = hp.get("num_ln_in_parallel_attn")
    if n_ln is None and new_arch:
        n_ln = 2
    if new_arch:
        kv = kvh if kvh is not None else h
        qkv_out = (2 * kv + h) * hd
        b.assumptions.append(f"new decoder architecture (Falcon-40B style): {kv} key/value heads")
    elif multi_query:
        qkv_out = d + 2 * hd
        b.assumptions.append("multi-query attention: one key/value head (Falcon-7B style)")
    else:
        qkv_out = 3 * d
        b.assumptions.append("multi-head attention (multi_query false)")
    if not parallel:
        norms, why = 2, "input and post-attention LayerNorm"
    elif n_ln == 2:
        norms, why = 2, "ln_attn and ln_mlp (parallel attention)"
    else:
        norms, why = 1, "one LayerNorm shared by the parallel attention and MLP"
    b.term("embedding", v * d, 1, "vocab·d", (r"word_embeddings\.",))
    b.term(
        "attention",
        lin(d, qkv_out, bias) + lin(d, d, bias),
        n,
        "d·(heads + 2·kv_heads)·head_dim + d²" + when(bias, " + biases"),
        (layer_re("h", r"\d+", "self_attention"),),
    )
    b.term(
        "mlp",
        lin(d, ff, bias) + lin(ff, d, bias),
        n,
        "2·d·d_ff" + when(bias, " + biases"),
        (layer_re("h", r"\d+", "mlp"),),
    )
    b.term(
        "norms",
        norms * 2 * d,
        n,
        why,
        (layer_re("h", r"\d+", r"(input_layernorm|post_attention_layernorm|ln_attn|ln_mlp)"),),
    )
    b.term("final norm (ln_f)", 2 * d, 1, "LayerNorm", (r"(^|\.)ln_f\.",))
    lm_head(b, hp, hp.tied if hp.tied is not None else True)
    b.linear("query_key_value", d, qkv_out, n)
    b.linear("dense", d, d, n)
    b.linear("dense_h_to_4h", d, ff, n)
    b.linear("dense_4h_to_h", ff, d, n)


def _chatglm(hp: HParams, b: Build) -> None:
    """THUDM modeling_chatglm.py (ChatGLM2/3): ChatGLMForConditionalGeneration.

    query_key_value: d → heads·kv_channels + 2·groups·kv_channels (multi-query) with bias if add_qkv_bias or
    add_bias_linear; dense: heads·kv_channels → d; SwiGLU MLP d → 2·ffn → d; RMSNorm (weight only) before
    attention and MLP; final RMSNorm if post_layer_norm; output_layer d → padded_vocab, no bias, never tied.
    """
    reject(hp, tied=True if hp.tied else None)
    d, v, n = hp.d_model, hp.vocab, hp.layers
    ff = dff(hp, 13696)
    q, kv = hp.q_dim, hp.kv_dim
    bias = bool(hp.bias)
    qkv_bias = bias or bool(hp.qkv_bias if hp.qkv_bias is not None else True)
    rms = bool(hp.get("rmsnorm", True))
    post = bool(hp.get("post_layer_norm", True))
    norm = d if rms else 2 * d
    qkv_out = q + 2 * kv
    b.term("embedding", v * d, 1, "padded_vocab·d", (r"word_embeddings\.",))
    b.term(
        "attention",
        lin(d, qkv_out, qkv_bias) + lin(q, d, bias),
        n,
        "d·(heads + 2·groups)·kv_channels + heads·kv_channels·d" + when(qkv_bias, " + qkv bias"),
        (layer_re("layers", r"\d+", "self_attention"),),
    )
    b.term(
        "mlp",
        lin(d, 2 * ff, bias) + lin(ff, d, bias),
        n,
        "3·d·ffn (SwiGLU)" + when(bias, " + biases"),
        (layer_re("layers", r"\d+", "mlp"),),
    )
    b.term(
        "norms",
        2 * norm,
        n,
        "2 RMSNorm" if rms else "2 LayerNorm",
        (layer_re("layers", r"\d+", r"(input_layernorm|post_attention_layernorm)"),),
    )
    if post:
        b.term("final norm", norm, 1, "RMSNorm" if rms else "LayerNorm", (r"final_layernorm\.",))
    b.term("output layer", v * d, 1, "padded_vocab·d", (r"output_layer\.",))
    b.linear("output_layer", d, v, 1)
    if kv != q:
        b.assumptions.append(f"multi-query attention: {hp.n_kv_heads} key/value groups of {hp.d_head}")
    b.assumptions.append("rotary inv_freq is a buffer, not a parameter; no prefix encoder (pre_seq_len unset)")
    b.linear("query_key_value", d, qkv_out, n)
    b.linear("dense", q, d, n)
    b.linear("dense_h_to_4h", d, 2 * ff, n)
    b.linear("dense_4h_to_h", ff, d, n)


_MOE_LORA_NOTE = (
    "LoRA counts nn.Linear targets only; routed experts are fused 3-D parameters in transformers 5 and are not "
    "counted (PEFT may adapt them under names such as down_proj)"
)


def _mixtral(hp: HParams, b: Build) -> None:
    """transformers MixtralForCausalLM: Mistral attention, sparse MoE feed-forward (top-k of E experts)."""
    reject(hp, bias=hp.bias)
    d, v, n = hp.d_model, hp.vocab, hp.layers
    ff = dff(hp, 14336)
    e = hp.num_experts if hp.num_experts is not None else 8
    k = hp.experts_per_token if hp.experts_per_token is not None else 2
    if k > e:
        raise UsageError(f"experts_per_token ({k}) exceeds num_experts ({e})", rule="experts")
    expert = 3 * d * ff
    b.is_moe = True
    b.term("embedding", v * d, 1, "vocab·d", (r"embed_tokens\.",))
    _llama_attention(hp, b, n, all_bias=False, qkv_bias=False)
    b.term("router", e * d, n, "experts·d", (layer_re("layers", r"\d+", r"(block_sparse_moe|mlp)", "gate"),))
    b.term(
        "experts",
        e * expert,
        n,
        f"experts·3·d·d_ff (active: {k} of {e})",
        (layer_re("layers", r"\d+", r"(block_sparse_moe|mlp)", "experts"),),
        active_each=k * expert,
    )
    b.term("norms", 2 * d, n, "2 RMSNorm", (layer_re("layers", r"\d+", r"(input_layernorm|post_attention_layernorm)"),))
    b.term("final norm", d, 1, "RMSNorm", (r"(^|\.)norm\.weight$",))
    lm_head(b, hp, bool(hp.tied))
    b.assumptions.append(f"{e} experts per layer, {k} active per token; active count = total − unused experts")
    b.assumptions.append(_MOE_LORA_NOTE)


def _qwen2_moe(hp: HParams, b: Build) -> None:
    """transformers Qwen2MoeForCausalLM: Qwen2 attention; sparse layers with routed experts + a shared expert."""
    reject(hp, bias=hp.bias)
    d, v, n = hp.d_model, hp.vocab, hp.layers
    ff = dff(hp, 5632)
    e = hp.num_experts if hp.num_experts is not None else 60
    k = hp.experts_per_token if hp.experts_per_token is not None else 4
    moe_ff = int(hp.get("moe_intermediate_size", 1408))
    shared_ff = int(hp.get("shared_expert_intermediate_size", 5632))
    step = int(hp.get("decoder_sparse_step", 1))
    dense_only = set(hp.get("mlp_only_layers", ()))
    sparse = sum(1 for i in range(n) if i not in dense_only and e > 0 and (i + 1) % step == 0)
    qkv_bias = bool(hp.qkv_bias if hp.qkv_bias is not None else True)
    b.is_moe = True
    b.term("embedding", v * d, 1, "vocab·d", (r"embed_tokens\.",))
    _llama_attention(hp, b, n, all_bias=False, qkv_bias=qkv_bias)
    mlp_pat = layer_re("layers", r"\d+", "mlp")
    b.term("dense mlp", 3 * d * ff, n - sparse, "3·d·d_ff", (mlp_pat + r"(gate|up|down)_proj\.",))
    b.term("router", e * d, sparse, "experts·d", (mlp_pat + r"gate\.",))
    b.term(
        "experts",
        e * 3 * d * moe_ff,
        sparse,
        f"experts·3·d·moe_d_ff (active: {k} of {e})",
        (mlp_pat + r"experts\.",),
        active_each=k * 3 * d * moe_ff,
    )
    b.term(
        "shared expert",
        3 * d * shared_ff + d,
        sparse,
        "3·d·shared_d_ff + d (its gate)",
        (mlp_pat + r"shared_expert(_gate)?\.",),
    )
    b.term("norms", 2 * d, n, "2 RMSNorm", (layer_re("layers", r"\d+", r"(input_layernorm|post_attention_layernorm)"),))
    b.term("final norm", d, 1, "RMSNorm", (r"(^|\.)norm\.weight$",))
    lm_head(b, hp, bool(hp.tied))
    b.assumptions.append(
        f"{sparse} sparse layers ({e} experts, {k} active, shared expert always active), {n - sparse} dense"
    )
    b.linear("gate_proj", d, ff, n - sparse)
    b.linear("up_proj", d, ff, n - sparse)
    b.linear("down_proj", ff, d, n - sparse)
    b.linear("gate_proj", d, shared_ff, sparse)  # shared_expert.gate_proj
    b.linear("up_proj", d, shared_ff, sparse)
    b.linear("down_proj", shared_ff, d, sparse)
    b.linear("shared_expert_gate", d, 1, sparse)


def _qwen3_moe(hp: HParams, b: Build) -> None:
    """transformers Qwen3MoeForCausalLM: Qwen3 attention (q/k norms); sparse layers of routed experts only."""
    d, v, n = hp.d_model, hp.vocab, hp.layers
    ff = dff(hp, 6144)
    e = hp.num_experts if hp.num_experts is not None else 128
    k = hp.experts_per_token if hp.experts_per_token is not None else 8
    moe_ff = int(hp.get("moe_intermediate_size", 768))
    step = int(hp.get("decoder_sparse_step", 1))
    dense_only = set(hp.get("mlp_only_layers", ()))
    sparse = sum(1 for i in range(n) if i not in dense_only and e > 0 and (i + 1) % step == 0)
    b.is_moe = True
    b.term("embedding", v * d, 1, "vocab·d", (r"embed_tokens\.",))
    _llama_attention(hp, b, n, all_bias=bool(hp.bias), qkv_bias=False, qk_norm=True)
    mlp_pat = layer_re("layers", r"\d+", "mlp")
    b.term("dense mlp", 3 * d * ff, n - sparse, "3·d·d_ff", (mlp_pat + r"(gate|up|down)_proj\.",))
    b.term("router", e * d, sparse, "experts·d", (mlp_pat + r"gate\.",))
    b.term(
        "experts",
        e * 3 * d * moe_ff,
        sparse,
        f"experts·3·d·moe_d_ff (active: {k} of {e})",
        (mlp_pat + r"experts\.",),
        active_each=k * 3 * d * moe_ff,
    )
    b.term("norms", 2 * d, n, "2 RMSNorm", (layer_re("layers", r"\d+", r"(input_layernorm|post_attention_layernorm)"),))
    b.term("final norm", d, 1, "RMSNorm", (r"(^|\.)norm\.weight$",))
    lm_head(b, hp, bool(hp.tied))
    b.assumptions.append(f"{sparse} sparse layers ({e} experts, {k} active per token), {n - sparse} dense")
    b.assumptions.append(_MOE_LORA_NOTE)
    b.linear("gate_proj", d, ff, n - sparse)
    b.linear("up_proj", d, ff, n - sparse)
    b.linear("down_proj", ff, d, n - sparse)


# ---- config readers: what each family's config means beyond the common spellings ---------------------------


def _read_falcon(config: Mapping[str, Any], v: dict[str, Any]) -> dict[str, Any]:
    heads = v["heads"]
    new_arch = bool(config.get("new_decoder_architecture", False))
    multi_query = bool(config.get("multi_query", True))
    if config.get("model_type") == "RefinedWeb":
        # The pre-port Falcon-40B config: the new decoder architecture, KV heads in `n_head_kv`.
        new_arch = True
        kv_heads = config.get("n_head_kv") or config.get("num_kv_heads") or heads
    elif new_arch:
        kv_heads = config.get("num_kv_heads") or heads
    elif multi_query:
        kv_heads = 1
    else:
        kv_heads = heads
    extras = {
        "new_decoder_architecture": new_arch,
        "multi_query": multi_query,
        "parallel_attn": bool(config.get("parallel_attn", True)),
        "num_ln_in_parallel_attn": config.get("num_ln_in_parallel_attn"),
    }
    return {"kv_heads": kv_heads, "bias": _opt_bool(config, "bias", v["path"]), "extras": extras}


def _read_chatglm(config: Mapping[str, Any], v: dict[str, Any]) -> dict[str, Any]:
    kv_heads = v["kv_heads"]
    if config.get("multi_query_attention"):
        kv_heads = config.get("multi_query_group_num")
        if kv_heads is None:
            raise MalformedFileError(
                "config.json sets multi_query_attention but has no 'multi_query_group_num'",
                path=v["path"],
                rule="config-key",
            )
    return {
        "kv_heads": kv_heads,
        "bias": bool(config.get("add_bias_linear", False)),
        "qkv_bias": bool(config.get("add_qkv_bias", False)),
        "extras": {
            "rmsnorm": bool(config.get("rmsnorm", True)),
            "post_layer_norm": bool(config.get("post_layer_norm", True)),
        },
    }


def _read_t5(config: Mapping[str, Any], v: dict[str, Any]) -> dict[str, Any]:
    layers = v["layers"]
    decoder = config.get("num_decoder_layers") or layers
    proj = str(config.get("feed_forward_proj", "relu"))
    extras: dict[str, Any] = {
        "gated": proj.startswith("gated-"),
        "relative_attention_num_buckets": config.get("relative_attention_num_buckets", 32),
    }
    # transformers 5's T5Config forces tie_word_embeddings = True (it only keeps the flag to decide the output
    # scaling); T5 v1.1 files written by transformers 4 hold a separate lm_head.
    if config.get("tie_word_embeddings") is False:
        extras["untied_in_config"] = True
    kind, name = head_kind(v["architectures"])
    if kind == "encoder":  # T5EncoderModel: the shared embedding and the encoder, nothing else
        extras["head"] = "encoder"
        return {"encoder_layers": layers, "decoder_layers": 0, "layers": layers, "tied": True, "extras": extras}
    if kind not in ("lm", "base"):
        extras["unknown_head"] = name
    return {"encoder_layers": layers, "decoder_layers": decoder, "layers": decoder, "tied": True, "extras": extras}


def _read_bert(config: Mapping[str, Any], v: dict[str, Any]) -> dict[str, Any]:
    kind, name = head_kind(v["architectures"])
    extras: dict[str, Any] = {"type_vocab_size": config.get("type_vocab_size", 2)}
    if kind in ("seq-cls", "token-cls", "qa"):
        extras["num_labels"] = num_labels(config)
    elif kind not in ("mlm", "pretraining", "base", "lm"):
        extras["unknown_head"] = name  # counted without it, and said
        kind = "base"
    extras["head"] = "base" if kind == "lm" else kind
    return {"extras": extras}


def _read_attention_bias(mlp_bias: bool) -> Any:
    """LlamaAttention / GemmaAttention / Qwen3Attention: q/k/v/o all take `attention_bias`; Llama's MLP `mlp_bias`."""

    def read(config: Mapping[str, Any], v: dict[str, Any]) -> dict[str, Any]:
        extras = {"mlp_bias": mlp_bias and bool(config.get("mlp_bias", False))}
        return {"bias": bool(config.get("attention_bias", False)), "extras": extras}

    return read


def _qwen_window(config: Mapping[str, Any], v: dict[str, Any]) -> dict[str, Any]:
    """Qwen2/3 use their sliding window only with `use_sliding_window`, on the layers from `max_window_layers`."""
    if not config.get("use_sliding_window", False):
        return {"sliding_window": None}
    out: dict[str, Any] = {}
    if config.get("layer_types") is None and config.get("sliding_window"):
        start = config.get("max_window_layers", v["layers"])
        out["layer_types"] = tuple("sliding_attention" if i >= start else "full_attention" for i in range(v["layers"]))
    return out


def _read_qwen2(config: Mapping[str, Any], v: dict[str, Any]) -> dict[str, Any]:
    # Qwen2Attention: q/k/v always with bias, o_proj without.
    return {"qkv_bias": True, **_qwen_window(config, v)}


def _read_qwen3(config: Mapping[str, Any], v: dict[str, Any]) -> dict[str, Any]:
    return {**_read_attention_bias(False)(config, v), **_qwen_window(config, v)}


def _read_qwen2_moe(config: Mapping[str, Any], v: dict[str, Any]) -> dict[str, Any]:
    extras = {
        "moe_intermediate_size": config.get("moe_intermediate_size", 1408),
        "shared_expert_intermediate_size": config.get("shared_expert_intermediate_size", 5632),
        "decoder_sparse_step": config.get("decoder_sparse_step", 1),
        "mlp_only_layers": tuple(config.get("mlp_only_layers") or ()),
    }
    return {"qkv_bias": bool(config.get("qkv_bias", True)), "extras": extras, **_qwen_window(config, v)}


def _read_qwen3_moe(config: Mapping[str, Any], v: dict[str, Any]) -> dict[str, Any]:
    extras = {
        "moe_intermediate_size": config.get("moe_intermediate_size", 768),
        "decoder_sparse_step": config.get("decoder_sparse_step", 1),
        "mlp_only_layers": tuple(config.get("mlp_only_layers") or ()),
        "mlp_bias": False,
    }
    return {"bias": bool(config.get("attention_bias", False)), "extras": extras, **_qwen_window(config, v)}


def _read_opt(config: Mapping[str, Any], v: dict[str, Any]) -> dict[str, Any]:
    extras = {
        "word_embed_proj_dim": config.get("word_embed_proj_dim") or v["d_model"],
        "do_layer_norm_before": bool(config.get("do_layer_norm_before", True)),
        "remove_final_layer_norm": bool(config.get("_remove_final_layer_norm", False)),
        "layer_norm_elementwise_affine": bool(config.get("layer_norm_elementwise_affine", True)),
    }
    return {"bias": bool(config.get("enable_bias", True)), "extras": extras}


def _read_phi(config: Mapping[str, Any], v: dict[str, Any]) -> dict[str, Any]:
    return {"extras": {"qk_layernorm": bool(config.get("qk_layernorm", False))}}


def _opt_bool(config: Mapping[str, Any], key: str, path: str | None) -> bool | None:
    value = config.get(key)
    if value is None:
        return None
    if not isinstance(value, bool):
        raise MalformedFileError(
            f"config key {key!r} must be true or false, got {value!r}", path=path, rule="config-key"
        )
    return value


def _falcon_norms(hp: HParams) -> int:
    # Parallel blocks feed attention and MLP from one norm output (two with the new decoder architecture).
    if hp.get("new_decoder_architecture", False):
        return int(hp.get("num_ln_in_parallel_attn") or 2)
    return 1 if hp.get("parallel_attn", True) else 2


_NO_HEAD_KEYS = {"kv_heads": (), "head_dim": ()}  # d/heads-wide attention, as many KV heads as query heads
_LLAMA_LIKE = MemoryFacts(softmax_fp32=True, measured=True)
_BERT_DROPS = (
    (("hidden_dropout_prob",), 0.1),
    (("attention_probs_dropout_prob",), 0.1),
    (("hidden_dropout_prob",), 0.1),
    ((), 0.0),
)
_BERT_MEMORY = MemoryFacts(norm="layernorm", mlp="plain", act="gelu", rotary="none", learned_positions=0,
                           dropouts=_BERT_DROPS)  # fmt: skip

FAMILIES: tuple[Family, ...] = (
    Family("seed", _seed, "the seed notes' hand formula (what it leaves out is listed)", heads="none",
           memory=MemoryFacts(norm="layernorm", mlp="plain", act="relu", rotary="none")),
    Family("torch-decoder", _torch_decoder, "torch.nn.TransformerDecoder (+ embedding, output layer)", heads="none",
           memory=MemoryFacts(norm="layernorm", mlp="plain", act="relu", rotary="none")),
    Family("torch-encoder-decoder", _torch_encoder_decoder, "torch.nn.Transformer (+ embeddings, output layer)",
           memory=MemoryFacts(norm="layernorm", mlp="plain", act="relu", rotary="none"), encoder_decoder=True,
           heads="none"),
    Family(
        "gpt2", _gpt2, "transformers GPT2LMHeadModel", model_types=("gpt2",),
        architectures=("GPT2LMHeadModel", "GPT2Model"),
        keys={"d_model": ("n_embd", "hidden_size"), "layers": ("n_layer", "num_hidden_layers"), **_NO_HEAD_KEYS},
        defaults={"n_positions": 1024, "n_head": 12, "tie_word_embeddings": True}, tied=True,
        unsupported=("add_cross_attention",),
        memory=MemoryFacts(norm="layernorm", mlp="plain", act="gelu_new", rotary="none", learned_positions=0,
                           measured=True, fused_qkv=True,
                           dropouts=((("embd_pdrop",), 0.1), (("attn_pdrop",), 0.1), (("resid_pdrop",), 0.1),
                                     ((), 0.0))),
    ),
    Family(
        "bert", _bert_like, "transformers BertModel / BertForMaskedLM / BertForPreTraining", model_types=("bert",),
        architectures=("BertModel", "BertForMaskedLM", "BertForPreTraining"), keys=_NO_HEAD_KEYS,
        defaults={"num_attention_heads": 12, "intermediate_size": 3072, "max_position_embeddings": 512,
                  "type_vocab_size": 2, "tie_word_embeddings": True},
        tied=True, read=_read_bert, unsupported=("add_cross_attention",), memory=_BERT_MEMORY, encoder_only=True,
        heads="builder",
    ),
    Family(
        "roberta", _bert_like, "transformers RobertaModel / RobertaForMaskedLM", model_types=("roberta",),
        architectures=("RobertaModel", "RobertaForMaskedLM"), keys=_NO_HEAD_KEYS,
        defaults={"num_attention_heads": 12, "intermediate_size": 3072, "max_position_embeddings": 512,
                  "type_vocab_size": 2, "tie_word_embeddings": True},
        tied=True, read=_read_bert, unsupported=("add_cross_attention",), memory=_BERT_MEMORY, encoder_only=True,
        heads="builder",
    ),
    Family(
        "t5", _t5, "transformers T5ForConditionalGeneration / T5EncoderModel", model_types=("t5",),
        architectures=("T5ForConditionalGeneration", "T5Model", "T5EncoderModel"),
        keys={"d_model": ("d_model",), "layers": ("num_layers",), "heads": ("num_heads",), "head_dim": ("d_kv",),
              "kv_heads": (), "d_ff": ("d_ff",), "max_positions": ()},
        defaults={"d_kv": 64, "d_ff": 2048, "num_heads": 8, "relative_attention_num_buckets": 32,
                  "feed_forward_proj": "relu", "tie_word_embeddings": True},
        tied=True, read=_read_t5, encoder_decoder=True, heads="builder",
        memory=MemoryFacts(norm="rmsnorm", mlp="plain", act="relu", act_keys=("feed_forward_proj",), rotary="none",
                           dropouts=((("dropout_rate",), 0.1),) * 4),
    ),
    Family(
        "llama", _llama_family, "transformers LlamaForCausalLM", model_types=("llama",),
        architectures=("LlamaForCausalLM",),
        defaults={"num_attention_heads": 32, "intermediate_size": 11008, "max_position_embeddings": 2048,
                  "attention_bias": False, "mlp_bias": False, "tie_word_embeddings": False},
        tied=False, read=_read_attention_bias(True), memory=_LLAMA_LIKE,
    ),
    Family(
        "mistral", _llama_family, "transformers MistralForCausalLM", model_types=("mistral",),
        architectures=("MistralForCausalLM",),
        defaults={"num_attention_heads": 32, "num_key_value_heads": 8, "intermediate_size": 14336,
                  "max_position_embeddings": 4096 * 32, "sliding_window": 4096, "tie_word_embeddings": False},
        tied=False, memory=_LLAMA_LIKE,
    ),
    Family(
        "qwen2", _llama_family, "transformers Qwen2ForCausalLM", model_types=("qwen2",),
        architectures=("Qwen2ForCausalLM",),
        defaults={"num_attention_heads": 32, "num_key_value_heads": 32, "intermediate_size": 22016,
                  "max_position_embeddings": 32768, "tie_word_embeddings": False, "use_sliding_window": False,
                  "sliding_window": 4096, "max_window_layers": 28},
        tied=False, read=_read_qwen2, memory=_LLAMA_LIKE,
    ),
    Family(
        "gemma", _llama_family, "transformers GemmaForCausalLM", model_types=("gemma",),
        architectures=("GemmaForCausalLM",),
        defaults={"num_attention_heads": 16, "num_key_value_heads": 16, "head_dim": 256, "intermediate_size": 24576,
                  "max_position_embeddings": 8192, "attention_bias": False, "tie_word_embeddings": True},
        tied=True, read=_read_attention_bias(False),
        memory=MemoryFacts(act="gelu_pytorch_tanh", softmax_fp32=True, norm_impl="gemma", measured=True),
    ),
    Family(
        "opt", _opt, "transformers OPTForCausalLM", model_types=("opt",), architectures=("OPTForCausalLM",),
        keys={"d_ff": ("ffn_dim",), **_NO_HEAD_KEYS},
        defaults={"num_attention_heads": 12, "ffn_dim": 3072, "max_position_embeddings": 2048,
                  "do_layer_norm_before": True, "_remove_final_layer_norm": False, "enable_bias": True,
                  "layer_norm_elementwise_affine": True, "tie_word_embeddings": True},
        tied=True, read=_read_opt,
        # transformers' OPTDecoder applies no dropout to the embeddings, only after attention and MLP.
        memory=MemoryFacts(norm="layernorm", mlp="plain", act="relu", rotary="none", learned_positions=2,
                           position_ids_per_sequence=True, measured=True,
                           dropouts=(((), 0.0), (("attention_dropout",), 0.0), (("dropout",), 0.1),
                                     (("activation_dropout",), 0.0))),
    ),
    Family(
        "phi", _phi, "transformers PhiForCausalLM (phi-1, phi-1.5, phi-2)", model_types=("phi",),
        architectures=("PhiForCausalLM",),
        defaults={"num_attention_heads": 32, "intermediate_size": 8192, "max_position_embeddings": 2048,
                  "qk_layernorm": False, "tie_word_embeddings": False},
        tied=False, read=_read_phi,
        memory=MemoryFacts(norm="layernorm", mlp="plain", act="gelu_new", rotary="partial", rotary_default=0.5,
                           norms_per_layer=lambda hp: 1, measured=True,
                           dropouts=((("embd_pdrop",), 0.0), (("attention_dropout",), 0.0), (("resid_pdrop",), 0.0),
                                     ((), 0.0))),
    ),
    Family(
        "falcon", _falcon, "transformers FalconForCausalLM", model_types=("falcon", "RefinedWeb", "RefinedWebModel"),
        architectures=("FalconForCausalLM",), keys={"d_ff": ("ffn_hidden_size",), **_NO_HEAD_KEYS},
        defaults={"num_attention_heads": 71, "max_position_embeddings": 2048, "new_decoder_architecture": False,
                  "multi_query": True, "parallel_attn": True, "bias": False, "tie_word_embeddings": True},
        tied=True, read=_read_falcon,
        memory=MemoryFacts(norm="layernorm", mlp="plain", act="gelu", norms_per_layer=_falcon_norms, measured=True,
                           fused_qkv=True,
                           dropouts=(((), 0.0), (("attention_dropout",), 0.0), (("hidden_dropout",), 0.0),
                                     ((), 0.0))),
    ),
    Family(
        "chatglm", _chatglm, "THUDM modeling_chatglm.py (ChatGLM2/3)", model_types=("chatglm",),
        architectures=("ChatGLMModel", "ChatGLMForConditionalGeneration"),
        keys={"vocab": ("padded_vocab_size", "vocab_size"), "layers": ("num_layers",), "head_dim": ("kv_channels",),
              "kv_heads": (),  # multi_query_group_num, read only when multi_query_attention is on
              "d_ff": ("ffn_hidden_size",), "max_positions": ("seq_length",)},
        defaults={"num_attention_heads": 32, "kv_channels": 128, "ffn_hidden_size": 13696, "seq_length": 2048,
                  "multi_query_attention": False, "multi_query_group_num": 1, "add_bias_linear": False,
                  "add_qkv_bias": False, "rmsnorm": True, "post_layer_norm": True, "tie_word_embeddings": False},
        tied=False, read=_read_chatglm, unsupported=("pre_seq_len",), heads="none",
        memory=MemoryFacts(fused_qkv=True, dropouts=(((), 0.0), (("attention_dropout",), 0.0),
                                                      (("hidden_dropout",), 0.0), ((), 0.0))),
    ),
    Family(
        "mixtral", _mixtral, "transformers MixtralForCausalLM", model_types=("mixtral",),
        architectures=("MixtralForCausalLM",), keys={"d_ff": ("intermediate_size",)},
        defaults={"num_attention_heads": 32, "num_key_value_heads": 8, "intermediate_size": 14336,
                  "max_position_embeddings": 4096 * 32, "num_local_experts": 8, "num_experts_per_tok": 2,
                  "tie_word_embeddings": False},
        tied=False, memory=_LLAMA_LIKE,
    ),
    Family(
        "qwen2_moe", _qwen2_moe, "transformers Qwen2MoeForCausalLM", model_types=("qwen2_moe",),
        architectures=("Qwen2MoeForCausalLM",), keys={"d_ff": ("intermediate_size",)},
        defaults={"num_attention_heads": 16, "num_key_value_heads": 16, "intermediate_size": 5632,
                  "max_position_embeddings": 32768, "moe_intermediate_size": 1408,
                  "shared_expert_intermediate_size": 5632, "num_experts": 60, "num_experts_per_tok": 4,
                  "decoder_sparse_step": 1, "qkv_bias": True, "use_sliding_window": False, "sliding_window": 4096,
                  "max_window_layers": 28, "tie_word_embeddings": False},
        tied=False, read=_read_qwen2_moe, memory=MemoryFacts(softmax_fp32=True, measured=True, norm_topk=False),
    ),
    Family(
        "qwen3", _llama_family, "transformers Qwen3ForCausalLM", model_types=("qwen3",),
        architectures=("Qwen3ForCausalLM",),
        defaults={"num_attention_heads": 32, "num_key_value_heads": 32, "head_dim": 128, "intermediate_size": 22016,
                  "max_position_embeddings": 32768, "attention_bias": False, "use_sliding_window": False,
                  "sliding_window": 4096, "max_window_layers": 28, "tie_word_embeddings": False},
        tied=False, read=_read_qwen3, memory=MemoryFacts(softmax_fp32=True, qk_norm="head", measured=True),
    ),
    Family(
        "qwen3_moe", _qwen3_moe, "transformers Qwen3MoeForCausalLM", model_types=("qwen3_moe",),
        architectures=("Qwen3MoeForCausalLM",), keys={"d_ff": ("intermediate_size",)},
        defaults={"num_attention_heads": 32, "num_key_value_heads": 4, "intermediate_size": 6144,
                  "max_position_embeddings": 32768, "moe_intermediate_size": 768, "num_experts": 128,
                  "num_experts_per_tok": 8, "decoder_sparse_step": 1, "attention_bias": False,
                  "use_sliding_window": False, "sliding_window": 4096, "tie_word_embeddings": False},
        tied=False, read=_read_qwen3_moe, memory=MemoryFacts(softmax_fp32=True, qk_norm="head", measured=True),
    ),
)  # fmt: skip
