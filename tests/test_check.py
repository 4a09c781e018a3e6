"""`mi check`: budgets measured against oracles (os.stat sizes, torch parameter counts and dtypes), units,
pyproject budgets per glob, exit codes, and the CI examples in examples/ci/ run for real."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from modelscope_inspect.analysis.check import parse_count, parse_expect, parse_size
from modelscope_inspect.errors import UsageError
from tests.conftest import FIXTURES, ROOT, run_cli

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")
BIN = Path(sys.executable).parent


@pytest.mark.parametrize(
    ("text", "value"),
    [("800MB", 800_000_000), ("800 MB", 800_000_000), ("1.5GiB", 1_610_612_736), ("2KiB", 2048), ("42", 42),
     ("3kb", 3000), ("1TB", 10**12), ("0.5 MiB", 524_288), ("10B", 10)],
)  # fmt: skip
def test_parse_size(text: str, value: int) -> None:
    assert parse_size(text) == value


@pytest.mark.parametrize(
    ("text", "value"),
    [("200M", 200_000_000), ("1.5B", 1_500_000_000), ("12K", 12_000), ("11,904", 11_904), ("7_000", 7000)],
)
def test_parse_count(text: str, value: int) -> None:
    assert parse_count(text) == value


def test_parse_expect_and_errors() -> None:
    e = parse_expect("124M±1%")
    assert (e.value, e.tol) == (124_000_000, 1_240_000)
    e = parse_expect("11904+-100")
    assert (e.value, e.tol) == (11904, 100)
    for bad in ("12X", "abc", "1.2.3M"):
        with pytest.raises(UsageError):
            parse_count(bad)
    with pytest.raises(UsageError):
        parse_size("12 parsecs")


@pytest.fixture(scope="module")
def model_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """A small GPT-2-like model from transformers, saved as bf16 safetensors and f32 .pth; oracles from torch."""
    out = tmp_path_factory.mktemp("check")
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    cfg = transformers.GPT2Config(n_layer=2, n_embd=32, n_head=2, vocab_size=500, n_positions=64)
    model = transformers.GPT2LMHeadModel(cfg)
    n_params = sum(p.numel() for p in model.parameters())  # tied lm_head counted once, like mi
    emb = model.transformer.wte.weight.numel() + model.transformer.wpe.weight.numel()
    st = out / "model.safetensors"
    model.to(torch.bfloat16).save_pretrained(out / "hf", safe_serialization=True)
    os.replace(out / "hf" / "model.safetensors", st)
    pth = out / "model.pth"
    torch.save(model.to(torch.float32).state_dict(), pth)
    return {"st": st, "pth": pth, "params": n_params, "emb": emb, "dir": out}


def rules(r_stdout: str) -> dict[str, dict[str, object]]:
    doc = json.loads(r_stdout)
    assert doc["command"] == "check" and doc["schema_version"] == 1
    return {x["rule"]: x for x in doc["results"][0]["rules"]}


def test_every_rule_against_oracles(model_files: dict[str, object]) -> None:
    st, n = model_files["st"], model_files["params"]
    assert isinstance(st, Path) and isinstance(n, int)
    size = st.stat().st_size
    share = model_files["emb"] / n  # type: ignore[operator]
    r = run_cli(
        "check", str(st), "--json", "--no-config",
        "--max-size", str(size), "--max-params", str(n), "--min-params", str(n),
        "--allow-dtypes", "bf16", "--forbid-pickle", "--expect-params", f"{n}±0",
        "--max-share", f"embedding={share:.6f}",
    )  # fmt: skip
    got = rules(r.stdout)
    assert r.code == 0, got
    assert got["max-size"]["measured"] == size
    assert got["max-params"]["measured"] == n and got["min-params"]["measured"] == n
    assert got["allow-dtypes"]["measured"] == ["bf16"]
    assert got["forbid-pickle"]["passed"] is True
    assert abs(got["max-share embedding"]["measured"] - share) < 1e-6


@pytest.mark.parametrize(
    "flag",
    [["--max-size", "{size_minus}"], ["--max-params", "{n_minus}"], ["--min-params", "{n_plus}"],
     ["--allow-dtypes", "f16,f32"], ["--expect-params", "{n_plus}±0"], ["--max-share", "embedding=0.01"]],
)  # fmt: skip
def test_each_rule_fails_one_past_the_limit(model_files: dict[str, object], flag: list[str]) -> None:
    st, n = model_files["st"], model_files["params"]
    assert isinstance(st, Path) and isinstance(n, int)
    values = {"size_minus": st.stat().st_size - 1, "n_minus": n - 1, "n_plus": n + 1}
    args = [f.format(**values) for f in flag]
    r = run_cli("check", str(st), "--no-config", "--json", *args)
    assert r.code == 1
    assert [x["passed"] for x in rules(r.stdout).values()] == [False]


def test_forbid_pickle_on_torch_files(model_files: dict[str, object]) -> None:
    r = run_cli("check", str(model_files["pth"]), "--no-config", "--forbid-pickle")
    assert r.code == 1 and "FAIL" in r.stdout and "torch-zip" in r.stdout
    # A pickle that would run code cannot be read, but it is certainly a pickle: the rule fails (1), not 2.
    evil = Path(str(model_files["dir"])) / "evil.pth"
    evil.write_bytes(b"\x80\x02cos\nsystem\nX\x04\x00\x00\x00true\x85R.")
    r = run_cli("check", str(evil), "--no-config", "--forbid-pickle")
    assert r.code == 1 and "refused" in r.stdout
    r = run_cli("check", str(evil), "--no-config", "--max-size", "1GB")
    assert r.code == 2 and "evil.pth" in r.stderr


def test_sizes_of_folders_and_units(model_files: dict[str, object]) -> None:
    st = model_files["st"]
    assert isinstance(st, Path)
    size = st.stat().st_size
    mib = size / 2**20
    r = run_cli("check", str(st), "--no-config", "--max-size", f"{mib * 1.001:.4f}MiB")
    assert r.code == 0
    r = run_cli("check", str(st), "--no-config", "--max-size", f"{mib * 0.999:.4f}MiB")
    assert r.code == 1


def test_unreadable_and_usage(tmp_path: Path) -> None:
    r = run_cli("check", str(FIXTURES / "tiny_seed.safetensors"), "--no-config")
    assert r.code == 2 and "no budget applies" in r.stderr
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x05\0\0\0\0\0\0\0{oops")
    r = run_cli("check", str(bad), "--max-size", "1GB", "--no-config")
    assert r.code == 2 and len(r.stderr.strip().splitlines()) == 1 and "bad.safetensors" in r.stderr
    r = run_cli("check", str(bad), "--max-size", "1 parsec", "--no-config")
    assert r.code == 2 and "unit" in r.stderr


def write_repo(root: Path, table: str) -> None:
    (root / "pyproject.toml").write_text(f'[project]\nname = "x"\n\n{table}\n')
    (root / "models").mkdir(exist_ok=True)
    for name in ("tiny_seed.safetensors", "tiny_seed.pth"):
        (root / "models" / name).write_bytes((FIXTURES / name).read_bytes())


def test_pyproject_budgets_per_glob(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import modelscope_inspect as mi

    n = mi.load(str(FIXTURES / "tiny_seed.safetensors")).total_params
    write_repo(
        tmp_path,
        f'[tool.mi.check]\nmax-size = "1MB"\n\n[tool.mi.check."models/*.safetensors"]\nmax-params = {n}\n'
        f'\n[tool.mi.check."models/*.pth"]\nforbid-pickle = true\n',
    )
    monkeypatch.chdir(tmp_path)
    r = run_cli("check", "--json")  # no PATH: every file the globs match
    doc = json.loads(r.stdout)
    by_path = {Path(x["path"]).name: {y["rule"]: y["passed"] for y in x["rules"]} for x in doc["results"]}
    assert by_path == {
        "tiny_seed.safetensors": {"max-size": True, "max-params": True},
        "tiny_seed.pth": {"max-size": True, "forbid-pickle": False},
    }
    assert r.code == 1
    # Flags override the file.
    r = run_cli("check", "models/tiny_seed.safetensors", "--max-params", str(n - 1), "--json")
    assert r.code == 1 and rules(r.stdout)["max-params"]["limit"] == n - 1
    # A broken table is a usage error naming the file.
    (tmp_path / "pyproject.toml").write_text('[tool.mi.check]\nmax-size = "lots"\n')
    r = run_cli("check", "models/tiny_seed.safetensors")
    assert r.code == 2 and "pyproject.toml" in r.stderr


def hooks() -> list[dict[str, object]]:
    import yaml

    return yaml.safe_load((ROOT / "examples" / "ci" / ".pre-commit-hooks.yaml").read_text())  # type: ignore[no-any-return]


def run_hook(hook: dict[str, object], repo: Path, files: list[str]) -> subprocess.CompletedProcess[str]:
    """Run a hook the way pre-commit does: its entry plus the staged files matching its `files` regex."""
    pattern = re.compile(str(hook["files"]))
    chosen = [f for f in files if pattern.search(f)]
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}", NO_COLOR="1")
    return subprocess.run(
        [*shlex.split(str(hook["entry"])), *chosen], cwd=repo, capture_output=True, text=True, env=env, timeout=120
    )


def test_pre_commit_hooks_run(tmp_path: Path) -> None:
    by_id = {h["id"]: h for h in hooks()}
    assert set(by_id) == {"mi-check", "mi-scan"}
    files = ["models/tiny_seed.safetensors", "models/tiny_seed.pth", "README.md"]
    write_repo(tmp_path, '[tool.mi.check]\nmax-size = "1MB"\nallow-dtypes = ["f32"]\n')
    (tmp_path / "README.md").write_text("hi\n")
    ok = run_hook(by_id["mi-check"], tmp_path, files)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "2 paths checked, 0 failed" in ok.stdout
    write_repo(tmp_path, '[tool.mi.check]\nmax-size = "10KB"\n')
    bad = run_hook(by_id["mi-check"], tmp_path, files)
    assert bad.returncode == 1 and "FAIL" in bad.stdout
    scan_ok = run_hook(by_id["mi-scan"], tmp_path, files)
    assert scan_ok.returncode == 0, scan_ok.stdout + scan_ok.stderr
    (tmp_path / "models" / "whole.pth").write_bytes((FIXTURES / "tiny_seed_whole.pth").read_bytes())
    scan_bad = run_hook(by_id["mi-scan"], tmp_path, [*files, "models/whole.pth"])
    assert scan_bad.returncode == 1


def test_github_workflow_runs_mi_check() -> None:
    import yaml

    wf = yaml.safe_load((ROOT / "examples" / "ci" / "github" / "model-budgets.yml").read_text())
    steps = wf["jobs"]["mi-check"]["steps"]
    runs = [s["run"] for s in steps if "run" in s]
    assert "mi check" in runs and any(r.startswith("pip install modelscope-inspect") for r in runs)
