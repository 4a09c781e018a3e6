"""PEFT adapters saved by peft itself: rank, alpha, targets, the trainable count peft gives, the cross-check with
`mi params --lora-r --lora-targets` target by target, the share of the base, and `mi diff` of two adapters."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from modelscope_inspect import load
from modelscope_inspect.analysis.adapter import adapter_report
from modelscope_inspect.api.params import adapter_report_for
from modelscope_inspect.cli import app

torch = pytest.importorskip("torch")
peft = pytest.importorskip("peft")
transformers = pytest.importorskip("transformers")


def _save(root: Path, name: str, r: int, targets: list[str], safe: bool = True) -> tuple[Path, int, int]:
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=48, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=32)  # fmt: skip
    base = LlamaForCausalLM(cfg)
    base_params = sum(p.numel() for p in base.parameters())
    (root / "base").mkdir(exist_ok=True)
    cfg.save_pretrained(root / "base")
    model = get_peft_model(base, LoraConfig(r=r, lora_alpha=2 * r, target_modules=targets))
    trainable, _all = model.get_nb_trainable_parameters()  # the oracle: what print_trainable_parameters prints
    out = root / name
    model.save_pretrained(out, safe_serialization=safe)
    return out, trainable, base_params


@pytest.fixture(scope="module")
def adapters(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, int, int]]:
    root = tmp_path_factory.mktemp("peft")
    return {
        "qv": _save(root, "qv", 4, ["q_proj", "v_proj"]),
        "all": _save(root, "all", 8, ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]),
        "bin": _save(root, "bin", 4, ["q_proj", "v_proj"], safe=False),
    }


@pytest.mark.parametrize("which", ["qv", "all", "bin"])
def test_adapter_facts_and_trainable_count(adapters: dict[str, tuple[Path, int, int]], which: str) -> None:
    path, trainable, base_params = adapters[which]
    inv = load(path)
    assert inv.total_params == trainable
    assert inv.details["adapter"] == "LORA"
    cfg = json.loads((path / "adapter_config.json").read_text())
    assert inv.details["rank"] == cfg["r"]
    assert inv.details["alpha"] == cfg["lora_alpha"]
    assert inv.details["target modules"] == ", ".join(sorted(cfg["target_modules"]))
    rep = adapter_report_for(inv, str(path.parent / "base"))
    assert rep is not None
    assert rep.params == trainable
    assert rep.base_params == base_params  # the analytic llama count equals torch's, for the share
    assert rep.share == pytest.approx(trainable / base_params)
    # Term by term, the file against `mi params --lora-r R --lora-targets T`.
    assert {t.target for t in rep.terms} == set(cfg["target_modules"])
    assert all(t.agrees for t in rep.terms), rep.terms
    assert rep.formula_params == trainable


def test_adapter_without_base_has_no_share(adapters: dict[str, tuple[Path, int, int]]) -> None:
    path, trainable, _ = adapters["qv"]
    rep = adapter_report(load(path))
    assert rep.share is None and rep.params == trainable and all(t.formula is None for t in rep.terms)


def test_cli_shows_the_cross_check(adapters: dict[str, tuple[Path, int, int]]) -> None:
    path, trainable, _ = adapters["qv"]
    r = CliRunner().invoke(app, ["inspect", str(path), "--base", str(path.parent / "base")], env={"COLUMNS": "80"})
    assert r.exit_code == 0, r.output
    assert "agrees" in r.output and "differs" not in r.output and f"{trainable:,}" in r.output
    assert "% of the base" in r.output
    j = CliRunner().invoke(app, ["inspect", str(path), "--json", "--base", str(path.parent / "base")])
    assert j.exit_code == 0, j.output
    assert json.loads(j.output)["adapter"]["params"] == trainable


def test_base_on_a_model_is_refused(adapters: dict[str, tuple[Path, int, int]], tmp_path: Path) -> None:
    r = CliRunner().invoke(app, ["inspect", "fixtures/tiny_seed.safetensors", "--base", "x"])
    assert r.exit_code == 2 and "--base is for PEFT adapters" in r.output


def test_diff_of_two_adapters(adapters: dict[str, tuple[Path, int, int]]) -> None:
    a, ta, _ = adapters["qv"]
    b, tb, _ = adapters["all"]
    r = CliRunner().invoke(app, ["diff", str(a), str(b), "--json"])
    assert r.exit_code == 1, r.output
    doc = json.loads(r.output)
    assert doc["a"]["params"] == ta and doc["b"]["params"] == tb
    assert doc["delta_params"] == tb - ta


def test_lying_adapter_config_ends_cleanly(tmp_path: Path) -> None:
    (tmp_path / "adapter_config.json").write_text(json.dumps({"r": -3, "target_modules": ["q_proj"]}))
    (tmp_path / "adapter_model.safetensors").write_bytes(b"")
    r = CliRunner().invoke(app, ["inspect", str(tmp_path)])
    assert r.exit_code == 2 and len(r.output.strip().splitlines()) == 1 and "adapter-config" in r.output
