"""examples/ci/github/model-report.yml: its summary step run for real, in a git repository with a base branch
and a pull request that changes one checkpoint and adds another (bash -e, as GitHub runs it)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import FIXTURES, ROOT
from tests.test_markdown import render

yaml = pytest.importorskip("yaml")
WORKFLOW = ROOT / "examples" / "ci" / "github" / "model-report.yml"


def _git(repo: Path, *args: str) -> str:
    env = dict(
        os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@t", GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@t"
    )
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True, env=env).stdout


def test_workflow_summarises_changed_checkpoints(tmp_path: Path) -> None:
    if shutil.which("git") is None:
        pytest.skip("no git")
    wf = yaml.safe_load(WORKFLOW.read_text())
    steps = {s.get("name", ""): s for s in wf["jobs"]["mi-report"]["steps"]}
    script = steps["summarise changed checkpoints"]["run"]
    assert "--markdown" in script and "GITHUB_STEP_SUMMARY" in script
    assert "gh pr comment" in steps["comment on the pull request"]["run"]

    repo = tmp_path / "repo"
    (repo / "models").mkdir(parents=True)
    _git(repo, "init", "-q", "-b", "main")
    shutil.copy(FIXTURES / "tiny_seed.safetensors", repo / "models" / "a.safetensors")
    (repo / "pyproject.toml").write_text('[tool.mi.check]\nmax-size = "1MB"\n')
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "base")
    _git(repo, "update-ref", "refs/remotes/origin/main", "HEAD")
    _git(repo, "checkout", "-qb", "pr")
    shutil.copy(ROOT / "examples" / "tiny-gpt2" / "model.safetensors", repo / "models" / "a.safetensors")  # changed
    shutil.copy(FIXTURES / "tiny_llama.gguf", repo / "models" / "b.gguf")  # added
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "pr")

    shim = tmp_path / "bin"
    shim.mkdir()
    (shim / "mi").write_text(f'#!/bin/sh\nexec "{sys.executable}" -m modelscope_inspect "$@"\n')
    (shim / "mi").chmod(0o755)
    runner = tmp_path / "runner"
    runner.mkdir()
    summary = tmp_path / "summary.md"
    env = dict(os.environ, PATH=f"{shim}:{os.environ['PATH']}", PYTHONPATH=str(ROOT), BASE_REF="main",
               RUNNER_TEMP=str(runner), GITHUB_STEP_SUMMARY=str(summary), COLUMNS="80", NO_COLOR="1")  # fmt: skip
    r = subprocess.run(["bash", "-e", "-c", script], cwd=repo, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr  # no budgets in this repository: every check passes
    text = summary.read_text()
    assert text == (repo / "mi-summary.md").read_text()
    assert "### `models/a.safetensors`" in text and "### `models/b.gguf`" in text
    assert "mi diff against main" in text and "new file" in text
    cells = render(text)
    headers = [t[0] for t in cells.tables if t]
    assert ["name", "shape", "dtype", "params"] in headers  # the diff's added/removed tensor tables
    assert sorted(p.name for p in (repo / "reports").iterdir()) == ["models_a.safetensors.html", "models_b.gguf.html"]
    assert ["rule", "measured", "limit", "result"] in headers

    # A breached budget fails the step (exit 1), after the summary is written in full.
    (repo / "pyproject.toml").write_text('[tool.mi.check]\nmax-size = "10KB"\n')
    shutil.rmtree(runner)
    runner.mkdir()
    _git(repo, "worktree", "prune")
    summary.unlink()
    r = subprocess.run(["bash", "-e", "-c", script], cwd=repo, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 1, r.stdout + r.stderr
    assert summary.read_text().count("FAIL") >= 2 and "### `models/b.gguf`" in summary.read_text()
