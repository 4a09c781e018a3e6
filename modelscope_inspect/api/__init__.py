"""The library surface, and the only place where a path or a URL becomes something to read.

- `open_model(path)`: a model file, sharded index, folder or URL → `TensorInventory` (headers only);
- `open_config(path)`: an HF `config.json` (a file, a folder holding one, or a URL) → dict;
- `open_tree(path)`: the files `mi scan` reads, local or remote, without reading them yet;
- one call per command on top of those: `check`, `diff`, `scan`, `memory_spec`, `cross_check_for`,
  `graph_input`, and `exit_code` for their reports.

Analysis functions take what these return and never open anything themselves. Every module here imports the
readers inside its functions, so importing the api costs nothing until it is used.

Example:
    >>> from modelscope_inspect import api  # doctest: +SKIP
    >>> inv = api.open_model("hf://openai-community/gpt2")  # doctest: +SKIP
    >>> inv.total_params, inv.read.bytes_read  # doctest: +SKIP
"""

from __future__ import annotations

import re

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://")


def is_url(path: object) -> bool:
    """True for `scheme://…` strings (`hf://`, `https://`, `http://`, `s3://`, …); local paths are never URLs."""
    return isinstance(path, str) and _SCHEME.match(path) is not None


from .check import check  # noqa: E402  (after is_url, which every submodule uses)
from .config import open_config  # noqa: E402
from .diff import diff  # noqa: E402
from .graph import graph_input  # noqa: E402
from .memory import memory_spec  # noqa: E402
from .model import open_model  # noqa: E402
from .outcome import exit_code  # noqa: E402
from .params import cross_check_for, hparams_for, params  # noqa: E402
from .scan import scan  # noqa: E402
from .tree import open_tree  # noqa: E402

__all__ = [
    "check",
    "cross_check_for",
    "diff",
    "exit_code",
    "graph_input",
    "hparams_for",
    "is_url",
    "memory_spec",
    "open_config",
    "open_model",
    "open_tree",
    "params",
    "scan",
]
