"""PyTorch beyond a plain state_dict (issue 3): whole-module pickles, the legacy format, training checkpoints
and quantized tensors. Every file here is written by torch 2.13 itself; the expected numbers come from the
live objects (`named_parameters()`, `state_dict()`, `q_scale()` ...), never from our own formulas.
"""

from __future__ import annotations

import json
import pickle
import pickletools
from pathlib import Path
from typing import Any

import pytest

import modelscope_inspect as mi
from tests.conftest import FIXTURES, run_cli

torch = pytest.importorskip("torch")
nn = torch.nn

# torch 2.13 deprecates eager-mode quantization loudly; the files it writes are still what users have.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")


def qualname(obj: Any) -> str:
    return f"{type(obj).__module__}.{type(obj).__qualname__}"


def tiny_seed():  # type: ignore[no-untyped-def]
    from fixtures.make_fixtures import tiny_seed as make

    return make()


def bn_model():  # type: ignore[no-untyped-def]
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 2))


def check_whole_module(model: Any, path: Path) -> mi.TensorInventory:
    """The oracle for a whole-module pickle: names, kinds, counts and module classes from the live model."""
    inv = mi.load(str(path))
    params = dict(model.named_parameters(remove_duplicate=False))
    buffers = dict(model.named_buffers(remove_duplicate=False))
    got_params = [t.name for t in inv.tensors if t.kind == "param"]
    got_buffers = [t.name for t in inv.tensors if t.kind == "buffer"]
    assert got_params == list(params)
    assert got_buffers == list(buffers)
    assert set(model.state_dict(keep_vars=True)) <= set(got_params + got_buffers)
    # parameters() yields each tied parameter once; our sharing resolution must agree.
    assert inv.total_params == sum(p.numel() for p in model.parameters())
    assert inv.total_elements == inv.total_params + sum(b.numel() for b in model.buffers())
    by_name = {t.name: t for t in inv.tensors}
    for name, p in {**params, **buffers}.items():
        assert by_name[name].shape == tuple(p.shape), name
    expected_types = {name: qualname(m) for name, m in model.named_modules(remove_duplicate=False)}
    assert inv.torch.module_types == expected_types
    counts: dict[str, int] = {}
    for q in expected_types.values():
        counts[q] = counts.get(q, 0) + 1
    assert inv.details["modules"] == counts
    assert sorted(list(inv.torch.module_classes)) == sorted(counts)
    return inv


# --- whole modules -----------------------------------------------------------------------------------------


def test_whole_seed_model_small(tmp_path: Path) -> None:
    model = tiny_seed()
    p = tmp_path / "whole.pth"
    torch.save(model, p)
    inv = check_whole_module(model, p)
    assert inv.format == "torch-zip"
    assert "transformer_decoder.layers.0.self_attn.in_proj_weight" in {t.name for t in inv.tensors}
    assert inv.details["modules"]["torch.nn.modules.transformer.TransformerDecoderLayer"] == 2
    # loading it would import the model's class: said, never done
    assert any("fixtures.make_fixtures.SeedDecoder" in w for w in inv.warnings)
    # same numbers as the state_dict file of the same model
    sd_inv = mi.load(str(FIXTURES / "tiny_seed.pth"))
    assert inv.total_params == sd_inv.total_params
    r = run_cli("inspect", str(p))
    assert r.code == 0, r.stderr
    assert "torch.nn.modules.transformer.TransformerDecoderLayer ×2" in r.stdout


def test_whole_module_buffers_are_listed_not_counted(tmp_path: Path) -> None:
    model = bn_model()
    model.register_buffer("scratch", torch.zeros(5), persistent=False)
    p = tmp_path / "bn.pth"
    torch.save(model, p)
    inv = check_whole_module(model, p)
    sections = inv.by_section
    assert sections["model"].elements == sum(p.numel() for p in model.parameters())
    assert sections["buffers"].elements == sum(b.numel() for b in model.buffers())  # 8 + 8 + 1 + 5
    assert list(inv.torch.non_persistent_buffers) == ["scratch"]
    doc = json.loads(run_cli("inspect", str(p), "--json").stdout)
    rows = {r["section"]: r for r in doc["sections"]}
    assert rows["buffers"]["tensors"] == 4 and rows["buffers"]["elements"] == 22
    assert doc["total_params"] == 74 and doc["total_elements"] == 96


def test_whole_module_with_tied_weights_and_config_objects(tmp_path: Path) -> None:
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    cfg = transformers.GPT2Config(vocab_size=300, n_positions=32, n_embd=16, n_layer=2, n_head=2)
    model = transformers.GPT2LMHeadModel(cfg)
    p = tmp_path / "gpt2_whole.pth"
    torch.save(model, p)
    inv = check_whole_module(model, p)
    assert [t.name for t in inv.shared] == ["lm_head.weight"]
    assert "transformers.models.gpt2.configuration_gpt2.GPT2Config" in inv.details["other objects"]


@pytest.mark.parametrize("protocol", [1, 2, 4])
def test_whole_module_pickle_protocols(tmp_path: Path, protocol: int) -> None:
    # protocols 0/1 spell objects as copyreg._reconstructor(cls, object, None); 2+ as NEWOBJ.
    model = bn_model()
    p = tmp_path / f"p{protocol}.pth"
    torch.save(model, p, pickle_protocol=protocol)
    check_whole_module(model, p)


def quantized_mlp():  # type: ignore[no-untyped-def]
    import torch.ao.quantization as tq

    torch.manual_seed(0)
    qm = nn.Sequential(tq.QuantStub(), nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2), tq.DeQuantStub()).eval()
    qm.qconfig = tq.get_default_qconfig("fbgemm")
    tq.prepare(qm, inplace=True)
    qm(torch.randn(16, 4))
    tq.convert(qm, inplace=True)
    return qm


def test_whole_quantized_module(tmp_path: Path) -> None:
    # nn.quantized Linear keeps weight and bias in a packed ScriptObject; its state_dict() unpacks them.
    qm = quantized_mlp()
    p = tmp_path / "qwhole.pth"
    torch.save(qm, p)
    inv = mi.load(str(p))
    sd = qm.state_dict()
    packed = [x for k, v in sd.items() if k.endswith("_packed_params._packed_params") for x in v]
    assert inv.total_params == sum(t.numel() for t in packed)
    assert inv.by_section["buffers"].elements == sd["0.scale"].numel() + sd["0.zero_point"].numel()
    channels = sum(t.q_per_channel_scales().numel() for t in packed if t.is_quantized)
    assert inv.by_section["quantization"].elements == 2 * channels
    assert inv.details["modules"]["torch.ao.nn.quantized.modules.linear.Linear"] == 2


def test_whole_module_quantized_linear_state_dict(tmp_path: Path) -> None:
    qm = quantized_mlp()
    sd = qm.state_dict()
    p = tmp_path / "qsd.pth"
    torch.save(sd, p)
    inv = mi.load(str(p))
    tensors: list[Any] = []
    for k, v in sd.items():
        if k.rsplit(".", 1)[-1] in ("scale", "zero_point"):
            continue  # QuantStub / quantized Linear scale and zero point: the `quantization` section, not weights
        tensors += [x for x in (v if isinstance(v, tuple) else (v,)) if isinstance(x, torch.Tensor)]
    assert inv.total_params == sum(t.numel() for t in tensors)
    # ... which is what the float model had as parameters: quantization keeps the count
    assert inv.total_params == sum(p.numel() for p in nn.Sequential(nn.Linear(4, 8), nn.Linear(8, 2)).parameters())
    q = inv.torch.quantization["1._packed_params._packed_params.0"]
    w = sd["1._packed_params._packed_params"][0]
    assert q == {"qscheme": "per_channel_affine", "axis": w.q_per_channel_axis(), "channels": 8}
    scales = {t.name: t for t in inv.tensors if t.section == "quantization"}
    s = scales["1._packed_params._packed_params.0.q_per_channel_scales"]
    assert (s.shape, s.dtype) == (tuple(w.q_per_channel_scales().shape), "f64")


# --- the seed model saved whole (acceptance) ---------------------------------------------------------------


@pytest.mark.slow
def test_seed_model_saved_whole(tmp_path: Path) -> None:
    from fixtures.make_fixtures import SeedDecoder

    torch.manual_seed(0)
    model = SeedDecoder()
    p = tmp_path / "seed_whole.pth"
    torch.save(model, p)
    expected = sum(p.numel() for p in model.parameters())
    types = {name: qualname(m) for name, m in model.named_modules()}
    del model
    inv = mi.load(str(p))
    assert expected == 197_714_267
    assert inv.total_params == expected
    assert inv.torch.module_types == types
    assert inv.details["modules"]["torch.nn.modules.transformer.TransformerDecoderLayer"] == 6
    r = run_cli("inspect", str(p))
    assert "197,714,267" in r.stdout and "TransformerDecoderLayer ×6" in r.stdout
    assert "layers.0-5 ×6" in r.stdout


# --- legacy (non-zip) format --------------------------------------------------------------------------------


def legacy_layout(path: Path) -> tuple[int, list[str]]:
    """End of the five pickles and the storage keys, found with pickletools (decodes, never loads)."""
    data = path.read_bytes()
    pos = 0
    for _ in range(4):
        pos = next(p for op, _, p in pickletools.genops(data[pos:]) if op.name == "STOP") + pos + 1
    keys_end = next(p for op, _, p in pickletools.genops(data[pos:]) if op.name == "STOP") + pos + 1
    keys = pickle.loads(data[pos:keys_end])  # a list of str we wrote ourselves
    return keys_end, keys


def test_legacy_state_dict_matches_zip_and_points_at_the_data(tmp_path: Path) -> None:
    model = tiny_seed()
    sd = model.state_dict()
    p = tmp_path / "legacy.pth"
    torch.save(sd, p, _use_new_zipfile_serialization=False)
    inv = mi.load(str(p))
    zip_inv = mi.load(str(FIXTURES / "tiny_seed.pth"))
    assert inv.format == "torch-legacy"
    assert [(t.name, t.shape, t.dtype) for t in inv.tensors] == [(k, tuple(v.shape), "f32") for k, v in sd.items()]
    assert inv.total_params == zip_inv.total_params == sum(v.numel() for v in sd.values())
    # The storage table was walked with its counts: each offset is where torch wrote the tensor's bytes.
    raw = p.read_bytes()
    offsets = inv.torch.storage_offsets
    end, keys = legacy_layout(p)
    assert sorted(offsets) == sorted(keys) and min(offsets.values()) == end + 8
    for rec in inv.tensors:
        key = rec.storage.split(":", 1)[1]
        start = offsets[key] + rec.offset
        assert raw[start : start + rec.nbytes] == sd[rec.name].contiguous().numpy().tobytes(), rec.name
    assert inv.storage_bytes == sum(v.numel() * 4 for v in sd.values())


def test_legacy_whole_module(tmp_path: Path) -> None:
    model = bn_model()
    p = tmp_path / "legacy_whole.pth"
    torch.save(model, p, _use_new_zipfile_serialization=False)
    inv = check_whole_module(model, p)
    assert inv.format == "torch-legacy"


def test_legacy_protocol_1_and_tied_views(tmp_path: Path) -> None:
    base = torch.arange(12.0).reshape(3, 4)
    obj = {"base": base, "t": base.t(), "row": base[1], "half": torch.ones(3).half()}
    p = tmp_path / "views.pth"
    torch.save(obj, p, _use_new_zipfile_serialization=False, pickle_protocol=1)
    inv = mi.load(str(p))
    assert inv.total_params == 12 + 3  # views of `base` share its storage
    assert {t.name for t in inv.shared} == {"t", "row"}


# --- training checkpoints -----------------------------------------------------------------------------------


def adam_state(model: Any) -> Any:
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model(torch.randn(3, 4)).sum().backward()
    opt.step()
    return opt


def opt_tensors(opt_sd: dict[str, Any]) -> list[Any]:
    return [v for st in opt_sd["state"].values() for v in st.values() if isinstance(v, torch.Tensor)]


@pytest.mark.parametrize(
    ("model_key", "opt_key"), [("model", "optimizer"), ("model_state_dict", "optimizer_state_dict")]
)
def test_optimizer_checkpoint(tmp_path: Path, model_key: str, opt_key: str) -> None:
    model = bn_model()
    opt = adam_state(model)
    sd, osd = model.state_dict(), opt.state_dict()
    p = tmp_path / "ckpt.pth"
    torch.save({"epoch": 3, model_key: sd, opt_key: osd, "loss": 0.25}, p)
    inv = mi.load(str(p))
    buffers = [n for n, _ in model.named_buffers()]
    model_names = [t.name for t in inv.tensors if t.section == "model"]
    assert model_names == [k for k in sd if k not in buffers]  # prefix stripped: what load_state_dict() expects
    assert [t.name for t in inv.tensors if t.section == "buffers"] == buffers  # running stats: not parameters
    assert inv.total_params == sum(p.numel() for p in model.parameters())
    opt_t = opt_tensors(osd)
    assert {n for _, n in [(0, n) for n in osd["state"][0]]} == {"step", "exp_avg", "exp_avg_sq"}
    sections = inv.by_section
    assert sections["optimizer"].tensors == len(opt_t)
    assert sections["optimizer"].elements == sum(t.numel() for t in opt_t)
    assert sections["optimizer"].nbytes == sum(t.numel() * t.element_size() for t in opt_t)
    assert inv.total_elements == inv.total_params + sections["buffers"].elements + sections["optimizer"].elements
    assert f"{opt_key}.state.0.exp_avg_sq" in {t.name for t in inv.tensors}
    doc = json.loads(run_cli("inspect", str(p), "--json").stdout)
    rows = {r["section"]: r for r in doc["sections"]}
    assert rows["model"]["source"] == model_key and rows["optimizer"]["source"] == opt_key
    assert rows["optimizer"]["bytes"] == sections["optimizer"].nbytes
    text = run_cli("inspect", str(p)).stdout
    assert "sections" in text and f"'{opt_key}'" in text


def test_lightning_shaped_checkpoint(tmp_path: Path) -> None:
    model = bn_model()
    opt = adam_state(model)
    sd = {f"model.{k}": v for k, v in model.state_dict().items()}  # a LightningModule holding self.model
    ckpt = {
        "epoch": 1,
        "global_step": 10,
        "pytorch-lightning_version": "2.4.0",
        "state_dict": sd,
        "loops": {"fit_loop": {"state_dict": {}}},
        "callbacks": {"ModelCheckpoint{}": {"best_model_score": torch.tensor(0.5)}},
        "optimizer_states": [opt.state_dict()],
        "lr_schedulers": [],
        "hyper_parameters": {"lr": 1e-3, "hidden": 8},
    }
    p = tmp_path / "epoch=1.ckpt"
    torch.save(ckpt, p)
    inv = mi.load(str(p))
    buffers = {f"model.{n}" for n, _ in model.named_buffers()}
    assert [t.name for t in inv.tensors if t.section == "model"] == [k for k in sd if k not in buffers]
    assert {t.name for t in inv.tensors if t.section == "buffers"} == buffers
    assert inv.total_params == sum(p.numel() for p in model.parameters())
    secs = inv.by_section
    assert list(secs) == ["model", "buffers", "optimizer", "other"]
    assert secs["optimizer"].elements == sum(t.numel() for t in opt_tensors(opt.state_dict()))
    assert secs["other"].tensors == 1
    assert inv.torch.section_sources == {
        "model": "state_dict",
        "buffers": "state_dict",
        "optimizer": "optimizer_states",
        "other": "callbacks",
    }


def test_checkpoint_with_whole_module_and_ema_copy(tmp_path: Path) -> None:
    model = bn_model()
    ema = {k: v for k, v in model.state_dict().items()}  # the same tensors: shared storage, counted once
    p = tmp_path / "mixed.pth"
    torch.save({"ema": ema, "model": model}, p)
    inv = mi.load(str(p))
    assert inv.total_params == sum(q.numel() for q in model.parameters())
    assert inv.by_section["other"].elements == 0  # every ema tensor is a model tensor already counted
    assert inv.details["modules"]["torch.nn.modules.linear.Linear"] == 2


@pytest.mark.parametrize("container", [list, tuple])
def test_sequence_of_tensors(tmp_path: Path, container: type) -> None:
    ts = [torch.zeros(3), torch.ones(2, 5, dtype=torch.float16), torch.arange(4)]
    p = tmp_path / "seq.pth"
    torch.save(container(ts), p)
    inv = mi.load(str(p))
    assert [t.name for t in inv.tensors] == ["0", "1", "2"]
    assert inv.total_params == sum(t.numel() for t in ts)
    assert inv.total_bytes == sum(t.numel() * t.element_size() for t in ts)


# --- quantized tensors --------------------------------------------------------------------------------------


def test_quantized_per_tensor_and_per_channel(tmp_path: Path) -> None:
    torch.manual_seed(0)
    x = torch.randn(6, 5)
    q1 = torch.quantize_per_tensor(x, 0.05, 7, torch.quint8)
    q2 = torch.quantize_per_channel(x, torch.rand(5) + 0.01, torch.arange(5), 1, torch.qint8)
    q3 = torch.quantize_per_tensor(torch.randn(4), 0.5, 0, torch.qint32)
    p = tmp_path / "q.pth"
    torch.save({"a": q1, "b": q2, "c": q3}, p)
    inv = mi.load(str(p))
    by = {t.name: t for t in inv.tensors}
    assert (by["a"].dtype, by["a"].nbytes) == ("quint8", 30)
    assert (by["b"].dtype, by["c"].dtype, by["c"].nbytes) == ("qint8", "qint32", 16)
    quant = inv.torch.quantization
    assert quant["a"] == {"qscheme": "per_tensor_affine", "scale": q1.q_scale(), "zero_point": q1.q_zero_point()}
    assert quant["b"] == {"qscheme": "per_channel_affine", "axis": q2.q_per_channel_axis(), "channels": 5}
    sc, zp = by["b.q_per_channel_scales"], by["b.q_per_channel_zero_points"]
    assert (sc.shape, sc.dtype, sc.section) == ((5,), "f64", "quantization")
    assert (zp.shape, zp.dtype) == (tuple(q2.q_per_channel_zero_points().shape), "i64")
    # parameters: the quantized values; every element (scales and zero points included) in total_elements
    assert inv.total_params == q1.numel() + q2.numel() + q3.numel()
    assert inv.total_elements == inv.total_params + 5 + 5
    assert inv.storage_bytes == 30 + 30 + 16 + 5 * 8 + 5 * 8
    assert inv.details["quantized"] == {"per_tensor_affine": 2, "per_channel_affine": 1}
    r = run_cli("inspect", str(p))
    assert "per_tensor_affine ×2, per_channel_affine ×1" in r.stdout and "quantization" in r.stdout


def test_quantized_legacy(tmp_path: Path) -> None:
    x = torch.randn(3, 4)
    q = torch.quantize_per_channel(x, torch.rand(3) + 0.01, torch.zeros(3, dtype=torch.long), 0, torch.qint8)
    p = tmp_path / "q_legacy.pth"
    torch.save({"w": q}, p, _use_new_zipfile_serialization=False)
    inv = mi.load(str(p))
    assert inv.total_params == 12 and inv.total_elements == 12 + 3 + 3
    assert inv.torch.quantization["w"]["channels"] == 3


# --- the policy: stubs for classes, refusal for calls ------------------------------------------------------


def test_plain_state_dict_has_no_sections_or_warnings() -> None:
    inv = mi.load(str(FIXTURES / "tiny_seed.pth"))
    assert {t.section for t in inv.tensors} == {"model"} and not inv.warnings
    assert inv.torch is not None and not inv.torch.module_types and not inv.torch.section_sources
    doc = json.loads(run_cli("inspect", str(FIXTURES / "tiny_seed.pth"), "--json").stdout)
    assert doc["sections"] == [{"section": "model", "source": None, "tensors": 39, "elements": 13288, "bytes": 53152}]


def test_committed_fixtures_match_torch() -> None:
    # fixtures/make_torch_fixtures.py wrote them; torch reads the checkpoint safely (weights_only) as the oracle.
    ckpt = torch.load(FIXTURES / "tiny_checkpoint.pth", weights_only=True)
    inv = mi.load(str(FIXTURES / "tiny_checkpoint.pth"))
    model = nn.Sequential(nn.Linear(16, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Linear(32, 4))
    model.load_state_dict(ckpt["model"])  # the architecture make_torch_fixtures.py saved
    buffers = [n for n, _ in model.named_buffers()]
    assert [t.name for t in inv.tensors if t.section == "model"] == [k for k in ckpt["model"] if k not in buffers]
    assert [t.name for t in inv.tensors if t.section == "buffers"] == buffers
    assert inv.total_params == sum(p.numel() for p in model.parameters()) == 740
    assert inv.by_section["optimizer"].elements == sum(t.numel() for t in opt_tensors(ckpt["optimizer"]))
    assert inv.by_section["other"].elements == sum(v.numel() for v in ckpt["scaler"].values())
    whole = mi.load(str(FIXTURES / "tiny_seed_whole.pth"))
    assert whole.total_params == mi.load(str(FIXTURES / "tiny_seed.pth")).total_params
    assert [t.name for t in whole.tensors] == [t.name for t in mi.load(str(FIXTURES / "tiny_seed.pth")).tensors]


def test_legacy_pytorch_model_bin_in_a_folder(tmp_path: Path) -> None:
    # Sniffed by its magic number whatever the extension: an HF-style folder with a legacy pytorch_model.bin.
    model = bn_model()
    torch.save(model.state_dict(), tmp_path / "pytorch_model.bin", _use_new_zipfile_serialization=False)
    inv = mi.load(str(tmp_path))
    assert inv.format == "torch-legacy"
    assert inv.total_params == sum(p.numel() for p in model.parameters())
