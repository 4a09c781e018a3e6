"""Find, run and (optionally) rewrite the README's console examples.

An example is a line `<!-- example: NAME -->` followed by a ```console block whose first line is `$ mi ARGS`.
The rest of the block is the command's exact output, run from the repository root with a fixed width.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
WIDTH = 80
_BLOCK = re.compile(r"<!-- example: (?P<name>[\w-]+) -->\n```console\n\$ mi (?P<args>[^\n]*)\n(?P<out>.*?)```", re.S)


@dataclass(frozen=True)
class Example:
    name: str
    args: list[str]
    output: str
    span: tuple[int, int]


def examples(text: str | None = None) -> list[Example]:
    text = README.read_text(encoding="utf-8") if text is None else text
    return [Example(m["name"], shlex.split(m["args"]), m["out"], m.span("out")) for m in _BLOCK.finditer(text)]


def run(args: list[str]) -> tuple[int, str]:
    """Run `mi ARGS` in-process as a user would see it (fixed width, no colour), from the repo root."""
    import os

    from typer.testing import CliRunner

    from modelscope_inspect.cli import app

    env = {"COLUMNS": str(WIDTH), "NO_COLOR": "1", "TERM": "dumb"}
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        result = CliRunner().invoke(app, args, env=env)
    finally:
        os.chdir(cwd)
    return result.exit_code, result.stdout


def rewrite() -> None:
    text = README.read_text(encoding="utf-8")
    for ex in reversed(examples(text)):
        _code, out = run(ex.args)
        a, b = ex.span
        text = text[:a] + "\n".join(line.rstrip() for line in out.rstrip("\n").split("\n")) + "\n" + text[b:]
    README.write_text(text, encoding="utf-8")
