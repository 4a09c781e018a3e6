"""Golden outputs: every command's `--json` document and text view on the committed fixtures, byte for byte.

The layering of the package may move code around; what users and pipes see must not change without a
deliberate update. `MI_UPDATE_GOLDEN=1 pytest tests/test_golden.py` rewrites `tests/golden/*.txt` (review the
diff before committing it). Each golden file holds the exit code, then stdout, then stderr.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests" / "golden"

# (name, argv). Paths are relative to the repository root, so documents hold no machine-specific path.
CASES: list[tuple[str, list[str]]] = [
    ("inspect-folder-json", ["inspect", "examples/tiny-gpt2", "--json"]),
    ("inspect-folder-json-depth1", ["inspect", "examples/tiny-gpt2", "--json", "--depth", "1"]),
    ("inspect-seed-pth-json", ["inspect", "fixtures/tiny_seed.pth", "--json", "--filter", "*.0.*", "--sort", "bytes"]),
    ("inspect-seed-st-json", ["inspect", "fixtures/tiny_seed.safetensors", "--json"]),
    ("inspect-tied-json", ["inspect", "fixtures/tied_gpt2.bin", "--json"]),
    ("inspect-views-json", ["inspect", "fixtures/views_and_dtypes.pth", "--json"]),
    ("inspect-whole-json", ["inspect", "fixtures/tiny_seed_whole.pth", "--json"]),
    ("inspect-checkpoint-json", ["inspect", "fixtures/tiny_checkpoint.pth", "--json"]),
    ("inspect-onnx-json", ["inspect", "fixtures/tiny_mlp.onnx", "--json"]),
    ("inspect-gguf-json", ["inspect", "fixtures/tiny_llama.gguf", "--json"]),
    ("inspect-views-text", ["inspect", "fixtures/views_and_dtypes.pth", "--tensors", "--sort", "name"]),
    ("inspect-gguf-text", ["inspect", "fixtures/tiny_llama.gguf", "--tensors"]),
    ("inspect-missing", ["inspect", "fixtures/no-such-file.pth"]),
    ("inspect-missing-json", ["inspect", "fixtures/no-such-file.pth", "--json"]),
    ("params-seed-json", ["params", "--json"]),
    ("params-config-json", ["params", "--config", "examples/configs/llama-3-8b.json", "--json"]),
    ("params-folder-json", ["params", "--config", "examples/tiny-gpt2/config.json", "--json"]),
    (
        "params-lora-json",
        [
            "params",
            "--config",
            "examples/configs/llama-3-8b.json",
            "--lora-r",
            "8",
            "--lora-targets",
            "q_proj,v_proj",
            "--json",
        ],
    ),
    ("params-arch-json", ["params", "--arch", "torch-decoder", "--layers", "2", "--d-model", "64", "--json"]),
    ("params-bad-arch", ["params", "--arch", "nope"]),
    ("memory-config-json", ["memory", "--config", "examples/configs/llama-3-8b.json", "--seq", "8192", "--json"]),
    (
        "memory-training-json",
        ["memory", "--config", "examples/tiny-gpt2/config.json", "--training", "--batch", "4", "--seq", "64", "--json"],
    ),
    ("memory-path-json", ["memory", "examples/tiny-gpt2", "--json"]),
    ("memory-path-text", ["memory", "examples/tiny-gpt2", "--dtype", "int4", "--group-size", "32"]),
    ("memory-seed-json", ["memory", "--json"]),
    (
        "check-pass-json",
        ["check", "examples/tiny-gpt2", "--max-params", "20K", "--allow-dtypes", "f32", "--json", "--no-config"],
    ),
    (
        "check-fail-json",
        [
            "check",
            "fixtures/tiny_seed.pth",
            "fixtures/tiny_mlp.onnx",
            "--max-size",
            "10KB",
            "--forbid-pickle",
            "--max-share",
            "embedding=0.1",
            "--allow-empty-share",
            "--json",
            "--no-config",
        ],
    ),
    (
        "check-unknown-share-json",
        ["check", "examples/tiny-gpt2", "--max-share", "embeddings=0.5", "--json", "--no-config"],
    ),
    (
        "check-fail-text",
        [
            "check",
            "fixtures/tiny_seed.pth",
            "fixtures/tiny_mlp.onnx",
            "--max-size",
            "10KB",
            "--forbid-pickle",
            "--expect-params",
            "5K±1%",
            "--no-config",
        ],
    ),
    (
        "check-unreadable-json",
        ["check", "fixtures/README.md", "fixtures/tiny_mlp.onnx", "--max-size", "1MB", "--json", "--no-config"],
    ),
    ("diff-json", ["diff", "fixtures/tiny_seed.pth", "fixtures/tiny_seed.safetensors", "--json"]),
    ("diff-values-json", ["diff", "fixtures/tiny_seed.pth", "fixtures/tiny_seed.safetensors", "--values", "--json"]),
    ("diff-text", ["diff", "fixtures/tiny_seed.pth", "fixtures/tied_gpt2.bin"]),
    ("diff-tied-json", ["diff", "fixtures/tied_gpt2.bin", "examples/tiny-gpt2", "--json"]),
    ("scan-fixtures-json", ["scan", "fixtures", "--json"]),
    ("scan-fixtures-text", ["scan", "fixtures"]),
    ("scan-file-json", ["scan", "fixtures/tiny_seed_whole.pth", "--json"]),
    ("graph-dot", ["graph", "fixtures/tiny_seed.safetensors", "--dot", "--depth", "2"]),
    ("graph-onnx-dot", ["graph", "fixtures/tiny_mlp.onnx", "--dot"]),
]


def _run(args: list[str]) -> str:
    from typer.testing import CliRunner

    from modelscope_inspect.cli import app

    env = {"COLUMNS": "100", "NO_COLOR": "1", "TERM": "dumb", "MI_DEBUG": ""}
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        result = CliRunner().invoke(app, args, env=env)
    finally:
        os.chdir(cwd)
    return f"exit {result.exit_code}\n--- stdout\n{result.stdout}--- stderr\n{result.stderr}"


@pytest.mark.parametrize(("name", "args"), CASES, ids=[c[0] for c in CASES])
def test_golden(name: str, args: list[str]) -> None:
    got = _run(args)
    path = GOLDEN / f"{name}.txt"
    if os.environ.get("MI_UPDATE_GOLDEN") == "1":
        path.write_text(got, encoding="utf-8")
    assert path.is_file(), f"no golden file {path.name}: run with MI_UPDATE_GOLDEN=1"
    assert got == path.read_text(encoding="utf-8")
