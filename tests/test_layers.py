"""The layering of docs/ARCHITECTURE.md holds, and the contract that says so can fail.

`lint-imports` (import-linter) checks the contracts in pyproject.toml; these tests run it on the package, on a
copy with one deliberately wrong import, and check what a layer contract cannot: import cycles and the single
`is_url`.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "modelscope_inspect"
LINT = str(Path(sys.executable).with_name("lint-imports"))


def _lint(cwd: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(cwd))
    return subprocess.run([LINT, "--config", str(cwd / "pyproject.toml")], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=120)  # fmt: skip


def test_contracts_are_kept() -> None:
    r = _lint(ROOT)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "3 kept, 0 broken" in r.stdout


def _copy(tmp_path: Path) -> Path:
    shutil.copytree(PKG, tmp_path / "modelscope_inspect", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path / "modelscope_inspect"


def test_an_upward_import_breaks_the_layer_contract(tmp_path: Path) -> None:
    pkg = _copy(tmp_path)
    tree = pkg / "analysis" / "tree.py"
    tree.write_text(tree.read_text() + "\nfrom ..render.units import human_bytes  # noqa: E402,F401\n")
    r = _lint(tmp_path)
    assert r.returncode != 0
    assert "modelscope_inspect.analysis.tree -> modelscope_inspect.render.units" in r.stdout
    assert "2 kept, 1 broken" in r.stdout


def test_analysis_reading_files_breaks_the_purity_contract(tmp_path: Path) -> None:
    pkg = _copy(tmp_path)
    check = pkg / "analysis" / "check.py"
    check.write_text(check.read_text() + "\nfrom ..loaders.source import LocalFile  # noqa: E402,F401\n")
    r = _lint(tmp_path)
    assert r.returncode != 0 and "analysis is pure" in r.stdout
    assert "modelscope_inspect.analysis.check -> modelscope_inspect.loaders.source" in r.stdout


def test_rich_below_render_breaks_its_contract(tmp_path: Path) -> None:
    pkg = _copy(tmp_path)
    inv = pkg / "inventory.py"
    inv.write_text(inv.read_text() + "\nimport rich  # noqa: E402,F401\n")
    r = _lint(tmp_path)
    assert r.returncode != 0 and "render is the only user of rich" in r.stdout


def test_the_only_import_cycle_is_the_loader_registry() -> None:
    import grimp

    # Imports under `if TYPE_CHECKING:` never run: the family records name `HParams` in annotations only.
    g = grimp.build_graph("modelscope_inspect", exclude_type_checking_imports=True)
    cyclic = set()
    for m in g.modules:
        for n in g.find_modules_directly_imported_by(m):
            if g.chain_exists(importer=n, imported=m):
                cyclic |= {m, n}
    # loaders/base.py imports _builtin on first use to register the readers, which import base: documented there.
    registry = {"_builtin", "base", "gguf", "numpy_arrays", "onnx", "safetensors", "torch_legacy", "torchzip"}
    registry |= {"keras", "openvino", "torch_export", "nemo", "paddle", "flax_msgpack", "tf_bundle"}  # the zoo
    assert cyclic <= {f"modelscope_inspect.loaders.{m}" for m in registry}, sorted(cyclic)


def test_is_url_is_defined_once_and_used_only_in_api() -> None:
    defined, used = [], []
    for path in PKG.rglob("*.py"):
        for line in path.read_text(encoding="utf-8").splitlines():
            if re.search(r"\bdef is_url\b", line):
                defined.append(path)
            elif re.search(r"\bis_url\b", line):
                used.append(path)
    assert defined == [PKG / "api" / "paths.py"]
    assert used and all(p.is_relative_to(PKG / "api") for p in used), used
