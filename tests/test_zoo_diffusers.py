"""diffusers pipelines: folders written by `save_pretrained` (with and without `variant="fp16"`) read as one model
with a module group per component; single-file checkpoints split by key prefix; hostile model_index.json."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from modelscope_inspect import load
from modelscope_inspect.analysis.diff import diff_inventories
from modelscope_inspect.cli import app

torch = pytest.importorskip("torch")
diffusers = pytest.importorskip("diffusers")
transformers = pytest.importorskip("transformers")


def _tiny_pipeline() -> tuple[object, dict[str, int]]:
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        block_out_channels=(8, 16), layers_per_block=1, sample_size=8, in_channels=4, out_channels=4,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=16, attention_head_dim=2, norm_num_groups=4,
    )  # fmt: skip
    vae = AutoencoderKL(
        block_out_channels=(8,), in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",),
        up_block_types=("UpDecoderBlock2D",), latent_channels=4, norm_num_groups=4,
    )  # fmt: skip
    te = CLIPTextModel(
        CLIPTextConfig(
            hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2, vocab_size=100,
            max_position_embeddings=16, projection_dim=16, bos_token_id=0, eos_token_id=1, pad_token_id=1,
        )
    )  # fmt: skip
    pipe = StableDiffusionPipeline(
        unet=unet, vae=vae, text_encoder=te, tokenizer=None, scheduler=DDIMScheduler(),
        safety_checker=None, feature_extractor=None, requires_safety_checker=False,
    )  # fmt: skip
    # The oracle: what torch counts in each component (persistent state, as save_pretrained writes it).
    counts = {name: sum(t.numel() for t in m.state_dict().values()) for name, m in
              (("unet", unet), ("vae", vae), ("text_encoder", te))}  # fmt: skip
    return pipe, counts


@pytest.fixture(scope="module")
def pipes(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict[str, int]]:
    root = tmp_path_factory.mktemp("pipes")
    pipe, counts = _tiny_pipeline()
    pipe.save_pretrained(root / "plain")  # type: ignore[attr-defined]
    pipe.save_pretrained(root / "sharded", max_shard_size="40KB")  # type: ignore[attr-defined]
    pipe.to(torch.float16).save_pretrained(root / "fp16", variant="fp16")  # type: ignore[attr-defined]
    pipe.save_pretrained(root / "sharded16", variant="fp16", max_shard_size="40KB")  # type: ignore[attr-defined]
    return root / "plain", root / "fp16", counts


def test_pipeline_is_one_model_with_a_group_per_component(pipes: tuple[Path, Path, dict[str, int]]) -> None:
    plain, _fp16, counts = pipes
    inv = load(plain)
    assert inv.total_params == sum(counts.values())
    for comp, n in counts.items():
        assert sum(t.counted_params for t in inv.tensors if t.name.startswith(comp + ".")) == n
    assert inv.details["pipeline"] == "StableDiffusionPipeline"
    assert set(inv.details["components"]) == set(counts)
    assert inv.details["variant"] == "default weights"
    assert "scheduler" in inv.details["no weights"]
    assert any(f.path == "unet/diffusion_pytorch_model.safetensors" for f in inv.files)
    assert (
        inv.file_bytes
        == sum(p.stat().st_size for p in plain.rglob("*.safetensors")) + (plain / "model_index.json").stat().st_size
    )


def test_fp16_variant_is_chosen_and_said(pipes: tuple[Path, Path, dict[str, int]]) -> None:
    _plain, fp16, counts = pipes
    assert (fp16 / "unet" / "diffusion_pytorch_model.fp16.safetensors").is_file()
    inv = load(fp16)
    assert inv.total_params == sum(counts.values())
    assert set(inv.by_dtype) == {"f16"}
    assert "unet=fp16" in inv.details["variant"]
    r = CliRunner().invoke(app, ["inspect", str(fp16), "--depth", "1"], env={"COLUMNS": "80"})
    assert r.exit_code == 0, r.output
    assert "variant" in r.output and "unet=fp16" in r.output
    for comp in counts:
        assert f"─ {comp}" in r.output


@pytest.mark.parametrize("name", ["sharded", "sharded16"])
def test_sharded_components_and_variant_index(pipes: tuple[Path, Path, dict[str, int]], name: str) -> None:
    plain, _fp16, counts = pipes
    folder = plain.parent / name
    index = "diffusion_pytorch_model.safetensors.index" + (".fp16.json" if name == "sharded16" else ".json")
    assert (folder / "unet" / index).is_file()  # what diffusers names a (variant) index
    inv = load(folder)
    assert inv.total_params == sum(counts.values())
    assert any(f.path == f"unet/{index}" for f in inv.files)
    assert len([f for f in inv.files if f.path.startswith("unet/")]) > 2
    assert ("unet=fp16" in inv.details["variant"]) == (name == "sharded16")


def test_single_file_checkpoint_splits_and_diffs(pipes: tuple[Path, Path, dict[str, int]], tmp_path: Path) -> None:
    from safetensors.torch import load_file, save_file

    plain, _fp16, counts = pipes
    # A single file in the original layout's prefixes (the keys under each prefix are diffusers' own: the
    # UNet/VAE key renaming of the original checkpoints is not mapped, so this pairs component totals).
    state = {}
    for comp, prefix in (("unet", "model.diffusion_model."), ("vae", "first_stage_model."),
                         ("text_encoder", "cond_stage_model.transformer.")):  # fmt: skip
        for k, v in load_file(plain / comp / ("diffusion_pytorch_model.safetensors" if comp != "text_encoder"
                                              else "model.safetensors")).items():  # fmt: skip
            state[prefix + k] = v
    single = tmp_path / "sd.safetensors"
    save_file(state, single)
    inv = load(single)
    shown = inv.details["diffusion checkpoint"]
    for comp, n in counts.items():
        assert f"{comp}={n:,}" in shown
    rep = diff_inventories(load(plain), inv)
    groups = {g.name: g for g in rep.groups}
    for comp, n in counts.items():
        assert groups[comp].params_a == groups[comp].params_b == n
    assert not rep.added and not rep.removed
    r = CliRunner().invoke(app, ["diff", str(plain), str(single)], env={"COLUMNS": "80"})
    assert r.exit_code in (0, 1), r.output
    assert f"{len(inv.tensors)} unchanged" in r.output


@pytest.mark.parametrize("name", ["../outside", "a/../../x", "/etc"])
def test_component_outside_the_folder_is_refused(tmp_path: Path, name: str) -> None:
    (tmp_path / "outside").mkdir()
    pipe = tmp_path / "pipe"
    pipe.mkdir()
    doc = {"_class_name": "X", name: ["diffusers", "UNet2DConditionModel"]}
    (pipe / "model_index.json").write_text(json.dumps(doc))
    r = CliRunner().invoke(app, ["inspect", str(pipe)])
    assert r.exit_code == 2
    assert "model-index" in r.output and "Traceback" not in r.output
    assert len(r.output.strip().splitlines()) == 1


def test_component_symlink_out_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "elsewhere"
    out.mkdir()
    pipe = tmp_path / "pipe"
    pipe.mkdir()
    os.symlink(out, pipe / "unet")
    (pipe / "model_index.json").write_text(json.dumps({"unet": ["diffusers", "UNet2DConditionModel"]}))
    r = CliRunner().invoke(app, ["inspect", str(pipe)])
    assert r.exit_code == 2 and "outside" in r.output


def test_both_variants_the_other_is_counted_by_max_size(
    pipes: tuple[Path, Path, dict[str, int]], tmp_path: Path
) -> None:
    import shutil

    plain, fp16, counts = pipes
    both = tmp_path / "both"
    shutil.copytree(fp16, both)
    for comp in counts:
        for f in (plain / comp).glob("*.safetensors"):
            shutil.copy(f, both / comp / f.name)
    inv = load(both)
    assert set(inv.by_dtype) == {"f16"} and inv.total_params == sum(counts.values())
    other = sum(f.stat().st_size for comp in counts for f in (plain / comp).glob("*.safetensors"))
    assert sum(u.nbytes for u in inv.unread_files) == other
    r = CliRunner().invoke(app, ["check", str(both), "--no-config", "--max-size", str(inv.file_bytes + 1)])
    assert r.exit_code == 1, r.output  # the fp32 files beside the fp16 ones count toward the folder's size


def test_variant_option(pipes: tuple[Path, Path, dict[str, int]], tmp_path: Path) -> None:
    import shutil

    plain, fp16, counts = pipes
    both = tmp_path / "both"
    shutil.copytree(plain, both)
    for comp in counts:
        for f in (fp16 / comp).glob("*.safetensors"):
            shutil.copy(f, both / comp / f.name)
    r = CliRunner().invoke(app, ["inspect", str(both), "--json", "--variant", "bf16"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    assert doc["total_params"] == sum(counts.values())
    assert {d["dtype"] if isinstance(d, dict) else d for d in doc["by_dtype"]} == {"f32"}  # the default weights
    assert any("no bf16 variant" in w for w in doc["warnings"])
    r = CliRunner().invoke(app, ["inspect", "examples/tiny-gpt2", "--variant", "fp16"])
    assert r.exit_code == 2 and "diffusers pipeline" in r.output
