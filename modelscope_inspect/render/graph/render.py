"""Turning DOT text into PNG/SVG with Graphviz's `dot` binary (subprocess, with a timeout and progress)."""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

from ...errors import RenderError, UsageError

INSTALL_HINT = "install Graphviz (Debian/Ubuntu: apt-get install graphviz; macOS: brew install graphviz)"
DEFAULT_TIMEOUT = 600.0
PROGRESS_EVERY = 5.0  # seconds between "still rendering" notes


def dot_binary() -> str | None:
    """Path of Graphviz's `dot`, or None when it is not installed."""
    return shutil.which("dot")


def render(
    dot_text: str,
    fmt: str,
    out: Path,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    progress: Callable[[str], None] | None = None,
    n_nodes: int = 0,
) -> float:
    """Render `dot_text` to `out` as `fmt` (png or svg); return the seconds `dot` took.

    `progress` receives a note when the render starts (for graphs of more than a few hundred nodes) and every
    few seconds while `dot` is still working, so long renders are never silent.
    """
    if fmt not in ("png", "svg"):
        raise UsageError(f"cannot render format {fmt!r}; use png or svg")
    exe = dot_binary()
    if exe is None:
        raise RenderError(f"Graphviz `dot` is not installed, so {fmt.upper()} cannot be made; {INSTALL_HINT}, "
                          "or use --dot to write the DOT text", rule="graphviz-missing")  # fmt: skip
    args = [exe, f"-T{fmt}", "-o", str(out)]
    if fmt == "png":
        args.insert(2, "-Gdpi=96")
    start = time.monotonic()
    done = threading.Event()

    def ticker() -> None:
        while not done.wait(PROGRESS_EVERY):
            if progress:
                progress(f"still rendering with dot… {time.monotonic() - start:.0f} s")

    if progress and n_nodes > 300:
        progress(f"rendering {n_nodes:,} nodes with dot…")
    thread = threading.Thread(target=ticker, daemon=True)
    thread.start()
    try:
        proc = subprocess.run(args, input=dot_text.encode("utf-8"), capture_output=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise RenderError(
            f"dot did not finish within {timeout:.0f} s; use --depth to draw fewer nodes or --dot to get the text",
            rule="graphviz-timeout",
        ) from None
    finally:
        done.set()
        thread.join()
    if proc.returncode != 0:
        lines = [x.strip() for x in proc.stderr.decode("utf-8", "replace").splitlines() if x.strip()]
        first = next((x for x in lines if x.lower().startswith("error")), lines[0] if lines else "")
        context = next((x for x in lines if x.startswith("in label of")), "")
        detail = "; ".join(x for x in (first, context) if x) or f"exit code {proc.returncode}"
        raise RenderError(f"dot failed: {detail}", rule="graphviz-failed")
    return time.monotonic() - start
