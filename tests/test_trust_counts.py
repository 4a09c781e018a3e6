"""Counts as the library counts them (issue 15, item 5), each checked against torch on files torch wrote.

- buffers known by name leave the weights of a plain state dict: `total_params == sum(p.numel() for p in
  model.parameters())`, and no real parameter is moved (models of torch and transformers);
- sparse tensors are read as their index and value tensors, with nnz and dense shape;
- overlapping views count the union of the bytes they touch (torch's own strides are the oracle);
- every dtype torch can save is read, and every torch dtype has its row;
- TorchScript archives (scripted, traced, quantized) are read without running their code.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import pytest

import modelscope_inspect as mi
from modelscope_inspect.dtypes import DTYPES, TORCH_DTYPES, torch_dtype
from modelscope_inspect.errors import UnsafePickleError
from modelscope_inspect.inventory import TensorInventory
from tests.conftest import FIXTURES, run_cli

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

warnings.filterwarnings("ignore", message=".*(Sparse|sparse|quantiz|TorchScript|deprecated|ComplexHalf).*")


def persistent_buffers(model: Any) -> list[str]:
    """What torch puts in state_dict() beside the parameters."""
    params = {n for n, _ in model.named_parameters(remove_duplicate=False)}
    return [k for k in model.state_dict() if k not in params]


def check_counts(model: Any, inv: TensorInventory) -> None:
    """The oracle: parameters and persistent buffers as torch lists them."""
    assert inv.total_params == sum(p.numel() for p in model.parameters())
    buffers = persistent_buffers(model)
    assert sorted(t.name for t in inv.tensors if t.section == "buffers") == sorted(buffers)
    params = {n for n, _ in model.named_parameters(remove_duplicate=False)}
    model_names = {t.name for t in inv.tensors if t.section == "model"}
    assert model_names <= params and not model_names & set(buffers)  # no parameter moved, no buffer kept


# --- buffers known by name ------------------------------------------------------------------------------------


class OldGPT2Attention(nn.Module):
    """GPT-2's attention as transformers < 4 registered its buffers (a [1, 1, n, n] mask and masked_bias)."""

    def __init__(self) -> None:
        super().__init__()
        self.c_attn = nn.Linear(8, 24)
        self.register_buffer("bias", torch.tril(torch.ones(6, 6)).view(1, 1, 6, 6))
        self.register_buffer("masked_bias", torch.tensor(-1e4))


class Rotary(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("inv_freq", 1.0 / (10000 ** (torch.arange(0, 8, 2).float() / 8)))
        self.register_buffer("position_ids", torch.arange(16).expand((1, -1)))
        self.proj = nn.Linear(8, 8)


def torch_models() -> dict[str, Any]:
    torch.manual_seed(0)
    lazy = nn.Sequential(nn.LazyLinear(4), nn.LazyBatchNorm1d())
    lazy(torch.randn(3, 5))  # materialised, as it is saved after a forward
    return {
        "batchnorm": nn.Sequential(nn.Linear(16, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Linear(32, 4)),
        "conv-bn": nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Conv3d(4, 2, 1), nn.BatchNorm3d(2)),
        "instance-norm": nn.Sequential(nn.Conv1d(2, 4, 1), nn.InstanceNorm1d(4, affine=True, track_running_stats=True)),
        "sync-bn": nn.Sequential(nn.Linear(3, 4), nn.SyncBatchNorm(4)),
        "no-affine": nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4, affine=False)),
        "lazy": lazy,
        "old-gpt2": nn.ModuleDict({"attn": OldGPT2Attention(), "ln": nn.LayerNorm(8)}),
        "rotary": Rotary(),
    }


@pytest.mark.parametrize("name", list(torch_models()))
@pytest.mark.parametrize("how", ["zip", "legacy", "safetensors", "checkpoint"])
def test_state_dict_buffers_are_not_parameters(tmp_path: Path, name: str, how: str) -> None:
    model = torch_models()[name]
    sd = model.state_dict()
    p = tmp_path / ("m.safetensors" if how == "safetensors" else "m.pth")
    if how == "safetensors":
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in sd.items()}, str(p))
    elif how == "checkpoint":
        torch.save({"epoch": 1, "model_state_dict": sd, "optimizer_state_dict": {"state": {}, "param_groups": []}}, p)
    else:
        torch.save(sd, p, _use_new_zipfile_serialization=how == "zip")
    inv = mi.load(str(p))
    check_counts(model, inv)
    if persistent_buffers(model):
        assert inv.details["buffers"].endswith(": not parameters")
        doc = json.loads(run_cli("inspect", str(p), "--json").stdout)
        rows = {r["section"]: r for r in doc["sections"]}
        buffer_elements = sum(v.numel() for k, v in sd.items() if k in persistent_buffers(model))
        assert rows["buffers"]["elements"] == buffer_elements
        assert rows["buffers"]["source"] == ("model_state_dict" if how == "checkpoint" else None)
        assert doc["total_params"] == sum(p.numel() for p in model.parameters())


def test_the_committed_checkpoint_counts_like_model_parameters() -> None:
    # fixtures/tiny_checkpoint.pth (fixtures/make_torch_fixtures.py): 805 state-dict elements, 740 parameters.
    ckpt = torch.load(FIXTURES / "tiny_checkpoint.pth", weights_only=True)
    model = nn.Sequential(nn.Linear(16, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Linear(32, 4))
    model.load_state_dict(ckpt["model"])
    inv = mi.load(str(FIXTURES / "tiny_checkpoint.pth"))
    check_counts(model, inv)
    assert inv.total_params == 740 and sum(v.numel() for v in ckpt["model"].values()) == 805


def test_a_parameter_with_a_buffer_name_stays_a_parameter(tmp_path: Path) -> None:
    # The name rule has a dtype rule: a float `position_ids` parameter, an integer `running_mean`, a [4] bias.
    m = nn.Module()
    m.position_ids = nn.Parameter(torch.zeros(4, 8))
    m.bias = nn.Parameter(torch.zeros(4))
    m.register_buffer("running_mean", torch.zeros(4, dtype=torch.int32))  # not a BatchNorm statistic
    p = tmp_path / "m.pth"
    torch.save(m.state_dict(), p)
    inv = mi.load(str(p))
    assert {t.name for t in inv.tensors if t.section == "model"} == {"position_ids", "bias", "running_mean"}


TRANSFORMERS = ["gpt2", "bert", "bart", "llama", "resnet", "swin", "deepseek_v3"]


def hf_model(kind: str) -> Any:
    transformers = pytest.importorskip("transformers")
    t = transformers
    torch.manual_seed(0)
    small = {"vocab_size": 64}
    if kind == "gpt2":
        return t.GPT2LMHeadModel(
            t.GPT2Config(n_layer=1, n_embd=16, n_head=2, n_positions=32, bos_token_id=0, eos_token_id=0, **small)
        )
    if kind == "bert":
        cfg = t.BertConfig(num_hidden_layers=1, hidden_size=16, num_attention_heads=2, intermediate_size=32,
                           max_position_embeddings=32, **small)  # fmt: skip
        return t.BertModel(cfg)
    if kind == "bart":
        cfg = t.BartConfig(encoder_layers=1, decoder_layers=1, d_model=16, encoder_attention_heads=2,
                           decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32,
                           max_position_embeddings=32, **small)  # fmt: skip
        return t.BartForConditionalGeneration(cfg)  # final_logits_bias: a persistent buffer
    if kind == "llama":
        cfg = t.LlamaConfig(num_hidden_layers=1, hidden_size=16, num_attention_heads=2, num_key_value_heads=1,
                            intermediate_size=32, **small)  # fmt: skip
        return t.LlamaForCausalLM(cfg)
    if kind == "resnet":
        return t.ResNetModel(t.ResNetConfig(embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1], layer_type="basic"))
    if kind == "swin":
        return t.SwinModel(
            t.SwinConfig(image_size=32, patch_size=4, embed_dim=8, depths=[1], num_heads=[2], window_size=4)
        )
    cfg = t.DeepseekV3Config(num_hidden_layers=2, first_k_dense_replace=1, hidden_size=16, intermediate_size=32,
                             moe_intermediate_size=8, num_attention_heads=2, num_key_value_heads=2, n_routed_experts=4,
                             num_experts_per_tok=2, n_group=1, topk_group=1, kv_lora_rank=8, q_lora_rank=8,
                             qk_rope_head_dim=4, qk_nope_head_dim=4, v_head_dim=4, **small)  # fmt: skip
    return t.DeepseekV3ForCausalLM(cfg)  # e_score_correction_bias: a persistent buffer of the router


@pytest.mark.parametrize("kind", TRANSFORMERS)
def test_transformers_models_count_like_parameters(tmp_path: Path, kind: str) -> None:
    from safetensors.torch import save_model

    model = hf_model(kind)
    torch.save(model.state_dict(), tmp_path / "pytorch_model.bin")  # tied weights stay one storage
    check_counts(model, mi.load(str(tmp_path / "pytorch_model.bin")))
    save_model(model, str(tmp_path / "model.safetensors"))  # drops the tied copies, as save_pretrained does
    check_counts(model, mi.load(str(tmp_path / "model.safetensors")))


# --- sparse tensors ----------------------------------------------------------------------------------------------


def sparse_tensors() -> dict[str, Any]:
    torch.manual_seed(0)
    dense = torch.zeros(6, 8)
    dense[0, 1], dense[2, 3], dense[3, 0], dense[5, 7] = 1.0, 2.0, 3.0, 4.0
    hybrid = torch.zeros(4, 5, 3)
    hybrid[1, 2] = torch.tensor([1.0, 2.0, 3.0])
    return {
        "coo": dense.to_sparse(),
        "coo_uncoalesced": torch.sparse_coo_tensor(
            torch.tensor([[0, 0, 1], [2, 2, 3]]), torch.tensor([1.0, 2.0, 3.0]), (4, 4)
        ),
        "coo_hybrid": hybrid.to_sparse(2),
        "csr": dense.to_sparse_csr(),
        "csc": dense.to_sparse_csc(),
        "bsr": dense.to_sparse_bsr((2, 2)),
        "bsc": dense.to_sparse_bsc((2, 4)),
        "dense": dense,
    }


PARTS = {
    torch.sparse_coo: (("indices", "_indices"), ("values", "_values")),
    torch.sparse_csr: (("crow_indices", "crow_indices"), ("col_indices", "col_indices"), ("values", "values")),
    torch.sparse_bsr: (("crow_indices", "crow_indices"), ("col_indices", "col_indices"), ("values", "values")),
    torch.sparse_csc: (("ccol_indices", "ccol_indices"), ("row_indices", "row_indices"), ("values", "values")),
    torch.sparse_bsc: (("ccol_indices", "ccol_indices"), ("row_indices", "row_indices"), ("values", "values")),
}


@pytest.mark.parametrize("legacy", [False, True])
def test_sparse_tensors_are_read_as_their_parts(tmp_path: Path, legacy: bool) -> None:
    tensors = sparse_tensors()
    p = tmp_path / "sparse.pth"
    torch.save(tensors, p, _use_new_zipfile_serialization=not legacy)
    loaded = torch.load(p, weights_only=True)  # the oracle: what torch rebuilds
    inv = mi.load(str(p))
    by_name = {t.name: t for t in inv.tensors}
    values = 0
    for name, t in loaded.items():
        if t.layout == torch.strided:
            assert by_name[name].shape == tuple(t.shape)
            continue
        for suffix, accessor in PARTS[t.layout]:
            part = getattr(t, accessor)()
            rec = by_name[f"{name}.{suffix}"]
            assert (rec.shape, rec.numel) == (tuple(part.shape), part.numel()), name
            assert rec.kind == ("param" if suffix == "values" else "sparse_index")
        values += getattr(t, PARTS[t.layout][-1][1])().numel()
        shape = "×".join(map(str, t.shape))
        assert inv.details["sparse"][name] == f"{str(t.layout).removeprefix('torch.')} {shape} (nnz {t._nnz():,})"
    # the stored values (nnz, with their blocks) are the parameters; the indices are bytes, not parameters
    assert inv.total_params == values + loaded["dense"].numel()
    stored = {
        t.untyped_storage().data_ptr(): t.untyped_storage().nbytes()
        for t in loaded.values()
        if t.layout == torch.strided
    }
    for t in loaded.values():
        if t.layout != torch.strided:
            for _suffix, accessor in PARTS[t.layout]:
                s = getattr(t, accessor)().untyped_storage()
                stored[s.data_ptr()] = s.nbytes()
    assert inv.storage_bytes == sum(stored.values())
    r = run_cli("inspect", str(p))
    assert r.code == 0 and "sparse" in r.stdout and "coo.values" not in r.stderr


def test_a_sparse_parameter_of_a_module(tmp_path: Path) -> None:
    emb = nn.Embedding(10, 4, sparse=True)
    m = nn.Module()
    m.w = nn.Parameter(torch.eye(5).to_sparse())
    m.emb = emb
    p = tmp_path / "m.pth"
    torch.save(m.state_dict(), p)
    inv = mi.load(str(p))
    assert {t.name for t in inv.tensors} == {"w.indices", "w.values", "emb.weight"}
    assert inv.total_params == m.w._nnz() + emb.weight.numel()


# --- overlapping views: the union of their bytes --------------------------------------------------------------


def view_cases() -> dict[str, dict[str, Any]]:
    base = torch.arange(64, dtype=torch.float32)
    m = base.view(8, 8)
    return {
        "slices": {"a": base[0:20], "b": base[9:21]},
        "rows_and_columns": {"a": m[:3], "b": m[:, :2]},
        "column_blocks": {"a": m[:, 1:3], "b": m[:, 2:5]},
        "strided": {"a": base[0:8], "b": base[4:20:2]},
        "transpose": {"a": m, "b": m.t()},
        "diagonal": {"a": m.diagonal(), "b": m[2:4]},
        "three_blocks": {"a": m[1:5, 1:5], "b": m[3:7, 3:7], "c": m[0:2]},
        "broadcast": {"a": base[:4].expand(3, 4), "b": base[2:6]},
    }


def unique_bytes(views: dict[str, Any]) -> int:
    """Bytes of storage the views touch, from torch's own size/stride/offset."""
    touched: set[int] = set()
    for v in views.values():
        n = v.untyped_storage().nbytes() // v.element_size()
        idx = torch.arange(n).as_strided(v.shape, v.stride(), v.storage_offset())
        for e in set(idx.flatten().tolist()):
            touched.update(range(e * v.element_size(), (e + 1) * v.element_size()))
    return len(touched)


@pytest.mark.parametrize("case", list(view_cases()))
@pytest.mark.parametrize("legacy", [False, True])
def test_overlapping_views_count_the_union(tmp_path: Path, case: str, legacy: bool) -> None:
    views = view_cases()[case]
    p = tmp_path / "views.pth"
    torch.save(views, p, _use_new_zipfile_serialization=not legacy)
    inv = mi.load(str(p))
    expected = unique_bytes(views)
    assert sum(t.counted_nbytes for t in inv.tensors) == expected
    assert inv.total_params == expected // 4  # an expanded (broadcast) view counts the elements it stores
    reachable = not [w for w in inv.warnings if "not reachable" in w]
    assert reachable == (expected == 256)  # the views were saved with the whole 64-element storage


# --- every torch dtype ---------------------------------------------------------------------------------------------


def torch_dtypes() -> dict[str, Any]:
    return {n: getattr(torch, n) for n in dir(torch) if isinstance(getattr(torch, n), torch.dtype)}


def test_every_torch_dtype_has_a_row() -> None:
    for name, dt in torch_dtypes().items():
        row = torch_dtype(f"torch.{name}")
        assert row is not None, name
        if name in ("quint4x2", "quint2x4"):
            continue  # sized by their packed values, below
        assert row.bits == dt.itemsize * 8, name
    assert set(TORCH_DTYPES) == set(torch_dtypes())
    assert all(v in DTYPES for v in TORCH_DTYPES.values())


def make_tensor(name: str, dt: Any) -> Any:
    if name in ("qint8", "quint8", "qint32", "quint4x2", "quint2x4"):
        return torch.quantize_per_tensor(torch.rand(8), 0.1, 0, dt)
    try:
        return torch.zeros(8, dtype=dt)
    except (RuntimeError, TypeError):
        return torch.empty(8, dtype=dt)


def saveable() -> list[str]:
    out = []
    for name, dt in torch_dtypes().items():
        try:
            torch.save({"t": make_tensor(name, dt)}, Path("/dev/null"))
        except Exception:  # torch 2.13 cannot save int1 … uint7: "dtype torch.int1 is not recognized"
            continue
        out.append(name)
    return out


@pytest.mark.parametrize("name", saveable())
def test_every_dtype_torch_saves_is_read(tmp_path: Path, name: str) -> None:
    t = make_tensor(name, getattr(torch, name))
    p = tmp_path / "t.pth"
    torch.save({"t": t, "odd": t[:7]}, p)
    r = run_cli("inspect", str(p), "--json")
    assert r.code == 0, r.stderr
    rec = json.loads(r.stdout)["tensors"][0]
    assert rec["dtype"] == TORCH_DTYPES[name] and rec["numel"] == t.numel() == 8
    assert rec["nbytes"] == t.untyped_storage().nbytes()  # 8 quint4x2 values fill 4 bytes


def test_shell_dtypes_are_one_byte_each() -> None:
    # int1 … uint7 cannot be saved by torch 2.13, but a tensor of them takes one byte per element in torch.
    for n in range(1, 8):
        for kind in ("int", "uint"):
            dt = getattr(torch, f"{kind}{n}")
            assert torch.empty(8, dtype=dt).untyped_storage().nbytes() == 8
            assert (
                torch_dtype(f"torch.{kind}{n}").bits == 8 and torch_dtype(f"torch.{kind}{n}").name == f"torch_{kind}{n}"
            )


# --- TorchScript ---------------------------------------------------------------------------------------------------


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 8)
        self.bn = nn.BatchNorm1d(8)
        self.out = nn.Linear(8, 2)
        self.blocks = nn.ModuleList([nn.Linear(2, 2) for _ in range(2)])
        self.register_buffer("mask", torch.ones(2))
        self.scale = torch.tensor([2.0, 3.0])  # a plain attribute: not in state_dict()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.out(self.bn(self.fc(x))) * self.mask
        for b in self.blocks:
            y = b(y)
        return y + torch.tensor([1.0, 2.0])  # a constant (constants.pkl when traced)


class Containers(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.emb = nn.Embedding(10, 4)
        self.sizes: list[int] = [1, 2, 3]  # pickled through torch.jit._pickle.build_intlist
        self.table: dict[str, torch.Tensor] = {"a": torch.ones(3)}  # restore_type_tag
        self.tensors: list[torch.Tensor] = [torch.zeros(2), torch.ones(5)]  # build_tensorlist

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x).sum() + self.table["a"].sum() + self.tensors[0].sum() + float(len(self.sizes))


def script_file(tmp_path: Path, model: Any, how: str, example: Any = None) -> tuple[Path, Any]:
    module = torch.jit.script(model) if how == "scripted" else torch.jit.trace(model, example)
    p = tmp_path / f"{how}.pt"
    torch.jit.save(module, p)
    return p, torch.jit.load(p)  # the oracle: torch reading the file it wrote


@pytest.mark.parametrize("how", ["scripted", "traced"])
def test_torchscript_module(tmp_path: Path, how: str) -> None:
    torch.manual_seed(0)
    p, loaded = script_file(tmp_path, Net().eval(), how, torch.randn(3, 4))
    inv = mi.load(str(p))
    assert inv.total_params == sum(q.numel() for q in loaded.parameters())
    assert [t.name for t in inv.tensors if t.section == "model"] == [n for n, _ in loaded.named_parameters()]
    assert sorted(t.name for t in inv.tensors if t.section == "buffers") == sorted(n for n, _ in loaded.named_buffers())
    assert {t.name for t in inv.tensors if t.section in ("model", "buffers")} == set(loaded.state_dict())
    constants = loaded.code_with_constants[1].const_mapping
    assert sorted(t.name for t in inv.tensors if t.section == "constants") == sorted(
        f"CONSTANTS.{k}" for k in constants
    )
    r = run_cli("inspect", str(p))
    assert r.code == 0 and "TorchScript archive: torch.jit.load also runs" in " ".join(r.stdout.split())
    scan = run_cli("scan", str(p))
    # The archive's code/ files are the finding (they run on torch.jit.load); torch's own helpers are not.
    assert "TorchScript code: runs on torch.jit.load" in " ".join(scan.stdout.split())
    assert scan.code == 1
    assert run_cli("scan", str(p), "--allow", "torchscript").code == 0


def test_torchscript_lists_and_dicts(tmp_path: Path) -> None:
    # Refused before for build_intlist / build_tensorlist / restore_type_tag, which torch.jit.load accepts.
    torch.manual_seed(0)
    p, loaded = script_file(tmp_path, Containers().eval(), "scripted")
    inv = mi.load(str(p))
    assert inv.total_params == sum(q.numel() for q in loaded.parameters())
    other = {t.name: t.numel for t in inv.tensors if t.section == "other"}
    assert other == {"table.a": 3, "tensors.0": 2, "tensors.1": 5}  # attributes, not in state_dict()
    assert run_cli("inspect", str(p)).code == 0


class QNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.quant = torch.ao.quantization.QuantStub()
        self.conv = nn.Conv2d(3, 4, 3)
        self.fc = nn.Linear(4, 2)
        self.dequant = torch.ao.quantization.DeQuantStub()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dequant(self.fc(torch.relu(self.conv(self.quant(x))).mean(dim=(2, 3))))


@pytest.mark.parametrize("how", ["scripted", "traced"])
def test_torchscript_quantized(tmp_path: Path, how: str) -> None:
    tq = torch.ao.quantization
    torch.manual_seed(0)
    float_model = QNet().eval()
    n_float = sum(q.numel() for q in float_model.parameters())
    float_model.qconfig = tq.get_default_qconfig("fbgemm")
    prepared = tq.prepare(float_model)
    prepared(torch.randn(2, 3, 8, 8))
    static = tq.convert(prepared)
    p, loaded = script_file(tmp_path, static, how, torch.randn(2, 3, 8, 8))
    inv = mi.load(str(p))
    # the packed weights of the quantized conv and linear are the parameters (the float model's count) …
    weights = (
        static.conv.weight().numel()
        + static.conv.bias().numel()
        + static.fc.weight().numel()
        + static.fc.bias().numel()
    )
    assert inv.total_params == weights == n_float
    assert {t.name for t in inv.tensors if t.section == "model"} >= {"conv.weight", "conv.bias"}
    assert {t.dtype for t in inv.tensors if t.section == "model"} == {"qint8", "f32"}
    # … and the Quantize stub's scale / zero point are buffers, as its code declares
    assert sorted(t.name for t in inv.tensors if t.section == "buffers") == sorted(n for n, _ in loaded.named_buffers())

    dynamic = tq.quantize_dynamic(nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2)).eval(), {nn.Linear})
    p2 = tmp_path / "dynamic.pt"
    torch.jit.save(torch.jit.script(dynamic), p2)
    inv2 = mi.load(str(p2))
    assert inv2.total_params == 4 * 8 + 8 + 8 * 2 + 2
    assert {t.name for t in inv2.tensors} == {
        f"{i}._packed_params._packed_params.{k}" for i in (0, 2) for k in ("weight", "bias")
    }


def test_torchscript_helpers_are_allowed_only_in_torchscript(tmp_path: Path) -> None:
    # The same helper in a plain torch.save pickle is still refused: the allowance is for reading TorchScript.
    import torch.jit._pickle as jit_pickle

    class Tagged:
        def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
            return (jit_pickle.build_intlist, ([1, 2],))

    p = tmp_path / "plain.pth"
    torch.save({"w": torch.ones(2), "x": Tagged()}, p)
    with pytest.raises(UnsafePickleError):
        mi.load(str(p))
    assert run_cli("inspect", str(p)).code == 2
