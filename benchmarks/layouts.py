"""Real tensor layouts of big models, written as sparse files: a real header, `truncate`d to the full size.

Used by tests and benchmarks to show that inspection cost does not depend on the weights' size.
Shapes follow the public Llama-2 configurations (vocab 32000; 7B: d 4096, 32 layers, d_ff 11008;
70B: d 8192, 80 layers, d_ff 28672, 8 KV heads of 128).
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

Layout = list[tuple[str, tuple[int, ...]]]


def llama_layout(vocab: int, d: int, layers: int, d_ff: int, heads: int, kv_heads: int) -> Layout:
    head_dim = d // heads
    kv = kv_heads * head_dim
    out: Layout = [("model.embed_tokens.weight", (vocab, d))]
    for i in range(layers):
        p = f"model.layers.{i}"
        out += [
            (f"{p}.self_attn.q_proj.weight", (d, d)),
            (f"{p}.self_attn.k_proj.weight", (kv, d)),
            (f"{p}.self_attn.v_proj.weight", (kv, d)),
            (f"{p}.self_attn.o_proj.weight", (d, d)),
            (f"{p}.mlp.gate_proj.weight", (d_ff, d)),
            (f"{p}.mlp.up_proj.weight", (d_ff, d)),
            (f"{p}.mlp.down_proj.weight", (d, d_ff)),
            (f"{p}.input_layernorm.weight", (d,)),
            (f"{p}.post_attention_layernorm.weight", (d,)),
        ]
    out += [("model.norm.weight", (d,)), ("lm_head.weight", (vocab, d))]
    return out


LLAMA2_7B = llama_layout(32000, 4096, 32, 11008, 32, 32)  # 6,738,415,616 params
LLAMA2_70B = llama_layout(32000, 8192, 80, 28672, 64, 8)  # 68,976,648,192 params
GPT2_124M: Layout = (
    [("wte.weight", (50257, 768)), ("wpe.weight", (1024, 768))]
    + [
        (f"h.{i}.{name}", shape)
        for i in range(12)
        for name, shape in (
            ("ln_1.weight", (768,)),
            ("ln_1.bias", (768,)),
            ("attn.c_attn.weight", (768, 2304)),
            ("attn.c_attn.bias", (2304,)),
            ("attn.c_proj.weight", (768, 768)),
            ("attn.c_proj.bias", (768,)),
            ("ln_2.weight", (768,)),
            ("ln_2.bias", (768,)),
            ("mlp.c_fc.weight", (768, 3072)),
            ("mlp.c_fc.bias", (3072,)),
            ("mlp.c_proj.weight", (3072, 768)),
            ("mlp.c_proj.bias", (768,)),
        )
    ]
    + [("ln_f.weight", (768,)), ("ln_f.bias", (768,))]
)  # 124,439,808 params

_BYTES = {"F32": 4, "F16": 2, "BF16": 2}


def numel(shape: tuple[int, ...]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def write_sparse_safetensors(path: Path, layout: Layout, dtype: str = "BF16") -> int:
    """Write a real safetensors header for `layout` and extend the file to full size without writing data."""
    size = _BYTES[dtype]
    header: dict[str, object] = {"__metadata__": {"format": "pt"}}
    offset = 0
    for name, shape in layout:
        nbytes = numel(shape) * size
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + nbytes]}
        offset += nbytes
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)) + raw)
        f.truncate(8 + len(raw) + offset)
    return offset


def write_sparse_sharded(folder: Path, layout: Layout, shards: int, dtype: str = "BF16") -> int:
    """A sharded HF folder (`model-0000i-of-000NN.safetensors` + index.json) of sparse shards."""
    folder.mkdir(parents=True, exist_ok=True)
    per = -(-len(layout) // shards)
    weight_map: dict[str, str] = {}
    total = 0
    for i in range(shards):
        part = layout[i * per : (i + 1) * per]
        if not part:
            break
        name = f"model-{i + 1:05d}-of-{shards:05d}.safetensors"
        total += write_sparse_safetensors(folder / name, part, dtype)
        weight_map.update({t: name for t, _ in part})
    index = {"metadata": {"total_size": total}, "weight_map": weight_map}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index, indent=2))
    return total
