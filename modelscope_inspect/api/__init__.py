"""The library surface, and the only place where a path or a URL becomes something to read.

- `open_model(path)`: a model file, sharded index, folder or URL → `TensorInventory` (headers only);
- `open_config(path)`: an HF `config.json` (a file, a folder holding one, or a URL) → dict;
- `open_tree(path)`: the files `mi scan` reads, local or remote, without reading them yet;
- one call per command on top of those: `check_paths`, `diff_paths`, `scan_paths`, `params_report`,
  `memory_spec`, `cross_check_for`, `graph_input`, `report_input`, and `exit_code` for their reports.

Analysis functions take what these return and never open anything themselves. The names load their module
on first use, so `import modelscope_inspect.api` costs nothing until one is called.

Example:
    >>> from modelscope_inspect import api  # doctest: +SKIP
    >>> inv = api.open_model("hf://openai-community/gpt2")  # doctest: +SKIP
    >>> inv.total_params, inv.read.bytes_read  # doctest: +SKIP
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .check import check_paths
    from .config import open_config
    from .diff import diff_paths
    from .graph import graph_input
    from .memory import memory_spec
    from .model import open_model
    from .outcome import exit_code
    from .params import cross_check_for, hparams_for, params_report
    from .paths import is_url
    from .report import report_input
    from .scan import scan_paths
    from .tree import open_tree

_HOME = {
    "check_paths": "check",
    "cross_check_for": "params",
    "diff_paths": "diff",
    "exit_code": "outcome",
    "graph_input": "graph",
    "hparams_for": "params",
    "is_url": "paths",
    "memory_spec": "memory",
    "open_config": "config",
    "open_model": "model",
    "open_tree": "tree",
    "params_report": "params",
    "report_input": "report",
    "scan_paths": "scan",
}


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f".{home}", __name__), name)


__all__ = [
    "check_paths",
    "cross_check_for",
    "diff_paths",
    "exit_code",
    "graph_input",
    "hparams_for",
    "is_url",
    "memory_spec",
    "open_config",
    "open_model",
    "open_tree",
    "params_report",
    "report_input",
    "scan_paths",
]
