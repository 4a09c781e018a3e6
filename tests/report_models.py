"""Models for the `mi report` tests, written sparse (real headers, no weight bytes on disk).

- the seed's decoder: its state dict's shapes taken from torch itself (built on the meta device);
- Llama-2 70B as an HF sharded folder with its config.json;
- a safetensors file whose tensor names are hostile HTML and script.
"""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks.layouts import LLAMA2_70B, write_sparse_safetensors, write_sparse_sharded

# Llama-2 70B's public config (the sizes benchmarks.layouts writes).
LLAMA2_70B_CONFIG = {
    "architectures": ["LlamaForCausalLM"],
    "model_type": "llama",
    "hidden_size": 8192,
    "intermediate_size": 28672,
    "num_hidden_layers": 80,
    "num_attention_heads": 64,
    "num_key_value_heads": 8,
    "vocab_size": 32000,
    "max_position_embeddings": 4096,
    "rms_norm_eps": 1e-5,
    "tie_word_embeddings": False,
    "torch_dtype": "bfloat16",
}

HOSTILE_NAMES = (
    '<img src=x onerror="window.__pwned=1">.weight',
    "</script><script>window.__pwned=2</script>.bias",
    "a|b`c<!--\u2028x\u2029.weight",
)


def seed_layout() -> tuple[list[tuple[str, tuple[int, ...]]], int]:
    """The seed decoder's tensors (names and shapes as torch's state_dict gives them) and torch's own parameter
    count, without allocating its 754 MiB."""
    import torch

    from fixtures.make_fixtures import SeedDecoder

    with torch.device("meta"):
        model = SeedDecoder()
    layout = [(k, tuple(v.shape)) for k, v in model.state_dict().items()]
    return layout, sum(p.numel() for p in model.parameters())


def write_seed(folder: Path) -> tuple[Path, int]:
    layout, numel = seed_layout()
    path = folder / "seed.safetensors"
    write_sparse_safetensors(path, layout, "F32")
    return path, numel


def write_70b(folder: Path, shards: int = 15) -> Path:
    out = folder / "llama-2-70b"
    write_sparse_sharded(out, LLAMA2_70B, shards, "BF16")
    (out / "config.json").write_text(json.dumps(LLAMA2_70B_CONFIG, indent=2))
    return out


def write_hostile(folder: Path) -> Path:
    """A real safetensors file (written by the safetensors library) with hostile names beside plain ones."""
    import torch
    from safetensors.torch import save_file

    tensors = {name: torch.zeros(4, 4) for name in HOSTILE_NAMES}
    tensors["plain.weight"] = torch.zeros(8, 8)
    path = folder / "hostile.safetensors"
    save_file(tensors, path, metadata={"note": "<script>window.__pwned=3</script>"})
    return path
