"""The one output sink. A fresh rich `Console` per invocation so NO_COLOR / COLUMNS apply."""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.console import Console, RenderableType
from rich.markup import escape


class Output:
    """Where a command's results go: rich renderables or a JSON document on stdout, errors on stderr."""

    def __init__(self) -> None:
        self.console = Console(highlight=False, soft_wrap=False)
        self.err = Console(stderr=True, highlight=False, soft_wrap=True)

    def show(self, *items: RenderableType) -> None:
        for item in items:
            self.console.print(item)

    def json(self, doc: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
        sys.stdout.flush()

    def error(self, message: str) -> None:
        self.err.print(f"[bold red]error:[/] {escape(message)}", markup=True)

    def note(self, message: str) -> None:
        self.err.print(message, markup=False)
