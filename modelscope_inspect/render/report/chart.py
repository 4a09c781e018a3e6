"""The memory-vs-context chart as inline SVG: drawn in Python so that it reads without JavaScript.

Three lines over context length (log scale): the weights, the KV cache, and the inference total (weights +
KV cache + working set), with a horizontal line per common GPU memory size. Every point has a `<title>` so a
hover says the exact figure, scripts or not.
"""

from __future__ import annotations

import math
from html import escape

from ...analysis.accelerators import find_accelerator
from ...analysis.memory import MemoryReport
from ..units import human_bytes

# The GPU lines: one common accelerator per memory size, their memory from `mi fit`'s catalogue.
CHART_GPUS = ("RTX-4090", "A100-40GB", "L40S", "H100-SXM", "H200", "B200", "MI325X")


def _gpu_lines() -> tuple[tuple[str, int], ...]:
    lines = []
    for name in CHART_GPUS:
        acc = find_accelerator(name)
        lines.append((f"{acc.name} {human_bytes(acc.usable_bytes)}", acc.usable_bytes))
    return tuple(sorted(lines, key=lambda line: line[1]))


GPU_MEMORY: tuple[tuple[str, int], ...] = _gpu_lines()

GPU_SCALE_MIN = 0.1  # the first GPU above the model is drawn when the model needs at least this share of it
W, H = 720, 320
LEFT, RIGHT, TOP, BOTTOM = 64, 120, 16, 56


def _tokens(n: int) -> str:
    return f"{n // 1024}K" if n >= 1024 and n % 1024 == 0 else f"{n:,}"


def memory_chart(reports: tuple[MemoryReport, ...]) -> str:
    """An `<svg>` element (a string) of weights, KV cache and total against context length."""
    seqs = [r.options.seq for r in reports]
    totals = [r.inference_bytes for r in reports]
    kvs = [r.kv.bytes for r in reports]
    weights = [r.weights_bytes for r in reports]
    top = max(totals) if totals else 1
    # The GPU lines below the largest total, and the first one above it (the sizes that decide a choice), unless
    # the model would be a sliver under that line: a tiny model is drawn at its own scale instead.
    gpus: list[tuple[str, int]] = []
    for name, size in GPU_MEMORY:
        if size >= top:
            if top >= GPU_SCALE_MIN * size:
                gpus.append((name, size))
            break
        gpus.append((name, size))
    ymax = max([top, *(b for _, b in gpus)]) * 1.08 or 1
    lo, hi = math.log2(seqs[0]), math.log2(seqs[-1])
    span = (hi - lo) or 1.0

    def x(seq: int) -> float:
        return LEFT + (math.log2(seq) - lo) / span * (W - LEFT - RIGHT)

    def y(value: float) -> float:
        return TOP + (1 - value / ymax) * (H - TOP - BOTTOM)

    parts = [
        f'<svg class="chart" viewBox="0 0 {W} {H}" role="img" aria-labelledby="chart-title" '
        'xmlns="http://www.w3.org/2000/svg">',
        '<title id="chart-title">memory for inference against context length, batch 1</title>',
        f'<line class="axis" x1="{LEFT}" y1="{H - BOTTOM}" x2="{W - RIGHT}" y2="{H - BOTTOM}"/>',
        f'<line class="axis" x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{H - BOTTOM}"/>',
    ]
    for i in range(5):  # y ticks
        v = ymax * i / 4
        parts.append(f'<text class="tick" x="{LEFT - 6}" y="{y(v) + 4:.1f}" text-anchor="end">{human_bytes(v)}</text>')
    for s in seqs:
        parts.append(
            f'<text class="tick" x="{x(s):.1f}" y="{H - BOTTOM + 16}" text-anchor="middle">{_tokens(s)}</text>'
        )
    parts.append(f'<text class="tick" x="{(LEFT + W - RIGHT) / 2}" y="{H - BOTTOM + 32}" text-anchor="middle">'
                 "context length (tokens, log scale)</text>")  # fmt: skip
    for name, b in gpus:
        parts.append(f'<line class="gpu" x1="{LEFT}" y1="{y(b):.1f}" x2="{W - RIGHT}" y2="{y(b):.1f}">'
                     f"<title>{escape(name)} GPU ({b:,} bytes)</title></line>")  # fmt: skip
        parts.append(f'<text class="gpu-label" x="{W - RIGHT + 4}" y="{y(b) + 4:.1f}">{escape(name)} GPU</text>')
    for cls, label, values in (("total", "total", totals), ("kv", "KV cache", kvs), ("weights", "weights", weights)):
        pts = " ".join(f"{x(s):.1f},{y(v):.1f}" for s, v in zip(seqs, values, strict=True))
        parts.append(f'<polyline class="line {cls}" points="{pts}"/>')
        for s, v in zip(seqs, values, strict=True):
            tip = f"{label} at {s:,} tokens: {human_bytes(v)} ({v:,} bytes)"
            parts.append(
                f'<circle class="dot {cls}" cx="{x(s):.1f}" cy="{y(v):.1f}" r="3"><title>{tip}</title></circle>'
            )
    lx, ly = LEFT, H - 8  # the legend: one row under the axis, clear of the lines
    for cls, label in (("total", "total (weights + KV + working set)"), ("kv", "KV cache"), ("weights", "weights")):
        parts.append(f'<line class="line {cls}" x1="{lx}" y1="{ly - 4}" x2="{lx + 18}" y2="{ly - 4}"/>')
        parts.append(f'<text class="legend" x="{lx + 22}" y="{ly}">{escape(label)}</text>')
        lx += 40 + 7 * len(label)
    if not gpus:
        smallest = GPU_MEMORY[0][0]
        parts.append(f'<text class="gpu-label" x="{W - RIGHT - 4}" y="{TOP + 12}" text-anchor="end">'
                     f"under {GPU_SCALE_MIN:.0%} of a {escape(smallest)} GPU at every length</text>")  # fmt: skip
    parts.append("</svg>")
    return "".join(parts)
