"""Shared test helpers: running the CLI as a user would, and building real files with the real libraries."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "fixtures"
PY = sys.executable


@dataclass
class CliResult:
    code: int
    stdout: str
    stderr: str


def run_cli(*args: str, env: dict[str, str] | None = None) -> CliResult:
    """`mi ARGS` in-process through typer's CliRunner, stdout and stderr kept apart."""
    from modelscope_inspect.cli import app

    runner = CliRunner()
    base = {"COLUMNS": "100", "NO_COLOR": "1", "MI_DEBUG": ""}
    base.update(env or {})
    r = runner.invoke(app, list(args), env=base)
    return CliResult(r.exit_code, r.stdout, r.stderr)


def run_mi_process(
    *args: str, timeout: float = 60, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`python -m modelscope_inspect ARGS` as a whole process (what a user's shell runs)."""
    full_env = dict(os.environ, COLUMNS="100", NO_COLOR="1")
    full_env.pop("MI_DEBUG", None)
    full_env.update(env or {})
    return subprocess.run(
        [PY, "-m", "modelscope_inspect", *args], capture_output=True, text=True, timeout=timeout, env=full_env
    )


@pytest.fixture(scope="session")
def seed_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The seed's real 6-layer decoder (197,714,267 params) saved as a state_dict .pth and as safetensors."""
    torch = pytest.importorskip("torch")
    from safetensors.torch import save_file

    from fixtures.make_fixtures import SeedDecoder

    out = tmp_path_factory.mktemp("seed")
    torch.manual_seed(0)
    model = SeedDecoder()
    sd = model.state_dict()
    torch.save(sd, out / "seed.pth")
    save_file({k: v.contiguous() for k, v in sd.items()}, out / "seed.safetensors")
    n = sum(p.numel() for p in model.parameters())
    (out / "numel.txt").write_text(str(n))
    del model, sd
    return {"pth": out / "seed.pth", "safetensors": out / "seed.safetensors", "numel": out / "numel.txt"}
