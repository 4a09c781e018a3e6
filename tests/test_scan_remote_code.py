"""Remote code in model folders: the Python files `trust_remote_code=True` runs, and the `auto_map` entries.

Oracle: transformers itself. A config and model class defined in a module this test writes are saved with
`register_for_auto_class`; transformers copies the module file beside the weights and writes `auto_map` into
config.json. The expected file names, sizes and hashes come from that folder (os.stat, hashlib), and the entries
from the config.json transformers wrote (json). No Python file of the folder is ever imported by `mi`.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import run_cli

MODULE = """
import torch
from transformers import PretrainedConfig, PreTrainedModel


class RemoteTinyConfig(PretrainedConfig):
    model_type = "remote-tiny"

    def __init__(self, hidden=4, **kw):
        self.hidden = hidden
        super().__init__(**kw)


class RemoteTinyModel(PreTrainedModel):
    config_class = RemoteTinyConfig

    def __init__(self, config):
        super().__init__(config)
        self.lin = torch.nn.Linear(config.hidden, config.hidden)

    def forward(self, x):
        return self.lin(x)
"""


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder written by transformers' save_pretrained for classes registered for the auto classes."""
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    src = tmp_path_factory.mktemp("remote_src")
    (src / "remote_tiny_mod.py").write_text(MODULE)
    sys.path.insert(0, str(src))
    try:
        mod = importlib.import_module("remote_tiny_mod")
        mod.RemoteTinyConfig.register_for_auto_class()
        mod.RemoteTinyModel.register_for_auto_class("AutoModel")
        out = tmp_path_factory.mktemp("remote_saved") / "model"
        mod.RemoteTinyModel(mod.RemoteTinyConfig()).save_pretrained(out)
    finally:
        sys.path.remove(str(src))
        sys.modules.pop("remote_tiny_mod", None)
    return out


def scan_json(*args: str, code: int) -> dict[str, Any]:
    r = run_cli("scan", *args, "--json")
    assert r.code == code, (r.code, r.stdout, r.stderr)
    doc: dict[str, Any] = json.loads(r.stdout)
    return doc


def test_transformers_folder_exits_1_naming_the_files(saved: Path) -> None:
    written = sorted(p.name for p in saved.glob("*.py"))
    assert written == ["remote_tiny_mod.py"]  # transformers copied the module (the premise of the test)
    auto_map = json.loads((saved / "config.json").read_text())["auto_map"]
    assert auto_map == {
        "AutoConfig": "remote_tiny_mod.RemoteTinyConfig",
        "AutoModel": "remote_tiny_mod.RemoteTinyModel",
    }

    r = run_cli("scan", str(saved))
    assert r.code == 1, r.stdout + r.stderr
    assert "remote_tiny_mod.py" in r.stdout and "code" in r.stdout
    assert all(line == line.rstrip() for line in r.stdout.splitlines())

    doc = scan_json(str(saved), code=1)
    assert doc["status"] == "findings" and doc["exit_code"] == 1
    by_path = {Path(f["path"]).name: f for f in doc["files"]}
    py = by_path["remote_tiny_mod.py"]
    assert py["status"] == "code" and [x["severity"] for x in py["findings"]] == ["code"]
    assert by_path["model.safetensors"]["status"] == "clean"
    (rc,) = doc["remote_code"]
    (f,) = rc["files"]
    data = (saved / "remote_tiny_mod.py").read_bytes()
    assert f["path"] == "remote_tiny_mod.py"
    assert f["size"] == len(data) and f["sha256"] == hashlib.sha256(data).hexdigest()
    assert {e["key"]: e["ref"] for e in f["auto_map"]} == auto_map
    assert all(e["config"] == "config.json" and e["repo"] is None for e in f["auto_map"])
    assert rc["other_repositories"] == [] and rc["missing"] == []


def test_allow_remote_code_accepts_it(saved: Path) -> None:
    doc = scan_json(str(saved), "--allow", "remote-code", code=0)
    assert doc["status"] == "clean"
    py = next(f for f in doc["files"] if f["path"].endswith("remote_tiny_mod.py"))
    assert py["findings"] == [] and "accepted: --allow remote-code" in py["notes"]
    assert doc["remote_code"][0]["files"][0]["path"] == "remote_tiny_mod.py"  # still reported, with its hash
    assert run_cli("scan", str(saved), "--allow", "remote-code", "--allow", "torchscript").code == 0


def test_inspect_warns_in_one_line(saved: Path) -> None:
    r = run_cli("inspect", str(saved))
    assert r.code == 0, r.stderr
    lines = [line for line in r.stdout.splitlines() if "remote code" in line]
    assert len(lines) == 1 and "remote_tiny_mod.py" in lines[0]
    doc = json.loads(run_cli("inspect", str(saved), "--json").stdout)
    assert sum("remote code" in w for w in doc["warnings"]) == 1


def test_tokenizer_auto_map_lists_other_repositories_and_missing_modules(saved: Path, tmp_path: Path) -> None:
    import shutil

    folder = tmp_path / "m"
    shutil.copytree(saved, folder)
    # The shapes transformers writes for tokenizers: a [slow, fast] pair, `null` for a missing one.
    (folder / "tokenization_tiny.py").write_text("class TinyTokenizer: pass\n")
    (folder / "tokenizer_config.json").write_text(
        json.dumps(
            {
                "auto_map": {
                    "AutoTokenizer": ["tokenization_tiny.TinyTokenizer", None],
                    "AutoProcessor": "other-org/other-repo--processing_x.XProcessor",
                    "AutoImageProcessor": "image_processing_gone.GoneProcessor",
                }
            }
        )
    )
    doc = scan_json(str(folder), code=1)
    (rc,) = doc["remote_code"]
    files = {f["path"]: f for f in rc["files"]}
    assert set(files) == {"remote_tiny_mod.py", "tokenization_tiny.py"}
    assert [e["ref"] for e in files["tokenization_tiny.py"]["auto_map"]] == ["tokenization_tiny.TinyTokenizer"]
    (other,) = rc["other_repositories"]
    assert other["repo"] == "other-org/other-repo" and other["module"] == "processing_x.py"
    assert other["class"] == "XProcessor" and other["config"] == "tokenizer_config.json"
    assert [e["module"] for e in rc["missing"]] == ["image_processing_gone.py"]
    tok = next(f for f in doc["files"] if f["path"].endswith("tokenizer_config.json"))
    assert {x["target"] for x in tok["findings"]} == {
        "other-org/other-repo--processing_x.XProcessor",
        "image_processing_gone.GoneProcessor",
    }
    assert any("another repository (other-org/other-repo)" in x["reason"] for x in tok["findings"])


def test_folder_without_code_is_unchanged(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    torch.save({"w": torch.zeros(2)}, tmp_path / "model.pth")
    (tmp_path / "config.json").write_text('{"model_type": "x"}')
    doc = scan_json(str(tmp_path), code=0)
    assert "remote_code" not in doc and [Path(f["path"]).name for f in doc["files"]] == ["model.pth"]


def test_remote_hub_folder_matches_local(saved: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    from tests.test_remote_server import serve

    monkeypatch.setenv("MI_CACHE_DIR", str(tmp_path / "cache"))
    for var in ("HF_TOKEN", "HF_ENDPOINT", "MI_HF_ENDPOINT"):
        monkeypatch.delenv(var, raising=False)
    root = tmp_path / "hub"
    shutil.copytree(saved, root / "org" / "remote")
    local = scan_json(str(root / "org" / "remote"), code=1)
    with serve(root) as (base, _st):
        remote = scan_json("hf://org/remote", "--endpoint", base, code=1)
        assert run_cli("scan", "hf://org/remote", "--endpoint", base, "--allow", "remote-code").code == 0
    assert [f["path"] for f in remote["remote_code"][0]["files"]] == ["remote_tiny_mod.py"]
    assert remote["remote_code"][0]["files"] == local["remote_code"][0]["files"]
