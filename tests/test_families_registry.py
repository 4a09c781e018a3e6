"""The family registry is the one place: README table, --arch choices and known model types are derived from it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time

from modelscope_inspect.analysis import families
from modelscope_inspect.analysis.hparams import KNOWN_MODEL_TYPES

from .conftest import ROOT

_BLOCK = re.compile(r"<!-- presets -->\n(.*?)<!-- /presets -->", re.S)


def _readme_table() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    m = _BLOCK.search(text)
    assert m, "README has no <!-- presets --> block"
    return m.group(1).strip()


def test_readme_preset_table_is_the_registry() -> None:
    if os.environ.get("MI_UPDATE_README") == "1":
        path = ROOT / "README.md"
        text = path.read_text(encoding="utf-8")
        path.write_text(_BLOCK.sub(f"<!-- presets -->\n{families.markdown_table()}\n<!-- /presets -->", text))
    assert _readme_table() == families.markdown_table()


def test_arch_choices_and_model_types_come_from_the_records() -> None:
    from modelscope_inspect.cli.options import Arch

    assert [a.value for a in Arch] == [f.name for f in families.FAMILIES]
    assert set(KNOWN_MODEL_TYPES) == {t for f in families.FAMILIES for t in f.model_types if t.islower()}
    for f in families.FAMILIES:
        assert f.summary and (f.defaults is None or f.model_types), f.name


def test_params_config_is_fast_and_imports_neither_torch_nor_transformers() -> None:
    code = (
        "import sys, time; t = time.perf_counter();"
        "from modelscope_inspect.cli import main; sys.argv = ['mi', 'params', '--config', sys.argv[1], '--json'];"
        "\ntry: main()\nexcept SystemExit: pass\n"
        "bad = {'torch', 'transformers', 'numpy'} & set(sys.modules); print('BAD', sorted(bad), file=sys.stderr)"
        " if bad else None; sys.exit(3 if bad else 0)"
    )
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-c", code, str(ROOT / "examples" / "configs" / "llama-3-8b.json")],
                       capture_output=True, text=True, cwd=ROOT, timeout=60)  # fmt: skip
    elapsed = time.perf_counter() - t0
    assert r.returncode == 0, r.stderr
    assert '"total_params": 8030261248' in r.stdout
    # Whole process, interpreter start included; the budget is 0.2 s (generous here: shared CI cores).
    assert elapsed < 2.0
