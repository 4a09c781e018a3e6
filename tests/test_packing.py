"""Packed low-bit weights: logical parameters beside stored bytes, for GPTQ / AWQ / bitsandbytes / sub-byte dtypes.

The GPTQ and AWQ tensors below have exactly the shapes and dtypes the reference kernels allocate
(AutoGPTQ `QuantLinear.__init__`: qweight `[in // 32 * bits, out]` int32, qzeros `[ceil(in / group), out // 32 * bits]`
int32, scales `[ceil(in / group), out]` fp16, g_idx `[in]` int32; AutoAWQ `WQLinear_GEMM`: qweight
`[in, out // (32 // bits)]`). The oracle is the unquantized torch model's `sum(p.numel())`.
"""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path

import pytest

import modelscope_inspect as mi
from modelscope_inspect.errors import InspectError
from modelscope_inspect.loaders.packing import AUX_KIND
from tests.conftest import run_cli

torch = pytest.importorskip("torch")
safetensors_torch = pytest.importorskip("safetensors.torch")


def tiny_model() -> torch.nn.Module:
    class Block(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.q_proj = torch.nn.Linear(256, 256, bias=False)
            self.up_proj = torch.nn.Linear(256, 512, bias=True)
            self.down_proj = torch.nn.Linear(512, 256, bias=False)
            self.norm = torch.nn.LayerNorm(256)

    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embed = torch.nn.Embedding(100, 256)
            self.layers = torch.nn.ModuleList([Block(), Block()])

    return Net()


def quantized_state_dict(model: torch.nn.Module, method: str, bits: int, group: int, g_idx: bool = True) -> dict:
    """Every Linear replaced by its packed form; every other tensor kept (fp16)."""
    sd: dict[str, torch.Tensor] = {}
    linears = {n for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)}
    for name, t in model.state_dict().items():
        mod, _, leaf = name.rpartition(".")
        if mod not in linears:
            sd[name] = t.half()
            continue
        if leaf == "bias":
            sd[name] = t.half()
            continue
        out_f, in_f = t.shape
        groups = math.ceil(in_f / group)
        if method == "gptq":
            sd[f"{mod}.qweight"] = torch.zeros((in_f // 32 * bits, out_f), dtype=torch.int32)
            sd[f"{mod}.qzeros"] = torch.zeros((groups, out_f // 32 * bits), dtype=torch.int32)
            sd[f"{mod}.scales"] = torch.zeros((groups, out_f), dtype=torch.float16)
            if g_idx:
                sd[f"{mod}.g_idx"] = torch.tensor([i // group for i in range(in_f)], dtype=torch.int32)
        else:  # awq GEMM
            sd[f"{mod}.qweight"] = torch.zeros((in_f, out_f // (32 // bits)), dtype=torch.int32)
            sd[f"{mod}.qzeros"] = torch.zeros((groups, out_f // (32 // bits)), dtype=torch.int32)
            sd[f"{mod}.scales"] = torch.zeros((groups, out_f), dtype=torch.float16)
    return sd


def save_folder(folder: Path, sd: dict, quant_config: dict | None, fmt: str = "safetensors") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    if fmt == "safetensors":
        safetensors_torch.save_file(sd, str(folder / "model.safetensors"))
    else:
        torch.save(sd, folder / "pytorch_model.bin")
    if quant_config is not None:
        (folder / "config.json").write_text(json.dumps({"model_type": "llama", "quantization_config": quant_config}))
    return folder


def weights_count(inv: mi.TensorInventory) -> int:
    """Unique elements of the model section without quantization metadata (scales, zeros, g_idx)."""
    return sum(t.counted_numel for t in inv.tensors if t.section == "model" and t.kind != AUX_KIND)


@pytest.mark.parametrize(
    ("method", "bits", "group", "fmt"),
    [
        ("gptq", 4, 128, "safetensors"),
        ("gptq", 8, 64, "safetensors"),
        ("awq", 4, 128, "safetensors"),
        ("gptq", 4, 128, "bin"),
    ],
)
def test_packed_with_config(tmp_path: Path, method: str, bits: int, group: int, fmt: str) -> None:
    model = tiny_model()
    oracle = sum(p.numel() for p in model.parameters())
    sd = quantized_state_dict(model, method, bits, group)
    stored = {k: v.numel() for k, v in sd.items()}
    folder = save_folder(tmp_path / "m", sd, {"quant_method": method, "bits": bits, "group_size": group}, fmt)
    inv = mi.load(str(folder))
    assert weights_count(inv) == oracle
    by = {t.name: t for t in inv.tensors}
    for name, mod in model.named_modules():
        if isinstance(mod, torch.nn.Linear):
            q = by[f"{name}.qweight"]
            assert q.numel == mod.in_features * mod.out_features  # logical = in × out
            assert q.nbytes == stored[f"{name}.qweight"] * 4  # stored int32 bytes, unchanged
            assert q.packing is not None and q.packing.startswith(f"{method} {bits}-bit")
            assert "bits from config.json" in q.packing
            assert by[f"{name}.scales"].kind == AUX_KIND and by[f"{name}.qzeros"].kind == AUX_KIND
    # stored bytes are the file's: the packing pass never changes a byte count
    assert inv.total_bytes == sum(t.numel() * t.element_size() for t in sd.values())
    d = inv.details
    assert f"{method} {bits}-bit ×6" in d["packed weights"]
    r = run_cli("inspect", str(folder))
    assert r.code == 0 and "packed weights" in r.stdout


@pytest.mark.parametrize(("bits", "g_idx"), [(4, True), (3, True), (2, True), (4, False), (8, False)])
def test_gptq_bits_inferred_without_config(tmp_path: Path, bits: int, g_idx: bool) -> None:
    model = tiny_model()
    sd = quantized_state_dict(model, "gptq", bits, 32, g_idx=g_idx)
    path = tmp_path / "gptq.safetensors"
    safetensors_torch.save_file(sd, str(path))
    inv = mi.load(str(path))
    assert weights_count(inv) == sum(p.numel() for p in model.parameters())
    q = next(t for t in inv.tensors if t.name.endswith("up_proj.qweight"))
    assert q.numel == 256 * 512
    assert ("from g_idx length" if g_idx else "from qzeros/scales widths") in (q.packing or "")


def test_awq_bits_inferred_without_config(tmp_path: Path) -> None:
    model = tiny_model()
    path = tmp_path / "awq.safetensors"
    safetensors_torch.save_file(quantized_state_dict(model, "awq", 4, 64), str(path))
    inv = mi.load(str(path))
    assert weights_count(inv) == sum(p.numel() for p in model.parameters())


def test_config_contradicting_shapes_is_an_error(tmp_path: Path) -> None:
    sd = quantized_state_dict(tiny_model(), "gptq", 4, 128)
    folder = save_folder(tmp_path / "m", sd, {"quant_method": "gptq", "bits": 8})
    with pytest.raises(InspectError) as info:
        mi.load(str(folder))
    assert info.value.rule == "packing" and "8-bit" in str(info.value)


def test_plain_int32_tensors_are_not_touched(tmp_path: Path) -> None:
    """A model that merely has int32 buffers named like nothing above keeps its counts."""
    sd = {"layer.weight": torch.zeros(4, 4), "layer.position_ids": torch.zeros(1, 512, dtype=torch.int32)}
    path = tmp_path / "plain.safetensors"
    safetensors_torch.save_file(sd, str(path))
    inv = mi.load(str(path))
    assert inv.total_elements == 16 + 512 and inv.total_params == 16  # position_ids: a buffer, not a weight
    assert all(t.packing is None for t in inv.tensors)
    assert "packed weights" not in inv.details


def test_bitsandbytes_nf4(tmp_path: Path) -> None:
    """bitsandbytes Params4bit as saved by transformers: uint8 [n/2, 1] + absmax + quant_map + quant_state."""
    n = 256 * 512
    sd = {
        "mlp.weight": torch.zeros((n // 2, 1), dtype=torch.uint8),
        "mlp.weight.absmax": torch.zeros(n // 64, dtype=torch.float32),
        "mlp.weight.quant_map": torch.zeros(16, dtype=torch.float32),
        "mlp.weight.quant_state.bitsandbytes__nf4": torch.zeros(120, dtype=torch.uint8),
        "norm.weight": torch.zeros(256),
    }
    path = tmp_path / "bnb.safetensors"
    safetensors_torch.save_file(sd, str(path))
    inv = mi.load(str(path))
    w = next(t for t in inv.tensors if t.name == "mlp.weight")
    assert (w.numel, w.nbytes) == (n, n // 2)
    assert weights_count(inv) == n + 256


def test_native_sub_byte_dtypes_are_labelled(tmp_path: Path) -> None:
    """safetensors F4/I4 already count logical elements (2 per byte); the pass only says so."""
    header = {
        "a": {"dtype": "F4", "shape": [64, 32], "data_offsets": [0, 1024]},
        "b": {"dtype": "I4", "shape": [16], "data_offsets": [1024, 1032]},
    }
    body = json.dumps(header).encode()
    path = tmp_path / "fp4.safetensors"
    path.write_bytes(struct.pack("<Q", len(body)) + body + b"\0" * 1032)
    inv = mi.load(str(path))
    by = {t.name: t for t in inv.tensors}
    assert (by["a"].numel, by["a"].nbytes, by["a"].packing) == (2048, 1024, "native f4: 2 per byte")
    assert inv.total_params == 2048 + 16
    assert "native f4 ×1" in inv.details["packed weights"]
