"""The one output sink. A fresh rich `Console` per invocation so NO_COLOR / COLUMNS apply."""

from __future__ import annotations

import json
import sys
from functools import cached_property
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console, RenderableType


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

    def show(self, *items: RenderableType) -> None:
        for item in items:
            self.console.print(item)

    def text(self, text: str) -> None:
        """Raw text on stdout, neither wrapped nor styled (DOT sources, file contents)."""
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
        sys.stdout.flush()

    def json(self, doc: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
        sys.stdout.flush()

    def error(self, message: str) -> None:
        from rich.markup import escape

        self.err.print(f"[bold red]error:[/] {escape(message)}", markup=True)

    def note(self, message: str) -> None:
        self.err.print(message, markup=False)
