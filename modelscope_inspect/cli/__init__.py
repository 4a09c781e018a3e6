"""The `mi` command line. Commands only translate: parse options, make one api call, hand the result to one
view or document of `render/`. Adding a command means a module here and a line in `COMMANDS`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .app import _app_for, app, main, register
from .check import check_cmd
from .diff import diff_cmd
from .fit import fit_cmd
from .graph import graph_cmd
from .inspect import inspect_cmd
from .memory import memory_cmd
from .params import params_cmd
from .report import report_cmd
from .scan import scan_cmd

COMMANDS: tuple[tuple[str, Callable[..., Any]], ...] = (
    ("check", check_cmd),
    ("diff", diff_cmd),
    ("fit", fit_cmd),
    ("graph", graph_cmd),
    ("inspect", inspect_cmd),
    ("memory", memory_cmd),
    ("params", params_cmd),
    ("report", report_cmd),
    ("scan", scan_cmd),
)
for _name, _fn in COMMANDS:
    register(_name, _fn)

__all__ = ["COMMANDS", "_app_for", "app", "main"]
