"""`mi check` gates fail closed: a `--max-share` group or glob that matches no tensor, a pyproject glob that
matches no file, a folder holding more weight files than the one read, and `--json` on one unreadable file.

Files are written by the real libraries (transformers `save_pretrained`, `torch.save` of the same model and
of an optimizer); sizes come from `os.stat`, parameter counts from torch.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import FIXTURES, run_cli

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning", "ignore::FutureWarning")

SAME_MODEL = "pytorch_model.bin (same model in another format; model.safetensors is preferred)"


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """`two/`: model.safetensors (save_pretrained) and pytorch_model.bin (torch.save of the same state dict);
    `one/`: model.safetensors only; `trainer/`: model.safetensors and a torch.save'd optimizer.pt."""
    root = tmp_path_factory.mktemp("fail_closed")
    torch.manual_seed(0)
    cfg = transformers.GPT2Config(n_layer=2, n_embd=16, n_head=2, vocab_size=100, n_positions=32)
    model = transformers.GPT2LMHeadModel(cfg)
    for name in ("two", "one", "trainer"):
        model.save_pretrained(root / name, safe_serialization=True)
    torch.save(model.state_dict(), root / "two" / "pytorch_model.bin")
    opt = torch.optim.AdamW(model.parameters())
    model(torch.tensor([[1, 2, 3]]), labels=torch.tensor([[1, 2, 3]])).loss.backward()
    opt.step()
    torch.save(opt.state_dict(), root / "trainer" / "optimizer.pt")
    torch.save(model.state_dict(), root / "tied.pth")  # lm_head.weight shares wte's storage
    return {
        "root": root,
        "params": sum(p.numel() for p in model.parameters()),
        "wte": model.transformer.wte.weight.numel(),
    }


def check_json(*args: str, code: int) -> dict[str, Any]:
    r = run_cli("check", *args, "--no-config", "--json")
    assert r.code == code, (r.code, r.stdout, r.stderr)
    doc: dict[str, Any] = json.loads(r.stdout)
    assert doc["command"] == "check" and doc["exit_code"] == code
    return doc


def rules_of(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {x["rule"]: x for x in doc["results"][0]["rules"]}


# -- a folder's check covers every weight file in it -------------------------------------------------------


def test_max_size_sums_every_weight_file_of_the_folder(made: dict[str, Any]) -> None:
    two = made["root"] / "two"
    st = (two / "model.safetensors").stat().st_size
    both = st + (two / "pytorch_model.bin").stat().st_size
    # A limit above the preferred file but below the two together: the folder is over budget.
    rules = rules_of(check_json(str(two), "--max-size", str(st + 1), code=1))
    assert rules["max-size"]["measured"] == both and rules["max-size"]["passed"] is False
    assert "pytorch_model.bin" in rules["max-size"]["detail"]
    assert rules_of(check_json(str(two), "--max-size", str(both), code=0))["max-size"]["passed"] is True
    # Control: a folder with only the safetensors file measures just that file.
    one = made["root"] / "one"
    rules = rules_of(check_json(str(one), "--max-size", str(st), code=0))
    assert rules["max-size"]["measured"] == (one / "model.safetensors").stat().st_size
    assert rules["max-size"]["detail"] == ""


def test_forbid_pickle_fails_on_any_pickle_file_present(made: dict[str, Any]) -> None:
    rules = rules_of(check_json(str(made["root"] / "two"), "--forbid-pickle", code=1))
    fp = rules["forbid-pickle"]
    assert fp["passed"] is False and "pytorch_model.bin" in fp["detail"] and "torch-zip" in fp["measured"]
    rules = rules_of(check_json(str(made["root"] / "trainer"), "--forbid-pickle", code=1))
    assert "optimizer.pt" in rules["forbid-pickle"]["detail"]
    assert rules_of(check_json(str(made["root"] / "one"), "--forbid-pickle", code=0))["forbid-pickle"]["passed"]
    # The text table says which file and that it was not read.
    r = run_cli("check", str(made["root"] / "two"), "--forbid-pickle", "--no-config", env={"COLUMNS": "160"})
    assert r.code == 1 and "FAIL (pickle, not read: pytorch_model.bin)" in r.stdout


def test_a_pickle_by_name_that_its_bytes_do_not_identify_still_fails(made: dict[str, Any], tmp_path: Path) -> None:
    """An unrecognised `.bin` (here a Git LFS pointer) beside the safetensors might be a pickle: fail closed."""
    folder = tmp_path / "lfs"
    shutil.copytree(made["root"] / "one", folder)
    (folder / "pytorch_model.bin").write_text(
        "version https://git-lfs.github.com/spec/v1\noid sha256:" + "0" * 64 + "\nsize 45595\n"
    )
    fp = rules_of(check_json(str(folder), "--forbid-pickle", code=1))["forbid-pickle"]
    assert "pytorch_model.bin" in fp["detail"] and "unrecognised" in fp["measured"]


def test_inspect_names_the_files_it_did_not_read(made: dict[str, Any]) -> None:
    two = made["root"] / "two"
    r = run_cli("inspect", str(two), "--json")
    assert r.code == 0, r.stderr
    doc = json.loads(r.stdout)
    assert [f["path"] for f in doc["files"]] == ["model.safetensors"]
    assert doc["unread_files"] == [
        {
            "path": "pytorch_model.bin",
            "bytes": (two / "pytorch_model.bin").stat().st_size,
            "format": "torch-zip",
            "reason": "same model in another format; model.safetensors is preferred",
        }
    ]
    assert f"also here, not read: {SAME_MODEL}" in doc["warnings"]
    r = run_cli("inspect", str(two), env={"COLUMNS": "200"})
    assert r.code == 0 and f"also here, not read: {SAME_MODEL}" in r.stdout
    trainer = json.loads(run_cli("inspect", str(made["root"] / "trainer"), "--json").stdout)
    assert [(u["path"], u["reason"]) for u in trainer["unread_files"]] == [
        ("optimizer.pt", "training state, not model weights")
    ]
    # A folder with nothing else in it has no such key and no such warning.
    one = json.loads(run_cli("inspect", str(made["root"] / "one"), "--json").stdout)
    assert "unread_files" not in one and not any(w.startswith("also here") for w in one["warnings"])


# -- --max-share groups that match nothing -----------------------------------------------------------------


def test_an_unknown_share_group_is_an_error_naming_it(made: dict[str, Any]) -> None:
    two = str(made["root"] / "two")
    doc = check_json(two, "--max-share", "embeddings=0.5", code=2)  # the typo
    error = doc["results"][0]["error"]
    assert "'embeddings'" in error and "did you mean 'embedding'" in error and "[max-share]" in error
    r = run_cli("check", two, "--max-share", "embeddings=0.5", "--no-config")
    assert r.code == 2 and r.stdout == "" and len(r.stderr.strip().splitlines()) == 1 and "'embeddings'" in r.stderr
    # A glob and a semantic group that match no tensor of this model: also errors, each naming itself.
    for group in ("*.nothing.*", "transformer.h.7"):
        assert repr(group) in check_json(two, "--max-share", f"{group}=0.5", code=2)["results"][0]["error"]
    # A linear layer has no norm: the semantic group matches nothing.
    lin = made["root"] / "linear.pth"
    torch.save(torch.nn.Linear(4, 4).state_dict(), lin)
    assert "'norm'" in check_json(str(lin), "--max-share", "norm=0.5", code=2)["results"][0]["error"]


def test_share_groups_that_match_are_measured(made: dict[str, Any]) -> None:
    doc = check_json(str(made["root"] / "two"), "--max-share", "transformer.wte=0.9", code=0)
    rule = rules_of(doc)["max-share transformer.wte"]
    assert abs(rule["measured"] - made["wte"] / made["params"]) < 1e-6
    # A tied lm_head matches (its share is a real 0%, its storage is wte's): not an error.
    rule = rules_of(check_json(str(made["root"] / "tied.pth"), "--max-share", "lm_head=0.1", code=0))
    assert rule["max-share lm_head"]["measured"] == 0.0 and rule["max-share lm_head"]["detail"] == ""


def test_allow_empty_share_opts_in(made: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    two = str(made["root"] / "two")
    rule = rules_of(check_json(two, "--max-share", "embeddings=0.5", "--allow-empty-share", code=0))
    assert rule["max-share embeddings"]["detail"] == "no tensor matches this group (allowed)"
    (tmp_path / "pyproject.toml").write_text(
        "[tool.mi.check]\nmax-share = { embeddings = 0.5 }\nallow-empty-share = true\n"
    )
    monkeypatch.chdir(tmp_path)
    r = run_cli("check", two, "--json")
    assert r.code == 0, r.stderr
    (tmp_path / "pyproject.toml").write_text("[tool.mi.check]\nmax-share = { embeddings = 0.5 }\n")
    r = run_cli("check", two, "--json")
    assert r.code == 2 and "'embeddings'" in json.loads(r.stdout)["results"][0]["error"]


# -- pyproject globs that match no file --------------------------------------------------------------------


def repo(root: Path, tables: str) -> None:
    (root / "models").mkdir(exist_ok=True)
    shutil.copy(FIXTURES / "tiny_seed.safetensors", root / "models" / "a.safetensors")
    (root / "pyproject.toml").write_text(f'[tool.mi.check]\nmax-size = "1MB"\n\n{tables}\n')


def test_a_glob_that_matches_no_file_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    typo = '[tool.mi.check."models/*.safetensor"]\nmax-params = "1K"\n'
    repo(tmp_path, typo)
    for args in ([], ["models/a.safetensors"]):  # the globs' own files, and a PATH (a pre-commit hook)
        r = run_cli("check", *args)
        assert r.code == 2, (args, r.stdout, r.stderr)
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and '[tool.mi.check."models/*.safetensor"]' in lines[0]
        assert "pyproject.toml" in lines[0] and "[config-glob]" in lines[0]
        doc = json.loads(run_cli("check", *args, "--json").stdout)  # --json: a document all the same
        assert doc["exit_code"] == 2 and doc["results"] == [] and "models/*.safetensor" in doc["error"]
    # Allowed in its table: the other budgets apply (max-params 1K would fail a.safetensors if it matched).
    repo(tmp_path, '[tool.mi.check."models/*"]\nforbid-pickle = true\n\n' + typo + "allow-empty = true\n")
    r = run_cli("check", "--json")
    assert r.code == 0, r.stderr
    assert [x["rule"] for x in json.loads(r.stdout)["results"][0]["rules"]] == ["max-size", "forbid-pickle"]
    # A glob that matches: its budget applies (and fails here).
    repo(tmp_path, '[tool.mi.check."models/*.safetensors"]\nmax-params = "1K"\n')
    assert run_cli("check").code == 1
    # allow-empty must be a boolean, and only glob tables have it.
    repo(tmp_path, typo + 'allow-empty = "yes"\n')
    r = run_cli("check")
    assert r.code == 2 and "allow-empty must be true or false" in r.stderr


# -- --json always prints a document -----------------------------------------------------------------------


def test_json_prints_a_document_for_one_unreadable_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x05\0\0\0\0\0\0\0{oops")
    doc = check_json(str(bad), "--max-size", "1GB", code=2)
    assert doc["passed"] is False and len(doc["results"]) == 1
    assert doc["results"][0]["path"] == str(bad) and "bad.safetensors" in doc["results"][0]["error"]
    r = run_cli("check", str(bad), "--max-size", "1GB", "--no-config", "--json")
    assert len(r.stderr.strip().splitlines()) == 1 and "bad.safetensors" in r.stderr
    # Without --json: the one line on stderr, nothing on stdout (as before).
    r = run_cli("check", str(bad), "--max-size", "1GB", "--no-config")
    assert r.code == 2 and r.stdout == "" and len(r.stderr.strip().splitlines()) == 1
    # Bad flags: a document too.
    r = run_cli("check", str(bad), "--max-size", "1 parsec", "--no-config", "--json")
    assert r.code == 2 and "unit" in json.loads(r.stdout)["error"]
