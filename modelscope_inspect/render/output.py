"""The one output sink. A fresh rich `Console` per invocation so NO_COLOR / COLUMNS apply.

Every table and paragraph a view prints is laid out by `render.layout` for the console's width (a terminal's
width, `COLUMNS`, or 80 columns in a pipe) and goes through `show`, which writes each line without the
spaces rich pads cells and lines with: no line on stdout ends in a space, coloured or not.
"""

from __future__ import annotations

import json
import re
import sys
from functools import cached_property
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console, RenderableType

# Spaces at the end of a line, before any colour codes that close it (rich ends styled lines with `ESC[0m`).
_TRAILING = re.compile(r"[ \t]+((?:\x1b\[[0-9;]*m)*)$", re.M)


def strip_trailing(text: str) -> str:
    """`text` with no space or tab at the end of any line (terminal colour codes kept)."""
    return _TRAILING.sub(r"\1", text)


class Output:
    """Where a command's results go: rich renderables or a JSON document on stdout, errors on stderr.

    rich is imported only when something is rendered with it, so `--json` runs never pay for it.
    """

    @cached_property
    def console(self) -> Console:
        from rich.console import Console

        # markup=False: tensor names, GGUF metadata and file paths come from untrusted files and may hold
        # "[...]" sequences; they must print as text, never be parsed as console markup.
        return Console(highlight=False, soft_wrap=False, markup=False)

    @cached_property
    def err(self) -> Console:
        from rich.console import Console

        return Console(stderr=True, highlight=False, soft_wrap=True)

    def show(self, *items: RenderableType, markdown: bool = False) -> None:
        """Print renderables (plain strings are wrapped like table cells: numbers are never broken), or with
        `markdown` the same renderables as GitHub-flavoured Markdown (`render.markdown`)."""
        from .layout import Para

        if markdown:
            from .markdown import to_markdown

            self.text(strip_trailing(to_markdown(items)))
            return

        console = self.console
        for item in items:
            with console.capture() as capture:
                console.print(Para(item) if isinstance(item, str) else item)
            sys.stdout.write(strip_trailing(capture.get()))
        sys.stdout.flush()

    def text(self, text: str) -> None:
        """Raw text on stdout, neither wrapped nor styled (DOT sources, file contents)."""
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
        sys.stdout.flush()

    def json(self, doc: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
        sys.stdout.flush()

    def jsonl(self, doc: dict[str, Any]) -> None:
        """One JSON object on one line, flushed (a record of `--jsonl`)."""
        sys.stdout.write(json.dumps(doc, ensure_ascii=False, separators=(",", ":")) + "\n")
        sys.stdout.flush()

    def error(self, message: str) -> None:
        from rich.markup import escape

        self.err.print(f"[bold red]error:[/] {escape(message)}", markup=True)

    def note(self, message: str) -> None:
        self.err.print(message, markup=False)
