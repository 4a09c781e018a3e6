"""Buffers known by name: tensors a plain state dict holds that are not parameters.

`model.state_dict()` holds a module's parameters and its persistent buffers with nothing to tell them apart, so
a state dict of a model with BatchNorm has more elements than `model.parameters()`. The names below are the
persistent buffers torch and transformers modules register (`nn.Module.register_buffer`, `nn.Buffer`), each
with the dtype family it always has, so that a parameter of the same name in some other model is not moved:

- `running_mean`, `running_var` (float), `num_batches_tracked` (integer): `torch.nn.modules.batchnorm._NormBase`
  (BatchNorm1d/2d/3d, SyncBatchNorm, InstanceNorm with `track_running_stats=True`, their lazy forms) and
  transformers' FrozenBatchNorm2d;
- `position_ids`, `token_type_ids`, `relative_position_index` (integer): transformers embeddings and Swin-style
  relative attention (persistent in older checkpoints and in some models still, e.g. CLAP);
- `inv_freq` (float): rotary embeddings;
- `final_logits_bias`: BART, mBART, Pegasus, Marian, LED; `e_score_correction_bias`: DeepSeek-V3-style routers;
  `masked_bias`: GPT-2, GPT-Neo and GPT-J of transformers < 4.x;
- `bias` of shape [1, 1, n, n] (`attn.bias` of GPT-2 and its relatives): the causal mask, never a parameter.

Whole-module pickles and TorchScript archives say exactly which tensors are buffers; this rule is for plain
state dicts (torch files and safetensors) only.
"""

from __future__ import annotations

from ..dtypes import lookup
from ..errors import MalformedFileError

_FLOAT = frozenset({"float"})
_INT = frozenset({"int", "uint"})
_ANY = frozenset({"float", "int", "uint", "bool"})
BUFFER_NAMES: dict[str, frozenset[str]] = {
    "running_mean": _FLOAT,
    "running_var": _FLOAT,
    "num_batches_tracked": _INT,
    "position_ids": _INT,
    "token_type_ids": _INT,
    "relative_position_index": _INT,
    "inv_freq": _FLOAT,
    "final_logits_bias": _FLOAT,
    "e_score_correction_bias": _FLOAT,
    "masked_bias": _FLOAT,
}


def _kind(dtype: str) -> str | None:
    try:
        return lookup(dtype).kind
    except MalformedFileError:
        return None


def is_known_buffer(name: str, dtype: str, shape: tuple[int, ...]) -> bool:
    """True when a state-dict entry `name` of `dtype` and `shape` is one of the buffers above."""
    last = name.rsplit(".", 1)[-1]
    kinds = BUFFER_NAMES.get(last)
    if kinds is not None:
        return _kind(dtype) in kinds
    if last == "bias" and len(shape) == 4 and shape[0] == shape[1] == 1 and shape[2] == shape[3] > 1:
        return _kind(dtype) in _ANY  # GPT-2's causal mask: tril(ones(n, n)).view(1, 1, n, n)
    return False


def buffer_note(names: list[str]) -> str:
    """`details["buffers"]` for buffers found by name: how many and which names."""
    kinds = sorted({n.rsplit(".", 1)[-1] for n in names})
    shown = ", ".join(kinds[:4]) + (", …" if len(kinds) > 4 else "")
    return f"{len(names)} ({shown}): not parameters"


__all__ = ["BUFFER_NAMES", "buffer_note", "is_known_buffer"]
