"""Human-readable numbers: binary units for bytes (labelled MiB/GiB), SI suffixes for parameter counts."""

from __future__ import annotations


def human_bytes(n: int | float) -> str:
    """`790857068` → `'754.2 MiB'` (1024-based, always labelled as such)."""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def human_count(n: int | float) -> str:
    """`197714267` → `'197.7M'`; small numbers are shown whole."""
    value = float(n)
    if abs(value) < 1000:
        return f"{int(value)}"
    for unit in ("K", "M", "B", "T"):
        value /= 1000
        if abs(value) < 1000 or unit == "T":
            return f"{value:.1f}{unit}"
    raise AssertionError("unreachable")


def share_bar(share: float, width: int = 20) -> str:
    """A bar of `width` cells for a share in [0, 1], with eighth-cell resolution."""
    share = min(max(share, 0.0), 1.0)
    eighths = round(share * width * 8)
    full, rest = divmod(eighths, 8)
    partial = " ▏▎▍▌▋▊▉"[rest] if rest else ""
    return ("█" * full + partial).ljust(width)


def network_line(nbytes: int) -> str:
    """The line every command prints for a URL: the body bytes that crossed the network."""
    return f"read {nbytes:,} bytes ({human_bytes(nbytes)}) over the network"


def shape_text(shape: tuple[int, ...] | list[int]) -> str:
    """`(300, 16)` → `'[300×16]'`, `()` → `'[scalar]'`: the one shape notation of every table and tree."""
    return "[" + ("×".join(str(d) for d in shape) or "scalar") + "]"
